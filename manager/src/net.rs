//! The links an executor owns: a thin driver around each link's
//! [`Session`] (`connection`), which holds the protocol. This moves bytes
//! between sockets and sessions, turns the sessions' events into
//! deliveries, dead letters and directory changes, runs their timers, and
//! enforces what needs the sockets: the read budget per turn, pausing
//! reads, the caps on links and pending handshakes, and the listener's
//! backoff. Everything here runs on the executor's thread; no other thread
//! touches a link.

use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actor::{
    ActorSender, Envelope, Hold, HoldPool, LocalPool, SendError, Terminated, TerminationReason, Wait,
};
use connection::{
    CloseReason, Event, FRAME_HEADER_LEN, FrameHeader, FrameKind, HandshakeConfig, Incarnation, LimitKind,
    NackReason, Role, Session, SessionConfig,
};
use mio::event::Event as Readiness;
use mio::{Interest, Registry, Token};
use msg_header::{ActorId, BoxMsg, MsgHeader, MsgId, MsgType, NodeId, RawMsg, UnhandledReason};
use rustc_hash::FxHashMap as HashMap;
use slab::Slab;
use tracing::{debug, info, warn};

use crate::dead_letter::{DeadLetterReason, DeadLetters};
use crate::decoders::Decoders;
use crate::nodes::{Known, Nodes};
use crate::owed::OwedQueue;
use crate::peer::{LinkReplaced, Peer, PeerCommand, Place, RemoteRoute, Waiter, outbox};
use crate::shm::ShmStream;
use crate::socket::{Listener, Stream};
use crate::stats::{Tally, bump};
use crate::sync::Mailbox;
use crate::{Addr, ManagerConfig, ManagerError};

/// The manager, as its links see it.
pub(crate) trait Host: Send + Sync {
    fn config(&self) -> &ManagerConfig;
    fn node_id(&self) -> NodeId;
    fn incarnation(&self) -> Incarnation;
    /// The peers and the directory.
    fn nodes(&self) -> &Nodes;
    fn decoders(&self) -> &Decoders;
    fn dead_letters(&self) -> &DeadLetters;
    /// Links closed, by reason.
    fn closes(&self) -> &Tally;
    /// Accepted links open now, every executor's (`max_links`).
    fn open_links(&self) -> &AtomicUsize;
    /// This node's directory, in frames that fit the maximum frame.
    fn directory_frames(&self) -> Vec<Vec<u8>>;
    /// Whether shutdown has begun.
    fn is_stopping(&self) -> bool;
    /// The executor the next link runs on.
    fn next_link_executor(&self) -> usize;
    /// Queues `cmd` for the links of executor `index`.
    fn push_to(&self, index: usize, cmd: NetCommand);
}

/// What an executor is asked to do with its sockets and links.
pub(crate) enum NetCommand {
    /// Serve a listening socket.
    AddListener(Listener),
    /// Take over a socket, accepted or dialed (boxed, as `Dial`'s address:
    /// every command is as large as the largest, and these are rare).
    AddStream { stream: Stream, origin: Box<Origin> },
    /// Dial `addr`.
    Dial { addr: Box<Addr>, waiter: Option<Waiter> },
    /// Close the link at `place` if it still carries `peer`.
    CloseLink { peer: Arc<Peer>, place: Place, reason: LinkReplaced },
    /// Read the link at `key` again, if it is still link `id`: what its
    /// inbound messages held has drained.
    ResumeLink { key: usize, id: u64 },
    /// Return to the peer of the link at `key`, if it is still link `id`,
    /// a message it sent that was acknowledged and then not handled.
    ReturnUnhandled { key: usize, id: u64, returned: Box<Returned> },
    /// The message of sequence number `seq` on link `id` at `key`, whose
    /// acknowledgement waited for it, was handled (or returned).
    Handled { key: usize, id: u64, seq: u64 },
    /// Take over a link whose handshake another executor (the handshake
    /// executor) did: it is up with this peer.
    Adopt(Handoff),
}

/// A message going back to its sender in a DEAD frame.
pub(crate) struct Returned {
    header: FrameHeader,
    reason: UnhandledReason,
    body: Vec<u8>,
}

impl Returned {
    /// `msg` (read from a link), returned for `reason`; `None` if it has
    /// no wire form (it cannot have come from a link).
    fn of(msg: &BoxMsg, reason: UnhandledReason) -> Option<Self> {
        let mut body = Vec::new();
        msg.as_wire()?.encode_body(&mut body).ok()?;
        let h = msg.header();
        let header = FrameHeader {
            msg_id: h.msg_id(),
            dst: h.dst_id(),
            src: h.src_id(),
            corr: h.corr_id(),
            ..FrameHeader::new(FrameKind::Msg)
        };
        Some(Self { header, reason, body })
    }

    fn send(&self, session: &mut Session<BoxMsg>) {
        session.return_unhandled(&self.header, self.reason, &self.body);
    }
}

/// A link whose handshake is done, on its way to its link executor.
pub(crate) struct Handoff {
    link: Box<Link>,
    hello: connection::PeerHello,
}

/// How a socket came to be: accepted, or dialed (and redialed).
pub(crate) struct Origin {
    role: Role,
    /// The address to redial when the link was dialed; `None` if accepted.
    dial: Option<Addr>,
    waiter: Option<Waiter>,
    attempt: u32,
    /// The executor the link runs on once up, if not the one it starts on.
    home: Option<usize>,
}

impl Origin {
    pub(crate) fn accepted() -> Self {
        Self { role: Role::Server, dial: None, waiter: None, attempt: 0, home: None }
    }

    /// Accepted by a handshake executor, for executor `home` once up.
    fn accepted_for(home: usize) -> Self {
        Self { home: Some(home), ..Self::accepted() }
    }

    /// A stream a transport of its own handed over (the NATS bridge's end
    /// of a socket pair): never redialed here (the transport makes a new
    /// one when the peer is heard of again).
    pub(crate) fn adopted(role: Role) -> Self {
        Self { role, dial: None, waiter: None, attempt: 0, home: None }
    }

    fn dialed(addr: Addr, waiter: Option<Waiter>, attempt: u32) -> Self {
        Self { role: Role::Client, dial: Some(addr), waiter, attempt, home: None }
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

/// The session configuration of a manager's links.
pub(crate) fn session_config(c: &ManagerConfig) -> SessionConfig {
    let mut s = SessionConfig::default();
    s.max_frame = c.max_frame;
    s.recv_window = c.window;
    s.max_inbound_bytes = c.max_inbound_bytes.max(c.max_frame);
    s.max_write_buffer = c.max_write_buffer.max(c.max_frame);
    s.handshake_timeout = c.handshake_timeout;
    s.heartbeat_interval = c.heartbeat_interval;
    s.heartbeat_timeout = c.heartbeat_timeout;
    s.write_deadline = c.write_deadline;
    s.max_watches = c.max_watches;
    s.max_remote_actors = c.max_remote_actors;
    s.max_name_len = c.max_name_len;
    s.max_actor_ids = c.max_actor_ids;
    s.control_rate = c.control_rate;
    s.control_burst = c.control_burst;
    s
}

/// Messages one link delivers per executor turn at most: a message of
/// another link on the same executor waits behind no more than this many
/// of a busy one's (and [`OWN_QUEUE_READ_LIMIT`] in all).
const MSGS_PER_TURN: usize = 64;

/// Commands this executor gave itself (messages read for its actors
/// among them) past which its links read no more until they are handled:
/// what links read for this thread's actors is bounded by this and one
/// read budget per link.
const OWN_QUEUE_READ_LIMIT: usize = 64;

/// How often a busy executor adds its links' counters to their peers'
/// (which `Manager::stats` reads): every this many flushes, and whenever
/// it is about to sleep. Once per read and write, the atomic additions
/// cost a round trip about 0.1 µs.
const PUBLISH_EVERY_FLUSHES: u32 = 256;

/// What a message read from a link is charged, besides its body: its
/// header and the envelope around it.
const HOLD_OVERHEAD: usize = 128;

/// The memory a link's inbound messages hold until handled: while it is
/// over the bound the link reads nothing and acknowledges nothing; the
/// release that brings it back under wakes the link's executor.
pub(crate) struct Inbound {
    held: AtomicUsize,
    limit: usize,
    /// The link stopped reading for this, and waits to be woken.
    paused: AtomicBool,
    executor: Arc<dyn Mailbox<NetCommand>>,
    key: usize,
    id: u64,
}

impl Inbound {
    fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Holds `bytes` of this link's inbound memory for one message; with a
    /// receipt, for the message of that sequence number, whose
    /// acknowledgement waits until it is handled.
    fn hold(self: &Arc<Self>, bytes: usize, receipt: Option<u64>) -> Hold {
        if bytes > 0 {
            self.held.fetch_add(bytes, Ordering::SeqCst);
        }
        match receipt {
            Some(seq) => Hold::with_receipt(self.clone(), bytes, seq),
            None => Hold::new(self.clone(), bytes),
        }
    }
}

impl HoldPool for Inbound {
    fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let before = self.held.fetch_sub(bytes, Ordering::SeqCst);
        // Pairs with `Net::pause`: it sets `paused`, then looks at `held`.
        if before.saturating_sub(bytes) < self.limit && self.paused.swap(false, Ordering::SeqCst) {
            self.executor.push(NetCommand::ResumeLink { key: self.key, id: self.id });
        }
    }

    fn unhandled(&self, msg: &BoxMsg, reason: UnhandledReason) {
        if let Some(returned) = Returned::of(msg, reason) {
            let returned = Box::new(returned);
            self.executor.push(NetCommand::ReturnUnhandled { key: self.key, id: self.id, returned });
        }
    }

    fn handled(&self, seq: u64) {
        self.executor.push(NetCommand::Handled { key: self.key, id: self.id, seq });
    }
}

/// One link, owned by its executor.
pub(crate) struct Link {
    /// Unique on this executor (slab keys are reused).
    id: u64,
    /// Where the link runs once its handshake is done, when that is
    /// another executor than this (the handshake executor's).
    home: Option<usize>,
    stream: Stream,
    /// `None` while a non-blocking connect is under way.
    session: Option<Session<BoxMsg>>,
    /// The connect and handshake must be done by then.
    deadline: Instant,
    role: Role,
    /// Accepted (counted against the caps), not dialed.
    accepted: bool,
    peer: Option<Arc<Peer>>,
    /// The address to redial when the link was dialed; `None` if accepted.
    dial: Option<Addr>,
    attempt: u32,
    waiter: Option<Waiter>,
    writable: bool,
    /// Not reading by choice (a cap), until it clears.
    paused: bool,
    /// Messages read and not yet delivered: the turn's budget ran out.
    backlog: bool,
    /// The peer's actors, by id, for the reply address of what they send.
    remote: HashMap<ActorId, Known>,
    replies: ReplyTargets,
    /// This node's watches of the peer's actors: (watched, its name, watcher).
    watches: Vec<(ActorId, String, ActorSender)>,
    inbound: Arc<Inbound>,
    /// `inbound` registered on this executor's thread, for the holds of
    /// messages handled here (see `on_msg`); made at the first of them.
    local: Option<LocalPool>,
    /// The last reply address made for a `src` the peer did not announce
    /// (an ask of its): the next message from it reuses it.
    last_src: Option<ActorSender>,
    /// Messages owed to a full window, oldest first.
    owed: OwedQueue<BoxMsg>,
    /// Messages read while owing too much, to deliver once it owes less.
    deferred: VecDeque<Deferred>,
}

impl Link {
    fn is_up(&self) -> bool {
        self.session.as_ref().is_some_and(Session::is_up)
    }

