//! Cross-process speed, issue 4's targets. The benchmark re-executes itself
//! to get its second process (`IPCHNL_BENCH_CHILD` says which server).
//!
//! Round trips, p50 per round, alternating (A B A B ...):
//! * (a) the echo through our managers, client actor on the executor that
//!   owns the link, over TCP and over a Unix socket;
//! * (b) the bare baseline: one thread per side, blocking `read_exact` /
//!   `write_all`, `TCP_NODELAY`, the same frames;
//! * (c) servo's `ipc-channel` doing the same round trip (Unix);
//! * the low-latency option (executors poll 100 us before sleeping) against
//!   a bare spinning socket (non-blocking reads in a busy loop).
//!
//! Targets (median of per-round p50 ratios): a/b <= 1.2 (TCP), <= 1.3
//! (Unix); a < c; low-latency <= 1.5x bare spinning and <= c/4.
//!
//! One-way stream (d): `EchoReq`s from an actor in this process to a sink
//! actor in the other, against a bare stream of the same frames over TCP.
//! Targets: >= 1,000,000 msg/s and >= 40% of the bare stream.
//!
//! `cargo bench -p bench --bench cross_process` (`IPCHNL_BENCH_ROUNDS=N`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use actor::{Actor, ActorSender, Context};
use bench::{histogram, machine, rounds, summary};
use client::Client;
use connection::{FRAME_HEADER_LEN, FrameHeader, FrameKind, encode_msg_frame};
use echo_complete::EchoComplete;
use echo_reply::EchoReply;
use echo_req::EchoReq;
use echo_requestee_protocol::echo_requestee_protocol;
use echo_start::EchoStart;
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use manager::{ActorOptions, Addr, Manager, ManagerConfig};
use msg_header::{ActorId, BoxMsg, now_ns};
use protocol_set::ProtocolSet;
use serde::{Deserialize, Serialize};
use server::Server;

const ROUND_TRIPS: u64 = 5_000;
const STREAM: u64 = 300_000;
const GUARD: Duration = Duration::from_secs(300);

fn main() {
    match std::env::var("IPCHNL_BENCH_CHILD").as_deref() {
        Ok("ours") => child_ours(false),
        Ok("ours-low") => child_ours(true),
        Ok("bare") => child_bare(false),
        Ok("bare-spin") => child_bare(true),
        Ok("ipc") => child_ipc(),
        _ => parent(),
    }
}

// ---------------------------------------------------------------- children

/// Our manager with an echo server and a sink, listening on the addresses
/// given as arguments; runs until stdin closes.
fn spin_override(config: ManagerConfig) -> ManagerConfig {
    match std::env::var("IPCHNL_BENCH_SPIN_US").ok().and_then(|s| s.parse().ok()) {
        Some(us) => config.spin(Duration::from_micros(us)),
        None => config,
    }
}

