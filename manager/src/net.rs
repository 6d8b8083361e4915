//! The links an executor owns: their sockets, handshakes, frames, acks,
//! heartbeats and redials. Everything here runs on the executor's thread,
//! driven by its readiness loop; no other thread touches a link.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor::{ActorSender, Envelope, SendError, Terminated, TerminationReason, Wait};
use connection::{
    CloseBody, DirectoryUpdate, FrameDecoder, FrameHeader, FrameKind, Handshake, HandshakeConfig, NackReason,
    Role, encode_frame, patch_seq_ack,
};
use crossbeam_channel::Sender;
use mio::event::{Event, Source};
use mio::{Interest, Registry, Token};
use msg_header::{ActorId, BoxMsg, MsgHeader, MsgId, MsgType, RawMsg};
use rustc_hash::FxHashMap as HashMap;
use slab::Slab;
use tracing::{debug, info, warn};

use crate::cell::ActorCell;
use crate::dead_letter::DeadLetterReason;
use crate::executor::Command;
use crate::manager::Shared;
use crate::outbox;
use crate::peer::{Peer, Place, RemoteRoute};
use crate::stats::bump;
use crate::{Addr, ManagerError, PeerInfo};

/// Why a link went down.
#[derive(Debug)]
pub(crate) enum Down {
    /// The peer closed the connection without a CLOSE frame.
    PeerClosed,
    /// The peer closed the connection in the middle of a frame: this many
    /// bytes of it had come.
    Truncated(usize),
    /// The peer sent CLOSE with this reason.
    Closed(String),
    /// Reading or writing failed.
    Io(io::Error),
    /// The stream broke the protocol: bad frame, bad handshake, bad body.
    Protocol(String),
    /// Nothing was received for the heartbeat timeout.
    HeartbeatTimeout,
    /// The handshake did not finish in time.
    HandshakeTimeout,
    /// Another link to the same node is kept.
    Duplicate,
    /// This manager is shutting down.
    Shutdown,
    /// The peer took nothing we wrote for the write deadline.
    SlowConsumer,
}

impl Down {
    /// A short name for counters.
    fn key(&self) -> String {
        match self {
            Self::PeerClosed => "peer_closed".into(),
            Self::Truncated(_) => "truncated_frame".into(),
            Self::Closed(r) => format!("closed_{r}"),
            Self::Io(_) => "io".into(),
            Self::Protocol(_) => "protocol".into(),
            Self::HeartbeatTimeout => "heartbeat_timeout".into(),
            Self::HandshakeTimeout => "handshake_timeout".into(),
            Self::Duplicate => "duplicate".into(),
            Self::Shutdown => "shutdown".into(),
            Self::SlowConsumer => "slow_consumer".into(),
        }
    }

    /// Whether a dialed link that went down this way is dialed again.
    fn redials(&self) -> bool {
        !matches!(self, Self::Duplicate | Self::Shutdown)
    }

    /// Whether the link lost to another one between the same two nodes
    /// (closed as a duplicate here or by the peer).
    fn is_duplicate(&self) -> bool {
        matches!(self, Self::Duplicate) || matches!(self, Self::Closed(r) if r == "duplicate")
    }
}

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PeerClosed => f.write_str("peer closed the connection"),
            Self::Truncated(n) => {
                write!(f, "truncated frame: {n} bytes of an incomplete frame at end of stream")
            }
            Self::Closed(r) => write!(f, "peer closed the link: {r}"),
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::HeartbeatTimeout => f.write_str("no heartbeat from the peer"),
            Self::HandshakeTimeout => f.write_str("handshake timed out"),
            Self::Duplicate => f.write_str("duplicate link"),
            Self::Shutdown => f.write_str("shutting down"),
            Self::SlowConsumer => f.write_str("the peer took nothing we wrote for the write deadline"),
        }
    }
}

/// A connected socket.
pub(crate) enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Unix(s) => s.write(buf),
        }
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Self::Tcp(s) => s.take_error(),
            Self::Unix(s) => s.take_error(),
        }
    }

    /// Whether a non-blocking connect has completed.
    fn is_connected(&self) -> io::Result<bool> {
        let r = match self {
            Self::Tcp(s) => s.peer_addr().map(drop),
            Self::Unix(s) => s.peer_addr().map(drop),
        };
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn shutdown_write(&self) {
        let _ = match self {
            Self::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Self::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }

    fn shutdown(&self) {
        let _ = match self {
            Self::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Self::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.register(r, t, i),
            Self::Unix(s) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.reregister(r, t, i),
            Self::Unix(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.deregister(r),
            Self::Unix(s) => s.deregister(r),
        }
    }
}

/// A listening socket; a Unix socket's file is removed when it is dropped.
pub(crate) enum Listener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener, PathBuf),
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Self::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.register(r, t, i),
            Self::Unix(s, _) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.reregister(r, t, i),
            Self::Unix(s, _) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.deregister(r),
            Self::Unix(s, _) => s.deregister(r),
        }
    }
}

enum State {
    /// A non-blocking connect under way.
    Connecting,
    Handshaking(Box<Handshake>),
    Up,
}

/// Someone waiting for a dial: `Manager::connect`.
pub(crate) type Waiter = Sender<Result<PeerInfo, ManagerError>>;

/// How a socket came to be: accepted, or dialed (and redialed).
pub(crate) struct Origin {
    role: Role,
    /// The address to redial when the link was dialed; `None` if accepted.
    dial: Option<Addr>,
    waiter: Option<Waiter>,
    attempt: u32,
}

impl Origin {
    pub(crate) fn accepted() -> Self {
        Self { role: Role::Server, dial: None, waiter: None, attempt: 0 }
    }

    /// One end of a socket pair a NATS bridge carries: never redialed here
    /// (the bridge makes a new pair when the peer is heard of again).
    #[cfg(feature = "nats")]
    pub(crate) fn bridged(role: Role) -> Self {
        Self { role, dial: None, waiter: None, attempt: 0 }
    }

    fn dialed(addr: Addr, waiter: Option<Waiter>, attempt: u32) -> Self {
        Self { role: Role::Client, dial: Some(addr), waiter, attempt }
    }
}

