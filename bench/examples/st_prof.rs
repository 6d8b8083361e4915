//! A profiling driver: the same-thread echo (as `test_1`) in a hot loop,
//! printing ns per round trip, then the report's bare baseline (two
//! channels of boxes) in the same process. `taskset -c 0 cargo run
//! --release -p bench --example st_prof [ROUND_TRIPS] [bare|ours]`, under
//! `perf record` to see where the time goes (`bare`, `ours`: one of
//! them only).
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]
use std::time::{Duration, Instant};

use actor::{ActorSender, StaticDirectory, dispatch};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use msg_header::now_ns;
use server::Server;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let mode = std::env::args().nth(2);
    let bare_only = mode.as_deref() == Some("bare");
    if !bare_only {
        let mut server = Server::new();
        let (addr, rx) = ActorSender::channel("server", &server, None);
        let (me, replies) = ActorSender::inbox("me");
        let dir = StaticDirectory::default();
        let start = now_ns();
        for i in 1..=n {
            addr.send_from(EchoReq::stamped(i), &me).unwrap();
            let env = rx.try_recv().unwrap();
            dispatch(&mut server, &addr, &dir, env);
            let reply = replies.try_recv().unwrap();
            let r = reply.msg.downcast::<EchoReply>().unwrap();
            assert_eq!(r.counter, i);
        }
        println!("ours: {} ns per round trip", (now_ns() - start) / n);
    }
    if mode.as_deref() == Some("ours") {
        return;
    }
    let until = Instant::now() + Duration::from_secs(3600);
    let start = now_ns();
    let h = bench::bare::same_thread_echo(until, n);
    println!(
        "bare: {} ns per round trip (p50 {} ns with its clock)",
        (now_ns() - start) / h.len(),
        h.value_at_quantile(0.5)
    );
}