    fn carries(&self, peer: &Arc<Peer>) -> bool {
        self.is_up() && self.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, peer))
    }

    fn is_shm(&self) -> bool {
        matches!(self.stream, Stream::Shm(_))
    }
}

/// A listening socket and its backoff after the process ran out of
/// descriptors (or memory).
struct ListenerState {
    listener: Listener,
    backoff: Duration,
    retry_at: Option<Instant>,
}

/// The first pause of a listener that could not accept for lack of
/// descriptors or memory; it doubles on each failure, up to
/// [`ACCEPT_BACKOFF_MAX`] (as Go's `net/http` does).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Connections a listener accepts per executor turn at most: a flood of
/// connects cannot keep the executor from the handshakes under way (the
/// pending handshakes' cap cuts the oldest, so a real client's handshake
/// must get its turn before that many newer ones arrive), nor the links
/// up from their round trips: an accept (and the cut it may bring) costs
/// 10-20 µs of system calls, a round trip on a quiet link 7 µs. During a
/// flood of stalled handshakes (`cargo bench -p bench --bench floods`),
/// one accept per turn took other links' p99 from 140x that without the
/// flood to 17-22x.
const ACCEPTS_PER_TURN: usize = 1;

enum Io {
    Listener(ListenerState),
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

impl Caches {
    /// A local actor by id.
    fn local_actor<H: Host + ?Sized>(&mut self, shared: &H, id: ActorId) -> Option<ActorSender> {
        self.local_actor_ref(shared, id).cloned()
    }

    /// A local actor by id, as the cache holds it (no reference counted).
    fn local_actor_ref<H: Host + ?Sized>(&mut self, shared: &H, id: ActorId) -> Option<&ActorSender> {
        let version = shared.nodes().dir_version();
        if version != self.dir_version {
            self.actors.clear();
            self.dir_version = version;
        }
        match self.actors.entry(id) {
            Entry::Occupied(found) => Some(found.into_mut()),
            Entry::Vacant(slot) => Some(slot.insert(shared.nodes().local_actor(id)?)),
        }
    }

    fn decoder<H: Host + ?Sized>(&mut self, shared: &H, id: MsgId) -> Option<protocol::MsgInfo> {
        let version = shared.decoders().version();
        if version != self.dec_version {
            self.decoders = shared.decoders().snapshot();
            self.dec_version = version;
        }
        self.decoders.get(&id).copied()
    }
}

/// The sockets of one executor.
pub(crate) struct Net {
    index: usize,
    handle: Arc<dyn Mailbox<NetCommand>>,
    io: Slab<Io>,
    redials: Vec<Redial>,
    caches: Caches,
    /// Links with bytes to write.
    dirty: Vec<usize>,
    /// Links that may have more to read (their budget ran out, or they
    /// resumed), and listeners that may have more to accept: served on the
    /// next turn, as if readiness said so.
    ready: Vec<usize>,
    /// Links to take down once the current step is done with them.
    downs: Vec<(usize, CloseReason)>,
    /// Accepted links still in their handshake, oldest first: (key, id).
    pending: VecDeque<(usize, u64)>,
    /// Links whose session ended while writing: driven, then taken down.
    closing: Vec<usize>,
    /// Flushes so far: links' counters are published every
    /// [`PUBLISH_EVERY_FLUSHES`] of them, and before the executor sleeps.
    flushes: u32,
    /// Links up whose home is another executor: handed to it next.
    handoffs: Vec<(usize, connection::PeerHello)>,
    next_id: u64,
    /// Something changed that moves the next timer (a link, a redial).
    timers_changed: bool,
    /// Links over shared memory: their bytes come with no event, so the
    /// executor looks at them whenever it looks at its sockets.
    shm_links: usize,
    /// Their keys, gathered anew on each look (kept for its allocation).
    shm_keys: Vec<usize>,
}

/// With at most this many sockets, a spinning executor reads its links
/// directly instead of polling for their readiness.
const SPECULATIVE_LINKS: usize = 4;

/// Tokens: 0 is the executor's waker; io `k` is `k + 1`.
fn token(key: usize) -> Token {
    Token(key + 1)
}

impl Net {
    pub(crate) fn new(index: usize, handle: Arc<dyn Mailbox<NetCommand>>) -> Self {
        Self {
            index,
            handle,
            io: Slab::new(),
            redials: Vec::new(),
            caches: Caches::default(),
            dirty: Vec::new(),
            ready: Vec::new(),
            downs: Vec::new(),
            pending: VecDeque::new(),
            closing: Vec::new(),
            flushes: 0,
            handoffs: Vec::new(),
            next_id: 0,
            timers_changed: false,
            shm_links: 0,
            shm_keys: Vec::new(),
        }
    }

    /// Whether the next timer may have moved since [`timers`](Self::timers) ran.
    pub(crate) fn timers_changed(&self) -> bool {
        self.timers_changed
    }

    pub(crate) fn has_io(&self) -> bool {
        !self.io.is_empty() || !self.redials.is_empty()
    }

    /// Whether a link of this executor runs over shared memory.
    pub(crate) fn has_shm(&self) -> bool {
        self.shm_links > 0
    }

    /// Whether links wait to be read again without a readiness event.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Does what the executor was asked to with its sockets and links.
    pub(crate) fn execute<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry, cmd: NetCommand) {
        match cmd {
            NetCommand::AddListener(listener) => self.add_listener(registry, listener),
            NetCommand::AddStream { stream, origin } => self.add_stream(host, registry, stream, *origin),
            NetCommand::Dial { addr, waiter } => self.dial(host, registry, *addr, waiter, 0),
            NetCommand::CloseLink { peer, place, reason } => {
                self.close_link(host, registry, &peer, place.key, reason)
            }
            NetCommand::ResumeLink { key, id } => self.resume(key, id),
            NetCommand::ReturnUnhandled { key, id, returned } => self.return_unhandled(key, id, &returned),
            NetCommand::Handled { key, id, seq } => {
                // Acknowledged at the next flush, with what else is due.
                if let Some(session) = self.session_of(key, id) {
                    session.handled(seq);
                }
            }
            NetCommand::Adopt(handoff) => self.adopt(host, registry, handoff),
        }
    }