/// Replies that come back over a link for addresses that are not local
/// actors (asks, inboxes, actors of a third node): kept, the oldest
/// forgotten first past a bound.
#[derive(Default)]
struct ReplyTargets {
    map: HashMap<ActorId, ActorSender>,
    order: VecDeque<ActorId>,
}

impl ReplyTargets {
    const MAX: usize = 4096;

    fn insert(&mut self, target: ActorSender) {
        if self.map.insert(target.id(), target.clone()).is_none() {
            self.order.push_back(target.id());
            while self.order.len() > Self::MAX {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// The write buffer a link keeps once it has written everything: one that
/// grew past this in a burst gives the rest back.
const WBUF_KEEP: usize = 256 * 1024;

/// Messages read and not yet acknowledged after which a link acknowledges
/// at once rather than when its executor next flushes: a quarter of the
/// default window.
const ACK_EVERY: u64 = 256;

/// Early acknowledgements per read of a link at most (see `on_readable`).
const EARLY_ACKS: u32 = 4;

/// One link, owned by its executor.
struct Link {
    stream: Stream,
    state: State,
    role: Role,
    peer: Option<Arc<Peer>>,
    /// The address to redial when the link was dialed; `None` if accepted.
    dial: Option<Addr>,
    attempt: u32,
    waiter: Option<Waiter>,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    writable: bool,
    /// Since when bytes have waited that the socket would not take.
    blocked_since: Option<Instant>,
    send_seq: u64,
    recv_seq: u64,
    ack_sent: u64,
    unacked: VecDeque<(u64, BoxMsg)>,
    last_recv: Instant,
    last_send: Instant,
    deadline: Instant,
    /// The peer's actors, by id, for the reply address of what they send.
    remote: HashMap<ActorId, ActorSender>,
    replies: ReplyTargets,
    /// (watched actor on the peer, its name, local watcher).
    watches: Vec<(ActorId, String, ActorSender)>,
}

impl Link {
    fn new(stream: Stream, origin: Origin, deadline: Instant) -> Self {
        let now = Instant::now();
        Self {
            stream,
            state: State::Connecting,
            role: origin.role,
            peer: None,
            dial: origin.dial,
            attempt: origin.attempt,
            waiter: origin.waiter,
            rbuf: vec![0; 16 * 1024],
            rstart: 0,
            rend: 0,
            wbuf: Vec::new(),
            wpos: 0,
            writable: false,
            blocked_since: None,
            send_seq: 0,
            recv_seq: 0,
            ack_sent: 0,
            unacked: VecDeque::new(),
            last_recv: now,
            last_send: now,
            deadline,
            remote: HashMap::default(),
            replies: ReplyTargets::default(),
            watches: Vec::new(),
        }
    }

    fn is_up(&self) -> bool {
        matches!(self.state, State::Up)
    }

    /// Appends a control frame (not sequenced), acknowledging what was read.
    fn push_control(&mut self, mut header: FrameHeader, body: &[u8], max: usize) {
        header.ack = self.recv_seq;
        if encode_frame(&header, body, max, &mut self.wbuf).is_ok() {
            self.ack_sent = self.recv_seq;
            self.last_send = Instant::now();
            if let Some(peer) = &self.peer {
                bump(&peer.counters.frames_out, 1);
                match header.kind {
                    FrameKind::Heartbeat => bump(&peer.counters.heartbeats_out, 1),
                    FrameKind::Nack => bump(&peer.counters.nacks_out[usize::from(header.flags.min(5))], 1),
                    _ => {}
                }
            }
        }
    }

    /// Appends an encoded control frame, stamping the acknowledgement.
    fn push_encoded_control(&mut self, mut frame: Vec<u8>) {
        patch_seq_ack(&mut frame, 0, self.recv_seq);
        self.wbuf.extend_from_slice(&frame);
        self.ack_sent = self.recv_seq;
        self.last_send = Instant::now();
        if let Some(peer) = &self.peer {
            bump(&peer.counters.frames_out, 1);
        }
    }

    /// Room to read into: compacts, or grows up to `max` bytes.
    fn make_room(&mut self, max: usize) {
        if self.rend < self.rbuf.len() {
            return;
        }
        if self.rstart > 0 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        } else if self.rbuf.len() < max {
            let len = (self.rbuf.len() * 2).min(max);
            self.rbuf.resize(len, 0);
        }
    }

    /// The reply address of a frame's `src`: a known actor of the peer, or
    /// a route to an address the peer did not announce (an ask).
    fn route_for(&self, src: ActorId) -> Option<ActorSender> {
        if src.is_none() {
            return None;
        }
        if let Some(known) = self.remote.get(&src) {
            return Some(known.clone());
        }
        let peer = self.peer.clone()?;
        Some(RemoteRoute::sender(peer, src, format!("{src}"), Vec::new(), None))
    }
}

enum Io {
    Listener(Listener),
    Link(Box<Link>),
}

/// A link to dial again at `at`.
struct Redial {
    at: Instant,
    addr: Addr,
    attempt: u32,
}

/// Caches of shared tables, refreshed when their version changes.
#[derive(Default)]
struct Caches {
    dir_version: u64,
    actors: HashMap<ActorId, ActorSender>,
    dec_version: u64,
    decoders: Arc<HashMap<MsgId, protocol::MsgInfo>>,
}

/// The sockets of one executor.
pub(crate) struct Net {
    index: usize,
    io: Slab<Io>,
    redials: Vec<Redial>,
    caches: Caches,
    /// Links with bytes to write.
    dirty: Vec<usize>,
    /// Links to take down once the current step is done with them.
    downs: Vec<(usize, Down)>,
    /// Something changed that moves the next timer (a link, a redial).
    timers_changed: bool,
}

/// With at most this many sockets, a spinning executor reads its links
/// directly instead of polling for their readiness.
const SPECULATIVE_LINKS: usize = 4;

/// Tokens: 0 is the executor's waker; io `k` is `k + 1`.
fn token(key: usize) -> Token {
    Token(key + 1)
}

impl Net {
    pub(crate) fn new(index: usize) -> Self {
        Self {
            index,
            io: Slab::new(),
            redials: Vec::new(),
            caches: Caches::default(),
            dirty: Vec::new(),
            downs: Vec::new(),
            timers_changed: false,
        }
    }

    /// Whether the next timer may have moved since [`timers`](Self::timers) ran.
    pub(crate) fn timers_changed(&self) -> bool {
        self.timers_changed
    }

    pub(crate) fn has_io(&self) -> bool {
        !self.io.is_empty() || !self.redials.is_empty()
    }

    pub(crate) fn add_listener(&mut self, registry: &Registry, mut listener: Listener) {
        let entry = self.io.vacant_entry();
        if let Err(e) = registry.register(&mut listener, token(entry.key()), Interest::READABLE) {
            warn!(error = %e, "cannot watch listener");
            return;
        }
        entry.insert(Io::Listener(listener));
    }

    /// Takes over a connected (or connecting) socket.
    pub(crate) fn add_stream(
        &mut self,
        shared: &Shared,
        registry: &Registry,
        mut stream: Stream,
        origin: Origin,
    ) {
        let entry = self.io.vacant_entry();
        let key = entry.key();
        if let Err(e) = registry.register(&mut stream, token(key), Interest::READABLE | Interest::WRITABLE) {
            warn!(error = %e, "cannot watch socket");
            if let Some(w) = origin.waiter {
                let _ = w.send(Err(ManagerError::Io(e)));
            }
            return;
        }
        let role = origin.role;
        self.timers_changed = true;
        let deadline = Instant::now() + shared.config.handshake_timeout;
        entry.insert(Io::Link(Box::new(Link::new(stream, origin, deadline))));
        // An accepted socket is connected already: start at once.
        if role == Role::Server {
            self.start_handshake(shared, key);
        }
    }

    /// Starts a non-blocking connect to `addr`.
    pub(crate) fn dial(
        &mut self,
        shared: &Shared,
        registry: &Registry,
        addr: Addr,
        waiter: Option<Waiter>,
        attempt: u32,
    ) {
        let stream = match &addr {
            Addr::Tcp(sa) => mio::net::TcpStream::connect(*sa).map(Stream::Tcp),
            Addr::Unix(path) => mio::net::UnixStream::connect(path).map(Stream::Unix),
            // The manager hands these to its NATS bridge, never here.
            Addr::Nats(_) => {
                Err(io::Error::new(io::ErrorKind::Unsupported, "a NATS server is not dialed as a link"))
            }
        };
        match stream {
            Ok(stream) => self.add_stream(shared, registry, stream, Origin::dialed(addr, waiter, attempt)),
            Err(e) => self.dial_failed(shared, addr, waiter, attempt, Down::Io(e)),
        }
    }

    fn dial_failed(&mut self, shared: &Shared, addr: Addr, waiter: Option<Waiter>, attempt: u32, why: Down) {
        match waiter {
            Some(w) => {
                let _ =
                    w.send(Err(ManagerError::Connect { addr: addr.to_string(), reason: why.to_string() }));
            }
            None if !shared.is_stopping() => {
                debug!(%addr, attempt, reason = %why, "redial failed");
                self.schedule_redial(shared, addr, attempt + 1);
            }
            None => {}
        }
    }

    fn schedule_redial(&mut self, shared: &Shared, addr: Addr, attempt: u32) {
        let (first, longest) = shared.config.reconnect_backoff;
        let pause = first.saturating_mul(1 << attempt.min(16)).min(longest);
        let jitter = 0.75 + f64::from(getrandom::u32().unwrap_or(0) % 1000) / 2000.0;
        self.redials.push(Redial { at: Instant::now() + pause.mul_f64(jitter), addr, attempt });
        self.timers_changed = true;
    }

    fn start_handshake(&mut self, shared: &Shared, key: usize) {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        let mut nonce = [0; 32];
        if getrandom::fill(&mut nonce).is_err() {
            warn!("no randomness for a handshake nonce");
            return self.pending_down(key, Down::Protocol("no randomness".into()));
        }
        let mut config = HandshakeConfig::new(shared.node_id, shared.incarnation);
        config.secret.clone_from(&shared.config.secret);
        let mut hs = Box::new(Handshake::new(link.role, config, nonce));
        link.wbuf.extend_from_slice(&hs.take_output());
        link.state = State::Handshaking(hs);
        self.dirty.push(key);
    }

    /// Handles readiness of socket `token`.
    pub(crate) fn on_event(&mut self, shared: &Shared, registry: &Registry, event: &Event) {
        let Some(key) = event.token().0.checked_sub(1) else { return };
        match self.io.get(key) {
            Some(Io::Listener(_)) => self.accept(shared, registry, key),
            Some(Io::Link(_)) => {
                if event.is_writable() || event.is_error() || event.is_write_closed() {
                    self.on_writable(shared, key);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    let _ = self.on_readable(shared, key);
                }
            }
            None => {}
        }
        self.apply_downs(shared, registry);
    }

    fn accept(&mut self, shared: &Shared, registry: &Registry, key: usize) {
        loop {
            let Some(Io::Listener(listener)) = self.io.get(key) else { return };
            let accepted = match listener {
                Listener::Tcp(l) => l.accept().map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    Stream::Tcp(s)
                }),
                Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
            };
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    return;
                }
            };
            if let Stream::Unix(s) = &stream {
                if let Err(why) = check_unix_peer(s, shared) {
                    warn!(reason = %why, "unix peer refused");
                    continue;
                }
            }
            let executor = shared.next_link_executor();
            if executor == self.index {
                self.add_stream(shared, registry, stream, Origin::accepted());
            } else {
                shared.executor(executor).push(Command::AddStream { stream, origin: Origin::accepted() });
            }
        }
    }

    fn on_writable(&mut self, shared: &Shared, key: usize) {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        link.writable = true;
        if matches!(link.state, State::Connecting) {
            match link.stream.take_error() {
                Ok(Some(e)) | Err(e) => return self.pending_down(key, Down::Io(e)),
                Ok(None) => {}
            }
            match link.stream.is_connected() {
                Ok(true) => {
                    if let Stream::Tcp(s) = &link.stream {
                        let _ = s.set_nodelay(true);
                    }
                    self.start_handshake(shared, key);
                }
                Ok(false) => return,
                Err(e) => return self.pending_down(key, Down::Io(e)),
            }
        }
        self.write(key);
    }

    /// Reads the links of this executor without waiting for readiness
    /// (while spinning, a read that finds bytes saves the poll); whether
    /// any had bytes. Only worth it with few links.
    pub(crate) fn read_links(&mut self, shared: &Shared, registry: &Registry) -> Option<bool> {
        if self.io.len() > SPECULATIVE_LINKS {
            return None;
        }
        let keys: [Option<usize>; SPECULATIVE_LINKS] = {
            let mut keys = [None; SPECULATIVE_LINKS];
            for (slot, (key, io)) in keys.iter_mut().zip(self.io.iter()) {
                if let Io::Link(link) = io {
                    if matches!(link.state, State::Up) {
                        *slot = Some(key);
                    }
                }
            }
            keys
        };
        let mut any = false;
        for key in keys.into_iter().flatten() {
            any |= self.on_readable(shared, key);
        }
        self.apply_downs(shared, registry);
        Some(any)
    }

    /// Reads what `key` has; whether there was anything.
    fn on_readable(&mut self, shared: &Shared, key: usize) -> bool {
        let max = shared.config.max_frame;
        let mut any = false;
        // A few early acknowledgements per call at most: after the last the
        // peer can send no more than a window, so this loop ends, and the
        // executor gets to handle what was read (the rest is acknowledged
        // when it flushes).
        let mut early_acks = 0;
        loop {
            let Some(Io::Link(link)) = self.io.get_mut(key) else { return any };
            if matches!(link.state, State::Connecting) {
                return any;
            }
            link.make_room(max);
            let (rend, len) = (link.rend, link.rbuf.len());
            if rend == len {
                // Full, and the decoder has not refused the frame: it cannot
                // be larger than the maximum, so this does not happen.
                self.pending_down(key, Down::Protocol("read buffer full".into()));
                return any;
            }
            let drained = match link.stream.read(&mut link.rbuf[rend..]) {
                Ok(0) => {
                    // Bytes of a frame still wait for the rest of it.
                    let why = match link.rend - link.rstart {
                        0 => Down::PeerClosed,
                        n => Down::Truncated(n),
                    };
                    self.pending_down(key, why);
                    return true;
                }
                Ok(n) => {
                    any = true;
                    link.rend += n;
                    link.last_recv = Instant::now();
                    if let Some(peer) = &link.peer {
                        bump(&peer.counters.bytes_in, n as u64);
                    }
                    // A short read emptied the socket: no need for another
                    // read to see `WouldBlock`, new bytes raise a new event.
                    n < len - rend
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return any,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.pending_down(key, Down::Io(e));
                    return true;
                }
            };
            if let Err(why) = self.process_input(shared, key) {
                self.pending_down(key, why);
                return true;
            }
            if early_acks < EARLY_ACKS && self.ack_early(shared, key) {
                early_acks += 1;
            }
            if drained {
                return any;
            }
        }
    }

    /// Acknowledges at once once [`ACK_EVERY`] messages wait for it, so a
    /// sender streaming into a full window hears of room while this side
    /// still works through what it read; whether it did.
    fn ack_early(&mut self, shared: &Shared, key: usize) -> bool {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return false };
        if !(link.is_up() && link.recv_seq - link.ack_sent >= ACK_EVERY) {
            return false;
        }
        link.push_control(FrameHeader::new(FrameKind::Ack), &[], shared.config.max_frame);
        self.write(key);
        true
    }

    /// Runs what was read through the handshake, then the frame decoder.
    fn process_input(&mut self, shared: &Shared, key: usize) -> Result<(), Down> {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return Ok(()) };
        if let State::Handshaking(hs) = &mut link.state {
            let used =
                hs.read(&link.rbuf[link.rstart..link.rend]).map_err(|e| Down::Protocol(e.to_string()))?;
            link.rstart += used;
            let out = hs.take_output();
            if !out.is_empty() {
                link.wbuf.extend_from_slice(&out);
                self.dirty.push(key);
            }
            if !hs.is_done() {
                return Ok(());
            }
            self.on_handshake_done(shared, key)?;
        }
        let decoder = FrameDecoder::new(shared.config.max_frame);
        loop {
            let Some(Io::Link(link)) = self.io.get_mut(key) else { return Ok(()) };
            if !link.is_up() {
                return Ok(());
            }
            // Take the buffer out so frames can borrow it while `self` is used.
            let buf = std::mem::take(&mut link.rbuf);
            let (start, end) = (link.rstart, link.rend);
            let decoded = decoder.decode(&buf[start..end]);
            let outcome = match decoded {
                Ok(Some((frame, used))) => {
                    let r = self.on_frame(shared, key, frame.header, frame.body);
                    if let Some(Io::Link(link)) = self.io.get_mut(key) {
                        link.rstart += used;
                    }
                    r.map(|()| true)
                }
                Ok(None) => Ok(false),
                Err(e) => Err(Down::Protocol(e.to_string())),
            };
            if let Some(Io::Link(link)) = self.io.get_mut(key) {
                link.rbuf = buf;
                if link.rstart == link.rend {
                    link.rstart = 0;
                    link.rend = 0;
                }
            }
            if !outcome? {
                return Ok(());
            }
        }
    }

    fn on_handshake_done(&mut self, shared: &Shared, key: usize) -> Result<(), Down> {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return Ok(()) };
        let State::Handshaking(hs) = &link.state else { return Ok(()) };
        let Some(hello) = hs.peer().cloned() else {
            return Err(Down::Protocol("no peer after handshake".into()));
        };
        let dialer = if link.role == Role::Client { shared.node_id } else { hello.node_id };
        let place = Place { executor: self.index, key };
        let (peer, keep) = shared.peer_for(&hello, dialer, place);
        if !keep {
            link.push_control(
                FrameHeader::new(FrameKind::Close),
                &close_body("duplicate"),
                shared.config.max_frame,
            );
            if let Some(w) = link.waiter.take() {
                shared.await_directory(&peer, w);
            }
            self.dirty.push(key);
            return Err(Down::Duplicate);
        }
        info!(peer = %peer.node_id, incarnation = %hello.incarnation, authenticated = hello.authenticated,
            executor = self.index, "link up");
        link.state = State::Up;
        self.timers_changed = true;
        link.peer = Some(peer.clone());
        link.attempt = 0;
        link.last_recv = Instant::now();
        // `peer_for` made the link the peer's current one, up, before the
        // snapshot: a change made meanwhile is then either in the snapshot
        // or sent after it.
        bump(&peer.counters.links_up, 1);
        for frame in shared.directory_frames() {
            link.push_encoded_control(frame);
        }
        self.dirty.push(key);
        Ok(())
    }

    fn on_frame(
        &mut self,
        shared: &Shared,
        key: usize,
        header: FrameHeader,
        body: &[u8],
    ) -> Result<(), Down> {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return Ok(()) };
        let peer = link.peer.clone().ok_or_else(|| Down::Protocol("frame before handshake".into()))?;
        let counters = &peer.counters;
        bump(&counters.frames_in, 1);
        match header.kind {
            FrameKind::Msg => bump(&counters.msgs_in, 1),
            FrameKind::Heartbeat => bump(&counters.heartbeats_in, 1),
            FrameKind::Nack => bump(&counters.nacks_in[usize::from(header.flags.min(5))], 1),
            _ => {}
        }
        // A NACK's own acknowledgement covers the message it refuses: match
        // the refusal first, or the ack would take the message away.
        if header.kind == FrameKind::Nack {
            let pos = link.unacked.iter().position(|(seq, _)| *seq == header.corr);
            if let Some((_, msg)) = pos.and_then(|p| link.unacked.remove(p)) {
                peer.window.release(1);
                let reason = NackReason::from_code(header.flags);
                let detail = String::from_utf8_lossy(body);
                debug!(msg = msg.name(), ?reason, %detail, "message refused by the peer");
                let asker = link.replies.map.get(&msg.header().src_id()).cloned();
                shared.dead_letters.report_msg(msg, header.dst, DeadLetterReason::Nacked(reason));
                // An ask waiting for the answer fails now, not at its timeout.
                if let Some(asker) = asker {
                    asker.route().refused(reason);
                }
            }
        }
        // Cumulative acknowledgement, in every frame.
        let mut acked = 0;
        while link.unacked.front().is_some_and(|(seq, _)| *seq <= header.ack) {
            link.unacked.pop_front();
            acked += 1;
        }
        peer.window.release(acked);
        match header.kind {
            FrameKind::Msg => {
                if header.seq != link.recv_seq + 1 {
                    return Err(Down::Protocol(format!("message {} after {}", header.seq, link.recv_seq)));
                }
                link.recv_seq = header.seq;
                self.on_msg(shared, key, &header, body);
            }
            FrameKind::Ack | FrameKind::Heartbeat | FrameKind::Nack => {}
            FrameKind::Directory => {
                let update: DirectoryUpdate = serde_json::from_slice(body)
                    .map_err(|e| Down::Protocol(format!("bad directory: {e}")))?;
                self.on_directory(shared, key, &peer, update);
            }
            FrameKind::Watch => self.on_watch(shared, key, &header),
            FrameKind::Close => {
                let reason =
                    serde_json::from_slice::<CloseBody>(body).map_or_else(|_| "unknown".into(), |c| c.reason);
                return Err(Down::Closed(reason));
            }
        }
        Ok(())
    }

    /// A local actor by id, through the executor's cache.
    fn local_actor(&mut self, shared: &Shared, id: ActorId) -> Option<ActorSender> {
        let version = shared.dir_version();
        if version != self.caches.dir_version {
            self.caches.actors.clear();
            self.caches.dir_version = version;
        }
        if let Some(a) = self.caches.actors.get(&id) {
            return Some(a.clone());
        }
        let found = shared.local_actor(id)?;
        self.caches.actors.insert(id, found.clone());
        Some(found)
    }

    fn decoder(&mut self, shared: &Shared, id: MsgId) -> Option<protocol::MsgInfo> {
        let version = shared.decoders_version();
        if version != self.caches.dec_version {
            self.caches.decoders = shared.decoders();
            self.caches.dec_version = version;
        }
        self.caches.decoders.get(&id).copied()
    }

    fn on_msg(&mut self, shared: &Shared, key: usize, h: &FrameHeader, body: &[u8]) {
        let target = match self.local_actor(shared, h.dst) {
            Some(t) => Some(t),
            None => match self.io.get(key) {
                Some(Io::Link(link)) => link.replies.map.get(&h.dst).cloned(),
                _ => None,
            },
        };
        let Some(target) = target else { return self.nack(shared, key, h, NackReason::UnknownDst, "") };
        let is_terminated = h.msg_id == Terminated::msg_id();
        if !target.accepts(h.msg_id) && !is_terminated {
            return self.nack(shared, key, h, NackReason::UnknownMsg, "");
        }
        let header = MsgHeader::with_ids(h.msg_id, h.dst, h.src, h.corr);
        let msg = match self.decoder(shared, h.msg_id) {
            Some(info) => match info.decode(header, body) {
                Ok(msg) => msg,
                Err(e) => return self.nack(shared, key, h, NackReason::BadBody, &e.to_string()),
            },
            // An address with no protocols of its own (an ask, an inbox)
            // takes what this process cannot decode as it came.
            None if !is_local_actor(&target) => Box::new(RawMsg::new(header, body.to_vec())),
            None => {
                return self.nack(shared, key, h, NackReason::UnknownMsg, "no decoder for this message here");
            }
        };
        let reply_to = self.reply_route(shared, key, h.src);
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        // The watched actor is named in the body: a `Terminated` is sent by nobody.
        if let Some(end) = msg.downcast_ref::<Terminated>() {
            link.watches.retain(|(t, _, w)| !(*t == end.actor && w.id() == h.dst));
        }
        // Checked and stamped already (the header came from the frame).
        if let Err(e) = target.route().deliver(Envelope { msg, reply_to }, Wait::No) {
            let reason = match e {
                SendError::Full(_) | SendError::Timeout(_) => NackReason::MailboxFull,
                SendError::NotAccepted(_) => NackReason::UnknownMsg,
                _ => NackReason::DstStopped,
            };
            self.nack(shared, key, h, reason, "");
        }
    }

    /// Where replies to a message from `src` go. Usually an actor of the
    /// peer; but a peer may pass on an address of ours (an ask's, an
    /// actor's), and then the reply stays here rather than crossing the
    /// link twice (and finding its window full on the way).
    fn reply_route(&mut self, shared: &Shared, key: usize, src: ActorId) -> Option<ActorSender> {
        let Some(Io::Link(link)) = self.io.get(key) else { return None };
        if src.is_none() || link.remote.contains_key(&src) {
            return link.route_for(src);
        }
        if let Some(ours) = link.replies.map.get(&src) {
            return Some(ours.clone());
        }
        if let Some(ours) = self.local_actor(shared, src) {
            return Some(ours);
        }
        let Some(Io::Link(link)) = self.io.get(key) else { return None };
        link.route_for(src)
    }

    fn nack(&mut self, shared: &Shared, key: usize, h: &FrameHeader, reason: NackReason, detail: &str) {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        debug!(msg = %h.msg_id, dst = %h.dst, %reason, "refusing a message");
        let nack = FrameHeader {
            flags: reason as u8,
            msg_id: h.msg_id,
            dst: h.dst,
            src: h.src,
            corr: h.seq,
            ..FrameHeader::new(FrameKind::Nack)
        };
        link.push_control(nack, detail.as_bytes(), shared.config.max_frame);
        self.dirty.push(key);
    }

    fn on_directory(&mut self, shared: &Shared, key: usize, peer: &Arc<Peer>, update: DirectoryUpdate) {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        if let Some(name) = &update.node {
            peer.set_node_name(name.clone());
        }
        let node = (peer.node_id, peer.node_name());
        let mut dir = shared.dir_mut();
        // A full directory replaces what we knew of the node. An actor it
        // still lists keeps its route: senders handed out from an earlier
        // link to this incarnation (one that lost to a duplicate) stay good.
        let mut before: HashMap<ActorId, ActorSender> = HashMap::default();
        if update.full {
            for gone in dir.remove_node(peer.node_id) {
                before.insert(gone.sender.id(), gone.sender);
            }
            link.remote.clear();
        }
        for id in &update.remove {
            if let Some(gone) = link.remote.remove(id) {
                mark_removed(&gone);
                dir.remove(*id);
            }
        }
        for e in update.add {
            let kept = before.remove(&e.id).filter(|s| routes_to(s, peer));
            let route = kept.unwrap_or_else(|| {
                RemoteRoute::sender(peer.clone(), e.id, e.name, e.protocols.clone(), Some(e.msgs))
            });
            dir.insert_remote(route.clone(), peer.rank, e.protocols, node.clone());
            link.remote.insert(e.id, route);
        }
        for gone in before.values() {
            mark_removed(gone);
        }
        drop(dir);
        if update.full {
            if let Some(w) = link.waiter.take() {
                let _ = w.send(Ok(shared.peer_info(peer)));
            }
            peer.has_directory.store(true, std::sync::atomic::Ordering::SeqCst);
            shared.answer_waiters(peer);
        }
    }

    fn on_watch(&mut self, shared: &Shared, key: usize, h: &FrameHeader) {
        let target = self.local_actor(shared, h.dst);
        let Some(Io::Link(link)) = self.io.get(key) else { return };
        let Some(watcher) = link.route_for(h.src) else { return };
        let watched = target.as_ref().map(|t| t.watch(&watcher));
        if !matches!(watched, Some(Ok(()))) {
            // Unknown here: it has ended (or never was).
            let _ = watcher.try_send(Terminated::new(h.dst, String::new(), TerminationReason::Stopped));
        }
    }

    /// A message for the peer, encoded by the sender, counted in its window.
    pub(crate) fn link_send(
        &mut self,
        shared: &Shared,
        peer: &Arc<Peer>,
        frame: &[u8],
        msg: BoxMsg,
        reply_to: Option<ActorSender>,
    ) {
        let key = peer.place().key;
        let link = match self.io.get_mut(key) {
            Some(Io::Link(link))
                if link.is_up() && link.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, peer)) =>
            {
                link
            }
            _ => {
                peer.window.release(1);
                let dst = msg.header().dst_id();
                return shared.dead_letters.report_msg(msg, dst, DeadLetterReason::Unacknowledged);
            }
        };
        link.send_seq += 1;
        let at = link.wbuf.len();
        link.wbuf.extend_from_slice(frame);
        patch_seq_ack(&mut link.wbuf[at..], link.send_seq, link.recv_seq);
        link.ack_sent = link.recv_seq;
        link.unacked.push_back((link.send_seq, msg));
        bump(&peer.counters.frames_out, 1);
        bump(&peer.counters.msgs_out, 1);
        if let Some(r) = reply_to {
            if !is_local_actor(&r) {
                link.replies.insert(r);
            }
        }
        self.dirty.push(key);
    }

    /// Moves what handlers of this executor wrote to the outbox to their links.
    pub(crate) fn drain_outbox(&mut self, shared: &Shared) {
        if outbox::is_empty() {
            return;
        }
        let mut out = outbox::take();
        for item in out.items.drain(..) {
            self.link_send(shared, &item.peer, &out.bytes[item.start..item.end], item.msg, item.reply_to);
        }
        outbox::give_back(out);
    }

    /// A control frame for the peer (directory changes).
    pub(crate) fn link_control(&mut self, peer: &Arc<Peer>, frame: Vec<u8>) {
        let key = peer.place().key;
        if let Some(Io::Link(link)) = self.io.get_mut(key) {
            if link.is_up() && link.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, peer)) {
                link.push_encoded_control(frame);
                self.dirty.push(key);
            }
        }
    }

    /// `watcher` (local) watches `target` on the peer.
    pub(crate) fn link_watch(
        &mut self,
        shared: &Shared,
        peer: &Arc<Peer>,
        target: ActorId,
        name: String,
        watcher: ActorSender,
    ) {
        let key = peer.place().key;
        match self.io.get_mut(key) {
            Some(Io::Link(link))
                if link.is_up() && link.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, peer)) =>
            {
                let watch =
                    FrameHeader { dst: target, src: watcher.id(), ..FrameHeader::new(FrameKind::Watch) };
                link.push_control(watch, &[], shared.config.max_frame);
                if !is_local_actor(&watcher) {
                    link.replies.insert(watcher.clone());
                }
                link.watches.push((target, name, watcher));
                self.dirty.push(key);
            }
            _ => {
                let _ = watcher.try_send(Terminated::new(target, name, TerminationReason::LinkDown));
            }
        }
    }

    /// Closes the link at `key` if it still carries `peer` (a duplicate).
    pub(crate) fn close_link(&mut self, shared: &Shared, registry: &Registry, peer: &Arc<Peer>, key: usize) {
        if let Some(Io::Link(link)) = self.io.get_mut(key) {
            if link.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, peer)) {
                link.push_control(
                    FrameHeader::new(FrameKind::Close),
                    &close_body("duplicate"),
                    shared.config.max_frame,
                );
                self.write(key);
                self.pending_down(key, Down::Duplicate);
            }
        }
        self.apply_downs(shared, registry);
    }

    /// Writes what is pending on `key`, as far as the socket takes it.
    fn write(&mut self, key: usize) {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        while link.writable && link.wpos < link.wbuf.len() {
            match link.stream.write(&link.wbuf[link.wpos..]) {
                Ok(0) => return self.pending_down(key, Down::PeerClosed),
                Ok(n) => {
                    link.wpos += n;
                    link.last_send = Instant::now();
                    if let Some(peer) = &link.peer {
                        bump(&peer.counters.bytes_out, n as u64);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => link.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.pending_down(key, Down::Io(e)),
            }
        }
        if link.wpos == link.wbuf.len() {
            link.wbuf.clear();
            // A burst may have grown it to a window of large frames; keep
            // no more than a busy link reuses.
            link.wbuf.shrink_to(WBUF_KEEP);
            link.wpos = 0;
            link.blocked_since = None;
        } else {
            if link.wpos >= link.wbuf.len() - link.wpos {
                // What was written goes, or a link that never quite catches
                // up would keep every byte it ever sent.
                link.wbuf.drain(..link.wpos);
                link.wpos = 0;
            }
            if link.blocked_since.is_none() {
                link.blocked_since = Some(Instant::now());
            }
        }
    }

    /// Acknowledges what was read and writes every link with bytes pending.
    pub(crate) fn flush(&mut self, shared: &Shared, registry: &Registry) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for (key, io) in self.io.iter_mut() {
            if let Io::Link(link) = io {
                if link.is_up() && link.recv_seq > link.ack_sent {
                    link.push_control(FrameHeader::new(FrameKind::Ack), &[], shared.config.max_frame);
                    dirty.push(key);
                }
            }
        }
        dirty.sort_unstable();
        dirty.dedup();
        for key in dirty.drain(..) {
            self.write(key);
        }
        self.dirty = dirty;
        self.apply_downs(shared, registry);
    }

    /// Heartbeats, timeouts and redials due by `now`; the next deadline.
    pub(crate) fn timers(&mut self, shared: &Shared, registry: &Registry, now: Instant) -> Option<Instant> {
        self.timers_changed = false;
        let (interval, timeout) = (shared.config.heartbeat_interval, shared.config.heartbeat_timeout);
        for (key, io) in self.io.iter_mut() {
            let Io::Link(link) = io else { continue };
            if link.is_up() {
                if now.duration_since(link.last_recv) >= timeout {
                    self.downs.push((key, Down::HeartbeatTimeout));
                } else if link
                    .blocked_since
                    .is_some_and(|t| now.duration_since(t) >= shared.config.write_deadline)
                {
                    self.downs.push((key, Down::SlowConsumer));
                } else if now.duration_since(link.last_send) >= interval {
                    link.push_control(FrameHeader::new(FrameKind::Heartbeat), &[], shared.config.max_frame);
                    self.dirty.push(key);
                }
            } else if now >= link.deadline {
                self.downs.push((key, Down::HandshakeTimeout));
            }
        }
        // Links that went down may schedule redials: apply them first.
        self.apply_downs(shared, registry);
        if self.redials.iter().any(|r| r.at <= now) {
            let (due, later): (Vec<Redial>, Vec<Redial>) =
                std::mem::take(&mut self.redials).into_iter().partition(|r| r.at <= now);
            self.redials = later;
            for r in due {
                debug!(addr = %r.addr, attempt = r.attempt, "redialing");
                self.dial(shared, registry, r.addr, None, r.attempt);
            }
        }
        if !self.dirty.is_empty() {
            self.flush(shared, registry);
        }
        self.timers_changed = false;
        self.next_deadline(shared)
    }

    /// The soonest of every link's and redial's next deadline.
    fn next_deadline(&self, shared: &Shared) -> Option<Instant> {
        let (interval, timeout) = (shared.config.heartbeat_interval, shared.config.heartbeat_timeout);
        let links = self.io.iter().filter_map(|(_, io)| match io {
            Io::Link(link) if link.is_up() => {
                let blocked = link.blocked_since.map(|t| t + shared.config.write_deadline);
                let next = (link.last_recv + timeout).min(link.last_send + interval);
                Some(blocked.map_or(next, |b| b.min(next)))
            }
            Io::Link(link) => Some(link.deadline),
            Io::Listener(_) => None,
        });
        links.chain(self.redials.iter().map(|r| r.at)).min()
    }

    fn pending_down(&mut self, key: usize, why: Down) {
        self.downs.push((key, why));
    }

    /// Takes down the links marked so.
    fn apply_downs(&mut self, shared: &Shared, registry: &Registry) {
        while let Some((key, why)) = self.downs.pop() {
            if let Some(Io::Link(_)) = self.io.get(key) {
                // What is pending (a CLOSE frame, a NACK) goes out first.
                self.write(key);
                if let Io::Link(link) = self.io.remove(key) {
                    self.down(shared, registry, key, *link, why);
                }
            }
        }
    }

    /// Reports what a link that went down leaves behind, and redials it.
    fn down(&mut self, shared: &Shared, registry: &Registry, key: usize, mut link: Link, why: Down) {
        shared.closes.add(&why.key());
        if let (Some(peer), Down::HeartbeatTimeout) = (&link.peer, &why) {
            bump(&peer.counters.heartbeats_missed, 1);
        }
        let _ = registry.deregister(&mut link.stream);
        link.stream.shutdown();
        let place = Place { executor: self.index, key };
        let was_up = link.is_up();
        if let Some(peer) = &link.peer {
            // A duplicate that lost leaves the peer to the other link.
            if was_up {
                for gone in shared.link_lost(peer, place).unwrap_or_default() {
                    mark_removed(&gone);
                }
            }
            let n = link.unacked.len();
            for (_, msg) in link.unacked.drain(..) {
                let dst = msg.header().dst_id();
                shared.dead_letters.report_msg(msg, dst, DeadLetterReason::Unacknowledged);
            }
            peer.window.release(n);
        }
        let reason = match &why {
            Down::Closed(r) if r == "shutdown" => TerminationReason::Shutdown,
            _ => TerminationReason::LinkDown,
        };
        // The node is still linked through another link (this was a duplicate).
        let still_linked = link.peer.as_ref().is_some_and(|p| p.is_up() && p.place() != place);
        match link.peer.as_ref().filter(|_| still_linked) {
            // Watches move to the other link.
            Some(peer) => {
                for (target, target_name, watcher) in link.watches.drain(..) {
                    peer.executor().push(Command::LinkWatch {
                        peer: peer.clone(),
                        target,
                        target_name,
                        watcher,
                    });
                }
            }
            None => {
                for (target, name, watcher) in link.watches.drain(..) {
                    let _ = watcher.try_send(Terminated::new(target, name, reason));
                }
            }
        }
        let peer = link.peer.as_ref().map(|p| p.node_id);
        match &why {
            Down::Protocol(_) | Down::Truncated(_) => warn!(?peer, reason = %why, "link closed"),
            _ if was_up => info!(?peer, reason = %why, "link down"),
            _ => debug!(reason = %why, "link failed before it was up"),
        }
        if let Some(w) = link.waiter.take() {
            // Our link lost to the node's own dial: the kept one answers.
            if let (Some(peer), true) = (&link.peer, why.is_duplicate()) {
                return shared.await_directory(peer, w);
            }
            let addr = link.dial.as_ref().map(ToString::to_string).unwrap_or_default();
            let _ = w.send(Err(ManagerError::Connect { addr, reason: why.to_string() }));
            return; // the caller of connect decides what to do next
        }
        // A link that lost to another one to the same node is not redialed:
        // the kept link's dialer redials that one if it goes down.
        if let Some(addr) = link.dial.take() {
            if why.redials() && !(why.is_duplicate() && still_linked) && !shared.is_stopping() {
                let attempt = if was_up { 0 } else { link.attempt + 1 };
                self.schedule_redial(shared, addr, attempt);
            }
        }
    }

    /// Closes every link in order (CLOSE, flush, up to `grace`), then the
    /// listeners. What is unacknowledged is reported.
    pub(crate) fn close_all(&mut self, shared: &Shared, registry: &Registry, grace: Duration) {
        self.redials.clear();
        let keys: Vec<usize> = self.io.iter().map(|(k, _)| k).collect();
        for &key in &keys {
            if let Some(Io::Link(link)) = self.io.get_mut(key) {
                if link.is_up() {
                    link.push_control(
                        FrameHeader::new(FrameKind::Close),
                        &close_body("shutdown"),
                        shared.config.max_frame,
                    );
                }
                link.writable = true;
            }
        }
        let deadline = Instant::now() + grace;
        loop {
            for &key in &keys {
                self.write(key);
            }
            let pending =
                keys.iter().any(|k| matches!(self.io.get(*k), Some(Io::Link(l)) if l.wpos < l.wbuf.len()));
            if !pending || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            for &key in &keys {
                if let Some(Io::Link(link)) = self.io.get_mut(key) {
                    link.writable = true;
                }
            }
        }
        for key in keys {
            if let Some(Io::Link(link)) = self.io.get_mut(key) {
                // Read what the peer sent meanwhile: closing a socket with
                // unread input resets it, and the peer might then lose our
                // CLOSE frame. End our side first.
                let mut sink = [0u8; 4096];
                while matches!(link.stream.read(&mut sink), Ok(n) if n > 0) {}
                link.stream.shutdown_write();
            }
            self.downs.push((key, Down::Shutdown));
        }
        self.apply_downs(shared, registry);
        for (_, io) in self.io.iter_mut() {
            if let Io::Listener(l) = io {
                let _ = registry.deregister(l);
            }
        }
        self.io.clear();
    }
}

