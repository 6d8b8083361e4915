//! A profiling driver: a pinger and the echo server on two executors of one
//! manager for SECONDS, printing the round trip's p50 and p99.
//! `cargo run --release -p bench --example ct_prof [SECONDS] [EXECUTOR]`:
//! the pinger on executor `EXECUTOR` (1 by default; 0 puts it beside the
//! server, which shows what a round trip costs without a hand-off).
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]
use bench::actors::{PingFor, Pinger};
use manager::{ActorOptions, Manager, ManagerConfig};
use msg_header::now_ns;
use server::Server;
use std::time::Duration;

fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let manager = Manager::new(ManagerConfig::default().executors(2)).unwrap();
    let server = manager.add_with("server", Server::new(), ActorOptions::default().executor(0)).unwrap();
    let executor = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let pinger =
        manager.add_with("pinger", Pinger::default(), ActorOptions::default().executor(executor)).unwrap();
    let (done, got) = crossbeam_channel::bounded(1);
    let until = now_ns() + secs * 1_000_000_000;
    pinger.send(PingFor::new(server.clone(), until, u64::MAX, done)).unwrap();
    let h = got.recv_timeout(Duration::from_secs(secs * 10)).unwrap();
    println!("p50 {} p99 {} n {}", h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.len());
}
