//! The second process of the cross-process measurements: started by the
//! report (or a benchmark) and stopped by closing its stdin, so that it
//! never outlives its parent and always removes its socket files.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use manager::{ActorOptions, Addr, Manager, ManagerConfig, Secret};
use server::Server;

use crate::actors::Sink;
use crate::bare::{self, Conn};

/// What a child process serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// An ipchnl manager with an echo `server` and a `sink`, its node
    /// named `bench-child-PID`; and the same two with receipts
    /// (`ActorOptions::receipts`), `server-receipts` and `sink-receipts`.
    Ours,
    /// The same, with executors that poll 100 µs before sleeping.
    OursLowLatency,
    /// Bare sockets (see [`bare::serve`]) whose echo blocks.
    Bare,
    /// Bare sockets whose echo waits as an executor of the default mode
    /// does: it polls a non-blocking socket for the same spin (10 µs),
    /// then blocks.
    BarePolling,
    /// Bare sockets whose echo waits as an executor of the low-latency
    /// option does: it polls a non-blocking socket for the same spin, then
    /// blocks.
    BareSpinning,
}

impl Mode {
    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::OursLowLatency => "ours-low-latency",
            Self::Bare => "bare",
            Self::BarePolling => "bare-polling",
            Self::BareSpinning => "bare-spinning",
        }
    }

    /// The mode of a name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Ours, Self::OursLowLatency, Self::Bare, Self::BarePolling, Self::BareSpinning]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// What this program was started to serve as a child (`--mode MODE ADDR..`,
/// as [`ChildProc::start`] starts it); `None` when it was not started so.
pub fn child_args() -> Result<Option<(Mode, Vec<Addr>)>, String> {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == "--mode") else { return Ok(None) };
    let name = args.get(i + 1).ok_or("--mode takes a mode")?;
    let mode = Mode::parse(name).ok_or_else(|| format!("unknown mode {name:?}"))?;
    let addrs =
        args[i + 2..].iter().map(|a| a.parse().map_err(|e| format!("{a}: {e}"))).collect::<Result<_, _>>()?;
    Ok(Some((mode, addrs)))
}

/// Runs a child: serves `addrs`, prints `listening on ADDR` for each, and
/// returns (cleaning up) when stdin closes. SIGINT is ignored: a Ctrl-C
/// reaches the whole process group, and the parent decides when to stop.
pub fn run(mode: Mode, addrs: &[Addr]) -> Result<(), String> {
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut unix_files = Vec::new();
    // Bare iceoryx2 servers: stopped and joined (their shared memory
    // removed) before the child exits.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut shm_servers = Vec::new();
    let manager = match mode {
        Mode::Ours | Mode::OursLowLatency => {
            let mut config = ManagerConfig::default()
                .node_name(format!("bench-child-{}", std::process::id()))
                .link_executor(0)
                .handshake_executor(1);
            if mode == Mode::OursLowLatency {
                config = config.low_latency();
            }
            if let Some(secret) = secret_from_env()? {
                config = config.secret(secret);
            }
            let m = Manager::new(config).map_err(|e| e.to_string())?;
            let on0 = ActorOptions::default().executor(0);
            m.add_with("server", Server::new(), on0).map_err(|e| e.to_string())?;
            m.add_with("sink", Sink::default(), on0).map_err(|e| e.to_string())?;
            let receipts = on0.receipts(true);
            m.add_with("server-receipts", Server::new(), receipts).map_err(|e| e.to_string())?;
            m.add_with("sink-receipts", Sink::default(), receipts).map_err(|e| e.to_string())?;
            let bytes_sink = actor::Served::<server::BytesEchoService, _>::new(crate::actors::BytesSink);
            m.add_with("bytes-sink", bytes_sink, on0).map_err(|e| e.to_string())?;
            for a in addrs {
                let bound = m.listen(a).map_err(|e| e.to_string())?;
                writeln!(out, "listening on {bound}").map_err(|e| e.to_string())?;
            }
            Some(m)
        }
        Mode::Bare | Mode::BarePolling | Mode::BareSpinning => {
            let spin = match mode {
                Mode::BareSpinning => low_latency_spin(),
                Mode::BarePolling => default_spin(),
                _ => Duration::ZERO,
            };
            for a in addrs {
                let bound = match a {
                    Addr::Shm(name) => {
                        shm_servers.push(bare_shm_listen(name, spin, stop.clone())?);
                        a.clone()
                    }
                    _ => bare_listen(a, spin, &mut unix_files)?,
                };
                writeln!(out, "listening on {bound}").map_err(|e| e.to_string())?;
            }
            None
        }
    };
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(manager);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in shm_servers {
        let _ = s.join();
    }
    for f in unix_files {
        let _ = std::fs::remove_file(f);
    }
    Ok(())
}

/// The environment variable that gives a child of ours its secret, in hex
/// ([`ChildProc::start_with_secret`]).
const SECRET_ENV: &str = "IPCHNL_BENCH_SECRET";

