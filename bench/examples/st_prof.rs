//! A profiling driver: the same-thread echo (as `test_1`) in a hot loop,
//! printing ns per round trip. `taskset -c 0 cargo run --release -p bench
//! --example st_prof [ROUND_TRIPS]`, under `perf record` to see where the
//! time goes.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]
use actor::{ActorSender, StaticDirectory, dispatch};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use msg_header::now_ns;
use server::Server;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
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
    println!("{} ns per round trip", (now_ns() - start) / n);
}
