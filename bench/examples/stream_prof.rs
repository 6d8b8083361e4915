//! A profiling driver: a link to a child process (started from this
//! program) streaming to its sink (`stream`), echoing from an actor on the
//! link's executor (`rtt`), echoing asked from this thread (`ask`), or
//! streaming 16 MiB messages to its `bytes-sink` (`large`: GB/s; `bare-large`
//! its baseline, a bare socket) for
//! SECONDS, over a Unix socket, `tcp` or `shm` (and `ll`: the low-latency
//! option on both sides); prints the rate and the CPU time
//! of both processes per message. `cargo run --release -p bench --example
//! stream_prof -- stream 3 unix`, under `perf record -a`.
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
    let what = std::env::args().nth(1).unwrap_or_else(|| "stream".into());
    let secs: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let me = std::env::current_exe().unwrap();
    let sock = match std::env::args().nth(3).as_deref() {
        Some("tcp") => "tcp://127.0.0.1:0".parse().unwrap(),
        Some("shm") => Addr::Shm(format!("prof-{}", std::process::id())),
        _ => Addr::Unix(std::env::temp_dir().join(format!("prof-{}.sock", std::process::id()))),
    };
    let low = std::env::args().nth(4).as_deref() == Some("ll");
    if what == "bare-large" {
        // The baseline of `large`: a bare socket moving the same bytes.
        let c = ChildProc::start(&me, &[], Mode::Bare, &[sock]).unwrap();
        let pids = [std::process::id(), c.pid()];
        let cpu = || pids.iter().map(|&p| bench::report::cpu_ns(p)).sum::<u64>();
        let (before, t0) = (cpu(), Instant::now());
        let until = t0 + Duration::from_secs(secs);
        let rate = bench::bare::large_stream(&c.addrs[0], until, bench::large::LARGE).unwrap();
        let bytes = rate * t0.elapsed().as_secs_f64();
        println!("{:.2} GB/s, {:.2} ns CPU/byte", rate / 1e9, (cpu() - before) as f64 / bytes);
        return;
    }
    let mode = if low { Mode::OursLowLatency } else { Mode::Ours };
    // IPCHNL_PROF_CHILD=path/to/ipchnl: that binary's `bench-child` serves
    // (its allocator, as `ipchnl bench` has it).
    let c = match std::env::var_os("IPCHNL_PROF_CHILD") {
        Some(p) => ChildProc::start(std::path::Path::new(&p), &["bench-child"], mode, &[sock]),
        None => ChildProc::start(&me, &[], mode, &[sock]),
    }
    .unwrap();
    println!("child {}", c.pid());
    let r = Remote::connect("prof", &c.addrs[0], low).unwrap();
    let until = Instant::now() + Duration::from_secs(secs);
    let pids = [std::process::id(), c.pid()];
    let cpu = || pids.iter().map(|&p| bench::report::cpu_ns(p)).sum::<u64>();
    if what == "large" {
        let sink = r.manager().find_by_name("bytes-sink").unwrap();
        let data = msg_header::Bytes::from(vec![0x5a; bench::large::LARGE]);
        let before = cpu();
        let t0 = Instant::now();
        let rate = bench::large::stream(&sink, &data, until).unwrap();
        let bytes = rate * t0.elapsed().as_secs_f64();
        println!("{:.2} GB/s, {:.2} ns CPU/byte", rate / 1e9, (cpu() - before) as f64 / bytes);
    } else if what == "stream" {
        let before = cpu();
        let t0 = Instant::now();
        let rate = r.stream(until).unwrap();
        let n = rate * t0.elapsed().as_secs_f64();
        println!("{rate:.0} msg/s, {:.0} ns CPU/msg", (cpu() - before) as f64 / n);
    } else {
        let h = if what == "ask" { r.ask_rtt(until, u64::MAX) } else { r.rtt(until, u64::MAX) }.unwrap();
        println!("{what}: {} round trips, p50 {} ns", h.len(), h.value_at_quantile(0.5));
    }
}
