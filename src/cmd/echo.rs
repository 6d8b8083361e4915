//! `ipchnl echo`: link to a server and run the echo client against it.

use std::time::{Duration, Instant};

use clap::Args;
use ipchnl::echo::{Client, EchoStart, echo_requestee_protocol};
use ipchnl::{ActorOptions, Addr, Manager, ManagerConfig};

use super::{Failure, Outcome, SecurityArgs, parse_addr};

/// `--json` output; fields in the documented order.
#[derive(serde::Serialize)]
struct Summary {
    sent: u64,
    received: u64,
    rtt_ns: Rtt,
    msgs_per_sec: f64,
}

#[derive(serde::Serialize)]
struct Rtt {
    p50: u64,
    p99: u64,
    max: u64,
}

/// How long `echo` waits for an echo server to announce itself on NATS.
const DISCOVERY: Duration = Duration::from_secs(10);

/// Options of `ipchnl echo`.
#[derive(Args)]
pub(crate) struct EchoArgs {
    /// The server: tcp://HOST:PORT, unix:PATH, or nats://HOST:PORT (any
    /// echo server that joined that NATS server; needs the `nats` feature).
    #[arg(long, value_name = "ADDR")]
    connect: String,
    /// Round trips to make.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    #[command(flatten)]
    security: SecurityArgs,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Executors poll for 100 µs before they sleep (ManagerConfig::low_latency):
    /// shorter round trips, more CPU while traffic flows.
    #[arg(long)]
    low_latency: bool,
}

pub(crate) fn run(args: &EchoArgs) -> Outcome {
    let addr = parse_addr(&args.connect)?;
    let mut config = ManagerConfig::default().link_executor(0);
    if args.low_latency {
        config = config.low_latency();
    }
    config = args.security.apply(config)?;
    let manager = Manager::new(config).map_err(|e| Failure::run(format!("cannot start: {e}")))?;
    let peer = manager.connect(&addr).map_err(|e| Failure::run(e.to_string()))?;
    // A direct link brings the server's directory with it; through NATS,
    // servers are found as their announcements come in.
    let patience = if matches!(addr, Addr::Nats(_)) { DISCOVERY } else { Duration::ZERO };
    let deadline = Instant::now() + patience;
    let server = loop {
        if let Some(server) = manager.find_by_protocol(echo_requestee_protocol().id()).into_iter().next() {
            break server;
        }
        if Instant::now() >= deadline {
            return Err(Failure::run(format!("no echo server at {addr}")));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // On the link's executor, the client's requests are written without a hand-off.
    let client = manager
        .add_with("client", Client::with_partner(server), ActorOptions::default().executor(peer.executor))
        .map_err(|e| Failure::run(format!("cannot start the client: {e}")))?;
    let start = Instant::now();
    // A hang guard only: a server that dies ends the run through its link.
    let guard = Duration::from_secs(60).max(Duration::from_millis(args.count));
    let done = client
        .ask(EchoStart::new(args.count), guard)
        .map_err(|e| Failure::run(format!("echo failed: {e}")))?;
    let wall = start.elapsed();
    let per_sec = done.received as f64 / wall.as_secs_f64().max(f64::MIN_POSITIVE);
    if args.json {
        let summary = Summary {
            sent: done.sent,
            received: done.received,
            rtt_ns: Rtt { p50: done.rtt_p50_ns, p99: done.rtt_p99_ns, max: done.rtt_max_ns },
            msgs_per_sec: per_sec,
        };
        let line = serde_json::to_string(&summary).map_err(|e| Failure::run(e.to_string()))?;
        println!("{line}");
    } else {
        println!(
            "{} of {} round trips to {addr} in {:.3} s: rtt p50 {} ns, p99 {} ns, max {} ns; {:.0} msgs/s",
            done.received,
            args.count,
            wall.as_secs_f64(),
            done.rtt_p50_ns,
            done.rtt_p99_ns,
            done.rtt_max_ns,
            per_sec
        );
    }
    if done.received == args.count {
        Ok(())
    } else {
        Err(Failure::run(format!(
            "echo incomplete: {} of {} replies received; the server or its link went away",
            done.received, args.count
        )))
    }
}