    /// Takes over a link whose handshake the handshake executor did.
    fn adopt<H: Host + ?Sized>(
        &mut self,
        shared: &H,
        registry: &Registry,
        Handoff { mut link, hello }: Handoff,
    ) {
        let entry = self.io.vacant_entry();
        let key = entry.key();
        if let Err(e) =
            registry.register(&mut link.stream, token(key), Interest::READABLE | Interest::WRITABLE)
        {
            warn!(error = %e, "cannot watch a link handed over");
            if link.accepted {
                shared.open_links().fetch_sub(1, Ordering::SeqCst);
            }
            shared.closes().add(&CloseReason::Io(e.to_string()).key());
            return;
        }
        self.next_id += 1;
        link.id = self.next_id;
        link.home = None;
        link.writable = true;
        link.inbound = Arc::new(Inbound {
            held: AtomicUsize::new(0),
            limit: link.inbound.limit,
            paused: AtomicBool::new(false),
            executor: self.handle.clone(),
            key,
            id: link.id,
        });
        link.local = None;
        on_up(shared, self.index, key, &mut link, hello);
        self.shm_links += usize::from(link.is_shm());
        entry.insert(Io::Link(link));
        self.timers_changed = true;
        // What the peer sent after its handshake is read (and its own events
        // handled) here, from now on.
        self.drive(shared, key);
        self.ready.push(key);
        self.dirty.push(key);
        self.apply_downs(shared, registry);
    }

    /// Does what a sender asked of one of this executor's links.
    pub(crate) fn execute_peer<H: Host + ?Sized>(&mut self, host: &H, cmd: PeerCommand) {
        match cmd {
            PeerCommand::Send { peer, frame, msg, reply_to, owed } => {
                self.link_send(host, &peer, &frame, msg, reply_to, owed)
            }
            PeerCommand::Control { peer, frame } => self.link_control(&peer, frame),
            PeerCommand::Watch { peer, target, target_name, watcher } => {
                self.link_watch(host, &peer, target, target_name, watcher)
            }
        }
    }

    fn add_listener(&mut self, registry: &Registry, mut listener: Listener) {
        let entry = self.io.vacant_entry();
        if let Err(e) = registry.register(&mut listener, token(entry.key()), Interest::READABLE) {
            warn!(error = %e, "cannot watch listener");
            return;
        }
        entry.insert(Io::Listener(ListenerState { listener, backoff: ACCEPT_BACKOFF_MIN, retry_at: None }));
    }

    /// Takes over a connected (or connecting) socket. An accepted one is
    /// refused at once past `max_links`; past `max_pending_handshakes` on
    /// this executor, the oldest pending handshake is cut to make room.
    fn add_stream<H: Host + ?Sized>(
        &mut self,
        shared: &H,
        registry: &Registry,
        mut stream: Stream,
        origin: Origin,
    ) {
        let accepted = origin.dial.is_none();
        if accepted {
            if shared.open_links().load(Ordering::SeqCst) >= shared.config().max_links {
                stream.shutdown();
                shared.closes().add(&CloseReason::Limit(LimitKind::Links).key());
                debug!(max = shared.config().max_links, "link refused: too many links");
                return;
            }
            while self.pending.len() >= shared.config().max_pending_handshakes.max(1) {
                let Some((key, id)) = self.pending.pop_front() else { break };
                if matches!(self.io.get(key), Some(Io::Link(l)) if l.id == id) {
                    debug!("oldest pending handshake cut: too many pending handshakes");
                    self.fail(shared, key, CloseReason::Limit(LimitKind::PendingHandshakes));
                    self.apply_downs(shared, registry);
                }
            }
        }
        let entry = self.io.vacant_entry();
        let key = entry.key();
        if let Err(e) = registry.register(&mut stream, token(key), Interest::READABLE | Interest::WRITABLE) {
            warn!(error = %e, "cannot watch socket");
            if let Some(w) = origin.waiter {
                let _ = w.send(Err(ManagerError::Io(e)));
            }
            return;
        }
        self.next_id += 1;
        let id = self.next_id;
        let inbound = Arc::new(Inbound {
            held: AtomicUsize::new(0),
            limit: shared.config().max_inbound_bytes.max(shared.config().max_frame),
            paused: AtomicBool::new(false),
            executor: self.handle.clone(),
            key,
            id,
        });
        let now = Instant::now();
        let mut link = Link {
            id,
            home: origin.home,
            stream,
            session: None,
            deadline: now + shared.config().handshake_timeout,
            role: origin.role,
            accepted,
            peer: None,
            dial: origin.dial,
            attempt: origin.attempt,
            waiter: origin.waiter,
            writable: false,
            paused: false,
            backlog: false,
            last_src: None,
            owed: OwedQueue::default(),
            deferred: VecDeque::new(),
            remote: HashMap::default(),
            replies: ReplyTargets::default(),
            watches: Vec::new(),
            inbound,
            local: None,
        };
        // An accepted socket is connected already: start at once.
        if accepted {
            shared.open_links().fetch_add(1, Ordering::SeqCst);
            self.pending.push_back((key, id));
            start_session(shared, &mut link, now);
            self.dirty.push(key);
        }
        self.shm_links += usize::from(link.is_shm());
        entry.insert(Io::Link(Box::new(link)));
        self.timers_changed = true;
        if accepted {
            self.apply_downs(shared, registry);
        }
    }

    /// Starts a non-blocking connect to `addr`.
    fn dial<H: Host + ?Sized>(
        &mut self,
        shared: &H,
        registry: &Registry,
        addr: Addr,
        waiter: Option<Waiter>,
        attempt: u32,
    ) {
        let stream = match &addr {
            Addr::Tcp(sa) => mio::net::TcpStream::connect(*sa).map(Stream::Tcp),
            Addr::Unix(path) => mio::net::UnixStream::connect(path).map(Stream::Unix),
            Addr::Shm(name) => ShmStream::connect(name).map(|s| Stream::Shm(Box::new(s))),
            // The manager hands these to its NATS bridge, never here.
            Addr::Nats(_) => {
                Err(io::Error::new(io::ErrorKind::Unsupported, "a NATS server is not dialed as a link"))
            }
        };
        match stream {
            Ok(stream) => self.add_stream(shared, registry, stream, Origin::dialed(addr, waiter, attempt)),
            Err(e) => self.dial_failed(shared, addr, waiter, attempt, &CloseReason::Io(e.to_string())),
        }
    }

    fn dial_failed<H: Host + ?Sized>(
        &mut self,
        shared: &H,
        addr: Addr,
        waiter: Option<Waiter>,
        attempt: u32,
        why: &CloseReason,
    ) {
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

    fn schedule_redial<H: Host + ?Sized>(&mut self, shared: &H, addr: Addr, attempt: u32) {
        let (first, longest) = shared.config().reconnect_backoff;
        let pause = first.saturating_mul(1 << attempt.min(16)).min(longest);
        let jitter = 0.75 + f64::from(getrandom::u32().unwrap_or(0) % 1000) / 2000.0;
        self.redials.push(Redial { at: Instant::now() + pause.mul_f64(jitter), addr, attempt });
        self.timers_changed = true;
    }

    /// Handles readiness of socket `token`.
    pub(crate) fn on_event<H: Host + ?Sized>(&mut self, shared: &H, registry: &Registry, event: &Readiness) {
        let Some(key) = event.token().0.checked_sub(1) else { return };
        match self.io.get_mut(key) {
            Some(Io::Listener(_)) => self.accept(shared, registry, key),
            Some(Io::Link(link)) => {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                let mut writable = event.is_writable() || event.is_error() || event.is_write_closed();
                let shm = matches!(link.stream, Stream::Shm(_));
                if let Stream::Shm(s) = &mut link.stream {
                    if readable {
                        s.note_readable();
                    }
                    // The socket's bytes (READY, a bell) may let it write:
                    // after they are read.
                    writable |= readable && !link.writable;
                }
                if writable && !shm {
                    self.on_writable(shared, key);
                }
                if readable {
                    // With the end of the stream already there, a short read
                    // is no sign that the socket is empty: read on to it
                    // (as a shared-memory link always does).
                    self.read_link(shared, key, shm || event.is_read_closed() || event.is_error());
                }
                if writable && shm {
                    self.on_writable(shared, key);
                }
            }
            None => {}
        }
        self.apply_downs(shared, registry);
    }

    /// Accepts until the listener has nothing more, at most
    /// [`ACCEPTS_PER_TURN`] a turn (then it is accepted from again next
    /// turn, after the handshakes already under way have read their
    /// bytes). Out of descriptors or memory, it backs off on a timer and
    /// tries again (the listener is edge-triggered: without the timer it
    /// would never be polled again).
    fn accept<H: Host + ?Sized>(&mut self, shared: &H, registry: &Registry, key: usize) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(Io::Listener(state)) = self.io.get_mut(key) else { return };
            if state.retry_at.is_some() {
                return;
            }
            let accepted = match &state.listener {
                Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
                Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
                Listener::Shm(l, _) => l.accept().map(|(s, _)| Stream::Shm(Box::new(ShmStream::accepted(s)))),
            };
            let stream = match accepted {
                Ok(stream) => {
                    state.backoff = ACCEPT_BACKOFF_MIN;
                    stream
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_resource_shortage(&e) => {
                    let pause = state.backoff;
                    state.retry_at = Some(Instant::now() + pause);
                    state.backoff = (pause * 2).min(ACCEPT_BACKOFF_MAX);
                    self.timers_changed = true;
                    shared.closes().add("accept_backoff");
                    warn!(error = %e, pause_ms = pause.as_millis() as u64, "cannot accept; trying again later");
                    return;
                }
                Err(e) => {
                    // The connection went away before it was taken (ECONNABORTED
                    // and the like): the listener is fine.
                    debug!(error = %e, "accept failed");
                    continue;
                }
            };
            let unix = match &stream {
                Stream::Unix(s) => Some(s),
                Stream::Shm(s) => Some(s.socket()),
                Stream::Tcp(_) => None,
            };
            if let Some(s) = unix
                && let Err(why) = check_unix_peer(s, shared)
            {
                warn!(reason = %why, "unix peer refused");
                shared.closes().add("unix_peer_refused");
                continue;
            }
            let executor = shared.next_link_executor();
            if executor == self.index {
                self.add_stream(shared, registry, stream, Origin::accepted());
            } else if shared.config().handshake_executor == Some(self.index)
                && !matches!(stream, Stream::Shm(_))
            {
                // The handshake here, the link there once it is up. (A
                // shared-memory link's ports stay on the thread that makes
                // them: it does its handshake on its own executor.)
                self.add_stream(shared, registry, stream, Origin::accepted_for(executor));
            } else {
                shared.push_to(
                    executor,
                    NetCommand::AddStream { stream, origin: Box::new(Origin::accepted()) },
                );
            }
        }
        // More may wait: next turn.
        self.ready.push(key);
    }

