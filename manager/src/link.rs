//! The link core: what a node does with one link's frames and messages,
//! free of I/O (quinn's endpoint layer is, above its connections).
//!
//! A [`LinkCore`] wraps a link's [`Session`] (the wire protocol) and holds
//! what the node keeps per link above it: the peer it belongs to, the
//! peer's actors and the reply targets of what the peer sent, the watches
//! across it, the messages owed to a full window and those deferred until
//! it owes less, and how much memory its inbound messages hold. It decides
//! every frame's fate: delivery to an actor (or a refusal, a dead letter,
//! a return), the order in which window room is released, which of two
//! links to one node is kept, what a link that ends leaves behind.
//!
//! It has no socket, no poller, no clock and no thread-local of its own:
//! the driver (`net`) moves bytes in and out through it, passes `now`,
//! and carries out the [`Actions`] each call returns (write the link,
//! serve it again next turn, hand it to another executor, take it down,
//! close a link it replaced). The tests wire two nodes' cores together in
//! memory (`link/tests.rs`).

use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use actor::{
    ActorSender, Envelope, Hold, HoldPool, LocalPool, SendError, Terminated, TerminationReason, Wait,
};
use connection::{
    BudgetKind, CloseReason, DirectoryUpdate, Event, FRAME_HEADER_LEN, FrameHeader, FrameKind,
    HandshakeConfig, Incarnation, LimitKind, LinkLimits, NackReason, PeerCloseReason, PeerHello, Role,
    Session,
};
use msg_header::{ActorId, BoxMsg, MsgHeader, MsgId, MsgType, NodeId, RawMsg, UnhandledReason};
use rustc_hash::FxHashMap as HashMap;
use tracing::{debug, info};

use crate::admission::{Admission, Admitted};
use crate::budget::Budgets;
use crate::cell::ActorCell;
use crate::dead_letter::{DeadLetterReason, DeadLetters};
use crate::decoders::Decoders;
use crate::nodes::{Known, Nodes, Replaced};
use crate::owed::OwedQueue;
use crate::peer::{Peer, PeerCommand, Place, RemoteRoute, Waiter};
use crate::stats::Tally;
use crate::sync::Mailbox;
use crate::{Addr, Encryption, ManagerConfig, ManagerError};

#[cfg(test)]
mod tests;

/// The node, as its links' cores see it.
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
    /// What all links hold, against the node's budgets.
    fn budgets(&self) -> &Budgets;
    /// The node's caps on accepted links.
    fn admission(&self) -> &Admission;
    /// This node's directory, in frames that fit the maximum frame.
    fn directory_frames(&self) -> Vec<Vec<u8>>;
    /// Whether shutdown has begun.
    fn is_stopping(&self) -> bool;
}

/// What a link's inbound messages ask of its executor from wherever they
/// are handled.
pub(crate) enum LinkCommand {
    /// Read the link at `key` again, if it is still link `id`: what its
    /// inbound messages held has drained.
    Resume { key: usize, id: u64 },
    /// Return to the peer of the link at `key`, if it is still link `id`,
    /// a message it sent that was acknowledged and then not handled.
    ReturnUnhandled { key: usize, id: u64, returned: Box<Returned> },
    /// The message of sequence number `seq` on link `id` at `key`, whose
    /// acknowledgement waited for it, was handled (or returned).
    Handled { key: usize, id: u64, seq: u64 },
}

/// What the driver must do after a call into a link's core.
#[must_use]
#[derive(Default)]
pub(crate) struct Actions {
    /// Bytes wait to be written: write the link at the next flush.
    pub(crate) write: bool,
    /// An acknowledgement went out early: write the link now, so a sender
    /// streaming into a full window hears of room while this side works.
    pub(crate) write_now: bool,
    /// A deferred message waits to be delivered (or a link resumes):
    /// serve the link again next turn.
    pub(crate) again: bool,
    /// The handshake finished: the link is no longer pending, and its
    /// timers moved.
    pub(crate) up: bool,
    /// The link is up and runs on another executor: hand it over, with
    /// the peer's hello.
    pub(crate) handoff: Option<PeerHello>,
    /// The link ended: take it down, for this reason.
    pub(crate) down: Option<CloseReason>,
    /// This link replaced another one to the same node: close that one.
    pub(crate) replaces: Option<Replaced>,
}

