//! A profiling driver: round trips to a child process's echo server over a
//! Unix socket, asked from this thread (`ask`) or from an actor on the
//! link's executor (`actor`), for SECONDS; prints the p50. `cargo run
//! --release -p bench --example ask_prof -- ask 3 [ll]`, under `perf` or
//! `strace -f -c`.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]
use bench::child::{self, ChildProc, Mode};
use bench::report::Remote;
use manager::Addr;
use std::time::{Duration, Instant};

fn main() {
    if let Some((mode, addrs)) = child::child_args().unwrap() {
        child::run(mode, &addrs).unwrap();
        return;
    }
    let what = std::env::args().nth(1).unwrap_or_else(|| "ask".into());
    let secs: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let low = std::env::args().nth(3).as_deref() == Some("ll");
    let me = std::env::current_exe().unwrap();
    let sock = Addr::Unix(std::env::temp_dir().join(format!("ask-prof-{}.sock", std::process::id())));
    let mode = if low { Mode::OursLowLatency } else { Mode::Ours };
    let c = ChildProc::start(&me, &[], mode, &[sock]).unwrap();
    let r = Remote::connect("prof", &c.addrs[0], low).unwrap();
    let until = Instant::now() + Duration::from_secs(secs);
    let h = if what == "ask" { r.ask_rtt(until, u64::MAX) } else { r.rtt(until, u64::MAX) }.unwrap();
    println!("{what}: {} round trips, p50 {} ns", h.len(), h.value_at_quantile(0.5));
}