fn child_ours(low_latency: bool) {
    let mut config =
        ManagerConfig::default().node_name(format!("bench-child-{}", std::process::id())).link_executor(0);
    if !low_latency {
        config = spin_override(config);
    }
    if low_latency {
        config = config.low_latency();
    }
    let m = Manager::new(config).unwrap();
    m.add_with(Server::new("server"), ActorOptions::default().executor(0)).unwrap();
    m.add_with(Sink::new(), ActorOptions::default().executor(0)).unwrap();
    for a in std::env::args().skip(1).filter(|a| a.contains(':')) {
        let bound = m.listen(&a.parse().unwrap()).unwrap();
        println!("listening on {bound}");
    }
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// A bare echo (and stream sink) on the addresses given as arguments: per
/// connection, one thread reads a frame and writes an `EchoReply` frame of
/// the same shape back; a first byte of `S` makes it a stream sink instead.
fn child_bare(spin: bool) {
    for a in std::env::args().skip(1).filter(|a| a.contains(':')) {
        match a.parse::<Addr>().unwrap() {
            Addr::Tcp(sa) => {
                let l = TcpListener::bind(sa).unwrap();
                println!("listening on tcp://{}", l.local_addr().unwrap());
                std::thread::spawn(move || {
                    for s in l.incoming() {
                        let s = s.unwrap();
                        s.set_nodelay(true).unwrap();
                        std::thread::spawn(move || bare_serve(s, spin));
                    }
                });
            }
            Addr::Unix(path) => {
                let _ = std::fs::remove_file(&path);
                let l = UnixListener::bind(&path).unwrap();
                println!("listening on unix:{}", path.display());
                std::thread::spawn(move || {
                    for s in l.incoming() {
                        let s = s.unwrap();
                        std::thread::spawn(move || bare_serve(s, spin));
                    }
                });
            }
        }
    }
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

trait Socket: Read + Write + Send {
    fn set_spin(&self, spin: bool);
}

impl Socket for TcpStream {
    fn set_spin(&self, spin: bool) {
        self.set_nonblocking(spin).unwrap();
    }
}

impl Socket for UnixStream {
    fn set_spin(&self, spin: bool) {
        self.set_nonblocking(spin).unwrap();
    }
}

/// `read_exact`, busy-looping on `WouldBlock` when the socket spins.
fn read_full(s: &mut impl Read, buf: &mut [u8]) -> bool {
    let mut at = 0;
    while at < buf.len() {
        match s.read(&mut buf[at..]) {
            Ok(0) => return false,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(_) => return false,
        }
    }
    true
}

fn write_full(s: &mut impl Write, mut buf: &[u8]) {
    while !buf.is_empty() {
        match s.write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => panic!("bare write: {e}"),
        }
    }
}

fn bare_serve(mut s: impl Socket, spin: bool) {
    let mut mode = [0u8; 1];
    if !read_full(&mut s, &mut mode) {
        return;
    }
    if mode[0] == b'S' {
        return bare_sink(s);
    }
    s.set_spin(spin);
    let reply = frame_of(&EchoReply::new(1, now_ns(), now_ns()));
    let mut head = [0u8; FRAME_HEADER_LEN];
    let mut body = vec![0u8; 4096];
    loop {
        if !read_full(&mut s, &mut head) {
            return;
        }
        let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize + 4 - FRAME_HEADER_LEN;
        if !read_full(&mut s, &mut body[..len]) {
            return;
        }
        write_full(&mut s, &reply);
    }
}

/// Counts the frames of a stream; answers with the count (8 bytes) when it
/// has the number announced in the stream's first 8 bytes.
fn bare_sink(mut s: impl Socket) {
    let mut want = [0u8; 8];
    read_full(&mut s, &mut want);
    let want = u64::from_be_bytes(want);
    let decoder = connection::FrameDecoder::new(connection::DEFAULT_MAX_FRAME);
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut end, mut count) = (0, 0, 0u64);
    while count < want {
        if end == buf.len() {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        match s.read(&mut buf[end..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => end += n,
        }
        while let Ok(Some((frame, used))) = decoder.decode(&buf[start..end]) {
            // As the real sink does: decode the message.
            let _: serde_json::Value = serde_json::from_slice(frame.body).unwrap();
            count += 1;
            start += used;
        }
    }
    s.write_all(&count.to_be_bytes()).unwrap();
}

#[derive(Serialize, Deserialize)]
enum IpcMsg {
    Hello(IpcSender<IpcReply>),
    Req { counter: u64, req_timestamp_ns: u64 },
}

#[derive(Serialize, Deserialize)]
struct IpcReply {
    counter: u64,
    req_timestamp_ns: u64,
    reply_timestamp_ns: u64,
}

/// An ipc-channel echo: connects to the parent's one-shot server.
fn child_ipc() {
    let name = std::env::var("IPCHNL_BENCH_IPC").unwrap();
    let (tx, rx): (IpcSender<IpcMsg>, IpcReceiver<IpcMsg>) = ipc::channel().unwrap();
    IpcSender::connect(name).unwrap().send(tx).unwrap();
    let mut reply_to = None;
    while let Ok(m) = rx.recv() {
        match m {
            IpcMsg::Hello(r) => reply_to = Some(r),
            IpcMsg::Req { counter, req_timestamp_ns } => {
                let r = IpcReply { counter, req_timestamp_ns, reply_timestamp_ns: now_ns() };
                reply_to.as_ref().unwrap().send(r).unwrap();
            }
        }
    }
}

// ------------------------------------------------------------- the parent

fn frame_of(msg: &dyn msg_header::WireMsg) -> Vec<u8> {
    let mut f = Vec::new();
    let h = FrameHeader { msg_id: msg.header().msg_id(), seq: 1, ..FrameHeader::new(FrameKind::Msg) };
    encode_msg_frame(&h, msg, connection::DEFAULT_MAX_FRAME, &mut f).unwrap();
    f
}

/// A child process, killed when dropped (its stdin closes first).
struct ChildProc {
    child: Child,
    addrs: Vec<Addr>,
}

impl ChildProc {
    fn start(mode: &str, listen: &[String]) -> Self {
        Self::start_env(mode, listen, &[])
    }

    fn start_env(mode: &str, listen: &[String], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(listen)
            .env("IPCHNL_BENCH_CHILD", mode)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut addrs = Vec::new();
        for _ in listen {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            addrs.push(line.trim().strip_prefix("listening on ").unwrap().parse().unwrap());
        }
        Self { child, addrs }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our side of a link: a manager and a client actor on the link's executor.
struct Ours {
    manager: Manager,
    client: ActorSender,
}

impl Ours {
    fn new(addr: &Addr, low_latency: bool) -> Self {
        let mut config = ManagerConfig::default().node_name(format!("bench-parent-{addr}")).link_executor(0);
        if low_latency {
            config = config.low_latency();
        } else {
            config = spin_override(config);
        }
        let manager = Manager::new(config).unwrap();
        let peer = manager.connect(addr).unwrap();
        let server = manager.find_by_name("server").unwrap();
        let client = manager
            .add_with(Client::with_partner("client", server), ActorOptions::default().executor(peer.executor))
            .unwrap();
        Self { manager, client }
    }

    fn p50(&self, n: u64) -> f64 {
        let done = self.client.ask(EchoStart::new(n), GUARD).unwrap().downcast::<EchoComplete>().unwrap();
        assert_eq!(done.received, n);
        done.rtt_p50_ns as f64
    }
}

/// A bare client: blocking (or spinning) socket, the same frames.
struct Bare<S: Socket> {
    s: S,
    req: Vec<u8>,
    reply_len: usize,
}

impl<S: Socket> Bare<S> {
    fn new(mut s: S, spin: bool) -> Self {
        s.write_all(b"E").unwrap();
        s.set_spin(spin);
        let req = frame_of(&EchoReq::new(1, now_ns()));
        let reply_len = frame_of(&EchoReply::new(1, now_ns(), now_ns())).len();
        Self { s, req, reply_len }
    }

    fn p50(&mut self, n: u64) -> f64 {
        let mut h = histogram();
        let mut reply = vec![0u8; self.reply_len];
        for _ in 0..n {
            let start = now_ns();
            write_full(&mut self.s, &self.req);
            assert!(read_full(&mut self.s, &mut reply));
            h.saturating_record(now_ns() - start);
        }
        h.value_at_quantile(0.5) as f64
    }
}

fn bare_tcp(addr: &Addr, spin: bool) -> Bare<TcpStream> {
    let Addr::Tcp(sa) = addr else { panic!() };
    let s = TcpStream::connect(sa).unwrap();
    s.set_nodelay(true).unwrap();
    Bare::new(s, spin)
}

fn bare_unix(addr: &Addr, spin: bool) -> Bare<UnixStream> {
    let Addr::Unix(p) = addr else { panic!() };
    Bare::new(UnixStream::connect(p).unwrap(), spin)
}

/// servo's ipc-channel, with the child as the echo.
struct Ipc {
    _child: ChildProc,
    tx: IpcSender<IpcMsg>,
    rx: IpcReceiver<IpcReply>,
}

impl Ipc {
    fn new() -> Self {
        let (server, name) = IpcOneShotServer::<IpcSender<IpcMsg>>::new().unwrap();
        let child = ChildProc::start_env("ipc", &[], &[("IPCHNL_BENCH_IPC", &name)]);
        let (_, tx) = server.accept().unwrap();
        let (reply_tx, rx) = ipc::channel().unwrap();
        tx.send(IpcMsg::Hello(reply_tx)).unwrap();
        Self { _child: child, tx, rx }
    }

    fn p50(&self, n: u64) -> f64 {
        let mut h = histogram();
        for i in 0..n {
            let start = now_ns();
            self.tx.send(IpcMsg::Req { counter: i, req_timestamp_ns: start }).unwrap();
            let r = self.rx.recv().unwrap();
            assert_eq!(r.counter, i);
            h.saturating_record(now_ns() - start);
        }
        h.value_at_quantile(0.5) as f64
    }
}

/// Counts `EchoReq`s; to an `EchoReq` of counter 0 with a reply address it
/// answers with the count so far.
struct Sink {
    id: ActorId,
    count: u64,
}

impl Sink {
    fn new() -> Self {
        Self { id: ActorId::new(), count: 0 }
    }
}

fn sink_set() -> &'static ProtocolSet {
    static S: LazyLock<ProtocolSet> =
        LazyLock::new(|| ProtocolSet::new("bench::Sink", [echo_requestee_protocol()]));
    &S
}

impl Actor for Sink {
    fn name(&self) -> &str {
        "sink"
    }
    fn id(&self) -> ActorId {
        self.id
    }
    fn protocol_set(&self) -> &'static ProtocolSet {
        sink_set()
    }
    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        if let Some(req) = msg.downcast_ref::<EchoReq>() {
            if req.counter == 0 {
                let _ = ctx.reply(EchoReply::new(self.count, 0, 0));
            } else {
                self.count += 1;
            }
        }
    }
}

msg_local_macro::msg_local_macro! {
    /// Starts (or continues) a stream of `n` requests to `to`; `done`
    /// hears the count the sink reports at the end.
    struct Stream("bench::Stream") {
        to: ActorSender,
        n: u64,
        done: crossbeam_channel::Sender<u64>,
    }
}

/// Streams `EchoReq`s to a sink from an actor: sends until the link's
/// window is full, then has the window send it a note to go on once
/// acknowledgements free a place.
struct Streamer {
    id: ActorId,
    sent: u64,
    done_to: Option<crossbeam_channel::Sender<u64>>,
}

fn streamer_set() -> &'static ProtocolSet {
    static P: LazyLock<protocol::Protocol> =
        LazyLock::new(|| protocol::Protocol::new("bench::stream", [protocol::MsgInfo::local::<Stream>()]));
    static S: LazyLock<ProtocolSet> =
        LazyLock::new(|| ProtocolSet::new("bench::Streamer", [&*P, echo_requestee_protocol()]));
    &S
}

