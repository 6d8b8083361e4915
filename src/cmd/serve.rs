//! `ipchnl serve`: host an echo server until SIGINT or SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ipchnl::echo::Server;
use ipchnl::{Manager, ManagerConfig, ManagerError};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use super::{Failure, Outcome, parse_addr, read_secret};

/// Options of `ipchnl serve`.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Where to listen: tcp://HOST:PORT (port 0 for any), unix:PATH, or
    /// nats://HOST:PORT (join that NATS server; needs the `nats` feature).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// A file holding the shared secret peers must prove they know.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// Allow a non-loopback address without a secret (frames are not encrypted).
    #[arg(long)]
    insecure: bool,
    /// This node's name (default HOST-PID).
    #[arg(long, hide = true)]
    node_name: Option<String>,
    /// Also host the test actors (relay, napper, sink).
    #[arg(long, hide = true)]
    test_actors: bool,
    /// The sink's log file.
    #[arg(long, hide = true)]
    sink_log: Option<PathBuf>,
    /// Heartbeat interval in ms (the timeout is five of them).
    #[arg(long, hide = true)]
    heartbeat_ms: Option<u64>,
    /// Handshake timeout in ms.
    #[arg(long, hide = true)]
    handshake_timeout_ms: Option<u64>,
    /// Executor threads.
    #[arg(long, hide = true, default_value_t = 2)]
    executors: usize,
    /// Over NATS: how long (ms) others wait after this node's last
    /// announcement before they forget it.
    #[arg(long, hide = true)]
    nats_expiry_ms: Option<u64>,
}

pub(crate) fn run(args: &ServeArgs) -> Outcome {
    let addr = parse_addr(&args.listen)?;
    let secret = read_secret(args.secret_file.as_deref())?;
    if !addr.is_loopback() && secret.is_none() && !args.insecure {
        return Err(Failure::usage(format!(
            "refusing to listen on {addr} without --secret-file: frames are not encrypted \
             (use --insecure to allow it anyway)"
        )));
    }
    let mut config =
        ManagerConfig::default().executors(args.executors).allow_insecure(args.insecure).link_executor(0);
    if let Some(secret) = secret {
        config = config.secret(secret);
    }
    if let Some(name) = &args.node_name {
        config = config.node_name(name.clone());
    }
    if let Some(ms) = args.handshake_timeout_ms {
        config = config.handshake_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = args.nats_expiry_ms {
        config = config.nats_expiry(Duration::from_millis(ms));
    }
    if let Some(ms) = args.heartbeat_ms {
        config = config.heartbeat(Duration::from_millis(ms), Duration::from_millis(ms * 5));
    }
    // Signals first, so that one arriving as soon as we print is not lost.
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGUSR1])
        .map_err(|e| Failure::run(format!("cannot watch signals: {e}")))?;
    let manager = Manager::new(config).map_err(|e| Failure::run(format!("cannot start: {e}")))?;
    manager
        .add_with(Server::new("server"), ipchnl::ActorOptions::default().executor(0))
        .map_err(start_failed)?;
    if args.test_actors {
        testkit::add_test_actors(&manager, args.sink_log.as_deref()).map_err(start_failed)?;
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

fn start_failed(e: ManagerError) -> Failure {
    Failure::run(format!("cannot start: {e}"))
}