    fn on_writable<H: Host + ?Sized>(&mut self, shared: &H, key: usize) {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        link.writable = true;
        if link.session.is_none() {
            match link.stream.take_error() {
                Ok(Some(e)) | Err(e) => return self.fail(shared, key, CloseReason::Io(e.to_string())),
                Ok(None) => {}
            }
            match link.stream.is_connected() {
                Ok(true) => start_session(shared, link, Instant::now()),
                Ok(false) => return,
                Err(e) => return self.fail(shared, key, CloseReason::Io(e.to_string())),
            }
        }
        self.write(key);
    }

    /// Reads the links of this executor without waiting for readiness
    /// (while spinning, a read that finds bytes saves the poll); whether
    /// any had bytes. Only worth it with few links.
    pub(crate) fn read_links<H: Host + ?Sized>(&mut self, shared: &H, registry: &Registry) -> Option<bool> {
        if self.io.len() > SPECULATIVE_LINKS {
            return None;
        }
        let mut keys = [None; SPECULATIVE_LINKS];
        for (slot, (key, io)) in keys.iter_mut().zip(self.io.iter()) {
            // Links over shared memory: `poll_shm` looks at them.
            if matches!(io, Io::Link(link) if link.is_up() && !link.paused && !link.is_shm()) {
                *slot = Some(key);
            }
        }
        let mut any = false;
        for key in keys.into_iter().flatten() {
            any |= self.read_link(shared, key, false);
        }
        self.apply_downs(shared, registry);
        Some(any)
    }

    /// Looks at the links over shared memory, whose bytes and credits come
    /// with no event: reads those with bytes, writes those with credits
    /// again; whether any had something.
    pub(crate) fn poll_shm<H: Host + ?Sized>(&mut self, shared: &H, registry: &Registry) -> bool {
        if self.shm_links == 0 {
            return false;
        }
        let mut keys = std::mem::take(&mut self.shm_keys);
        keys.clear();
        keys.extend(
            self.io.iter().filter_map(|(k, io)| matches!(io, Io::Link(l) if l.is_shm()).then_some(k)),
        );
        let mut any = false;
        for &key in &keys {
            let Some(Io::Link(link)) = self.io.get_mut(key) else { continue };
            let Stream::Shm(s) = &mut link.stream else { continue };
            let (readable, writable) = match (s.readable(), s.writable()) {
                (Ok(r), Ok(w)) => (r, w),
                (Err(e), _) | (_, Err(e)) => {
                    self.fail(shared, key, CloseReason::Io(e.to_string()));
                    continue;
                }
            };
            if writable {
                any = true;
                self.on_writable(shared, key);
            }
            if readable && !link_paused(&self.io, key) {
                // To the end: a short read is no sign that nothing follows.
                any |= self.read_link(shared, key, true);
            }
        }
        self.shm_keys = keys;
        self.apply_downs(shared, registry);
        any
    }

    /// Before the executor sleeps: each link over shared memory says so to
    /// its peer (which then rings its socket when it publishes); whether
    /// one has work after all, and the executor must not sleep.
    pub(crate) fn prepare_sleep<H: Host + ?Sized>(&mut self, shared: &H) -> bool {
        if self.shm_links == 0 {
            return false;
        }
        let mut work = false;
        let mut failed = Vec::new();
        for (key, io) in self.io.iter_mut() {
            let Io::Link(link) = io else { continue };
            let Stream::Shm(s) = &mut link.stream else { continue };
            match s.prepare_sleep() {
                // A paused link reads nothing until it resumes (which wakes
                // the executor): what waits for it is no work now.
                Ok((readable, writable)) => work |= (readable && !link.paused) || writable,
                Err(e) => failed.push((key, e)),
            }
        }
        for (key, e) in failed {
            self.fail(shared, key, CloseReason::Io(e.to_string()));
            work = true;
        }
        work
    }

    /// Reads again the links whose budget ran out or that resumed.
    pub(crate) fn read_ready<H: Host + ?Sized>(&mut self, shared: &H, registry: &Registry) {
        let mut ready = std::mem::take(&mut self.ready);
        ready.sort_unstable();
        ready.dedup();
        for key in ready {
            match self.io.get(key) {
                Some(Io::Listener(_)) => self.accept(shared, registry, key),
                // No event says what is there: read until the socket says.
                Some(Io::Link(_)) => {
                    self.read_link(shared, key, true);
                }
                None => {}
            }
        }
        self.apply_downs(shared, registry);
    }

    /// Reads a paused link again if nothing keeps it paused any more (its
    /// output drained, or its control budget refilled).
    fn resume_if_clear(&mut self, key: usize) {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        let clear = link.session.as_ref().is_some_and(|s| s.wants_read());
        if link.paused && clear && link.inbound.held() < link.inbound.limit {
            link.paused = false;
            link.inbound.paused.store(false, Ordering::SeqCst);
            self.ready.push(key);
        }
    }

    /// The session of link `id` at `key`, if it is still there (slab keys
    /// are reused).
    fn session_of(&mut self, key: usize, id: u64) -> Option<&mut Session<BoxMsg>> {
        match self.io.get_mut(key) {
            Some(Io::Link(link)) if link.id == id => link.session.as_mut(),
            _ => None,
        }
    }

    /// Returns a message to the peer of link `id` at `key`, if it is still
    /// there (a link that went down took its peer's view of it along).
    fn return_unhandled(&mut self, key: usize, id: u64, returned: &Returned) {
        if let Some(session) = self.session_of(key, id) {
            returned.send(session);
            self.dirty.push(key);
        }
    }

    /// A paused link's inbound messages drained: read it again.
    fn resume(&mut self, key: usize, id: u64) {
        if let Some(Io::Link(link)) = self.io.get_mut(key)
            && link.id == id
            && link.paused
        {
            link.paused = false;
            self.ready.push(key);
        }
    }