impl Actor for Streamer {
    fn name(&self) -> &str {
        "streamer"
    }
    fn id(&self) -> ActorId {
        self.id
    }
    fn protocol_set(&self) -> &'static ProtocolSet {
        streamer_set()
    }
    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        if let Some(reply) = msg.downcast_ref::<EchoReply>() {
            if let Some(done) = &self.done_to {
                let _ = done.send(reply.counter);
            }
            return;
        }
        let Ok(s) = msg.downcast::<Stream>() else { return };
        while self.sent < s.n {
            match ctx.send(&s.to, EchoReq::new(self.sent + 1, 0)) {
                Ok(()) => self.sent += 1,
                Err(_) => break,
            }
        }
        if self.sent < s.n {
            // The window is full: go on when acknowledgements free it.
            let to = s.to.clone();
            let _ = to.when_room(ctx.me(), *s);
            return;
        }
        // All sent: ask the sink for its count (frames keep their order).
        self.done_to = Some(s.done.clone());
        let _ = ctx.send(&s.to, EchoReq::new(0, 0));
    }
}

fn stream_ours(m: &Manager, peer_executor: usize, round: usize) -> f64 {
    let sink = m.find_by_name("sink").unwrap();
    let streamer = m
        .add_with(
            Streamer { id: ActorId::new(), sent: 0, done_to: None },
            ActorOptions::default().executor(peer_executor),
        )
        .unwrap();
    let (done, counted) = crossbeam_channel::bounded(1);
    let before = sink.ask(EchoReq::new(0, 0), GUARD).unwrap().downcast::<EchoReply>().unwrap().counter;
    let start = Instant::now();
    streamer.send(Stream::new(sink, STREAM, done)).unwrap();
    let count = counted.recv_timeout(GUARD).unwrap();
    let rate = STREAM as f64 / start.elapsed().as_secs_f64();
    assert_eq!(count - before, STREAM, "round {round}: every message counted");
    streamer.stop().unwrap();
    rate
}

