//! `ipchnl bench`: the feasibility report. For now, the in-process echo.

use clap::Args;
use ipchnl::echo::{EchoReply, EchoReq, Server};
use ipchnl::{ActorSender, StaticDirectory, dispatch, now_ns};

use super::{Failure, Outcome};

/// Options of `ipchnl bench`.
#[derive(Args, Default)]
pub(crate) struct BenchArgs {
    /// Round trips per measurement.
    #[arg(long, default_value_t = 200_000)]
    count: u64,
}

pub(crate) fn run(args: &BenchArgs) -> Outcome {
    let count = args.count.max(1);
    let mut server = Server::new("server");
    let (server_addr, server_rx) = ActorSender::channel(&server, None);
    let (me, my_rx) = ActorSender::inbox("main");
    let dir = StaticDirectory::default();

    let mut rtts = Vec::with_capacity(count as usize);
    for counter in 1..=count {
        let start = now_ns();
        server_addr.send_from(EchoReq::stamped(counter), &me).map_err(|e| Failure::run(e.to_string()))?;
        let env = server_rx.recv().map_err(|e| Failure::run(e.to_string()))?;
        dispatch(&mut server, &server_addr, &dir, env);
        let env = my_rx.recv().map_err(|e| Failure::run(e.to_string()))?;
        let reply = env.msg.downcast::<EchoReply>().map_err(|e| Failure::run(e.to_string()))?;
        if reply.counter != counter {
            return Err(Failure::run(format!("reply {} out of order, expected {counter}", reply.counter)));
        }
        rtts.push(now_ns() - start);
    }
    rtts.sort_unstable();
    let pct = |p: f64| rtts[((rtts.len() - 1) as f64 * p) as usize];
    println!("same_thread echo, {count} round trips (client and server in one thread):");
    println!("  rtt p50 = {} ns, p99 = {} ns, max = {} ns", pct(0.50), pct(0.99), pct(1.0));
    Ok(())
}
