//! What one hostile peer costs the others: another link's echo round trip
//! (p50 and p99) while each flood of `bench::flood` runs, against the same
//! echo with no flood, alternating (A B A B ...) in one run. Issue 12's
//! target: p99 during a flood at most 3x that without.
//!
//! The server is a manager in a second process (the bench re-executes
//! itself, as `ipchnl bench-child` does), its links all on one executor,
//! as `ipchnl serve` runs them; the echo is our pinger on a link of its
//! own; the flood comes from threads of this process over links (or bare
//! connections) of their own.
//!
//! On a machine of two CPUs or more, the server gets CPU 1 and the client
//! CPU 0, and the flood runs in a process of its own at idle priority
//! (`SCHED_IDLE`, through `chrt`): on two CPUs a flood at any normal
//! priority gets scheduler slices of its own (3 ms, however nice), and the
//! thread it shares a CPU with waits them out, which measures the kernel's
//! scheduler, not the server's fairness.
//!
//! `cargo bench -p bench --bench floods` (`IPCHNL_BENCH_ROUNDS=N`;
//! `IPCHNL_FLOODS=NAME,...` for some floods only).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bench::child::{ChildProc, Mode};
use bench::flood::Flood;
use bench::report::Remote;
use bench::{histogram, machine, median, rounds};
use manager::Addr;

/// One sample: the echo runs this long (after the flood has had this long
/// to get going).
const SAMPLE: Duration = Duration::from_millis(400);
const WARMUP: Duration = Duration::from_millis(100);

fn main() {
    if let Some((mode, addrs)) = bench::child::child_args().unwrap() {
        // The server has a CPU of its own (see the module docs).
        bench::pin_to_cpu(1);
        return bench::child::run(mode, &addrs).unwrap();
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--flood") {
        // The flood's own process: floods until its stdin closes.
        let flood = Flood::named(&args[i + 1]).expect("a known flood");
        let addr = args[i + 2].parse().expect("an address");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = flood.start(addr, stop.clone());
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        thread.join().unwrap();
        return;
    }
    // The client on the other CPU.
    let pinned = bench::pin_to_cpu(0);
    let exe = std::env::current_exe().unwrap();
    let child = ChildProc::start(&exe, &[], Mode::Ours, &["tcp://127.0.0.1:0".parse().unwrap()]).unwrap();
    let Addr::Tcp(addr) = child.addrs[0].clone() else { panic!("a TCP address") };
    let echo = Remote::connect("floods", &child.addrs[0], false).unwrap();
    let rounds = rounds();
    println!(
        "{}{}",
        machine(),
        if pinned { "; server on CPU 1, client on CPU 0, flood SCHED_IDLE" } else { "" }
    );
    println!(
        "{rounds} alternating rounds of {} ms per sample; the echo's round trip in ns\n",
        SAMPLE.as_millis()
    );
    println!(
        "{:<20} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "flood", "p50", "p99", "quiet p50", "quiet p99", "p99 ratio"
    );
    let _ = echo.rtt(Instant::now() + Duration::from_millis(300), u64::MAX);
    // `IPCHNL_FLOODS=watches,heartbeats` runs only those.
    let only = std::env::var("IPCHNL_FLOODS").ok();
    let chosen = |f: &Flood| only.as_deref().is_none_or(|o| o.split(',').any(|n| n == f.name()));
    for flood in Flood::ALL.into_iter().filter(chosen) {
        let (mut quiet, mut loud) = (histogram(), histogram());
        let mut ratios = Vec::new();
        for _ in 0..rounds {
            let q = echo.rtt(Instant::now() + SAMPLE, u64::MAX).unwrap();
            // `FLOOD_ADDR` aims the flood elsewhere: what it costs the
            // kernel alone, with the server not its target.
            let target = std::env::var("FLOOD_ADDR").ok().and_then(|a| a.parse().ok()).unwrap_or(addr);
            let mut attacker = flood_process(&exe, flood, target);
            std::thread::sleep(WARMUP);
            let l = echo.rtt(Instant::now() + SAMPLE, u64::MAX).unwrap();
            drop(attacker.stdin.take());
            attacker.wait().unwrap();
            ratios.push(l.value_at_quantile(0.99) as f64 / q.value_at_quantile(0.99).max(1) as f64);
            quiet.add(&q).unwrap();
            loud.add(&l).unwrap();
            // Let the server drop what the flood left before the next quiet sample.
            std::thread::sleep(Duration::from_millis(200));
        }
        println!(
            "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9.2}x",
            flood.name(),
            loud.value_at_quantile(0.5),
            loud.value_at_quantile(0.99),
            quiet.value_at_quantile(0.5),
            quiet.value_at_quantile(0.99),
            median(&ratios),
        );
    }
}

/// The flood in a process of its own, at idle priority (`chrt --idle 0`,
/// when there is a `chrt`): it runs whenever a CPU has nothing else to do.
fn flood_process(exe: &std::path::Path, flood: Flood, addr: std::net::SocketAddr) -> Child {
    let args = [exe.to_string_lossy().into_owned(), "--flood".into(), flood.name().into(), addr.to_string()];
    let cpu = std::env::var("FLOOD_CPU").unwrap_or_else(|_| "0-63".into());
    let idle = Command::new("taskset")
        .args(["-c", &cpu, "chrt", "--idle", "0"])
        .args(&args)
        .stdin(Stdio::piped())
        .spawn();
    idle.or_else(|_| Command::new(&args[0]).args(&args[1..]).stdin(Stdio::piped()).spawn()).unwrap()
}