fn close_body(reason: &str) -> Vec<u8> {
    serde_json::to_vec(&CloseBody { reason: reason.to_owned() }).unwrap_or_default()
}

/// Whether `sender` is an actor of a manager of this process.
fn is_local_actor(sender: &ActorSender) -> bool {
    let route: &dyn std::any::Any = sender.route();
    route.is::<ActorCell>()
}

/// Whether `sender` is a route to an actor of `peer` (this incarnation).
fn routes_to(sender: &ActorSender, peer: &Arc<Peer>) -> bool {
    let route: &dyn std::any::Any = sender.route();
    route.downcast_ref::<RemoteRoute>().is_some_and(|r| Arc::ptr_eq(&r.peer, peer))
}

/// Marks a route of an actor gone from its peer's directory.
fn mark_removed(sender: &ActorSender) {
    let route: &dyn std::any::Any = sender.route();
    if let Some(r) = route.downcast_ref::<RemoteRoute>() {
        r.removed.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Refuses a Unix peer of a user the configuration does not allow.
fn check_unix_peer(stream: &mio::net::UnixStream, shared: &Shared) -> Result<(), String> {
    let cred =
        rustix::net::sockopt::socket_peercred(stream).map_err(|e| format!("no peer credentials: {e}"))?;
    let own = rustix::process::geteuid().as_raw();
    let peer = cred.uid.as_raw();
    if shared.config.unix_peers.allows(peer, own) {
        Ok(())
    } else {
        Err(format!("user {peer} is not allowed (this process runs as {own})"))
    }
}