/// A secret for the links of one run: 32 random bytes, in hex.
pub fn random_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(hex::encode(bytes))
}

/// The secret a parent gave this child, if any.
fn secret_from_env() -> Result<Option<Secret>, String> {
    let Ok(hex_secret) = std::env::var(SECRET_ENV) else { return Ok(None) };
    let bytes = hex::decode(hex_secret.trim()).map_err(|e| format!("{SECRET_ENV}: {e}"))?;
    Ok(Secret::new(bytes))
}

/// The secret of hex digits `hex_secret` (as [`random_secret`] gives it).
pub fn secret_of(hex_secret: &str) -> Result<Secret, String> {
    hex::decode(hex_secret).ok().and_then(Secret::new).ok_or_else(|| "a bad secret".to_string())
}

/// How long an executor of the default mode polls before it sleeps (what
/// a polling bare socket or thread is given too).
pub fn default_spin() -> Duration {
    ManagerConfig::default().tuning.spin
}

/// How long an executor of the low-latency option polls before it sleeps
/// (what a spinning bare socket is given too).
pub fn low_latency_spin() -> Duration {
    ManagerConfig::default().low_latency().tuning.spin
}

/// Serves bare iceoryx2 at `shm:NAME` in a thread, until `stop`.
fn bare_shm_listen(
    name: &str,
    spin: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, String> {
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let name = name.to_owned();
    let server = std::thread::spawn(move || {
        let failed = ready_tx.clone();
        if let Err(e) = crate::bare_shm::serve(&name, spin, stop, || drop(ready_tx.send(Ok(())))) {
            let _ = failed.send(Err(e.to_string()));
        }
    });
    ready.recv().map_err(|e| e.to_string())??;
    Ok(server)
}

fn bare_listen(
    addr: &Addr,
    spin: Duration,
    unix_files: &mut Vec<std::path::PathBuf>,
) -> Result<Addr, String> {
    match addr {
        Addr::Tcp(sa) => {
            let l = std::net::TcpListener::bind(sa).map_err(|e| e.to_string())?;
            let bound = Addr::Tcp(l.local_addr().map_err(|e| e.to_string())?);
            std::thread::spawn(move || {
                for s in l.incoming().flatten() {
                    let _ = s.set_nodelay(true);
                    std::thread::spawn(move || bare::serve(Conn::Tcp(s), spin));
                }
            });
            Ok(bound)
        }
        Addr::Unix(path) => {
            let _ = std::fs::remove_file(path);
            let l = UnixListener::bind(path).map_err(|e| e.to_string())?;
            unix_files.push(path.clone());
            std::thread::spawn(move || {
                for s in l.incoming().flatten() {
                    std::thread::spawn(move || bare::serve(Conn::Unix(s), spin));
                }
            });
            Ok(addr.clone())
        }
        #[cfg(feature = "nats")]
        Addr::Nats(nats) => {
            crate::nats::serve(nats)?;
            Ok(addr.clone())
        }
        #[cfg(not(feature = "nats"))]
        Addr::Nats(_) => Err("this build has no NATS support (cargo feature `nats`)".into()),
        _ => Err(format!("no bare socket at {addr}")),
    }
}

/// A running child; stopped (stdin closed, then waited for) when dropped.
pub struct ChildProc {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The addresses it listens on, in the order asked.
    pub addrs: Vec<Addr>,
}

impl ChildProc {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `program args.. --mode MODE ADDR..` and reads its addresses.
    pub fn start(
        program: &std::path::Path,
        args: &[&str],
        mode: Mode,
        listen: &[Addr],
    ) -> Result<Self, String> {
        Self::start_with_secret(program, args, mode, listen, None)
    }

    /// As [`start`](Self::start), the child's links requiring the secret
    /// of hex digits `secret` (see [`random_secret`]).
    pub fn start_with_secret(
        program: &std::path::Path,
        args: &[&str],
        mode: Mode,
        listen: &[Addr],
        secret: Option<&str>,
    ) -> Result<Self, String> {
        let mut command = Command::new(program);
        if let Some(secret) = secret {
            command.env(SECRET_ENV, secret);
        }
        let mut child = command
            .args(args)
            .args(["--mode", mode.as_str()])
            .args(listen.iter().map(ToString::to_string))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let mut proc = Self { child, stdin, addrs: Vec::new() };
        let mut lines = BufReader::new(stdout).lines();
        for _ in listen {
            let line = lines.next().and_then(Result::ok).ok_or("the child did not say where it listens")?;
            let addr = line
                .strip_prefix("listening on ")
                .ok_or_else(|| format!("unexpected child line {line:?}"))?;
            proc.addrs.push(addr.parse().map_err(|e| format!("{e}"))?);
        }
        Ok(proc)
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // It exits on its own once stdin closes; wait so no zombie is left.
        let _ = self.child.wait();
    }
}