    /// Reads what `key` has, up to the read budget, handling it as it
    /// comes; whether there was anything. A link over its caps is paused
    /// instead (resumed when its output drains or its inbound messages
    /// are handled); one whose budget ran out is read again next turn. A
    /// short read ends the turn (new bytes raise a new event), unless
    /// `to_the_end`: the stream has ended, and the end must be read.
    fn read_link<H: Host + ?Sized>(&mut self, shared: &H, key: usize, to_the_end: bool) -> bool {
        let mut budget = shared.config().read_budget.max(1);
        let mut any = false;
        loop {
            if self.handle.backlog() >= OWN_QUEUE_READ_LIMIT {
                // What was read already waits for this thread's handlers:
                // read on once they have run.
                self.ready.push(key);
                return any;
            }
            let deliverable = |l: &Link| !l.deferred.is_empty() && l.owed.len() < owed_bound(l);
            if matches!(self.io.get(key), Some(Io::Link(link)) if link.backlog || deliverable(link)) {
                // Messages read last turn (or deferred) wait first.
                self.drive_some(shared, key, MSGS_PER_TURN);
                if matches!(self.io.get(key), Some(Io::Link(link)) if link.backlog) {
                    self.ready.push(key);
                    return any;
                }
            }
            let Some(Io::Link(link)) = self.io.get_mut(key) else { return any };
            let Some(session) = link.session.as_mut() else { return any };
            session.set_inbound_held(link.inbound.held());
            if !session.wants_read() {
                if !session.is_closed() {
                    self.pause(key);
                }
                return any;
            }
            let buf = session.input_buf();
            let want = buf.len().min(budget);
            match link.stream.read(&mut buf[..want]) {
                Ok(0) => {
                    session.input_filled(Instant::now(), 0);
                    self.drive(shared, key);
                    return true;
                }
                Ok(n) => {
                    session.input_filled(Instant::now(), n);
                    any = true;
                    budget -= n;
                    let acked = session.ack_sent();
                    self.drive_some(shared, key, MSGS_PER_TURN);
                    let mut backlog = false;
                    if let Some(Io::Link(link)) = self.io.get(key) {
                        backlog = link.backlog;
                        // An early acknowledgement goes out at once, so a
                        // sender streaming into a full window hears of room
                        // while this side still works.
                        if link.session.as_ref().is_some_and(|s| s.ack_sent() > acked && s.is_up()) {
                            self.write(key);
                        }
                    }
                    if budget == 0 || backlog {
                        self.ready.push(key);
                        return any;
                    }
                    // A short read emptied the socket: new bytes raise a new event.
                    if n < want && !to_the_end {
                        return any;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return any,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(shared, key, CloseReason::Io(e.to_string()));
                    return true;
                }
            }
        }
    }

    /// Stops reading `key` until its caps clear.
    fn pause(&mut self, key: usize) {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        if link.paused {
            return;
        }
        link.paused = true;
        let inbound = &link.inbound;
        inbound.paused.store(true, Ordering::SeqCst);
        // Pairs with `Inbound::release`: it lowers `held`, then looks at `paused`.
        // A throttled link is resumed by its timer (`timers`), the others
        // by what drains their caps.
        let over_output = link
            .session
            .as_ref()
            .is_some_and(|s| s.pending_output() >= s.config().max_write_buffer || s.is_throttled());
        if inbound.held() < inbound.limit && !over_output && inbound.paused.swap(false, Ordering::SeqCst) {
            link.paused = false;
            self.ready.push(key);
        }
    }

    /// Ends `key` for `reason` (a CLOSE frame is queued where one is sent).
    fn fail<H: Host + ?Sized>(&mut self, shared: &H, key: usize, reason: CloseReason) {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        match link.session.as_mut() {
            Some(session) => {
                session.close(reason);
                self.drive(shared, key);
            }
            None => self.downs.push((key, reason)),
        }
    }

    /// Handles every event `key`'s session has.
    fn drive<H: Host + ?Sized>(&mut self, shared: &H, key: usize) {
        self.drive_some(shared, key, usize::MAX);
    }

    /// Handles `key`'s session's events, delivering at most `budget`
    /// messages; more waiting is its backlog, for the next turn.
    fn drive_some<H: Host + ?Sized>(&mut self, shared: &H, key: usize, budget: usize) {
        let Self { index, io, caches, dirty, downs, pending, timers_changed, ready, handoffs, .. } = self;
        let Some(Io::Link(link)) = io.get_mut(key) else { return };
        let link = &mut **link;
        let mut wrote = false;
        let mut acked = 0;
        let mut delivered = 0;
        link.backlog = false;
        loop {
            if delivered >= budget {
                link.backlog = true;
                break;
            }
            let Some(event) = link.session.as_mut().and_then(Session::poll_event) else { break };
            match event {
                Event::Msg { header, body } => {
                    delivered += 1;
                    if acked > 0 {
                        // What came acknowledged before this message goes
                        // back to the window first: a reply its asker sees
                        // finds the room its request took free again.
                        if let Some(peer) = &link.peer {
                            peer.window.release(acked);
                        }
                        acked = 0;
                    }
                    let mut parts = LinkParts {
                        peer: &link.peer,
                        remote: &link.remote,
                        replies: &link.replies,
                        inbound: &link.inbound,
                        local: &mut link.local,
                        watches: &mut link.watches,
                        last_src: &mut link.last_src,
                        defer: (!link.deferred.is_empty() || link.owed.len() >= owed_bound_of(&link.peer))
                            .then_some(&mut link.deferred),
                    };
                    let outcome = on_msg(shared, caches, &mut parts, &header, body);
                    match outcome {
                        Ok(Delivered::Acked) => {}
                        Ok(Delivered::AckWhenHandled) => {
                            if let Some(session) = link.session.as_mut() {
                                session.ack_when_handled(header.seq);
                            }
                        }
                        Err((reason, detail)) => {
                            debug!(msg = %header.msg_id, dst = %header.dst, %reason, "refusing a message");
                            if let Some(session) = link.session.as_mut() {
                                session.refuse(&header, reason, &detail);
                            }
                            wrote = true;
                        }
                    }
                }
                // Given back to the window once per batch: the window is
                // shared with the senders' threads.
                Event::Acked(msgs) => acked += msgs.len(),
                Event::Nacked { msg, dst, reason, detail } => {
                    if let Some(peer) = &link.peer {
                        peer.window.release(1);
                    }
                    debug!(msg = msg.name(), ?reason, %detail, "message refused by the peer");
                    let asker = link.replies.map.get(&msg.header().src_id()).cloned();
                    shared.dead_letters().report_msg(msg, dst, DeadLetterReason::Nacked(reason));
                    // An ask waiting for the answer fails now, not at its timeout.
                    if let Some(asker) = asker {
                        asker.route().refused(reason);
                    }
                }
                Event::Unhandled { header, reason, body } => {
                    on_unhandled(shared, caches, link, &header, reason, body);
                }
                Event::Up(hello) => {
                    pending.retain(|(_, id)| *id != link.id);
                    *timers_changed = true;
                    if link.home.is_some_and(|home| home != *index) {
                        // Its link executor takes it from here (`apply_downs`).
                        handoffs.push((key, hello));
                        return;
                    }
                    on_up(shared, *index, key, link, hello);
                    wrote = true;
                }
                Event::Directory(update) => on_directory(shared, link, update),
                Event::Watch { target, watcher } => {
                    let Some(watcher_route) = link.route_for(watcher) else { continue };
                    let watched = caches.local_actor(shared, target).map(|t| t.watch(&watcher_route));
                    if !matches!(watched, Some(Ok(()))) {
                        // Unknown here: it has ended (or never was).
                        if let Some(session) = link.session.as_mut() {
                            session.forget_watch(target, watcher);
                        }
                        let ended = Terminated::new(target, String::new(), TerminationReason::Stopped);
                        if let Err(e) = watcher_route.try_send(ended) {
                            shared.dead_letters().report_send_error(e);
                        }
                    }
                }
                Event::Closed(reason) => {
                    downs.push((key, reason));
                    wrote = true;
                }
            }
        }
        if let (Some(peer), true) = (&link.peer, acked > 0) {
            peer.window.release(acked);
        }
        if !link.owed.is_empty() && pay_owed(link) {
            wrote = true;
        }
        if !link.deferred.is_empty() && deliver_deferred(shared, link, MSGS_PER_TURN) {
            // More to deliver (or a full mailbox to try again): next turn.
            ready.push(key);
        }
        if wrote || link.session.as_ref().is_some_and(|s| s.pending_output() > 0) {
            dirty.push(key);
        }
    }

    /// A message for the peer, encoded by the sender, counted in its window.
    fn link_send<H: Host + ?Sized>(
        &mut self,
        shared: &H,
        peer: &Arc<Peer>,
        frame: &[u8],
        msg: BoxMsg,
        reply_to: Option<ActorSender>,
        owed: bool,
    ) {
        let key = peer.place().key;
        let link = match self.io.get_mut(key) {
            Some(Io::Link(link)) if link.carries(peer) => link,
            _ => {
                peer.give_back(owed);
                let dst = msg.header().dst_id();
                let why = if owed { DeadLetterReason::NotSent } else { DeadLetterReason::Unacknowledged };
                return shared.dead_letters().report_msg(msg, dst, why);
            }
        };
        if let Some(r) = reply_to {
            // A reply to an address that is not this node's actor (an ask,
            // an inbox, another manager's actor) comes back to it here.
            if r.node_id() != shared.node_id() {
                link.replies.insert(r);
            }
        }
        if owed || !link.owed.is_empty() {
            // Behind what is owed already, in order: a message that has its
            // window place waits too.
            link.owed.push(frame, msg, !owed);
            // The window may have room already (its acknowledgements came
            // before this): nothing else would send it then.
            if pay_owed(link) {
                self.dirty.push(key);
            }
            return;
        }
        let Some(session) = link.session.as_mut() else { return };
        send_on(session, frame, msg);
        self.dirty.push(key);
    }

    /// Moves what handlers of this executor wrote to the outbox to their links.
    pub(crate) fn drain_outbox<H: Host + ?Sized>(&mut self, shared: &H) {
        if outbox::is_empty() {
            return;
        }
        let mut out = outbox::take();
        for item in out.items.drain(..) {
            let frame = &out.bytes[item.start..item.end];
            self.link_send(shared, &item.peer, frame, item.msg, item.reply_to, item.owed);
        }
        outbox::give_back(out);
    }

    /// A control frame for the peer (directory changes).
    fn link_control(&mut self, peer: &Arc<Peer>, frame: Vec<u8>) {
        let key = peer.place().key;
        if let Some(Io::Link(link)) = self.io.get_mut(key)
            && link.carries(peer)
        {
            if let Some(session) = link.session.as_mut() {
                session.send_encoded_control(&frame);
            }
            self.dirty.push(key);
        }
    }

    /// `watcher` (local) watches `target` on the peer (once per pair).
    fn link_watch<H: Host + ?Sized>(
        &mut self,
        shared: &H,
        peer: &Arc<Peer>,
        target: ActorId,
        name: String,
        watcher: ActorSender,
    ) {
        let key = peer.place().key;
        match self.io.get_mut(key) {
            Some(Io::Link(link)) if link.carries(peer) => {
                if link.watches.iter().any(|(t, _, w)| *t == target && w.id() == watcher.id()) {
                    return;
                }
                if let Some(session) = link.session.as_mut() {
                    session.watch(target, watcher.id());
                }
                if watcher.node_id() != shared.node_id() {
                    link.replies.insert(watcher.clone());
                }
                link.watches.push((target, name, watcher));
                self.dirty.push(key);
            }
            _ => {
                if let Err(e) = watcher.try_send(Terminated::new(target, name, TerminationReason::LinkDown)) {
                    shared.dead_letters().report_send_error(e);
                }
            }
        }
    }

    /// Closes the link at `key` if it still carries `peer`: another link
    /// to the same node replaced it.
    fn close_link<H: Host + ?Sized>(
        &mut self,
        shared: &H,
        registry: &Registry,
        peer: &Arc<Peer>,
        key: usize,
        why: LinkReplaced,
    ) {
        if let Some(Io::Link(link)) = self.io.get(key)
            && link.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, peer))
        {
            let reason = match why {
                LinkReplaced::Duplicate => CloseReason::Duplicate,
                LinkReplaced::Newer => CloseReason::Replaced,
            };
            self.fail(shared, key, reason);
        }
        self.apply_downs(shared, registry);
    }

    /// Writes what is pending on `key`, as far as the socket takes it. A
    /// link paused for its output reads again once the output is under
    /// its cap.
    fn write(&mut self, key: usize) {
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        let Some(session) = link.session.as_mut() else { return };
        while link.writable && session.pending_output() > 0 {
            match link.stream.write(session.transmit()) {
                Ok(0) => {
                    session.close(CloseReason::PeerClosed);
                    break;
                }
                Ok(n) => session.transmitted(Instant::now(), n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    link.writable = false;
                    session.write_blocked(Instant::now());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    session.close(CloseReason::Io(e.to_string()));
                    break;
                }
            }
        }
        let resumes = link.paused && session.wants_read() && link.inbound.held() < link.inbound.limit;
        if resumes {
            self.resume_if_clear(key);
        }
        let Some(Io::Link(link)) = self.io.get_mut(key) else { return };
        let Some(session) = link.session.as_mut() else { return };
        if session.is_closed() && !session.is_finished() {
            // A write failure: its event takes the link down.
            self.closing.push(key);
        }
    }

    /// Adds what every link counted to its peer's counters (see
    /// [`PUBLISH_EVERY_FLUSHES`]).
    pub(crate) fn publish_counters(&mut self) {
        for (_, io) in self.io.iter_mut() {
            if let Io::Link(link) = io {
                publish_counters(link);
            }
        }
    }

    /// Acknowledges what was read and writes every link with bytes pending.
    pub(crate) fn flush<H: Host + ?Sized>(&mut self, shared: &H, registry: &Registry) {
        let mut dirty = std::mem::take(&mut self.dirty);
        self.flushes = self.flushes.wrapping_add(1);
        let publish = self.flushes.is_multiple_of(PUBLISH_EVERY_FLUSHES);
        for (key, io) in self.io.iter_mut() {
            if let Io::Link(link) = io {
                if let Some(session) = link.session.as_mut() {
                    session.set_inbound_held(link.inbound.held());
                    if session.flush_acks() {
                        dirty.push(key);
                    }
                }
                if publish {
                    publish_counters(link);
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

    /// Heartbeats, timeouts, listener retries and redials due by `now`;
    /// the next deadline.
    pub(crate) fn timers<H: Host + ?Sized>(
        &mut self,
        shared: &H,
        registry: &Registry,
        now: Instant,
    ) -> Option<Instant> {
        self.timers_changed = false;
        let mut due = Vec::new();
        let mut retries = Vec::new();
        for (key, io) in self.io.iter_mut() {
            match io {
                Io::Link(link) => match link.session.as_mut() {
                    Some(session) if session.poll_timeout().is_some_and(|t| t <= now) => {
                        session.set_inbound_held(link.inbound.held());
                        session.handle_timeout(now);
                        due.push(key);
                    }
                    Some(_) => {}
                    None if now >= link.deadline => self.downs.push((key, CloseReason::HandshakeTimeout)),
                    None => {}
                },
                Io::Listener(state) => {
                    if state.retry_at.is_some_and(|t| t <= now) {
                        state.retry_at = None;
                        retries.push(key);
                    }
                }
            }
        }
        for key in due {
            self.drive(shared, key);
            self.resume_if_clear(key);
        }
        for key in retries {
            self.accept(shared, registry, key);
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
        self.next_deadline()
    }

    /// The soonest of every link's, listener's and redial's next deadline.
    fn next_deadline(&self) -> Option<Instant> {
        let io = self.io.iter().filter_map(|(_, io)| match io {
            Io::Link(link) => match &link.session {
                Some(session) => session.poll_timeout(),
                None => Some(link.deadline),
            },
            Io::Listener(state) => state.retry_at,
        });
        io.chain(self.redials.iter().map(|r| r.at)).min()
    }

    /// Takes down the links marked so.
    fn apply_downs<H: Host + ?Sized>(&mut self, shared: &H, registry: &Registry) {
        for (key, hello) in std::mem::take(&mut self.handoffs) {
            // What the handshake left to write goes out from here if it can;
            // the rest, with the session, from the link's executor.
            self.write(key);
            if let Some(Io::Link(mut link)) = self.io.try_remove(key) {
                self.shm_links -= usize::from(link.is_shm());
                let _ = registry.deregister(&mut link.stream);
                let home = link.home.unwrap_or(self.index);
                shared.push_to(home, NetCommand::Adopt(Handoff { link, hello }));
            }
        }
        for key in std::mem::take(&mut self.closing) {
            self.drive(shared, key);
        }
        while let Some((key, why)) = self.downs.pop() {
            if let Some(Io::Link(_)) = self.io.get(key) {
                // What is pending (a CLOSE frame, a NACK) goes out first.
                self.write(key);
                if let Io::Link(link) = self.io.remove(key) {
                    self.shm_links -= usize::from(link.is_shm());
                    self.down(shared, registry, key, *link, why);
                }
            }
        }
    }

    /// Reports what a link that went down leaves behind, and redials it.
    fn down<H: Host + ?Sized>(
        &mut self,
        shared: &H,
        registry: &Registry,
        key: usize,
        mut link: Link,
        why: CloseReason,
    ) {
        shared.closes().add(&why.key());
        if link.accepted {
            shared.open_links().fetch_sub(1, Ordering::SeqCst);
            self.pending.retain(|(_, id)| *id != link.id);
        }
        if let (Some(peer), CloseReason::HeartbeatTimeout) = (&link.peer, &why) {
            bump(&peer.counters.heartbeats_missed, 1);
        }
        let _ = registry.deregister(&mut link.stream);
        let place = Place { executor: self.index, key };
        let was_up = link.peer.is_some();
        if was_up {
            // The peer hears the end at once, whoever else holds the socket.
            link.stream.shutdown();
        }
        if let Some(session) = link.session.as_mut() {
            // What the session returned before it ended.
            while let Some(event) = session.poll_event() {
                match event {
                    Event::Acked(msgs) => {
                        if let Some(peer) = &link.peer {
                            peer.window.release(msgs.len());
                        }
                    }
                    Event::Nacked { msg, dst, reason, .. } => {
                        if let Some(peer) = &link.peer {
                            peer.window.release(1);
                        }
                        shared.dead_letters().report_msg(msg, dst, DeadLetterReason::Nacked(reason));
                    }
                    _ => {}
                }
            }
            // The peer's watches of our actors end with the link.
            for (target, watcher) in session.peer_watches().iter().copied().collect::<Vec<_>>() {
                if let Some(t) = self.caches.local_actor(shared, target) {
                    t.route().unwatch(watcher);
                }
            }
            let mut n = 0;
            for msg in session.take_unacked() {
                n += 1;
                let dst = msg.header().dst_id();
                shared.dead_letters().report_msg(msg, dst, DeadLetterReason::Unacknowledged);
            }
            if let Some(peer) = &link.peer {
                peer.window.release(n);
            }
        }
        // What it still owed was never sent.
        for o in link.owed.drain() {
            if let Some(peer) = &link.peer {
                peer.give_back(!o.placed);
            }
            let dst = o.msg.header().dst_id();
            shared.dead_letters().report_msg(o.msg, dst, DeadLetterReason::NotSent);
        }
        publish_counters(&mut link);
        if let Some(peer) = &link.peer {
            // A duplicate that lost leaves the peer to the other link.
            for gone in shared.nodes().link_lost(peer, place).unwrap_or_default() {
                gone.mark_removed();
            }
        }
        let reason =
            if why.is_peer_shutdown() { TerminationReason::Shutdown } else { TerminationReason::LinkDown };
        // The node is still linked through another link (this was a duplicate).
        let still_linked = link.peer.as_ref().is_some_and(|p| p.is_up() && p.place() != place);
        match link.peer.as_ref().filter(|_| still_linked) {
            // Watches move to the other link.
            Some(peer) => {
                for (target, target_name, watcher) in link.watches.drain(..) {
                    peer.executor().push(PeerCommand::Watch {
                        peer: peer.clone(),
                        target,
                        target_name,
                        watcher,
                    });
                }
            }
            None => {
                for (target, name, watcher) in link.watches.drain(..) {
                    if let Err(e) = watcher.try_send(Terminated::new(target, name, reason)) {
                        shared.dead_letters().report_send_error(e);
                    }
                }
            }
        }
        let peer = link.peer.as_ref().map(|p| p.node_id);
        match &why {
            CloseReason::Protocol(_) | CloseReason::Truncated(_) => {
                warn!(?peer, reason = %why, "link closed")
            }
            _ if was_up => info!(?peer, reason = %why, "link down"),
            _ => debug!(reason = %why, "link failed before it was up"),
        }
        if let Some(w) = link.waiter.take() {
            // Our link lost to the node's own dial: the kept one answers.
            if let (Some(peer), true) = (&link.peer, why.is_duplicate()) {
                return shared.nodes().await_directory(peer, w);
            }
            let addr = link.dial.as_ref().map(ToString::to_string).unwrap_or_default();
            let _ = w.send(Err(ManagerError::Connect { addr, reason: why.to_string() }));
            return; // the caller of connect decides what to do next
        }
        // A link that lost to another one to the same node is not redialed:
        // the kept link's dialer redials that one if it goes down.
        if let Some(addr) = link.dial.take() {
            let redials =
                !matches!(why, CloseReason::Duplicate | CloseReason::Shutdown | CloseReason::Replaced);
            if redials && !(why.is_duplicate() && still_linked) && !shared.is_stopping() {
                let attempt = if was_up { 0 } else { link.attempt + 1 };
                self.schedule_redial(shared, addr, attempt);
            }
        }
    }

    /// Closes every link in order (CLOSE, flush, up to `grace`), then the
    /// listeners. What is unacknowledged is reported.
    pub(crate) fn close_all<H: Host + ?Sized>(&mut self, shared: &H, registry: &Registry, grace: Duration) {
        self.redials.clear();
        let keys: Vec<usize> = self.io.iter().map(|(k, _)| k).collect();
        for &key in &keys {
            if let Some(Io::Link(link)) = self.io.get_mut(key) {
                if let Some(session) = link.session.as_mut() {
                    session.close(CloseReason::Shutdown);
                }
                link.writable = true;
            }
        }
        let deadline = Instant::now() + grace;
        loop {
            for &key in &keys {
                self.write(key);
            }
            let pending = keys.iter().any(|k| {
                matches!(self.io.get(*k), Some(Io::Link(l)) if l.session.as_ref().is_some_and(|s| s.pending_output() > 0))
            });
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
        for &key in &keys {
            if let Some(Io::Link(link)) = self.io.get_mut(key) {
                // Read what the peer sent meanwhile: closing a socket with
                // unread input resets it, and the peer might then lose our
                // CLOSE frame. End our side first.
                let mut sink = [0u8; 4096];
                if let Stream::Shm(s) = &mut link.stream {
                    s.note_readable(); // its socket's bells too
                }
                while matches!(link.stream.read(&mut sink), Ok(n) if n > 0) {}
                link.stream.shutdown_write();
                if link.session.is_some() {
                    self.drive(shared, key);
                } else {
                    self.downs.push((key, CloseReason::Shutdown));
                }
            }
        }
        self.apply_downs(shared, registry);
        for (_, io) in self.io.iter_mut() {
            if let Io::Listener(state) = io {
                let _ = registry.deregister(&mut state.listener);
            }
        }
        self.io.clear();
    }
}

/// Sends a message on a session (a `Terminated` ends the peer's watch).
fn send_on(session: &mut Session<BoxMsg>, frame: &[u8], msg: BoxMsg) {
    if msg.msg_id() == Terminated::msg_id() {
        // The peer's watch of one of ours has ended.
        if let Some(end) = msg.downcast_ref::<Terminated>() {
            session.forget_watch(end.actor, msg.header().dst_id());
        }
    }
    session.send_msg(frame, msg);
}

/// Owed messages past which a link delivers nothing more of what its peer
/// sends (it defers it): a window's worth.
fn owed_bound(link: &Link) -> usize {
    owed_bound_of(&link.peer)
}

fn owed_bound_of(peer: &Option<Arc<Peer>>) -> usize {
    peer.as_ref().map_or(usize::MAX, |p| p.window.capacity())
}

/// Sends what the link owes while the window has room; whether it sent any.
fn pay_owed(link: &mut Link) -> bool {
    let (Some(peer), Some(session)) = (&link.peer, link.session.as_mut()) else { return false };
    let mut sent = false;
    while let Some(placed) = link.owed.front_placed() {
        if !placed && !peer.window.try_take() {
            break;
        }
        link.owed.pop_with(|frame, o| {
            if !o.placed {
                peer.owed.fetch_sub(1, Ordering::SeqCst);
            }
            send_on(session, frame, o.msg);
        });
        sent = true;
    }
    sent
}

/// Starts the session of a connected socket (its handshake).
fn start_session<H: Host + ?Sized>(shared: &H, link: &mut Link, now: Instant) {
    if let Stream::Tcp(s) = &link.stream {
        let _ = s.set_nodelay(true);
    }
    let mut nonce = [0; 32];
    if getrandom::fill(&mut nonce).is_err() {
        // Without randomness the handshake cannot be safe: the link times out.
        warn!("no randomness for a handshake nonce");
        return;
    }
    let mut hs = HandshakeConfig::new(shared.node_id(), shared.incarnation());
    hs.secret.clone_from(&shared.config().secret);
    link.session = Some(Session::new(link.role, hs, nonce, session_config(shared.config()), now));
    link.writable = true;
}

/// Adds what a session counted to its peer's counters.
fn publish_counters(link: &mut Link) {
    let (Some(session), Some(peer)) = (link.session.as_mut(), &link.peer) else { return };
    let c = session.take_counters();
    let p = &peer.counters;
    for (counter, n) in [
        (&p.frames_in, c.frames_in),
        (&p.frames_out, c.frames_out),
        (&p.bytes_in, c.bytes_in),
        (&p.bytes_out, c.bytes_out),
        (&p.msgs_in, c.msgs_in),
        (&p.msgs_out, c.msgs_out),
        (&p.heartbeats_in, c.heartbeats_in),
        (&p.heartbeats_out, c.heartbeats_out),
        (&p.control_throttled, c.control_throttled),
    ] {
        if n > 0 {
            bump(counter, n);
        }
    }
    for i in 0..6 {
        if c.nacks_in[i] > 0 {
            bump(&p.nacks_in[i], c.nacks_in[i]);
        }
        if c.nacks_out[i] > 0 {
            bump(&p.nacks_out[i], c.nacks_out[i]);
        }
    }
}

/// The handshake finished: the link becomes its peer's, or loses to
/// another link between the same two nodes.
fn on_up<H: Host + ?Sized>(
    shared: &H,
    index: usize,
    key: usize,
    link: &mut Link,
    hello: connection::PeerHello,
) {
    let dialer = if link.role == Role::Client { shared.node_id() } else { hello.node_id };
    let place = Place { executor: index, key };
    let placed = shared.nodes().peer_for(&hello, dialer, place);
    if let Some(old) = placed.replaces {
        let (executor, place) = (old.place.executor, old.place);
        shared.push_to(executor, NetCommand::CloseLink { peer: old.peer, place, reason: old.reason });
    }
    let (peer, keep) = (placed.peer, placed.keep);
    let Some(session) = link.session.as_mut() else { return };
    if !keep {
        if let Some(w) = link.waiter.take() {
            shared.nodes().await_directory(&peer, w);
        }
        link.peer = Some(peer);
        session.close(CloseReason::Duplicate);
        return;
    }
    info!(peer = %peer.node_id, incarnation = %hello.incarnation, authenticated = hello.authenticated,
        executor = index, "link up");
    link.peer = Some(peer.clone());
    link.attempt = 0;
    // `peer_for` made the link the peer's current one, up, before the
    // snapshot: a change made meanwhile is then either in the snapshot
    // or sent after it.
    bump(&peer.counters.links_up, 1);
    for frame in shared.directory_frames() {
        session.send_encoded_control(&frame);
    }
}

/// What delivering a message needs of its link (all but its session,
/// which the message's body borrows).
struct LinkParts<'a> {
    peer: &'a Option<Arc<Peer>>,
    remote: &'a HashMap<ActorId, Known>,
    replies: &'a ReplyTargets,
    inbound: &'a Arc<Inbound>,
    local: &'a mut Option<LocalPool>,
    watches: &'a mut Vec<(ActorId, String, ActorSender)>,
    last_src: &'a mut Option<ActorSender>,
    /// Where the message goes instead of its mailbox, if the link defers
    /// delivery (it owes its peer a window of replies).
    defer: Option<&'a mut VecDeque<Deferred>>,
}

/// Delivers a message read from a link, or says why it is refused.
/// A message read from a link, on its way.
enum Delivered {
    /// Acknowledge it now: it is in its mailbox.
    Acked,
    /// Acknowledge it once handled: its destination wants receipts, and
    /// its hold says when.
    AckWhenHandled,
}

fn on_msg<H: Host + ?Sized>(
    shared: &H,
    caches: &mut Caches,
    link: &mut LinkParts<'_>,
    h: &FrameHeader,
    body: &[u8],
) -> Result<Delivered, (NackReason, String)> {
    let LinkParts { peer, remote, replies, inbound, local: local_pool, watches, last_src, defer } = link;
    let is_terminated = h.msg_id == Terminated::msg_id();
    // The destination is borrowed from the cache (no reference counted),
    // here to check it and at the end to deliver.
    let local = {
        let (target, local) = match caches.local_actor_ref(shared, h.dst) {
            Some(t) => (t, true),
            None => (replies.map.get(&h.dst).ok_or((NackReason::UnknownDst, String::new()))?, false),
        };
        if !target.accepts(h.msg_id) && !is_terminated {
            return Err((NackReason::UnknownMsg, String::new()));
        }
        local
    };
    let header = MsgHeader::with_ids(h.msg_id, h.dst, h.src, h.corr);
    let msg = match caches.decoder(shared, h.msg_id) {
        Some(info) => info.decode(header, body).map_err(|e| (NackReason::BadBody, e.to_string()))?,
        // An address with no protocols of its own (an ask, an inbox)
        // takes what this process cannot decode as it came.
        None if !local => Box::new(RawMsg::new(header, body.to_vec())),
        None => return Err((NackReason::UnknownMsg, "no decoder for this message here".into())),
    };
    // The watched actor is named in the body: a `Terminated` is sent by nobody.
    if let Some(end) = msg.downcast_ref::<Terminated>() {
        watches.retain(|(t, _, w)| !(*t == end.actor && w.id() == h.dst));
    }
    let reply_to = match last_src {
        Some(last) if last.id() == h.src => Some(last.clone()),
        _ => {
            let route = reply_route(shared, caches, peer.as_ref(), remote, replies, h.src);
            last_src.clone_from(&route);
            route
        }
    };
    let target = if local { caches.local_actor_ref(shared, h.dst) } else { replies.map.get(&h.dst) };
    // Gone since it was checked (the directory changed meanwhile).
    let target = target.ok_or((NackReason::UnknownDst, String::new()))?;
    let env = Envelope::new(msg, reply_to);
    let bytes = body.len() + FRAME_HEADER_LEN + HOLD_OVERHEAD;
    let receipt = (local && target.route().acks_when_handled()).then_some(h.seq);
    let delivered = if receipt.is_some() { Delivered::AckWhenHandled } else { Delivered::Acked };
    if let Some(deferred) = defer {
        // It is this link's to deliver, once the link owes less; it holds
        // the link's memory meanwhile.
        let hold = inbound.hold(bytes, receipt);
        deferred.push_back(Deferred { target: target.clone(), env, hold, bytes, receipt });
        return Ok(delivered);
    }
    // Checked and stamped already (the header came from the frame). A
    // message that waits on another thread holds the link's memory until
    // handled; one for this thread is handled before the link reads again,
    // and its hold counts nothing. Either way the hold returns the message
    // to its sender if it is not handled.
    let route = target.route();
    let hold = if route.keeps_hold() {
        inbound.hold(bytes, receipt)
    } else {
        // Handled on this thread: a hold that counts no reference. A link
        // moves to another executor only when adopted, which forgets its
        // pool, so the pool is always this thread's.
        let pool = local_pool.get_or_insert_with(|| LocalPool::register(inbound.clone()));
        debug_assert!(pool.is_current(), "a link's local pool is its executor's");
        pool.hold(receipt)
    };
    let outcome = route.deliver_held(env, Wait::No, hold);
    outcome.map(|()| delivered).map_err(|e| {
        let reason = match e {
            SendError::Full(_) | SendError::Timeout(_) => NackReason::MailboxFull,
            SendError::NotAccepted(_) => NackReason::UnknownMsg,
            _ => NackReason::DstStopped,
        };
        (reason, String::new())
    })
}

/// A message read while its link owed the peer a window of replies:
/// checked, decoded and acknowledged, delivered once the link owes less.
struct Deferred {
    target: ActorSender,
    env: Envelope,
    hold: Hold,
    /// What `hold` holds.
    bytes: usize,
    /// Its sequence number, if its acknowledgement waits for its handler.
    receipt: Option<u64>,
}

/// Delivers up to `max` deferred messages while the link owes less than
/// its bound; whether to try again next turn (`max` reached, or a mailbox
/// was full). Held back by what it owes, it waits for acknowledgements.
fn deliver_deferred<H: Host + ?Sized>(shared: &H, link: &mut Link, max: usize) -> bool {
    let mut n = 0;
    loop {
        if link.owed.len() >= owed_bound(link) {
            return false;
        }
        if n == max {
            return !link.deferred.is_empty();
        }
        let Some(d) = link.deferred.pop_front() else { return false };
        n += 1;
        let route = d.target.route();
        let reply_to = d.env.reply_to.clone();
        let outcome = route.deliver_held(d.env, Wait::No, d.hold);
        match outcome {
            Ok(()) => {}
            // Its mailbox is full: it stays first in line, for the next turn.
            Err(SendError::Full(msg) | SendError::Timeout(msg)) => {
                let (env, hold) = (Envelope::new(msg, reply_to), link.inbound.hold(d.bytes, d.receipt));
                let (target, bytes, receipt) = (d.target, d.bytes, d.receipt);
                link.deferred.push_front(Deferred { target, env, hold, bytes, receipt });
                return true;
            }
            // Acknowledged already: the loss is this node's dead letter,
            // and goes back to its sender.
            Err(e) => {
                let msg = e.into_inner();
                let reason = UnhandledReason::ActorStopped;
                if let Some(session) = link.session.as_mut() {
                    if let Some(returned) = Returned::of(&msg, reason) {
                        returned.send(session);
                    }
                    if let Some(seq) = d.receipt {
                        session.handled(seq);
                    }
                }
                let dst = msg.header().dst_id();
                shared.dead_letters().report_msg(msg, dst, reason.into());
            }
        }
    }
}

/// Where replies to a message from `src` go. Usually an actor of the
/// peer; but a peer may pass on an address of ours (an ask's, an
/// actor's), and then the reply stays here rather than crossing the link
/// twice (and finding its window full on the way).
fn reply_route<H: Host + ?Sized>(
    shared: &H,
    caches: &mut Caches,
    peer: Option<&Arc<Peer>>,
    remote: &HashMap<ActorId, Known>,
    replies: &ReplyTargets,
    src: ActorId,
) -> Option<ActorSender> {
    if src.is_none() {
        return None;
    }
    if let Some(known) = remote.get(&src) {
        return Some(known.sender.clone());
    }
    if let Some(ours) = replies.map.get(&src) {
        return Some(ours.clone());
    }
    if let Some(ours) = caches.local_actor(shared, src) {
        return Some(ours);
    }
    Some(RemoteRoute::sender(peer?.clone(), src, format!("{src}"), Vec::new(), None))
}

impl Link {
    /// The reply address of a frame's `src`: a known actor of the peer, or
    /// a route to an address the peer did not announce (an ask).
    fn route_for(&self, src: ActorId) -> Option<ActorSender> {
        if src.is_none() {
            return None;
        }
        if let Some(known) = self.remote.get(&src) {
            return Some(known.sender.clone());
        }
        let peer = self.peer.clone()?;
        Some(RemoteRoute::sender(peer, src, format!("{src}"), Vec::new(), None))
    }
}

/// Applies a peer's directory (already checked by its session).
/// The peer returned a message this node sent it (a DEAD frame): it is a
/// dead letter here, as it would be had its destination been local, and
/// an `ask` waiting for its answer fails now.
fn on_unhandled<H: Host + ?Sized>(
    shared: &H,
    caches: &mut Caches,
    link: &Link,
    h: &FrameHeader,
    reason: Option<UnhandledReason>,
    body: Vec<u8>,
) {
    let header = MsgHeader::with_ids(h.msg_id, h.dst, h.src, h.corr);
    let msg = match caches.decoder(shared, h.msg_id).map(|info| info.decode(header, &body)) {
        Some(Ok(msg)) => msg,
        // Its type is not known here or the body does not decode (the peer
        // changed it): reported as it came.
        _ => Box::new(RawMsg::new(header, body)),
    };
    debug!(msg = %h.msg_id, dst = %h.dst, ?reason, "message returned unhandled by the peer");
    let dead = reason.map_or(DeadLetterReason::ActorStopped, DeadLetterReason::from);
    if let Some(asker) = link.replies.map.get(&h.src) {
        asker.route().refused(Some(NackReason::DstStopped));
    }
    shared.dead_letters().report_msg(msg, h.dst, dead);
}

fn on_directory<H: Host + ?Sized>(host: &H, link: &mut Link, update: connection::DirectoryUpdate) {
    let Some(peer) = link.peer.clone() else { return };
    let full = update.full;
    host.nodes().apply_directory(&peer, update, &mut link.remote);
    if full && let Some(w) = link.waiter.take() {
        let _ = w.send(Ok(peer.info()));
    }
}

/// Whether accepting failed for want of descriptors or memory, which a
/// pause may cure.
fn link_paused(io: &Slab<Io>, key: usize) -> bool {
    matches!(io.get(key), Some(Io::Link(l)) if l.paused)
}

fn is_resource_shortage(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(Errno::from_io_error(e), Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM))
}

/// Refuses a Unix peer of a user the configuration does not allow.
fn check_unix_peer<H: Host + ?Sized>(stream: &mio::net::UnixStream, shared: &H) -> Result<(), String> {
    let cred =
        rustix::net::sockopt::socket_peercred(stream).map_err(|e| format!("no peer credentials: {e}"))?;
    let own = rustix::process::geteuid().as_raw();
    let peer = cred.uid.as_raw();
    if shared.config().unix_peers.allows(peer, own) {
        Ok(())
    } else {
        Err(format!("user {peer} is not allowed (this process runs as {own})"))
    }
}