/// Where a link's next bytes are read into ([`LinkCore::input`]).
pub(crate) enum Input<'a> {
    /// The read buffer's free room.
    Buf(&'a mut [u8]),
    /// A message coming in parts: append at most this many bytes.
    Direct(&'a mut Vec<u8>, usize),
}

/// Whether a link may be read now.
pub(crate) enum ReadGate {
    /// Read it.
    Read,
    /// What it read last turn waits first: read it again next turn.
    Later,
    /// Its caps are reached: stop reading until they clear.
    Pause,
    /// It has no session to read into (connecting, or ended).
    Closed,
    /// Its frame needs a larger read buffer than the node's read budget
    /// has now: it waits (paused) until others give theirs back.
    Budget,
}

/// How a link came to be: accepted, or dialed (and redialed).
pub(crate) struct Origin {
    pub(crate) role: Role,
    /// The address to redial when the link was dialed; `None` if accepted.
    pub(crate) dial: Option<Addr>,
    pub(crate) waiter: Option<Waiter>,
    pub(crate) attempt: u32,
    /// The executor the link runs on once up, if not the one it starts on.
    pub(crate) home: Option<usize>,
    /// Accepted and counted against the node's caps on links.
    pub(crate) admitted: Option<Admitted>,
    /// Accepted past one of those caps: its handshake done, it is closed
    /// with a CLOSE that names the cap.
    pub(crate) refuse: Option<LimitKind>,
}

impl Origin {
    pub(crate) fn accepted() -> Self {
        Self {
            role: Role::Server,
            dial: None,
            waiter: None,
            attempt: 0,
            home: None,
            admitted: None,
            refuse: None,
        }
    }

    /// Accepted by a handshake executor, for executor `home` once up.
    pub(crate) fn accepted_for(home: usize) -> Self {
        Self { home: Some(home), ..Self::accepted() }
    }

    /// A stream a transport of its own handed over (the NATS bridge's end
    /// of a socket pair): never redialed here (the transport makes a new
    /// one when the peer is heard of again).
    pub(crate) fn adopted(role: Role) -> Self {
        Self { role, dial: None, waiter: None, attempt: 0, home: None, admitted: None, refuse: None }
    }

    pub(crate) fn dialed(addr: Addr, waiter: Option<Waiter>, attempt: u32) -> Self {
        Self {
            role: Role::Client,
            dial: Some(addr),
            waiter,
            attempt,
            home: None,
            admitted: None,
            refuse: None,
        }
    }

    /// Whether the link was accepted (and counts against the caps).
    pub(crate) fn is_accepted(&self) -> bool {
        self.dial.is_none()
    }
}

/// A link to dial again, after `attempt` failed attempts.
pub(crate) struct Redial {
    pub(crate) addr: Addr,
    pub(crate) attempt: u32,
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

/// Replies that come back over a link for addresses that are not local
/// actors (asks, inboxes, actors of a third node): kept, the oldest
/// forgotten first past [`LinkLimits::max_reply_targets`].
#[derive(Default)]
struct ReplyTargets {
    map: HashMap<ActorId, ActorSender>,
    order: VecDeque<ActorId>,
}

impl ReplyTargets {
    fn insert(&mut self, target: ActorSender, max: usize) {
        if self.map.insert(target.id(), target.clone()).is_none() {
            self.order.push_back(target.id());
            while self.order.len() > max {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

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
    executor: Arc<dyn Mailbox<LinkCommand>>,
    key: usize,
    id: u64,
}

impl Inbound {
    /// The pool of link `id` at `key` of `executor`, bounded by `limit` bytes.
    pub(crate) fn new(
        limit: usize,
        executor: Arc<dyn Mailbox<LinkCommand>>,
        key: usize,
        id: u64,
    ) -> Arc<Self> {
        Arc::new(Self { held: AtomicUsize::new(0), limit, paused: AtomicBool::new(false), executor, key, id })
    }

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
        // Pairs with `LinkCore::pause`: it sets `paused`, then looks at `held`.
        if before.saturating_sub(bytes) < self.limit && self.paused.swap(false, Ordering::SeqCst) {
            self.executor.push(LinkCommand::Resume { key: self.key, id: self.id });
        }
    }

    fn unhandled(&self, msg: &BoxMsg, reason: UnhandledReason) {
        if let Some(returned) = Returned::of(msg, reason) {
            let returned = Box::new(returned);
            self.executor.push(LinkCommand::ReturnUnhandled { key: self.key, id: self.id, returned });
        }
    }

    fn handled(&self, seq: u64) {
        self.executor.push(LinkCommand::Handled { key: self.key, id: self.id, seq });
    }
}

/// An executor's caches of shared tables, refreshed when their version
/// changes: its links look up local actors and decoders here. The two
/// halves are borrowed apart: a message's destination, borrowed from one,
/// stays borrowed while its body is decoded with the other. Beside them,
/// the burst its links read for its own actors.
#[derive(Default)]
pub(crate) struct Caches {
    actors: ActorCache,
    decoders: DecoderCache,
    burst: Burst,
}

impl Caches {
    /// A local actor by id.
    fn local_actor<H: Host + ?Sized>(&mut self, host: &H, id: ActorId) -> Option<ActorSender> {
        self.actors.get(host, id).map(|a| a.sender.clone())
    }

    /// Opens the burst (see [`Burst`]) for what a link reads until
    /// [`close_burst`](Self::close_burst); the driver does, around a read.
    pub(crate) fn open_burst(&mut self) {
        self.burst.open = true;
    }

    pub(crate) fn close_burst(&mut self) {
        self.burst.open = false;
    }

    /// Messages in the burst, not yet handed to their handlers.
    pub(crate) fn burst_len(&self) -> usize {
        self.burst.items.len()
    }

    /// The burst, in the order read, for the executor to hand to the
    /// handlers; give the emptied vector back with
    /// [`give_back_burst`](Self::give_back_burst).
    pub(crate) fn take_burst(&mut self) -> Vec<ToHandle> {
        std::mem::take(&mut self.burst.items)
    }

    /// Keeps `emptied`'s room for the next burst (if none began meanwhile).
    pub(crate) fn give_back_burst(&mut self, emptied: Vec<ToHandle>) {
        if self.burst.items.is_empty() && emptied.is_empty() {
            self.burst.items = emptied;
        }
    }

    fn decoder<H: Host + ?Sized>(&mut self, host: &H, id: MsgId) -> Option<protocol::MsgInfo> {
        self.decoders.get(host, id)
    }
}

/// What links read for the actors of their own executor, in the order
/// read, for the executor to hand to the handlers as soon as the read is
/// done: no mailbox, no command and no route on the way (`on_msg`).
///
/// It is open only while a link reads (the driver opens and closes it
/// around the read), and a message joins it only while nothing waits in
/// the executor's own queue: the executor runs the burst before that
/// queue, so what joins it comes before anything queued after it. A
/// message that wants a receipt, or finds its actor ended, takes the
/// mailbox's way instead, as does one for an actor with a capacity (which
/// its mailbox counts and enforces).
#[derive(Default)]
struct Burst {
    open: bool,
    items: Vec<ToHandle>,
    /// What the last message to join took lookups to learn.
    run: Option<BurstRun>,
}

/// What a message that joined a [`Burst`] took lookups to learn: its
/// actor's cell (it runs here, takes this kind of message, wants no
/// receipts and has no capacity) and its decoder, as of versions of the
/// directory and the decoders. The next message for the same actor, of the
/// same kind, as of the same versions, joins without them: frames come in
/// runs.
struct BurstRun {
    dst: ActorId,
    msg_id: MsgId,
    dir_version: u64,
    decoders_version: u64,
    cell: Arc<ActorCell>,
    info: protocol::MsgInfo,
}

impl Burst {
    /// Whether a message for `cell`'s actor, read by a link with
    /// `inbound`, may join now: the burst is open, the actor has not
    /// ended, and nothing waits in the executor's own queue.
    fn admits(&self, cell: &ActorCell, inbound: &Inbound) -> bool {
        self.open && cell.is_alive() && inbound.executor.backlog() == 0
    }

    /// The run that frame `h`, read by a link with `inbound`, joins (see
    /// [`admits`](Self::admits)), if it continues the last.
    fn run_for<H: Host + ?Sized>(&self, host: &H, h: &FrameHeader, inbound: &Inbound) -> Option<&BurstRun> {
        let run = self.run.as_ref().filter(|r| r.dst == h.dst && r.msg_id == h.msg_id)?;
        let current = run.dir_version == host.nodes().dir_version()
            && run.decoders_version == host.decoders().version()
            && self.admits(&run.cell, inbound);
        current.then_some(run)
    }
}

/// A message of a [`Burst`]: for the actor in `slot` (if still of
/// `generation`) of the executor; `hold` returns it to its sender if it
/// cannot be handled.
pub(crate) struct ToHandle {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    pub(crate) env: Envelope,
    pub(crate) hold: Hold,
}

/// A local actor as a link's cache holds it.
struct LocalActor {
    sender: ActorSender,
    /// Its cell, when it runs on the cache's executor (this thread's):
    /// what a link reads for it may join the [`Burst`].
    here: Option<Arc<ActorCell>>,
}

/// The node's local actors by id, as of a version of its directory.
#[derive(Default)]
struct ActorCache {
    version: u64,
    actors: HashMap<ActorId, LocalActor>,
}

impl ActorCache {
    /// A local actor by id, as the cache holds it (no reference counted).
    fn get<H: Host + ?Sized>(&mut self, host: &H, id: ActorId) -> Option<&LocalActor> {
        self.refresh(host);
        match self.actors.entry(id) {
            Entry::Occupied(found) => Some(found.into_mut()),
            Entry::Vacant(slot) => {
                let (sender, cell) = host.nodes().local_cell(id)?;
                let here = cell.executor.is_current().then_some(cell);
                Some(slot.insert(LocalActor { sender, here }))
            }
        }
    }

    /// Empties the cache if the directory changed; the version it holds.
    fn refresh<H: Host + ?Sized>(&mut self, host: &H) -> u64 {
        let version = host.nodes().dir_version();
        if version != self.version {
            self.actors.clear();
            self.version = version;
        }
        version
    }
}

/// The node's decoders, as of a version of its protocol table.
#[derive(Default)]
struct DecoderCache {
    version: u64,
    decoders: Arc<HashMap<MsgId, protocol::MsgInfo>>,
}

impl DecoderCache {
    fn get<H: Host + ?Sized>(&mut self, host: &H, id: MsgId) -> Option<protocol::MsgInfo> {
        let version = host.decoders().version();
        if version != self.version {
            self.decoders = host.decoders().snapshot();
            self.version = version;
        }
        self.decoders.get(&id).copied()
    }
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

/// A message read from a link, on its way.
enum Delivered {
    /// Acknowledge it now: it is in its mailbox.
    Acked,
    /// Acknowledge it once handled: its destination wants receipts, and
    /// its hold says when.
    AckWhenHandled,
}

/// One link's state above its session, and every decision about it.
pub(crate) struct LinkCore {
    /// Unique on its executor (slab keys are reused).
    id: u64,
    /// Where the link runs: its executor and its key there.
    place: Place,
    /// Where the link runs once its handshake is done, when that is
    /// another executor than this (the handshake executor's).
    home: Option<usize>,
    /// `None` while a non-blocking connect is under way.
    session: Option<Session<BoxMsg>>,
    /// The connect and handshake must be done by then.
    deadline: Instant,
    role: Role,
    /// Accepted (counted against the caps), not dialed.
    accepted: bool,
    /// Its place in the node's caps on links, given back when it ends.
    admitted: Option<Admitted>,
    /// The cap that refuses it, once its handshake is done.
    refuse: Option<LimitKind>,
    peer: Option<Arc<Peer>>,
    /// The address to redial when the link was dialed; `None` if accepted.
    dial: Option<Addr>,
    attempt: u32,
    waiter: Option<Waiter>,
    /// The other end is on another host ([`Encryption::OffHost`]).
    off_host: bool,
    /// Not reading by choice (a cap), until it clears.
    paused: bool,
    /// Not reading for the node's budgets, until the driver says they
    /// have room again.
    budget_paused: bool,
    /// Bytes of read buffer reserved from the node's read budget (what
    /// the buffer grew beyond its base for a large frame).
    read_reserved: usize,
    /// Bytes reserved from the node's read budget for the peer's message
    /// coming in parts (what its session was granted).
    parts_reserved: usize,
    /// Messages read and not yet delivered: the turn's budget ran out.
    backlog: bool,
    /// The peer's actors, by id, for the reply address of what they send.
    remote: HashMap<ActorId, Known>,
    replies: ReplyTargets,
    /// This node's watches of the peer's actors: (watched, its name, watcher).
    watches: Vec<(ActorId, String, ActorSender)>,
    inbound: Arc<Inbound>,
    /// `inbound` registered on the executor's thread, for the holds of
    /// messages handled there (see `on_msg`): set by the driver where the
    /// link runs once up.
    local: Option<LocalPool>,
    /// The last reply address made for a `src` the peer did not announce
    /// (an ask of its): the next message from it reuses it.
    last_src: Option<ActorSender>,
    /// Messages owed to a full window, oldest first.
    owed: OwedQueue<BoxMsg>,
    /// Messages read while owing too much, to deliver once it owes less.
    deferred: VecDeque<Deferred>,
    limits: LinkLimits,
}

impl LinkCore {
    /// A link at `place` (its id `id` there), as `origin` made it, whose
    /// handshake must be done by `deadline`.
    pub(crate) fn new(
        limits: &LinkLimits,
        place: Place,
        id: u64,
        origin: Origin,
        inbound: Arc<Inbound>,
        deadline: Instant,
    ) -> Self {
        let accepted = origin.is_accepted();
        Self {
            id,
            place,
            home: origin.home,
            session: None,
            deadline,
            role: origin.role,
            accepted,
            admitted: origin.admitted,
            refuse: origin.refuse,
            peer: None,
            dial: origin.dial,
            attempt: origin.attempt,
            waiter: origin.waiter,
            off_host: false,
            paused: false,
            budget_paused: false,
            read_reserved: 0,
            parts_reserved: 0,
            backlog: false,
            remote: HashMap::default(),
            replies: ReplyTargets::default(),
            watches: Vec::new(),
            inbound,
            local: None,
            last_src: None,
            owed: OwedQueue::default(),
            deferred: VecDeque::new(),
            limits: limits.clone(),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn is_accepted(&self) -> bool {
        self.accepted
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    pub(crate) fn has_session(&self) -> bool {
        self.session.is_some()
    }

    pub(crate) fn is_up(&self) -> bool {
        self.session.as_ref().is_some_and(Session::is_up)
    }

    /// Whether this link is up and carries `peer`'s traffic.
    pub(crate) fn carries(&self, peer: &Arc<Peer>) -> bool {
        self.is_up() && self.is_of(peer)
    }

    /// Whether this link belongs to `peer` (up or not).
    pub(crate) fn is_of(&self, peer: &Arc<Peer>) -> bool {
        self.peer.as_ref().is_some_and(|p| Arc::ptr_eq(p, peer))
    }

    /// The node at the other end, once its handshake named it.
    pub(crate) fn peer_node(&self) -> Option<NodeId> {
        self.peer.as_ref().map(|p| p.node_id)
    }

    /// Whether the handshake finished (the link had a peer).
    pub(crate) fn was_up(&self) -> bool {
        self.peer.is_some()
    }

    /// Starts the session (the handshake) with the random `nonce`; a
    /// dialer's begins with the node's next dial number instead (see
    /// [`connection::client_nonce`]).
    pub(crate) fn start<H: Host + ?Sized>(&mut self, host: &H, random: [u8; 32], now: Instant) {
        let nonce = match self.role {
            Role::Client => {
                let mut rest = [0; 24];
                rest.copy_from_slice(&random[8..]);
                connection::client_nonce(host.nodes().next_dial(), rest)
            }
            Role::Server => random,
        };
        let mut hs = HandshakeConfig::new(host.node_id(), host.incarnation());
        let security = &host.config().security;
        hs.secret.clone_from(&security.secret);
        hs.node_keys.clone_from(&security.node_keys);
        hs.encrypt = hs.secret.is_some()
            && match security.encryption {
                Encryption::Always => true,
                Encryption::OffHost => self.off_host,
                _ => false,
            };
        self.session = Some(Session::new(self.role, hs, nonce, self.limits.clone(), now));
    }

    /// Whether the other end is on another host (before
    /// [`start`](Self::start): it decides whether the link is encrypted).
    pub(crate) fn set_off_host(&mut self, off_host: bool) {
        self.off_host = off_host;
    }

    /// The link moved to executor slot `place` as link `id` there, with a
    /// pool of its own there; `local` is that pool registered on the
    /// executor's thread.
    pub(crate) fn moved(&mut self, place: Place, id: u64, inbound: Arc<Inbound>, local: LocalPool) {
        self.place = place;
        self.id = id;
        self.home = None;
        self.inbound = inbound;
        self.local = Some(local);
    }

    /// Sets the local pool of the executor the link runs on.
    pub(crate) fn set_local(&mut self, local: LocalPool) {
        self.local = Some(local);
    }

    /// Whether the link runs on another executor once up.
    pub(crate) fn runs_elsewhere(&self) -> bool {
        self.home.is_some_and(|home| home != self.place.executor)
    }

    /// The executor it runs on once up.
    pub(crate) fn home(&self) -> usize {
        self.home.unwrap_or(self.place.executor)
    }

    // --- Bytes in and out (the driver's I/O) ---

    /// The read buffer's free room (`None` without a session): what comes
    /// while a piece goes straight into its message is moved over.
    #[cfg(test)]
    pub(crate) fn input_buf(&mut self) -> Option<&mut [u8]> {
        self.session.as_mut().map(Session::input_buf)
    }

    /// Where the next bytes read go: the read buffer, or straight into a
    /// message coming in parts (`None` without a session).
    pub(crate) fn input(&mut self) -> Option<Input<'_>> {
        let session = self.session.as_mut()?;
        // Asked twice: a borrow returned from one branch ends only after
        // the function (a limit of today's borrow checker).
        if session.input_direct().is_some() {
            return session.input_direct().map(|(body, left)| Input::Direct(body, left));
        }
        Some(Input::Buf(session.input_buf()))
    }

    /// What waits to be written.
    #[cfg(test)]
    pub(crate) fn transmit(&mut self) -> &[u8] {
        self.session.as_mut().map_or(&[], Session::transmit)
    }

    /// What waits to be written, as up to `slices.len()` slices; how many.
    pub(crate) fn transmit_vectored<'a>(&'a mut self, slices: &mut [&'a [u8]]) -> usize {
        self.session.as_mut().map_or(0, |s| s.transmit_vectored(slices))
    }

    /// How many bytes wait to be written.
    pub(crate) fn pending_output(&self) -> usize {
        self.session.as_ref().map_or(0, Session::pending_output)
    }

    /// `n` bytes of [`transmit`](Self::transmit) were written.
    pub(crate) fn transmitted(&mut self, now: Instant, n: usize) {
        if let Some(s) = self.session.as_mut() {
            s.transmitted(now, n);
        }
        self.release_large();
    }

    /// The socket takes no more for now.
    pub(crate) fn write_blocked(&mut self, now: Instant) {
        if let Some(s) = self.session.as_mut() {
            s.write_blocked(now);
        }
    }

    /// Ends the session for `reason` (a CLOSE frame is queued where one is
    /// sent); its end comes as an event (see [`drive`](Self::drive)).
    pub(crate) fn close(&mut self, reason: CloseReason) {
        if let Some(s) = self.session.as_mut() {
            s.close(reason);
        }
    }

    /// Ends the link for `reason`: through its session, or at once if it
    /// has none yet.
    pub(crate) fn fail<H: Host + ?Sized>(
        &mut self,
        host: &H,
        caches: &mut Caches,
        reason: CloseReason,
    ) -> Actions {
        if self.session.is_none() {
            return Actions { down: Some(reason), ..Actions::default() };
        }
        self.close(reason);
        self.drive(host, caches, usize::MAX)
    }

    /// A replaced link's close: it still carries `peer`.
    pub(crate) fn replaced<H: Host + ?Sized>(
        &mut self,
        host: &H,
        caches: &mut Caches,
        peer: &Arc<Peer>,
        reason: crate::peer::LinkReplaced,
    ) -> Actions {
        if !self.is_of(peer) {
            return Actions::default();
        }
        let reason = match reason {
            crate::peer::LinkReplaced::Duplicate => CloseReason::Duplicate,
            crate::peer::LinkReplaced::Newer => CloseReason::Replaced,
        };
        self.fail(host, caches, reason)
    }

    // --- Reading ---

    /// Whether the link may be read now; delivers first what waits from
    /// last turn (or was deferred).
    pub(crate) fn prepare_read<H: Host + ?Sized>(
        &mut self,
        host: &H,
        caches: &mut Caches,
    ) -> (ReadGate, Actions) {
        // A piece of a message in parts that waits for room takes it from
        // the node's read budget, as a large frame's buffer does.
        let mut granted = false;
        if let Some(session) = self.session.as_mut()
            && session.part_growth() > 0
            && !self.budget_paused
        {
            let wanted = session.part_growth();
            if !host.budgets().reserve_read(wanted) {
                self.budget_paused = true;
                return (ReadGate::Budget, Actions::default());
            }
            self.parts_reserved += wanted;
            session.grant_parts(wanted);
            granted = true;
        }
        let mut actions = Actions::default();
        if self.backlog || self.deliverable() || granted {
            actions = self.drive(host, caches, self.limits.msgs_per_turn);
            if self.backlog {
                return (ReadGate::Later, actions);
            }
        }
        self.release_parts(host);
        let held = self.inbound.held();
        let Some(session) = self.session.as_mut() else { return (ReadGate::Closed, actions) };
        session.set_inbound_held(held);
        if session.part_growth() > 0 && !self.budget_paused {
            // The next piece wants more room: next turn.
            return (ReadGate::Later, actions);
        }
        if !session.wants_read() || self.budget_paused {
            let gate = if session.is_closed() { ReadGate::Closed } else { ReadGate::Pause };
            return (gate, actions);
        }
        let growth = session.input_growth();
        if growth > 0 {
            if !host.budgets().reserve_read(growth) {
                self.budget_paused = true;
                return (ReadGate::Budget, actions);
            }
            self.read_reserved += growth;
        }
        (ReadGate::Read, actions)
    }

    /// `n` bytes were read into [`input_buf`](Self::input_buf) (0: the
    /// stream ended): handles what they complete.
    pub(crate) fn read<H: Host + ?Sized>(
        &mut self,
        host: &H,
        caches: &mut Caches,
        now: Instant,
        n: usize,
    ) -> Actions {
        let Some(session) = self.session.as_mut() else { return Actions::default() };
        session.input_filled(now, n);
        if n == 0 {
            return self.drive(host, caches, usize::MAX);
        }
        let acked = session.ack_sent();
        let mut actions = self.drive(host, caches, self.limits.msgs_per_turn);
        actions.write_now = self.session.as_ref().is_some_and(|s| s.ack_sent() > acked && s.is_up());
        actions
    }

    /// The stream has nothing more to read for now: a read buffer grown for
    /// a large frame is given back (to the node's read budget too).
    pub(crate) fn read_idle<H: Host + ?Sized>(&mut self, host: &H) {
        if self.read_reserved == 0 {
            return;
        }
        if let Some(session) = self.session.as_mut()
            && session.shrink_input() > 0
        {
            host.budgets().release_read(std::mem::take(&mut self.read_reserved));
        }
    }

    /// Gives the node back what the session was granted for a message in
    /// parts and holds no more (it was delivered).
    fn release_parts<H: Host + ?Sized>(&mut self, host: &H) {
        if self.parts_reserved > 0
            && let Some(session) = self.session.as_mut()
        {
            let free = session.release_parts().min(self.parts_reserved);
            self.parts_reserved -= free;
            host.budgets().release_read(free);
        }
    }

    /// Stops or restarts reading for the node's budgets; whether to read
    /// again now (restarted, and nothing else keeps it paused).
    pub(crate) fn set_budget_paused(&mut self, on: bool) -> bool {
        if self.budget_paused == on {
            return false;
        }
        self.budget_paused = on;
        if on {
            self.paused = true;
            return false;
        }
        self.resume_if_clear() || !self.paused
    }

    /// Whether it waits for the node's budgets.
    pub(crate) fn is_budget_paused(&self) -> bool {
        self.budget_paused
    }

    /// What this link holds of `kind` of the node's budgets, in bytes.
    pub(crate) fn holding(&self, kind: BudgetKind) -> usize {
        match kind {
            BudgetKind::ReadBuffers => self.read_reserved + self.parts_reserved,
            BudgetKind::Inbound => self.inbound.held(),
            BudgetKind::Output => self.pending_output(),
            _ => 0,
        }
    }

    /// Bytes of inbound messages this link's messages hold now.
    pub(crate) fn inbound_held(&self) -> usize {
        self.inbound.held()
    }

    /// Whether deferred messages may be delivered now.
    fn deliverable(&self) -> bool {
        !self.deferred.is_empty() && self.owed.len() < owed_bound(&self.peer)
    }

    /// The stream says its peer ended (see [`Session::peer_ended`]).
    pub(crate) fn peer_ended(&mut self) {
        if let Some(session) = self.session.as_mut() {
            session.peer_ended();
        }
    }

    /// Stops reading until the caps clear; whether to read again at once
    /// (they cleared meanwhile).
    pub(crate) fn pause(&mut self) -> bool {
        if self.paused {
            return false;
        }
        self.paused = true;
        let inbound = &self.inbound;
        inbound.paused.store(true, Ordering::SeqCst);
        // Pairs with `Inbound::release`: it lowers `held`, then looks at `paused`.
        // A throttled link is resumed by its timer, the others by what
        // drains their caps.
        let over_output = self
            .session
            .as_ref()
            .is_some_and(|s| s.pending_output() >= s.config().max_write_buffer || s.is_throttled());
        let clear = inbound.held() < inbound.limit && !over_output && !self.budget_paused;
        if clear && inbound.paused.swap(false, Ordering::SeqCst) {
            self.paused = false;
            return true;
        }
        false
    }

    /// A paused link's inbound messages drained; whether to read it again.
    pub(crate) fn resume(&mut self) -> bool {
        !self.budget_paused && std::mem::replace(&mut self.paused, false)
    }

    /// Whether a paused link reads again: nothing keeps it paused any more
    /// (its output drained, its control budget refilled, its inbound
    /// messages handled).
    pub(crate) fn resume_if_clear(&mut self) -> bool {
        // A piece waiting for room takes it when read again (`prepare_read`).
        let clear = self.session.as_ref().is_some_and(Session::wants_read_given_room) && !self.budget_paused;
        if self.paused && clear && self.inbound.held() < self.inbound.limit {
            self.paused = false;
            self.inbound.paused.store(false, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// After a write: whether the link reads again (its output drained
    /// under its cap), and whether its session ended while writing (its
    /// end is driven next).
    pub(crate) fn after_write(&mut self) -> (bool, bool) {
        let resumes = self.resume_if_clear();
        let ended = self.session.as_ref().is_some_and(|s| s.is_closed() && !s.is_finished());
        (resumes, ended)
    }

    // --- Timers and acknowledgements ---

    /// The link's next deadline: its session's, or the connect's.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.session {
            Some(session) => session.poll_timeout(),
            None => Some(self.deadline),
        }
    }

    /// Its timers due by `now`; `None` if none was.
    pub(crate) fn on_timeout<H: Host + ?Sized>(
        &mut self,
        host: &H,
        caches: &mut Caches,
        now: Instant,
    ) -> Option<Actions> {
        let held = self.inbound.held();
        match self.session.as_mut() {
            Some(session) if session.poll_timeout().is_some_and(|t| t <= now) => {
                session.set_inbound_held(held);
                session.handle_timeout(now);
                let mut actions = self.drive(host, caches, usize::MAX);
                actions.again |= self.resume_if_clear();
                Some(actions)
            }
            Some(_) => None,
            None if now >= self.deadline => {
                Some(Actions { down: Some(CloseReason::HandshakeTimeout), ..Actions::default() })
            }
            None => None,
        }
    }

    /// Acknowledges what was handled; whether bytes wait to be written.
    pub(crate) fn flush_acks(&mut self) -> bool {
        let held = self.inbound.held();
        let Some(session) = self.session.as_mut() else { return false };
        session.set_inbound_held(held);
        session.flush_acks()
    }

    /// The message of sequence number `seq`, whose acknowledgement waited
    /// for it, was handled (acknowledged at the next flush).
    pub(crate) fn handled(&mut self, seq: u64) {
        if let Some(session) = self.session.as_mut() {
            session.handled(seq);
        }
    }

    /// Returns a message its peer sent to it; whether there was a session.
    pub(crate) fn return_unhandled(&mut self, returned: &Returned) -> bool {
        let Some(session) = self.session.as_mut() else { return false };
        returned.send(session);
        true
    }

    // --- Events ---

    /// Handles the session's events, delivering at most `budget` messages;
    /// more waiting is its backlog, for the next turn.
    pub(crate) fn drive<H: Host + ?Sized>(
        &mut self,
        host: &H,
        caches: &mut Caches,
        budget: usize,
    ) -> Actions {
        let mut actions = Actions::default();
        let mut acked = 0;
        let mut delivered = 0;
        self.backlog = false;
        loop {
            if delivered >= budget {
                self.backlog = true;
                break;
            }
            let Some(event) = self.session.as_mut().and_then(Session::poll_event) else { break };
            match event {
                Event::Msg { header, body, shared } => {
                    delivered += 1;
                    if acked > 0 {
                        // What came acknowledged before this message goes
                        // back to the window first: a reply its asker sees
                        // finds the room its request took free again.
                        if let Some(peer) = &self.peer {
                            peer.window.release(acked);
                        }
                        acked = 0;
                    }
                    let defer = !self.deferred.is_empty() || self.owed.len() >= owed_bound(&self.peer);
                    let mut parts = LinkParts {
                        peer: &self.peer,
                        remote: &self.remote,
                        replies: &self.replies,
                        inbound: &self.inbound,
                        local: self.local.as_ref(),
                        watches: &mut self.watches,
                        last_src: &mut self.last_src,
                        defer: defer.then_some(&mut self.deferred),
                    };
                    let outcome = on_msg(host, caches, &mut parts, &header, body, shared);
                    match outcome {
                        Ok(Delivered::Acked) => {}
                        Ok(Delivered::AckWhenHandled) => {
                            if let Some(session) = self.session.as_mut() {
                                session.ack_when_handled(header.seq);
                            }
                        }
                        Err((reason, detail)) => {
                            debug!(msg = %header.msg_id, dst = %header.dst, %reason, "refusing a message");
                            if let Some(session) = self.session.as_mut() {
                                session.refuse(&header, reason, &detail);
                            }
                            actions.write = true;
                        }
                    }
                }
                // Given back to the window once per batch: the window is
                // shared with the senders' threads.
                Event::Acked(msgs) => acked += msgs.len(),
                Event::Nacked { msg, dst, reason, detail } => {
                    if let Some(peer) = &self.peer {
                        peer.window.release(1);
                    }
                    debug!(msg = msg.name(), ?reason, %detail, "message refused by the peer");
                    let asker = self.replies.map.get(&msg.header().src_id()).cloned();
                    host.dead_letters().report_msg(msg, dst, DeadLetterReason::Nacked(reason));
                    // An ask waiting for the answer fails now, not at its timeout.
                    if let Some(asker) = asker {
                        asker.route().refused(reason);
                    }
                }
                Event::Unhandled { header, reason, body } => {
                    self.on_unhandled(host, caches, &header, reason, body);
                }
                Event::Up(hello) => {
                    actions.up = true;
                    if self.runs_elsewhere() {
                        // Its link executor takes it from here.
                        actions.handoff = Some(hello);
                        return actions;
                    }
                    let up = self.up(host, hello);
                    actions.replaces = up.replaces;
                    actions.write = true;
                }
                Event::Directory(update) => self.on_directory(host, update),
                Event::Watch { target, watcher } => self.on_watch(host, caches, target, watcher),
                Event::Closed(reason) => {
                    actions.down = Some(reason);
                    actions.write = true;
                }
            }
        }
        if let (Some(peer), true) = (&self.peer, acked > 0) {
            peer.window.release(acked);
        }
        if !self.owed.is_empty() && self.pay_owed() {
            actions.write = true;
        }
        if !self.deferred.is_empty() && self.deliver_deferred(host, self.limits.msgs_per_turn) {
            // More to deliver (or a full mailbox to try again): next turn.
            actions.again = true;
        }
        if self.session.as_ref().is_some_and(|s| s.pending_output() > 0) {
            actions.write = true;
        }
        actions
    }

    /// Whether messages read wait to be delivered: the turn's budget ran
    /// out (the link is read again next turn, after them).
    pub(crate) fn has_backlog(&self) -> bool {
        self.backlog
    }

    /// The handshake finished (here, or on the executor that handed the
    /// link over): the link becomes its peer's, or loses to another link
    /// between the same two nodes.
    pub(crate) fn up<H: Host + ?Sized>(&mut self, host: &H, hello: PeerHello) -> Actions {
        let mut actions = Actions { write: true, ..Actions::default() };
        // Past a cap: the peer hears which, and the link ends unplaced.
        let refused = self.refuse.or_else(|| {
            let admitted = self.admitted.as_mut()?;
            host.admission().named(admitted, hello.node_id).err()
        });
        if let Some(kind) = refused {
            if let Some(session) = self.session.as_mut() {
                session.close(CloseReason::Limit(kind));
            }
            return actions;
        }
        let dialer = if self.role == Role::Client { host.node_id() } else { hello.node_id };
        let placed = host.nodes().peer_for(&hello, dialer, self.place);
        actions.replaces = placed.replaces;
        let (peer, keep) = (placed.peer, placed.keep);
        let Some(session) = self.session.as_mut() else { return actions };
        if !keep {
            if let Some(w) = self.waiter.take() {
                host.nodes().await_directory(&peer, w);
            }
            self.peer = Some(peer);
            session.close(CloseReason::Duplicate);
            return actions;
        }
        info!(peer = %peer.node_id, incarnation = %hello.incarnation, authenticated = hello.authenticated,
            executor = self.place.executor, "link up");
        self.peer = Some(peer.clone());
        self.attempt = 0;
        // `peer_for` made the link the peer's current one, up, before the
        // snapshot: a change made meanwhile is then either in the snapshot
        // or sent after it.
        peer.counters.links_up.fetch_add(1, Ordering::Relaxed);
        for frame in host.directory_frames() {
            session.send_encoded_control(&frame);
        }
        actions
    }

    /// Applies a peer's directory (already checked by its session).
    fn on_directory<H: Host + ?Sized>(&mut self, host: &H, update: DirectoryUpdate) {
        let Some(peer) = self.peer.clone() else { return };
        let full = update.full;
        host.nodes().apply_directory(&peer, update, &mut self.remote);
        if full && let Some(w) = self.waiter.take() {
            let _ = w.send(Ok(peer.info()));
        }
    }

    /// The peer's actor `watcher` watches this node's `target`.
    fn on_watch<H: Host + ?Sized>(
        &mut self,
        host: &H,
        caches: &mut Caches,
        target: ActorId,
        watcher: ActorId,
    ) {
        let Some(watcher_route) = self.route_for(watcher) else { return };
        let watched = caches.local_actor(host, target).map(|t| t.watch(&watcher_route));
        if !matches!(watched, Some(Ok(()))) {
            // Unknown here: it has ended (or never was).
            if let Some(session) = self.session.as_mut() {
                session.forget_watch(target, watcher);
            }
            let ended = Terminated::new(target, String::new(), TerminationReason::Stopped);
            if let Err(e) = watcher_route.try_send(ended) {
                host.dead_letters().report_send_error(e);
            }
        }
    }

    /// The peer returned a message this node sent it (a DEAD frame): it is
    /// a dead letter here, as it would be had its destination been local,
    /// and an `ask` waiting for its answer fails now.
    fn on_unhandled<H: Host + ?Sized>(
        &self,
        host: &H,
        caches: &mut Caches,
        h: &FrameHeader,
        reason: Option<UnhandledReason>,
        body: Vec<u8>,
    ) {
        let header = MsgHeader::with_ids(h.msg_id, h.dst, h.src, h.corr);
        let msg = match caches.decoder(host, h.msg_id).map(|info| info.decode(header, &body)) {
            Some(Ok(msg)) => msg,
            // Its type is not known here or the body does not decode (the peer
            // changed it): reported as it came.
            _ => Box::new(RawMsg::new(header, body)),
        };
        debug!(msg = %h.msg_id, dst = %h.dst, ?reason, "message returned unhandled by the peer");
        let dead = reason.map_or(DeadLetterReason::ActorStopped, DeadLetterReason::from);
        if let Some(asker) = self.replies.map.get(&h.src) {
            asker.route().refused(Some(NackReason::DstStopped));
        }
        host.dead_letters().report_msg(msg, h.dst, dead);
    }

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

    // --- Sending ---

    /// A message for the peer, encoded by its sender, counted in its window
    /// (or `owed`: to send once the window has room).
    #[cfg(test)]
    pub(crate) fn send<H: Host + ?Sized>(
        &mut self,
        host: &H,
        frame: &[u8],
        msg: BoxMsg,
        reply_to: Option<ActorSender>,
        owed: bool,
    ) -> Actions {
        self.send_run(host, std::iter::once((frame, msg, reply_to, owed)))
    }

    /// Messages for the peer, in order, each as [`send`](Self::send) takes
    /// it; what the window cannot take yet is paid once, after them all.
    pub(crate) fn send_run<'b, H: Host + ?Sized>(
        &mut self,
        host: &H,
        msgs: impl Iterator<Item = (&'b [u8], BoxMsg, Option<ActorSender>, bool)>,
    ) -> Actions {
        let mut sent = false;
        for (frame, msg, reply_to, owed) in msgs {
            if let Some(r) = reply_to {
                // A reply to an address that is not this node's actor (an
                // ask, an inbox, another manager's actor) comes back to it
                // here.
                if r.node_id() != host.node_id() {
                    self.replies.insert(r, self.limits.max_reply_targets);
                }
            }
            if owed || !self.owed.is_empty() {
                // Behind what is owed already, in order: a message that has
                // its window place waits too.
                self.owed.push(frame, msg, !owed);
                continue;
            }
            let Some(session) = self.session.as_mut() else { continue };
            send_on(session, frame, msg);
            sent = true;
        }
        // The window may have room already (its acknowledgements came
        // before these): nothing else would send what is owed then.
        if !self.owed.is_empty() {
            sent |= self.pay_owed();
        }
        Actions { write: sent, ..Actions::default() }
    }

    /// A message larger than a frame for the peer, encoded by its sender
    /// (`head`, then `blobs`), counted in its window and its large
    /// messages: it goes in parts as the output drains.
    pub(crate) fn send_large<H: Host + ?Sized>(
        &mut self,
        host: &H,
        head: Vec<u8>,
        blobs: Vec<msg_header::Bytes>,
        msg: BoxMsg,
        reply_to: Option<ActorSender>,
    ) -> Actions {
        if let Some(r) = reply_to
            && r.node_id() != host.node_id()
        {
            self.replies.insert(r, self.limits.max_reply_targets);
        }
        match (self.session.as_mut(), &self.peer) {
            (Some(session), _) => session.send_large(head, blobs, msg),
            (None, Some(peer)) => not_sent_large(host, peer, msg),
            (None, None) => {
                let dst = msg.header().dst_id();
                host.dead_letters().report_msg(msg, dst, DeadLetterReason::Unacknowledged);
            }
        }
        self.release_large();
        Actions { write: true, ..Actions::default() }
    }

    /// Gives the peer back the places of its large messages whose parts
    /// are all written (or that left the link otherwise).
    fn release_large(&mut self) {
        if let (Some(session), Some(peer)) = (self.session.as_mut(), &self.peer) {
            peer.large.release(session.take_large_done());
        }
    }

    /// A control frame for the peer (directory changes).
    pub(crate) fn control(&mut self, frame: &[u8]) -> Actions {
        if let Some(session) = self.session.as_mut() {
            session.send_encoded_control(frame);
        }
        Actions { write: true, ..Actions::default() }
    }

    /// `watcher` (local) watches `target` on the peer (once per pair).
    pub(crate) fn watch<H: Host + ?Sized>(
        &mut self,
        host: &H,
        target: ActorId,
        name: String,
        watcher: ActorSender,
    ) -> Actions {
        if self.watches.iter().any(|(t, _, w)| *t == target && w.id() == watcher.id()) {
            return Actions::default();
        }
        if let Some(session) = self.session.as_mut() {
            session.watch(target, watcher.id());
        }
        if watcher.node_id() != host.node_id() {
            self.replies.insert(watcher.clone(), self.limits.max_reply_targets);
        }
        self.watches.push((target, name, watcher));
        Actions { write: true, ..Actions::default() }
    }

    /// Sends what the link owes while the window has room; whether it sent
    /// any. The window places are taken at once, for as many as it has.
    fn pay_owed(&mut self) -> bool {
        let (Some(peer), Some(session)) = (&self.peer, self.session.as_mut()) else { return false };
        let mut places = peer.window.try_take_up_to(self.owed.unplaced());
        let paid = places;
        let mut sent = false;
        while let Some(placed) = self.owed.front_placed() {
            if !placed {
                if places == 0 {
                    break;
                }
                places -= 1;
            }
            self.owed.pop_with(|frame, o| send_on(session, frame, o.msg));
            sent = true;
        }
        // Every place taken went to an owed message: there were as many.
        debug_assert_eq!(places, 0, "window places taken and not used");
        if paid > 0 {
            peer.owed.fetch_sub(paid, Ordering::SeqCst);
        }
        sent
    }

    /// Delivers up to `max` deferred messages while the link owes less than
    /// its bound; whether to try again next turn (`max` reached, or a mailbox
    /// was full). Held back by what it owes, it waits for acknowledgements.
    fn deliver_deferred<H: Host + ?Sized>(&mut self, host: &H, max: usize) -> bool {
        let mut n = 0;
        loop {
            if self.owed.len() >= owed_bound(&self.peer) {
                return false;
            }
            if n == max {
                return !self.deferred.is_empty();
            }
            let Some(d) = self.deferred.pop_front() else { return false };
            n += 1;
            let route = d.target.route();
            let reply_to = d.env.reply_to.clone();
            let outcome = route.deliver_held(d.env, Wait::No, d.hold);
            match outcome {
                Ok(()) => {}
                // Its mailbox is full: it stays first in line, for the next turn.
                Err(SendError::Full(msg) | SendError::Timeout(msg)) => {
                    let (env, hold) = (Envelope::new(msg, reply_to), self.inbound.hold(d.bytes, d.receipt));
                    let (target, bytes, receipt) = (d.target, d.bytes, d.receipt);
                    self.deferred.push_front(Deferred { target, env, hold, bytes, receipt });
                    return true;
                }
                // Acknowledged already: the loss is this node's dead letter,
                // and goes back to its sender.
                Err(e) => {
                    let msg = e.into_inner();
                    let reason = UnhandledReason::ActorStopped;
                    if let Some(session) = self.session.as_mut() {
                        if let Some(returned) = Returned::of(&msg, reason) {
                            returned.send(session);
                        }
                        if let Some(seq) = d.receipt {
                            session.handled(seq);
                        }
                    }
                    let dst = msg.header().dst_id();
                    host.dead_letters().report_msg(msg, dst, reason.into());
                }
            }
        }
    }

    // --- The end ---

    /// Adds what the session counted to its peer's counters.
    pub(crate) fn publish_counters(&mut self) {
        let (Some(session), Some(peer)) = (self.session.as_mut(), &self.peer) else { return };
        peer.counters.add(&session.take_counters());
    }

    /// Reports what the link leaves behind now that it is down for `why`,
    /// moves or ends its watches, and says whether to dial it again.
    pub(crate) fn down<H: Host + ?Sized>(
        &mut self,
        host: &H,
        caches: &mut Caches,
        why: &CloseReason,
    ) -> Option<Redial> {
        host.closes().add(&why.key());
        host.budgets().release_read(std::mem::take(&mut self.read_reserved));
        host.budgets().release_read(std::mem::take(&mut self.parts_reserved));
        if let Some(admitted) = self.admitted.take() {
            host.admission().release(admitted);
        }
        if let (Some(peer), CloseReason::HeartbeatTimeout) = (&self.peer, why) {
            peer.counters.heartbeats_missed.fetch_add(1, Ordering::Relaxed);
        }
        let was_up = self.peer.is_some();
        if let Some(session) = self.session.as_mut() {
            // What the session returned before it ended.
            while let Some(event) = session.poll_event() {
                match event {
                    Event::Acked(msgs) => {
                        if let Some(peer) = &self.peer {
                            peer.window.release(msgs.len());
                        }
                    }
                    Event::Nacked { msg, dst, reason, .. } => {
                        if let Some(peer) = &self.peer {
                            peer.window.release(1);
                        }
                        host.dead_letters().report_msg(msg, dst, DeadLetterReason::Nacked(reason));
                    }
                    _ => {}
                }
            }
            // The peer's watches of our actors end with the link.
            for (target, watcher) in session.peer_watches().iter().copied().collect::<Vec<_>>() {
                if let Some(t) = caches.local_actor(host, target) {
                    t.route().unwatch(watcher);
                }
            }
            let mut n = 0;
            for msg in session.take_unacked() {
                n += 1;
                let dst = msg.header().dst_id();
                host.dead_letters().report_msg(msg, dst, DeadLetterReason::Unacknowledged);
            }
            if let Some(peer) = &self.peer {
                peer.window.release(n);
                peer.large.release(session.take_large_done());
            }
        }
        // What it still owed was never sent.
        for o in self.owed.drain() {
            if let Some(peer) = &self.peer {
                peer.give_back(!o.placed);
            }
            let dst = o.msg.header().dst_id();
            host.dead_letters().report_msg(o.msg, dst, DeadLetterReason::NotSent);
        }
        // What it deferred was acknowledged: it goes to its mailbox now
        // (what it owes no longer matters), or is this node's dead letter.
        for d in self.deferred.drain(..) {
            if let Err(e) = d.target.route().deliver_held(d.env, Wait::No, d.hold) {
                host.dead_letters().report_send_error(e);
            }
        }
        self.publish_counters();
        let place = self.place;
        if let Some(peer) = &self.peer {
            // A duplicate that lost leaves the peer to the other link.
            for gone in host.nodes().link_lost(peer, place).unwrap_or_default() {
                gone.mark_removed();
            }
        }
        let reason =
            if why.is_peer_shutdown() { TerminationReason::Shutdown } else { TerminationReason::LinkDown };
        // The node is still linked through another link (this was a duplicate).
        let still_linked = self.peer.as_ref().is_some_and(|p| p.is_up() && p.place() != place);
        match self.peer.as_ref().filter(|_| still_linked) {
            // Watches move to the other link.
            Some(peer) => {
                for (target, target_name, watcher) in self.watches.drain(..) {
                    peer.executor().push(PeerCommand::Watch {
                        peer: peer.clone(),
                        target,
                        target_name,
                        watcher,
                    });
                }
            }
            None => {
                for (target, name, watcher) in self.watches.drain(..) {
                    if let Err(e) = watcher.try_send(Terminated::new(target, name, reason)) {
                        host.dead_letters().report_send_error(e);
                    }
                }
            }
        }
        // This node dialed a newer link to the same peer, which either end
        // kept instead of this one: that link is the answer, and its own
        // loss is what would be redialed. (The peer's word for it can come
        // before the newer link is up here: redialing then replaced the
        // newer link in turn, losing what it carried, again and again.)
        let replaced = matches!(why, CloseReason::Replaced | CloseReason::Peer(PeerCloseReason::Replaced));
        if let Some(w) = self.waiter.take() {
            // Our link lost to the node's own dial: the kept one answers.
            if let (Some(peer), true) = (&self.peer, why.is_duplicate() || replaced) {
                host.nodes().await_directory(peer, w);
                return None;
            }
            let addr = self.dial.as_ref().map(ToString::to_string).unwrap_or_default();
            let _ = w.send(Err(ManagerError::Connect { addr, reason: why.to_string() }));
            return None; // the caller of connect decides what to do next
        }
        // A link that lost to another one to the same node is not redialed:
        // the kept link's dialer redials that one if it goes down.
        let addr = self.dial.take()?;
        let redials = !matches!(why, CloseReason::Duplicate | CloseReason::Shutdown) && !replaced;
        if redials && !(why.is_duplicate() && still_linked) && !host.is_stopping() {
            let attempt = if was_up { 0 } else { self.attempt + 1 };
            return Some(Redial { addr, attempt });
        }
        None
    }
}

/// A message for a link that no longer carries `peer`: it was never sent
/// (`owed`) or its fate is unknown.
/// A message larger than a frame for a link that is gone.
pub(crate) fn not_sent_large<H: Host + ?Sized>(host: &H, peer: &Peer, msg: BoxMsg) {
    peer.give_back_large();
    let dst = msg.header().dst_id();
    host.dead_letters().report_msg(msg, dst, DeadLetterReason::Unacknowledged);
}

pub(crate) fn not_sent<H: Host + ?Sized>(host: &H, peer: &Peer, msg: BoxMsg, owed: bool) {
    peer.give_back(owed);
    let dst = msg.header().dst_id();
    let why = if owed { DeadLetterReason::NotSent } else { DeadLetterReason::Unacknowledged };
    host.dead_letters().report_msg(msg, dst, why);
}

/// A watch across a link that is gone: the watcher hears `LinkDown` at once.
pub(crate) fn watch_refused<H: Host + ?Sized>(
    host: &H,
    target: ActorId,
    name: String,
    watcher: &ActorSender,
) {
    if let Err(e) = watcher.try_send(Terminated::new(target, name, TerminationReason::LinkDown)) {
        host.dead_letters().report_send_error(e);
    }
}

/// A connect that failed before it had a link: its caller hears why, or
/// (a redial) it is dialed again after `attempt + 1` failures.
pub(crate) fn dial_failed<H: Host + ?Sized>(
    host: &H,
    addr: Addr,
    waiter: Option<Waiter>,
    attempt: u32,
    why: &CloseReason,
) -> Option<Redial> {
    match waiter {
        Some(w) => {
            let _ = w.send(Err(ManagerError::Connect { addr: addr.to_string(), reason: why.to_string() }));
            None
        }
        None if !host.is_stopping() => {
            debug!(%addr, attempt, reason = %why, "redial failed");
            Some(Redial { addr, attempt: attempt + 1 })
        }
        None => None,
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
    if frame.len() > session.config().max_frame {
        session.send_large(frame.to_vec(), Vec::new(), msg);
    } else {
        session.send_msg(frame, msg);
    }
}

/// Owed messages past which a link delivers nothing more of what its peer
/// sends (it defers it): a window's worth.
fn owed_bound(peer: &Option<Arc<Peer>>) -> usize {
    peer.as_ref().map_or(usize::MAX, |p| p.window.capacity())
}

/// What delivering a message needs of its link (all but its session,
/// which the message's body borrows).
struct LinkParts<'a> {
    peer: &'a Option<Arc<Peer>>,
    remote: &'a HashMap<ActorId, Known>,
    replies: &'a ReplyTargets,
    inbound: &'a Arc<Inbound>,
    local: Option<&'a LocalPool>,
    watches: &'a mut Vec<(ActorId, String, ActorSender)>,
    last_src: &'a mut Option<ActorSender>,
    /// Where the message goes instead of its mailbox, if the link defers
    /// delivery (it owes its peer a window of replies).
    defer: Option<&'a mut VecDeque<Deferred>>,
}

/// Delivers a message read from a link, or says why it is refused.
fn on_msg<H: Host + ?Sized>(
    host: &H,
    caches: &mut Caches,
    link: &mut LinkParts<'_>,
    h: &FrameHeader,
    body: &[u8],
    shared: Option<&bytes::Bytes>,
) -> Result<Delivered, (NackReason, String)> {
    let LinkParts { peer, remote, replies, inbound, local: local_pool, watches, last_src, defer } = link;
    let is_terminated = h.msg_id == Terminated::msg_id();
    // Where replies go, first: finding it may fill the actor cache, which
    // the destination is then borrowed from (no reference counted) until
    // it is delivered. A sender's messages come in runs: its route is
    // made once per run.
    let reply_to = match last_src {
        Some(last) if last.id() == h.src => Some(last.clone()),
        _ => {
            let route = reply_route(host, caches, peer.as_ref(), remote, replies, h.src);
            last_src.clone_from(&route);
            route
        }
    };
    let Caches { actors, decoders, burst } = caches;
    if let Some(pool) = local_pool
        && defer.is_none()
        && let Some(run) = burst.run_for(host, h, inbound)
    {
        let msg = decode(run.info, h, body, shared).map_err(|e| (NackReason::BadBody, e.to_string()))?;
        let (slot, generation) = (run.cell.slot, run.cell.generation);
        let env = Envelope::new(msg, reply_to);
        burst.items.push(ToHandle { slot, generation, env, hold: pool.hold(None) });
        return Ok(Delivered::Acked);
    }
    // The directory's version for the run recorded below: if the
    // directory changes before `get` looks, this one is older than what
    // `get` found, and that run is never continued (never the wrong way).
    let dir_version = actors.refresh(host);
    let (target, here, local) = match actors.get(host, h.dst) {
        Some(t) => (&t.sender, t.here.as_ref(), true),
        None => (replies.map.get(&h.dst).ok_or((NackReason::UnknownDst, String::new()))?, None, false),
    };
    if !target.accepts(h.msg_id) && !is_terminated {
        return Err((NackReason::UnknownMsg, String::new()));
    }
    let info = decoders.get(host, h.msg_id);
    let msg = match info {
        Some(info) => decode(info, h, body, shared).map_err(|e| (NackReason::BadBody, e.to_string()))?,
        // An address with no protocols of its own (an ask, an inbox)
        // takes what this process cannot decode as it came.
        None if !local => {
            Box::new(RawMsg::new(MsgHeader::with_ids(h.msg_id, h.dst, h.src, h.corr), body.to_vec()))
        }
        None => return Err((NackReason::UnknownMsg, "no decoder for this message here".into())),
    };
    // The watched actor is named in the body: a `Terminated` is sent by nobody.
    if let Some(end) = msg.downcast_ref::<Terminated>() {
        watches.retain(|(t, _, w)| !(*t == end.actor && w.id() == h.dst));
    }
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
    let hold = match local_pool {
        // Handled on this thread: a hold that counts no reference. A link
        // moves to another executor only when adopted, which gives it the
        // pool of its new thread.
        Some(pool) if !route.keeps_hold() => {
            debug_assert!(pool.is_current(), "a link's local pool is its executor's");
            if let Some(cell) = here
                && receipt.is_none()
                && !cell.is_bounded()
                && burst.admits(cell, inbound)
            {
                let (slot, generation) = (cell.slot, cell.generation);
                burst.items.push(ToHandle { slot, generation, env, hold: pool.hold(None) });
                if let Some(info) = info
                    && !is_terminated
                {
                    burst.run = Some(BurstRun {
                        dst: h.dst,
                        msg_id: h.msg_id,
                        dir_version,
                        decoders_version: decoders.version,
                        cell: cell.clone(),
                        info,
                    });
                }
                return Ok(delivered);
            }
            pool.hold(receipt)
        }
        _ => inbound.hold(bytes, receipt),
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

/// The message of frame `h`, decoded by `info` from `body`: the blobs of
/// one that came in parts (`shared`, the whole of it) are slices of it.
fn decode(
    info: protocol::MsgInfo,
    h: &FrameHeader,
    body: &[u8],
    shared: Option<&bytes::Bytes>,
) -> Result<BoxMsg, protocol::DecodeError> {
    let header = MsgHeader::with_ids(h.msg_id, h.dst, h.src, h.corr);
    match shared {
        Some(buf) => msg_header::with_shared_body(buf, || info.decode(header, body)),
        None => info.decode(header, body),
    }
}

/// Where replies to a message from `src` go. Usually an actor of the
/// peer; but a peer may pass on an address of ours (an ask's, an
/// actor's), and then the reply stays here rather than crossing the link
/// twice (and finding its window full on the way).
fn reply_route<H: Host + ?Sized>(
    host: &H,
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
    if let Some(ours) = caches.actors.get(host, src) {
        return Some(ours.sender.clone());
    }
    Some(RemoteRoute::sender(peer?.clone(), src, format!("{src}"), Vec::new(), None))
}
