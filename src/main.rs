//! `ipchnl`: the feasibility report. For now, the in-process echo (the
//! seed's measurement) and its latency.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

use ipchnl::echo::{EchoReply, EchoReq, Server};
use ipchnl::{ActorSender, StaticDirectory, dispatch, now_ns};

const ROUND_TRIPS: u64 = 200_000;

fn main() -> ExitCode {
    let mut server = Server::new("server");
    let (server_addr, server_rx) = ActorSender::channel(&server, None);
    let (me, my_rx) = ActorSender::inbox("main");
    let dir = StaticDirectory::default();

    let mut rtts = Vec::with_capacity(ROUND_TRIPS as usize);
    for counter in 1..=ROUND_TRIPS {
        let start = now_ns();
        let reply = server_addr
            .send_from(EchoReq::stamped(counter), &me)
            .map_err(|e| e.to_string())
            .and_then(|()| server_rx.recv().map_err(|e| e.to_string()))
            .map(|env| dispatch(&mut server, &server_addr, &dir, env))
            .and_then(|_| my_rx.recv().map_err(|e| e.to_string()))
            .and_then(|env| env.msg.downcast::<EchoReply>().map_err(|e| e.to_string()));
        match reply {
            Ok(reply) if reply.counter == counter => rtts.push(now_ns() - start),
            Ok(reply) => {
                eprintln!("ipchnl: reply {} out of order, expected {counter}", reply.counter);
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("ipchnl: echo failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    rtts.sort_unstable();
    let pct = |p: f64| rtts[((rtts.len() - 1) as f64 * p) as usize];
    println!("same_thread echo, {ROUND_TRIPS} round trips (client and server in one thread):");
    println!("  rtt p50 = {} ns, p99 = {} ns, max = {} ns", pct(0.50), pct(0.99), pct(1.0));
    ExitCode::SUCCESS
}
