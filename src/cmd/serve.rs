//! `ipchnl serve`: host an echo server (and `bytes`, an echo of binary
//! payloads) until SIGINT or SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ipchnl::echo::{BytesEcho, BytesEchoService, Server};
use ipchnl::{Manager, ManagerConfig, ManagerError};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use super::{Failure, Outcome, SecurityArgs, parse_addr};

/// Options of `ipchnl serve`.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Where to listen: tcp://HOST:PORT (port 0 for any), unix:PATH, or
    /// nats://HOST:PORT (join that NATS server; needs the `nats` feature).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    #[command(flatten)]
    security: SecurityArgs,
    /// This node's name (default HOST-PID).
    #[arg(long, hide = true)]
    node_name: Option<String>,
    /// Also host the test actors (relay, napper, sink).
    #[arg(long, hide = true)]
    test_actors: bool,
    /// The sink's log file.
    #[arg(long, hide = true)]
    sink_log: Option<PathBuf>,
    /// The sink acknowledges a message once handled (ActorOptions::receipts).
    #[arg(long, hide = true)]
    sink_receipts: bool,
    /// Heartbeat interval in ms (the timeout is five of them).
    #[arg(long, hide = true)]
    heartbeat_ms: Option<u64>,
    /// Handshake timeout in ms.
    #[arg(long, hide = true)]
    handshake_timeout_ms: Option<u64>,
    /// Executor threads.
    #[arg(long, hide = true, default_value_t = 2)]
    executors: usize,
    /// Links at most (ManagerConfig::max_links).
    #[arg(long, hide = true)]
    max_links: Option<usize>,
    /// Links at most from one user (NodeLimits::max_links_per_user).
    #[arg(long, hide = true)]
    max_links_per_user: Option<usize>,
    /// Pending handshakes at most per executor (ManagerConfig::max_pending_handshakes).
    #[arg(long, hide = true)]
    max_pending_handshakes: Option<usize>,
    /// How long (ms) a peer may take nothing written (ManagerConfig::write_deadline).
    #[arg(long, hide = true)]
    write_deadline_ms: Option<u64>,
    /// How long (ms) a frame, or a message in parts between parts, may take
    /// (LinkLimits::frame_deadline).
    #[arg(long, hide = true)]
    frame_deadline_ms: Option<u64>,
    /// Over NATS: how long (ms) others wait after this node's last
    /// announcement before they forget it.
    #[arg(long, hide = true)]
    nats_expiry_ms: Option<u64>,
    /// Executors poll for 100 µs before they sleep (ManagerConfig::low_latency):
    /// shorter round trips, more CPU while traffic flows; idle, none.
    #[arg(long)]
    low_latency: bool,
}

pub(crate) fn run(args: &ServeArgs) -> Outcome {
    let addr = parse_addr(&args.listen)?;
    raise_nofile_limit();
    let mut config = ManagerConfig::default().executors(args.executors).link_executor(0);
    if args.low_latency {
        config = config.low_latency();
    }
    if args.executors > 1 {
        // Listeners and handshakes on executor 1: a flood of connections
        // that never finish their handshake costs the links nothing.
        config = config.handshake_executor(1);
    }
    config = args.security.apply(config)?;
    if let Some(name) = &args.node_name {
        config = config.node_name(name.clone());
    }
    if let Some(ms) = args.handshake_timeout_ms {
        config = config.handshake_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = args.nats_expiry_ms {
        config = config.nats_expiry(Duration::from_millis(ms));
    }
    if let Some(n) = args.max_links {
        config = config.max_links(n);
    }
    if let Some(n) = args.max_links_per_user {
        config.limits.max_links_per_user = n;
    }
    if let Some(n) = args.max_pending_handshakes {
        config = config.max_pending_handshakes(n);
    }
    if let Some(ms) = args.write_deadline_ms {
        config = config.write_deadline(Duration::from_millis(ms));
    }
    if let Some(ms) = args.frame_deadline_ms {
        config.link.frame_deadline = Duration::from_millis(ms);
    }
    if let Some(ms) = args.heartbeat_ms {
        config = config.heartbeat(Duration::from_millis(ms), Duration::from_millis(ms * 5));
    }
    // Signals first, so that one arriving as soon as we print is not lost.
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGUSR1])
        .map_err(|e| Failure::run(format!("cannot watch signals: {e}")))?;
    let manager = Manager::new(config).map_err(|e| Failure::run(format!("cannot start: {e}")))?;
    manager
        .add_with("server", Server::new(), ipchnl::ActorOptions::default().executor(0))
        .map_err(start_failed)?;
    manager.serve::<BytesEchoService, _>("bytes", BytesEcho).map_err(start_failed)?;
    if args.test_actors {
        testkit::add_test_actors(&manager, args.sink_log.as_deref(), args.sink_receipts)
            .map_err(start_failed)?;
    }
    let bound = manager.listen(&addr).map_err(|e| match e {
        ManagerError::Insecure(_) | ManagerError::InUse(_) => Failure::usage(e.to_string()),
        e => Failure::run(format!("cannot listen on {addr}: {e}")),
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {bound}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure::run(e.to_string()))?;
    drop(out);
    for signal in signals.forever() {
        if signal != SIGUSR1 {
            break;
        }
        print_stats(&manager);
    }
    manager.shutdown();
    print_stats(&manager);
    Ok(())
}

/// The counters, as one line on stdout: `stats {json}`.
fn print_stats(manager: &Manager) {
    if let Ok(json) = serde_json::to_string(&manager.stats()) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "stats {json}").and_then(|()| out.flush());
    }
}

/// Raises the soft limit on open descriptors to the hard one, as
/// nats-server does: each link is a descriptor, and the common soft limit
/// (1,024) is far below what a server may be asked to hold. Failing to is
/// no reason not to serve.
fn raise_nofile_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "cannot raise the descriptor limit");
        }
    }
}

fn start_failed(e: ManagerError) -> Failure {
    Failure::run(format!("cannot start: {e}"))
}