fn stream_bare(addr: &Addr) -> f64 {
    let Addr::Tcp(sa) = addr else { panic!() };
    let mut s = TcpStream::connect(sa).unwrap();
    s.set_nodelay(true).unwrap();
    let frame = frame_of(&EchoReq::new(1, 0));
    let batch: Vec<u8> = (0..1000).flat_map(|_| frame.iter().copied()).collect();
    let start = Instant::now();
    s.write_all(b"S").unwrap();
    s.write_all(&STREAM.to_be_bytes()).unwrap();
    for _ in 0..STREAM / 1000 {
        s.write_all(&batch).unwrap();
    }
    let mut count = [0u8; 8];
    s.read_exact(&mut count).unwrap();
    assert_eq!(u64::from_be_bytes(count), STREAM);
    STREAM as f64 / start.elapsed().as_secs_f64()
}

fn parent() {
    println!("cross_process: {}", machine());
    let dir = std::env::temp_dir();
    let sock = |tag: &str| {
        format!("unix:{}", dir.join(format!("ipchnl-bench-{}-{tag}.sock", std::process::id())).display())
    };
    let tcp = "tcp://127.0.0.1:0".to_string();

    let ours_child = ChildProc::start("ours", &[tcp.clone(), sock("ours")]);
    let bare_child = ChildProc::start("bare", &[tcp.clone(), sock("bare")]);
    let low_child = ChildProc::start("ours-low", &[sock("low")]);
    let spin_child = ChildProc::start("bare-spin", &[sock("spin")]);

    let ours_tcp = Ours::new(&ours_child.addrs[0], false);
    let ours_unix = Ours::new(&ours_child.addrs[1], false);
    let mut bare_t = bare_tcp(&bare_child.addrs[0], false);
    let mut bare_u = bare_unix(&bare_child.addrs[1], false);
    let ipc = Ipc::new();
    let ours_low = Ours::new(&low_child.addrs[0], true);
    let mut bare_spin = bare_unix(&spin_child.addrs[0], true);

    // Warm up each.
    let n = ROUND_TRIPS;
    ours_tcp.p50(n);
    ours_unix.p50(n);
    bare_t.p50(n);
    bare_u.p50(n);
    ipc.p50(n);
    ours_low.p50(n);
    bare_spin.p50(n);

    println!("\nround trip, p50 of {n} per round (ns):");
    println!(
        "{:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} | {:>6} {:>6} {:>6} {:>6} {:>6}",
        "round",
        "tcp",
        "bare",
        "unix",
        "bare",
        "ipc-ch",
        "low",
        "spin",
        "t/b",
        "u/b",
        "u/ipc",
        "l/s",
        "l/ipc"
    );
    let mut r: [Vec<f64>; 5] = Default::default();
    for round in 0..rounds() {
        let t = ours_tcp.p50(n);
        let tb = bare_t.p50(n);
        let u = ours_unix.p50(n);
        let ub = bare_u.p50(n);
        let c = ipc.p50(n);
        let l = ours_low.p50(n);
        let s = bare_spin.p50(n);
        let row = [t / tb, u / ub, u / c, l / s, l / c];
        for (v, x) in r.iter_mut().zip(row) {
            v.push(x);
        }
        println!(
            "{round:>5} {t:>8.0} {tb:>8.0} {u:>8.0} {ub:>8.0} {c:>8.0} {l:>8.0} {s:>8.0} | {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2}",
            row[0], row[1], row[2], row[3], row[4]
        );
    }
    println!("tcp / bare tcp:               {} (target <= 1.2x)", summary(&r[0]));
    println!("unix / bare unix:             {} (target <= 1.3x)", summary(&r[1]));
    println!("unix / ipc-channel:           {} (target < 1x)", summary(&r[2]));
    println!("low-latency / bare spinning:  {} (target <= 1.5x)", summary(&r[3]));
    println!("low-latency / ipc-channel:    {} (target <= 0.25x)", summary(&r[4]));

    println!("\none-way stream of {STREAM} EchoReqs over TCP (msgs/s):");
    println!("{:>5} {:>12} {:>12} {:>8}", "round", "ipchnl", "bare", "ratio");
    let peer_executor = ours_tcp.manager.peers()[0].executor;
    let mut ratios = Vec::new();
    for round in 0..rounds() {
        let a = stream_ours(&ours_tcp.manager, peer_executor, round);
        let b = stream_bare(&bare_child.addrs[0]);
        ratios.push(a / b);
        println!("{round:>5} {a:>12.0} {b:>12.0} {:>8.2}", a / b);
    }
    println!("ipchnl / bare stream: {} (targets: >= 1,000,000 msg/s, >= 0.4x)", summary(&ratios));
    println!("load average after: {}", machine().rsplit("load average ").next().unwrap_or(""));
}
