//! What receipts cost (`ActorOptions::receipts`: a message from another
//! node is acknowledged once handled, not once in the mailbox).
//!
//! One child process hosts an echo server and a sink twice, without and
//! with receipts; two links from this process (one manager each, so the
//! windows are separate) reach them over a Unix socket. Rounds alternate
//! the two modes: a round trip p50, and a one-way stream. Ratios are
//! medians of per-round ratios (receipts / default).
//!
//! `cargo bench -p bench --bench receipts` (`IPCHNL_BENCH_ROUNDS=N`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::time::{Duration, Instant};

use bench::child::{ChildProc, Mode};
use bench::report::Remote;
use bench::{machine, rounds, summary};
use manager::Addr;

const SAMPLE: Duration = Duration::from_millis(300);

fn main() {
    if let Some((mode, addrs)) = bench::child::child_args().unwrap() {
        return bench::child::run(mode, &addrs).unwrap();
    }
    println!("receipts: {}", machine());
    let me = std::env::current_exe().unwrap();
    let sock = Addr::Unix(std::env::temp_dir().join(format!("ipchnl-receipts-{}.sock", std::process::id())));
    let child = ChildProc::start(&me, &[], Mode::Ours, &[sock]).unwrap();
    let default = Remote::connect("default", &child.addrs[0], false).unwrap();
    let receipts = Remote::connect_actors(
        "receipts",
        &child.addrs[0],
        false,
        None,
        ("server-receipts", "sink-receipts"),
    )
    .unwrap();
    let later = || Instant::now() + SAMPLE;
    // Warm up both.
    for r in [&default, &receipts] {
        r.rtt(later(), u64::MAX).unwrap();
        r.stream(later()).unwrap();
    }
    let (mut rtt_ratios, mut stream_ratios) = (Vec::new(), Vec::new());
    println!(
        "{:>5} {:>12} {:>12} {:>14} {:>14}",
        "round", "rtt default", "rtt receipts", "msg/s default", "msg/s receipts"
    );
    for round in 0..rounds() {
        // Alternate which goes first, so drift hurts both alike.
        let order = if round % 2 == 0 { [&default, &receipts] } else { [&receipts, &default] };
        let mut rtt = [0.0; 2];
        let mut stream = [0.0; 2];
        for r in order {
            let i = usize::from(std::ptr::eq(r, &receipts));
            rtt[i] = r.rtt(later(), u64::MAX).unwrap().value_at_quantile(0.5) as f64;
            stream[i] = r.stream(later()).unwrap();
        }
        println!("{round:>5} {:>10.0}ns {:>10.0}ns {:>14.0} {:>14.0}", rtt[0], rtt[1], stream[0], stream[1]);
        rtt_ratios.push(rtt[1] / rtt[0]);
        stream_ratios.push(stream[1] / stream[0]);
    }
    println!("round trip p50, receipts / default: {}", summary(&rtt_ratios));
    println!("stream msg/s, receipts / default:   {}", summary(&stream_ratios));
}
