//! `ipchnl`: the feasibility report (the default), and `serve` / `echo` to
//! run two processes by hand.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc, with a background thread that gives freed memory back to the
/// system within a second (`.cargo/config.toml` sets it), so a server's
/// memory returns to idle once a burst of links has gone, even if nothing
/// else happens then.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Typed actor messages over channels inside a process and over TCP or
/// Unix sockets between processes, with one send API. Without a command,
/// runs the feasibility report (`ipchnl bench`).
#[derive(Parser)]
#[command(
    name = "ipchnl",
    version,
    about,
    after_help = "Examples:
  ipchnl                                   # the feasibility report
  ipchnl serve --listen tcp://127.0.0.1:7000
  ipchnl echo --connect tcp://127.0.0.1:7000 --count 10000 --json"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Measure each path against its bare baseline and print one table.
    #[command(after_help = "Examples:\n  ipchnl bench --quick --json\n  ipchnl bench --plot rtt.svg")]
    Bench(cmd::bench::BenchArgs),
    /// Host an echo server actor (`server`) and an echo of binary payloads
    /// (`bytes`), and listen for links until SIGINT or SIGTERM
    /// (SIGUSR1 prints the link counters).
    #[command(after_help = "Examples:\n  ipchnl serve --listen tcp://127.0.0.1:7000\n  \
        ipchnl serve --listen unix:/tmp/ipchnl.sock\n  \
        ipchnl serve --listen tcp://0.0.0.0:7000 --secret-file ./secret")]
    Serve(cmd::serve::ServeArgs),
    /// Link to a server, run the echo client against it and print a summary.
    #[command(after_help = "Example:\n  ipchnl echo --connect tcp://127.0.0.1:7000 --count 10000 --json")]
    Echo(cmd::echo::EchoArgs),
    /// Write a fresh secret (32 random bytes, mode 0600): share the file
    /// with the hosts that should link, pass it with --secret-file.
    #[command(
        after_help = "Examples:\n  ipchnl secret                 # this user's, ~/.config/ipchnl/secret\n  \
        ipchnl secret ./fleet.secret"
    )]
    Secret(cmd::secret::SecretArgs),
    /// Write a node key pair (mode 0600) and print its public key: with
    /// --node-key and --allowed-keys, links prove node keys, so one leaked
    /// host cannot pass for every other.
    #[command(after_help = "Example:\n  ipchnl keygen ./node.key")]
    Keygen(cmd::keys::KeygenArgs),
    /// The report's own second process.
    #[command(hide = true)]
    BenchChild(cmd::bench::ChildArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server says what it refuses (authentications, protocol errors,
    // caps and budgets: each kind at most once every 10 s, with a count).
    init_logging(if matches!(cli.cmd, Some(Cmd::Serve(_))) { "warn" } else { "error" });
    let outcome = match cli.cmd {
        None => cmd::bench::run(&cmd::bench::BenchArgs::default()),
        Some(Cmd::Bench(args)) => cmd::bench::run(&args),
        Some(Cmd::Serve(args)) => cmd::serve::run(&args),
        Some(Cmd::Echo(args)) => cmd::echo::run(&args),
        Some(Cmd::Secret(args)) => cmd::secret::run(&args),
        Some(Cmd::Keygen(args)) => cmd::keys::run(&args),
        Some(Cmd::BenchChild(args)) => cmd::bench::run_child(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipchnl: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (`level` and up by default,
/// and none of the NATS client's: what it reports as an error, such as a
/// refused token, reaches the user as our own one-line error).
fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},async_nats=off")));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
