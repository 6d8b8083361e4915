//! What the multi-process tests share: a `ipchnl serve` child process, a
//! manager to drive it from the test process, short socket paths.
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipchnl::{Addr, Manager, ManagerConfig, Secret};

/// The bound on every wait in these tests: a hang guard, far above what
/// any step needs on a busy single CPU.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// A short, unique Unix socket path under the temp dir (paths are limited
/// to 107 bytes), removed when dropped: a test leaves no socket file
/// behind, even when it fails or the process that listened was killed.
pub fn socket_path(tag: &str) -> SocketPath {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    SocketPath(std::env::temp_dir().join(format!("ipc-{}-{tag}{n}.sock", std::process::id())))
}

/// A unique `shm:` name; its rendezvous socket (in the temp dir) is
/// removed when dropped, as [`socket_path`]'s is.
pub fn shm_name(tag: &str) -> ShmName {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    ShmName(format!("t{}-{tag}{n}", std::process::id()))
}

/// See [`shm_name`].
#[derive(Debug)]
pub struct ShmName(String);

impl ShmName {
    /// `shm:NAME`, to listen or connect.
    pub fn url(&self) -> String {
        format!("shm:{}", self.0)
    }

    /// Its rendezvous socket.
    pub fn socket(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("ipchnl-shm-{}.sock", self.0))
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.socket());
    }
}

/// See [`socket_path`].
#[derive(Debug)]
pub struct SocketPath(std::path::PathBuf);

impl SocketPath {
    /// The address of a socket at this path.
    pub fn addr(&self) -> Addr {
        Addr::Unix(self.0.clone())
    }

    /// `unix:PATH`, to listen or connect.
    pub fn url(&self) -> String {
        format!("unix:{}", self.0.display())
    }
}

impl std::ops::Deref for SocketPath {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for SocketPath {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running `ipchnl serve`; killed (SIGKILL) if still running when dropped.
pub struct Serve {
    pub child: Child,
    pub addr: Addr,
}

impl Serve {
    /// Starts `ipchnl serve --listen ADDR EXTRA..` and waits for its
    /// `listening on` line.
    pub fn start(listen: &str, extra: &[&str]) -> Self {
        Self::start_with(listen, extra, Stdio::inherit())
    }

    /// As [`start`](Self::start), its standard error appended to `path`.
    pub fn start_logging(listen: &str, extra: &[&str], path: &std::path::Path) -> Self {
        let file = std::fs::File::options().create(true).append(true).open(path).expect("log opens");
        Self::start_with(listen, extra, Stdio::from(file))
    }

    fn start_with(listen: &str, extra: &[&str], stderr: Stdio) -> Self {
        // Without a secret file of its own, the server takes none: the
        // tests' clients (managers, wire-level clients) have none either.
        let insecure: &[&str] = if extra.contains(&"--secret-file") { &[] } else { &["--insecure"] };
        let mut child = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
            .args(["serve", "--listen", listen])
            .args(insecure)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("ipchnl serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(HANG_GUARD).expect("serve prints its address");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Self { addr: addr.parse().expect("a valid address"), child }
    }

    /// Starts a server with the test actors on a fresh TCP port.
    pub fn with_test_actors(extra: &[&str]) -> Self {
        let mut args = vec!["--test-actors"];
        args.extend_from_slice(extra);
        Self::start("tcp://127.0.0.1:0", &args)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("a real pid");
        rustix::process::kill_process(pid, sig).expect("the signal is sent");
    }

    /// Stops it with SIGSTOP and returns once every thread of it is
    /// stopped: the signal only asks, and a thread already running could
    /// otherwise still read (and acknowledge) what is sent next.
    pub fn stop(&self) {
        self.signal(rustix::process::Signal::STOP);
        let tasks = format!("/proc/{}/task", self.pid());
        eventually("every thread of the server stopped", || {
            let mut threads = std::fs::read_dir(&tasks).expect("its threads are listed");
            // A thread that exited meanwhile has no state to read.
            threads
                .all(|t| {
                    matches!(stat_state(&t.expect("a thread").path().join("stat")), Some('T' | 't') | None)
                })
                .then_some(())
        });
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it with SIGTERM; returns its exit status (waits up to the guard).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(rustix::process::Signal::TERM);
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Serve {
    /// Stops it in order (SIGTERM, SIGCONT if it was stopped), so that it
    /// removes what it made (socket files, shared memory); SIGKILL if it
    /// has not exited after a while.
    fn drop(&mut self) {
        if let (Ok(None), Some(pid)) = (self.child.try_wait(), rustix::process::Pid::from_raw(self.pid())) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A manager for the test process, with a node name of its own.
pub fn manager(node: &str) -> Manager {
    Manager::new(config(node)).expect("manager starts")
}

pub fn config(node: &str) -> ManagerConfig {
    ManagerConfig::default().node_name(format!("{node}-{}", std::process::id()))
}

pub fn secret_file(secret: &str) -> tempfile_path::TempFile {
    tempfile_path::TempFile::with(secret)
}

pub fn secret(s: &str) -> Secret {
    Secret::new(s.as_bytes()).expect("non-empty")
}

/// Polls `f` until it returns `Some`, up to the hang guard.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub mod tempfile_path {
    /// A file under the temp dir, removed when dropped.
    pub struct TempFile(pub std::path::PathBuf);

    impl TempFile {
        /// A file of `contents`, readable by its owner only (as a secret
        /// file must be).
        pub fn with(contents: &str) -> Self {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let path = super::socket_path("secret").with_extension("txt");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .expect("temp file created");
            f.write_all(contents.as_bytes()).expect("temp file written");
            Self(path)
        }

        pub fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 temp path")
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if std::env::var("SOAK_KEEP").is_ok() {
                return;
            }
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Directories removed when the test ends.
pub struct RemoveDirs(pub Vec<std::path::PathBuf>);

impl Drop for RemoveDirs {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The paths `ipchnl bench` reports, in order (the `nats` path comes
/// after them when asked for).
pub const BENCH_PATHS: [&str; 8] = [
    "same_thread",
    "cross_thread",
    "tcp",
    "unix",
    "tcp_low_latency",
    "unix_low_latency",
    "shm",
    "tcp_encrypted",
];

pub mod proxy;

fn count_entries(dir: String) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// A process's threads and open descriptors, from `/proc/PID`; the
/// allocator's own background thread (jemalloc's, in the tool), which
/// comes and goes with its purging and not with links, is not counted.
pub fn counts(pid: i32) -> (usize, usize) {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter(|t| {
                    let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                    !comm.starts_with("jemalloc_bg_thd")
                })
                .count()
        })
        .unwrap_or(0);
    (threads, count_entries(format!("/proc/{pid}/fd")))
}

/// A process's resident memory in bytes (`VmRSS` in `/proc/PID/status`).
pub fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Every message sent is in the receiver's log or was reported to the
/// sender, and both only for messages reported `Unacknowledged`; the log
/// has nothing twice and nothing out of order.
pub fn check_accounting(
    sent: &[u64],
    send_errors: &[u64],
    dead: &[(u64, ipchnl::DeadLetterReason)],
    log: &[u64],
) {
    use std::collections::{HashMap, HashSet};
    assert!(log.windows(2).all(|w| w[0] < w[1]), "the log is in order, without repeats: {log:?}");
    let logged: HashSet<u64> = log.iter().copied().collect();
    let mut reported: HashMap<u64, String> =
        send_errors.iter().map(|n| (*n, "send error".to_string())).collect();
    for (n, reason) in dead {
        assert!(reported.insert(*n, reason.key()).is_none(), "{n} reported twice");
    }
    for n in sent {
        match (logged.contains(n), reported.get(n)) {
            (false, None) => panic!("message {n} was neither delivered nor reported"),
            (true, Some(r)) => assert_eq!(r, "unacknowledged", "message {n} delivered and reported {r}"),
            _ => {}
        }
    }
    for n in &logged {
        assert!(sent.contains(n), "message {n} logged but never sent");
    }
}

/// The numbers a sink logged, one per line (`PID N`).
pub fn read_log(path: &std::path::Path) -> Vec<u64> {
    read_log_by_process(path).into_iter().map(|(_, n)| n).collect()
}

/// What a sink logged: `(pid, n)` per line, in order. A line a killed
/// sink left unfinished (ended by the next with [`testkit::TORN`]) is no
/// record: that message counts as not logged. So is an unfinished last
/// line.
pub fn read_log_by_process(path: &std::path::Path) -> Vec<(u32, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    text[..complete]
        .lines()
        .filter(|l| !l.ends_with(testkit::TORN.trim_end()))
        .map(|l| {
            let (pid, n) = l.split_once(' ').unwrap_or_else(|| panic!("PID N per line: {l:?}"));
            (
                pid.parse().unwrap_or_else(|_| panic!("a pid: {l:?}")),
                n.parse().unwrap_or_else(|_| panic!("a number: {l:?}")),
            )
        })
        .collect()
}

/// A hand-driven wire client, for what a manager would never send.
pub mod raw {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use connection::blocking::BlockingLink;
    use connection::{DEFAULT_MAX_FRAME, FrameDecoder, HandshakeConfig, Incarnation, Role, Secret};
    use ipchnl::{Addr, NodeId};

    use super::HANG_GUARD;

    /// A raw connection: TCP, or a shared-memory link's bytes.
    pub enum Conn {
        Tcp(TcpStream),
        Shm(Box<manager::ShmConn>),
    }

    impl Conn {
        /// Ends what this side writes.
        pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
            match self {
                Self::Tcp(s) => s.shutdown(how),
                Self::Shm(s) => s.shutdown_write(),
            }
        }
    }

    impl Read for Conn {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self {
                Self::Tcp(s) => s.read(buf),
                Self::Shm(s) => s.read(buf),
            }
        }
    }

    impl Write for Conn {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match self {
                Self::Tcp(s) => s.write(buf),
                Self::Shm(s) => s.write(buf),
            }
        }

        fn flush(&mut self) -> std::io::Result<()> {
            match self {
                Self::Tcp(s) => s.flush(),
                Self::Shm(s) => s.flush(),
            }
        }
    }

    /// Connects to a TCP or `shm:` listener, reads bounded by the guard.
    pub fn connect(addr: &Addr) -> Conn {
        match addr {
            Addr::Tcp(sa) => {
                let s = TcpStream::connect(sa).expect("connects");
                s.set_read_timeout(Some(HANG_GUARD)).expect("timeout set");
                Conn::Tcp(s)
            }
            Addr::Shm(name) => {
                Conn::Shm(Box::new(manager::ShmConn::connect(name, HANG_GUARD).expect("connects")))
            }
            other => panic!("a TCP or shm: address, not {other}"),
        }
    }

    /// Connects and completes the handshake; the rest of what the server
    /// sent (its directory) is left unread.
    pub fn handshake(addr: &Addr, secret: Option<&str>) -> Conn {
        let mut config = HandshakeConfig::new(
            NodeId::of_name(&format!("raw-{}", std::process::id())),
            Incarnation([7; 16]),
        );
        if let Some(secret) = secret {
            config = config.with_secret(Secret::new(secret.as_bytes()).expect("non-empty"));
        }
        let (link, _) =
            BlockingLink::handshake(connect(addr), Role::Client, config, [9; 32], DEFAULT_MAX_FRAME)
                .expect("the handshake");
        link.into_parts().0
    }

    /// A wire-level client: handshake, directory, echo round trips.
    pub struct Client<S: Read + Write> {
        link: BlockingLink<S>,
        seq: u64,
        peer_seq: u64,
        me: ipchnl::ActorId,
        pub server: ipchnl::ActorId,
    }

    impl<S: Read + Write> Client<S> {
        /// Handshakes on `s` (no secret), exchanges directories and finds
        /// the actor called `server`.
        pub fn start(s: S, node: &str) -> std::io::Result<Self> {
            Self::start_as(s, node, 1)
        }

        /// As [`start`](Self::start), as incarnation `incarnation` (every
        /// byte of it) of node `node`.
        pub fn start_as(s: S, node: &str, incarnation: u8) -> std::io::Result<Self> {
            let config = HandshakeConfig::new(NodeId::of_name(node), Incarnation([incarnation; 16]));
            Self::start_with(s, node, config)
        }

        /// As [`start`](Self::start), proving `secret` (the link is
        /// encrypted if the server requires it).
        pub fn start_secret(s: S, node: &str, secret: &str) -> std::io::Result<Self> {
            let config = HandshakeConfig::new(NodeId::of_name(node), Incarnation([1; 16]))
                .with_secret(Secret::new(secret.as_bytes()).expect("non-empty"));
            Self::start_with(s, node, config)
        }

        fn start_with(s: S, node: &str, config: HandshakeConfig) -> std::io::Result<Self> {
            let mut nonce = [0; 32];
            nonce[..node.len().min(32)].copy_from_slice(&node.as_bytes()[..node.len().min(32)]);
            let (link, _) = BlockingLink::handshake(s, Role::Client, config, nonce, DEFAULT_MAX_FRAME)?;
            let mut client =
                Self { link, seq: 0, peer_seq: 0, me: ipchnl::ActorId::new(), server: ipchnl::ActorId::NONE };
            let dir = br#"{"full":true,"add":[]}"#;
            client.send(connection::FrameHeader::new(connection::FrameKind::Directory), dir)?;
            loop {
                let (h, body) = client.next_frame()?;
                if h.kind == connection::FrameKind::Directory {
                    let update: connection::DirectoryUpdate =
                        serde_json::from_slice(&body).map_err(std::io::Error::other)?;
                    if let Some(e) = update.add.iter().find(|e| e.name == "server") {
                        client.server = e.id;
                        return Ok(client);
                    }
                }
            }
        }

        /// The connection, to write (or not read) as an attacker would.
        pub fn stream(&mut self) -> &mut S {
            self.link.stream_mut()
        }

        /// What to write to [`stream`](Self::stream) for `bytes` of frames:
        /// records, on an encrypted link.
        pub fn seal(&mut self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
            self.link.seal(bytes)
        }

        /// Whether the link is encrypted.
        pub fn is_encrypted(&self) -> bool {
            self.link.is_encrypted()
        }

        /// The next `EchoReq` frame, numbered as sent (for writing in bulk).
        pub fn encode_request(&mut self, counter: u64) -> Vec<u8> {
            use ipchnl::MsgType;
            self.seq += 1;
            let h = connection::FrameHeader {
                msg_id: ipchnl::echo::EchoReq::msg_id(),
                dst: self.server,
                src: self.me,
                seq: self.seq,
                corr: counter,
                ack: self.peer_seq,
                ..connection::FrameHeader::new(connection::FrameKind::Msg)
            };
            let body = format!(r#"{{"counter":{counter},"req_timestamp_ns":0}}"#);
            let mut frame = Vec::new();
            connection::encode_frame(&h, body.as_bytes(), DEFAULT_MAX_FRAME, &mut frame)
                .expect("a small frame");
            frame
        }

        /// Sends a frame of `h` and `body`, its `ack` filled in.
        pub fn send_frame(&mut self, h: connection::FrameHeader, body: &[u8]) -> std::io::Result<()> {
            self.send(h, body)
        }

        fn send(&mut self, mut h: connection::FrameHeader, body: &[u8]) -> std::io::Result<()> {
            h.ack = self.peer_seq;
            self.link.write_frame(&h, body)
        }

        /// This client's actor id (the `src_id` of what it sends).
        pub fn me(&self) -> ipchnl::ActorId {
            self.me
        }

        /// The next frame read, whatever its kind.
        pub fn next_frame(&mut self) -> std::io::Result<(connection::FrameHeader, Vec<u8>)> {
            let (h, body) = self.link.read_frame()?;
            if h.kind == connection::FrameKind::Msg {
                self.peer_seq = h.seq;
            }
            Ok((h, body))
        }

        /// Sends an `EchoReq` to the server.
        pub fn request(&mut self, counter: u64) -> std::io::Result<()> {
            use ipchnl::MsgType;
            self.seq += 1;
            let h = connection::FrameHeader {
                msg_id: ipchnl::echo::EchoReq::msg_id(),
                dst: self.server,
                src: self.me,
                seq: self.seq,
                corr: counter,
                ..connection::FrameHeader::new(connection::FrameKind::Msg)
            };
            let body = format!(r#"{{"counter":{counter},"req_timestamp_ns":0}}"#);
            self.send(h, body.as_bytes())
        }

        /// Reads until the `EchoReply` to `counter`.
        pub fn reply(&mut self, counter: u64) -> std::io::Result<()> {
            use ipchnl::MsgType;
            loop {
                let (h, body) = self.next_frame()?;
                if h.kind == connection::FrameKind::Msg && h.msg_id == ipchnl::echo::EchoReply::msg_id() {
                    let v: serde_json::Value =
                        serde_json::from_slice(&body).map_err(std::io::Error::other)?;
                    assert_eq!((v["counter"].as_u64(), h.corr, h.dst), (Some(counter), counter, self.me));
                    return Ok(());
                }
            }
        }
    }

    /// Reads until the server closes; the bytes it sent meanwhile.
    pub fn read_to_close(s: &mut impl Read) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return all,
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
                Err(e) => panic!("the server did not close the connection: {e}"),
            }
        }
    }

    /// The kinds of the whole frames in `bytes`.
    pub fn frame_kinds(bytes: &[u8]) -> Vec<connection::FrameKind> {
        let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut kinds = Vec::new();
        let mut at = 0;
        while let Ok(Some((frame, used))) = decoder.decode(&bytes[at..]) {
            kinds.push(frame.header.kind);
            at += used;
        }
        kinds
    }
}

/// The echo client of `m` runs `n` round trips against the server of the
/// node `m` is linked to.
pub fn echo_completes(m: &Manager, n: u64) {
    echo_against(m, m.find_by_name("server").expect("a server is known"), n);
}

/// The echo client of `m` runs `n` round trips against `server`.
pub fn echo_against(m: &Manager, server: ipchnl::ActorSender, n: u64) {
    use ipchnl::echo::{Client, EchoStart};
    static CLIENTS: AtomicUsize = AtomicUsize::new(0);
    let name = format!("client{}", CLIENTS.fetch_add(1, Ordering::Relaxed));
    let client = m.add(name, Client::with_partner(server)).expect("client added");
    let done = client.ask(EchoStart::new(n), HANG_GUARD).expect("the run ends");
    assert_eq!((done.sent, done.received), (n, n));
    client.stop().expect("client stops");
}

/// The seed of a randomized test: `IPCHNL_SEED`, or else (odd, never 0)
/// the clock's nanoseconds. Tests print it so that a run can be replayed.
pub fn seed() -> u64 {
    std::env::var("IPCHNL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
            | 1
    })
}

/// A small deterministic generator (xorshift), seeded per run.
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    /// A duration from `from` to `to` milliseconds.
    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// A `nats-server` on a free loopback port; killed when dropped.
pub struct Nats {
    child: Child,
    pub port: u16,
}

impl Nats {
    /// Starts one on a free port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one on a free port with `extra` options (`--auth TOKEN`, ...).
    pub fn start_with(extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self::on_with(port, extra)
    }

    /// Starts one on `port` and waits until it takes connections.
    pub fn on(port: u16) -> Self {
        Self::on_with(port, &[])
    }

    fn on_with(port: u16, extra: &[&str]) -> Self {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (apt-get install nats-server)");
        let mut nats = Self { child, port };
        let deadline = Instant::now() + HANG_GUARD;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(nats.child.try_wait().expect("wait works").is_none(), "nats-server exited");
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        nats
    }

    /// Its address, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The state letter in a `/proc` `stat` file (of a process or a thread).
fn stat_state(path: &std::path::Path) -> Option<char> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name, in parentheses, may hold spaces: the state follows its end.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// `wait_with_output`, bounded by a hang guard: a child still running
/// after `guard` is killed, and the test fails.
pub fn wait_guarded(mut child: std::process::Child, guard: std::time::Duration) -> std::process::Output {
    fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let deadline = std::time::Instant::now() + guard;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait works") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ipchnl (pid {}) still running after {guard:?}: killed", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: stdout.join().expect("stdout read"),
        stderr: stderr.join().expect("stderr read"),
    }
}
