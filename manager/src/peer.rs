//! Linked nodes as senders see them, and the routes to their actors.
//!
//! A peer reaches the executor of its link only through
//! [`Mailbox<PeerCommand>`]: the three things a sender asks of a link.
//! Frames written by handlers running on that executor skip even that:
//! they go into the thread's [outbox](outbox), which the link takes
//! when the handler returns.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use actor::{ActorSender, Envelope, Route, SendError, SystemError, Terminated, TerminationReason, Wait};
use connection::{FrameError, FrameHeader, FrameKind, Incarnation, LinkLimits, encode_msg_split};
use msg_header::{ActorId, BoxMsg, MsgId, NodeId};
use protocol::ProtocolId;
use tracing::warn;

use crate::ManagerError;
use crate::capacity::{Capacity, Refusal};
use crate::stats::LinkCounters;
use crate::sync::Mailbox;

/// A `connect` call waiting for its link's directory.
pub(crate) type Waiter = crossbeam_channel::Sender<Result<PeerInfo, ManagerError>>;

/// A linked node, as [`Manager::connect`](crate::Manager::connect) and
/// [`Manager::peers`](crate::Manager::peers) report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The node.
    pub node_id: NodeId,
    /// Its name (`NAME@NODE` finds its actor `NAME`).
    pub node_name: String,
    /// The executor that runs the link: place an actor there to have its
    /// sends written without a hand-off.
    pub executor: usize,
    /// Whether the link is up now.
    pub up: bool,
}

/// What a sender asks of the executor of a peer's link.
pub(crate) enum PeerCommand {
    /// Write a message frame: already counted in the peer's window, or
    /// `owed` (to send once the window has room).
    Send { peer: Arc<Peer>, frame: Vec<u8>, msg: BoxMsg, reply_to: Option<ActorSender>, owed: bool },
    /// Write a message larger than a frame, in parts: counted in the
    /// peer's window and in its messages going in parts (never owed).
    /// Its encoding is `head` (header and body up to the blobs' bytes) and
    /// the `blobs` that follow it.
    SendLarge {
        peer: Arc<Peer>,
        head: Vec<u8>,
        blobs: Vec<msg_header::Bytes>,
        msg: BoxMsg,
        reply_to: Option<ActorSender>,
    },
    /// Write a control frame.
    Control { peer: Arc<Peer>, frame: Vec<u8> },
    /// Ask the peer to tell `watcher` when `target` ends.
    Watch { peer: Arc<Peer>, target: ActorId, target_name: String, watcher: ActorSender },
}

/// Why a link is closed for another one to the same node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkReplaced {
    /// Both nodes dialed at once; the other link is kept (`duplicate`).
    Duplicate,
    /// The node dialed again, or restarted (a new incarnation): the newer
    /// link carries its traffic from now on (`replaced`).
    Newer,
}

/// Messages larger than a frame a link holds queued at most (their
/// encodings: each at most `LinkLimits::max_message`).
pub(crate) const LARGE_QUEUED: usize = 2;

/// The executors a peer's link may live on, by index.
pub(crate) type LinkMailboxes = Arc<[Arc<dyn Mailbox<PeerCommand>>]>;

/// Where a peer's current link lives: its executor and its key there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) executor: usize,
    pub(crate) key: usize,
}

impl Place {
    fn pack(self) -> u64 {
        ((self.executor as u64) << 32) | (self.key as u64 & 0xffff_ffff)
    }

    fn unpack(v: u64) -> Self {
        Self { executor: (v >> 32) as usize, key: (v & 0xffff_ffff) as usize }
    }
}

/// Who dialed a link, and the dial number it gave it (see
/// [`connection::client_nonce`]): settles which of two links is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dialed {
    pub(crate) by: NodeId,
    pub(crate) dial: u64,
}

/// A linked node (one incarnation of it): whether its link is up, the
/// window of messages sent to it and not yet acknowledged, where its link is.
pub(crate) struct Peer {
    pub(crate) node_id: NodeId,
    pub(crate) incarnation: Incarnation,
    /// Order of first contact: the directory lists peers' actors by it.
    pub(crate) rank: u64,
    /// Who dialed the current link, and its dial number.
    pub(crate) dialed: RwLock<Dialed>,
    node_name: RwLock<String>,
    /// `connect` calls whose own link lost to another one to this node:
    /// answered when the kept link has its directory.
    pub(crate) waiters: std::sync::Mutex<Vec<Waiter>>,
    /// Whether the current link has had the node's full directory.
    pub(crate) has_directory: AtomicBool,
    pub(crate) up: AtomicBool,
    pub(crate) window: Capacity,
    /// Messages sent from handlers while the window was full, kept by the
    /// link to send as acknowledgements come (at most `max_owed`): past the
    /// window the link reads no more from its peer (its requests wait in
    /// TCP); past `max_owed` a handler's send is `Full`.
    pub(crate) owed: AtomicUsize,
    /// Messages larger than a frame queued for the link and not yet all
    /// written ([`LARGE_QUEUED`] at most): a sender of large messages
    /// waits for the link, as for the window, and its encodings held at
    /// once are bounded.
    pub(crate) large: Capacity,
    pub(crate) counters: LinkCounters,
    place: AtomicU64,
    executors: LinkMailboxes,
    /// The largest encoded message: the largest body and a frame header.
    max_encoded: usize,
    /// The largest frame: a message encoded larger goes in parts.
    max_frame: usize,
    /// Messages owed at most ([`LinkLimits::owed_windows`] windows).
    max_owed: usize,
}

impl Peer {
    pub(crate) fn new(
        node_id: NodeId,
        incarnation: Incarnation,
        rank: u64,
        executors: LinkMailboxes,
        limits: &LinkLimits,
    ) -> Self {
        Self {
            node_id,
            incarnation,
            rank,
            dialed: RwLock::new(Dialed::default()),
            node_name: RwLock::new(node_id.to_string()),
            waiters: std::sync::Mutex::new(Vec::new()),
            has_directory: AtomicBool::new(false),
            up: AtomicBool::new(false),
            window: Capacity::new(limits.window),
            owed: AtomicUsize::new(0),
            large: Capacity::new(LARGE_QUEUED),
            counters: LinkCounters::default(),
            place: AtomicU64::new(0),
            executors,
            max_encoded: limits
                .max_message
                .max(limits.max_frame)
                .saturating_add(connection::FRAME_HEADER_LEN),
            max_frame: limits.max_frame,
            max_owed: limits.window.saturating_mul(limits.owed_windows),
        }
    }

    pub(crate) fn node_name(&self) -> String {
        self.node_name.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_node_name(&self, name: String) {
        *self.node_name.write().unwrap_or_else(|e| e.into_inner()) = name;
    }

    /// What `Manager::peers` says of this peer.
    pub(crate) fn info(&self) -> PeerInfo {
        PeerInfo {
            node_id: self.node_id,
            node_name: self.node_name(),
            executor: self.place().executor,
            up: self.is_up(),
        }
    }

    pub(crate) fn place(&self) -> Place {
        Place::unpack(self.place.load(Ordering::Acquire))
    }

    /// The link at `place` carries this peer's traffic from now on.
    pub(crate) fn link_up(&self, place: Place, dialed: Dialed) {
        self.has_directory.store(false, Ordering::SeqCst);
        *self.dialed.write().unwrap_or_else(|e| e.into_inner()) = dialed;
        self.place.store(place.pack(), Ordering::Release);
        self.up.store(true, Ordering::SeqCst);
    }

    /// The link is down: refuse sends, wake those waiting for the window.
    pub(crate) fn link_down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.window.wake_all();
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// The executor of the current link.
    pub(crate) fn executor(&self) -> &Arc<dyn Mailbox<PeerCommand>> {
        let place = self.place();
        // `place.executor` always indexes `executors`: it is set from an
        // executor's own index.
        &self.executors[place.executor.min(self.executors.len() - 1)]
    }

    /// A message larger than a frame, that took its places, will not be sent.
    pub(crate) fn give_back_large(&self) {
        self.window.release(1);
        self.large.release(1);
    }

    /// A message that took a window place (or was owed) will not be sent.
    pub(crate) fn give_back(&self, owed: bool) {
        if owed {
            self.owed.fetch_sub(1, Ordering::SeqCst);
        } else {
            self.window.release(1);
        }
    }

    /// Queues a control frame (not counted in the window) for the link.
    pub(crate) fn send_control(self: &Arc<Self>, frame: Vec<u8>) {
        if self.is_up() {
            self.executor().push(PeerCommand::Control { peer: self.clone(), frame });
        }
    }
}

/// The route to an actor on a linked node: sends encode the message into a
/// frame on the calling thread and hand it to the executor of the link.
pub(crate) struct RemoteRoute {
    pub(crate) peer: Arc<Peer>,
    pub(crate) id: ActorId,
    pub(crate) name: String,
    pub(crate) protocols: Vec<ProtocolId>,
    /// Sorted; `None` when unknown (an address resolved from a message):
    /// then the peer decides and refuses with a NACK.
    pub(crate) msgs: Option<Vec<MsgId>>,
    /// Gone from the peer's directory.
    pub(crate) removed: AtomicBool,
}

impl RemoteRoute {
    pub(crate) fn new(
        peer: Arc<Peer>,
        id: ActorId,
        name: String,
        protocols: Vec<ProtocolId>,
        msgs: Option<Vec<MsgId>>,
    ) -> Arc<Self> {
        let msgs = msgs.map(|mut m| {
            m.sort_unstable();
            m
        });
        Arc::new(Self { peer, id, name, protocols, msgs, removed: AtomicBool::new(false) })
    }

    /// An address through a route of its own.
    pub(crate) fn sender(
        peer: Arc<Peer>,
        id: ActorId,
        name: String,
        protocols: Vec<ProtocolId>,
        msgs: Option<Vec<MsgId>>,
    ) -> ActorSender {
        ActorSender::from_route(Self::new(peer, id, name, protocols, msgs))
    }

    /// The actor left its node's directory: sends to it are refused.
    pub(crate) fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
    }
}

impl RemoteRoute {
    /// Counts one more owed message, if under the cap.
    fn owe(&self, peer: &Peer) -> bool {
        let cap = peer.max_owed;
        peer.owed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < cap).then_some(n + 1)).is_ok()
    }

    /// Hands a message larger than a frame (`frame`, its encoding) to the
    /// link, once it has a place among the link's large messages (waiting
    /// as `wait` says). A handler's that met a full window is `Full`: only
    /// small messages are owed.
    fn send_large(
        &self,
        head: Vec<u8>,
        blobs: Vec<msg_header::Bytes>,
        env: Envelope,
        owed: bool,
        wait: Wait,
    ) -> Result<(), SendError> {
        let peer = &self.peer;
        if owed {
            peer.give_back(true);
            return Err(SendError::Full(env.msg));
        }
        if let Err(refusal) = peer.large.take(wait, &peer.up) {
            peer.window.release(1);
            return Err(refusal.into_error(env.msg));
        }
        let (msg, reply_to) = (env.msg, env.reply_to);
        peer.executor().push(PeerCommand::SendLarge { peer: peer.clone(), head, blobs, msg, reply_to });
        Ok(())
    }

    fn not_encoded(&self, msg: BoxMsg, e: FrameError, owed: bool) -> Result<(), SendError> {
        if owed {
            self.peer.owed.fetch_sub(1, Ordering::SeqCst);
        } else {
            self.peer.window.release(1);
        }
        warn!(msg = msg.name(), dst = %self.name, error = %e, "message not encoded");
        match e {
            FrameError::TooLarge { .. } => Err(SendError::TooLarge(msg)),
            _ => Err(SendError::Encode(msg)),
        }
    }
}

impl Route for RemoteRoute {
    fn actor_id(&self) -> ActorId {
        self.id
    }

    fn actor_name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, msg_id: MsgId) -> bool {
        self.msgs.as_ref().is_none_or(|m| m.binary_search(&msg_id).is_ok())
    }

    fn speaks(&self, protocol: ProtocolId) -> bool {
        self.protocols.contains(&protocol)
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn node_id(&self) -> NodeId {
        self.peer.node_id
    }

    fn deliver(&self, env: Envelope, wait: Wait) -> Result<(), SendError> {
        let peer = &self.peer;
        if self.removed.load(Ordering::Acquire) || !peer.is_up() {
            return Err(SendError::Disconnected(env.msg));
        }
        let Some(wire) = env.msg.as_wire() else { return Err(SendError::NotSerializable(env.msg)) };
        let h = *env.msg.header();
        let header = FrameHeader {
            msg_id: h.msg_id(),
            dst: self.id,
            src: h.src_id(),
            corr: h.corr_id(),
            ..FrameHeader::new(FrameKind::Msg)
        };
        // A handler (which must not wait) that meets a full window owes the
        // message: its link keeps it and sends it as acknowledgements come,
        // reading nothing more from the peer meanwhile (so a peer that
        // pipelines requests gets every reply, in order).
        let on_executor = actor::on_executor_thread();
        let owed = if on_executor && peer.owed.load(Ordering::Relaxed) > 0 && self.owe(peer) {
            // Behind what the link owes already: it takes its window place
            // when it is paid, with the others.
            true
        } else {
            match peer.window.take(wait, &peer.up) {
                Ok(()) => false,
                Err(Refusal::Full) if on_executor && self.owe(peer) => true,
                Err(refusal) => return Err(refusal.into_error(env.msg)),
            }
        };
        // Up to the largest message: one larger than a frame goes in parts,
        // from its blobs (not copied here).
        let encode =
            |out: &mut Vec<u8>| encode_msg_split(&header, wire, peer.max_frame, peer.max_encoded, out);
        let executor = peer.executor();
        // On the link's own executor: straight into the outbox, no hand-off.
        if executor.is_current() {
            let mut blobs = Vec::new();
            let written = outbox::write(|out| encode(out).map(|b| blobs = b));
            match written {
                Some(Ok(span)) if span.1 - span.0 > peer.max_frame || !blobs.is_empty() => {
                    return self.send_large(outbox::take_last(span), blobs, env, owed, wait);
                }
                Some(Ok(span)) => {
                    outbox::commit(peer, span, env.msg, env.reply_to, owed);
                    return Ok(());
                }
                Some(Err(e)) => return self.not_encoded(env.msg, e, owed),
                None => {}
            }
        }
        let mut frame = Vec::with_capacity(128);
        let blobs = match encode(&mut frame) {
            Ok(blobs) => blobs,
            Err(e) => return self.not_encoded(env.msg, e, owed),
        };
        if frame.len() > peer.max_frame || !blobs.is_empty() {
            return self.send_large(frame, blobs, env, owed, wait);
        }
        let (msg, reply_to) = (env.msg, env.reply_to);
        executor.push(PeerCommand::Send { peer: peer.clone(), frame, msg, reply_to, owed });
        Ok(())
    }

    fn when_room(&self, note: Envelope, to: ActorSender) -> Result<(), SendError> {
        self.peer.window.when_room(to, note.msg)
    }

    /// As for a local actor that has ended: on a link that is down, the
    /// watcher is told `LinkDown` at once (as it is when the link goes
    /// down while the watch is on its way).
    fn watch(&self, watcher: ActorSender) -> Result<(), SystemError> {
        let peer = &self.peer;
        if !peer.is_up() {
            let ended = Terminated::new(self.id, self.name.clone(), TerminationReason::LinkDown);
            // Only a watcher that ended meanwhile, or an inbox that is full,
            // refuses it; nothing here reports dead letters: say so.
            if let Err(e) = watcher.try_send(ended) {
                tracing::error!(watcher = watcher.name(), error = %e, "LinkDown not delivered");
            }
            return Ok(());
        }
        peer.executor().push(PeerCommand::Watch {
            peer: peer.clone(),
            target: self.id,
            target_name: self.name.clone(),
            watcher,
        });
        Ok(())
    }
}

/// Frames written by handlers running on the executor that owns their link:
/// encoded straight into a buffer of the thread, moved to the link when the
/// handler returns, with no hand-off through the mailbox. A handler's sends
/// come in runs to one peer: the peer is counted once per run, and its link
/// takes a run at once.
pub(crate) mod outbox {
    use std::cell::RefCell;
    use std::sync::Arc;

    use actor::ActorSender;
    use msg_header::BoxMsg;

    use super::Peer;

    /// One frame in the outbox: `bytes[start..end]`.
    pub(crate) struct Item {
        pub(crate) start: usize,
        pub(crate) end: usize,
        pub(crate) msg: BoxMsg,
        pub(crate) reply_to: Option<ActorSender>,
        /// Owed to a full window (not counted in it).
        pub(crate) owed: bool,
    }

    /// Items for one peer, one after another: from `first` to the next
    /// run's first.
    pub(crate) struct Run {
        pub(crate) peer: Arc<Peer>,
        pub(crate) first: usize,
    }

    /// The frames written on this thread and not yet moved to their links.
    #[derive(Default)]
    pub(crate) struct Outbox {
        pub(crate) bytes: Vec<u8>,
        pub(crate) items: Vec<Item>,
        pub(crate) runs: Vec<Run>,
    }

    thread_local! {
        static OUTBOX: RefCell<Outbox> =
            const { RefCell::new(Outbox { bytes: Vec::new(), items: Vec::new(), runs: Vec::new() }) };
    }

    /// Appends the frame `encode` writes; its span, to [`commit`] at once.
    /// `None` if the outbox is in use (a send made while it is being emptied).
    pub(crate) fn write<E>(
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Option<Result<(usize, usize), E>> {
        OUTBOX.with(|o| {
            let mut o = o.try_borrow_mut().ok()?;
            let start = o.bytes.len();
            Some(match encode(&mut o.bytes) {
                Ok(()) => Ok((start, o.bytes.len())),
                Err(e) => {
                    o.bytes.truncate(start);
                    Err(e)
                }
            })
        })
    }

    /// Takes out the frame [`write`] just wrote (a message too large for a
    /// frame): without a copy when it is all the outbox holds.
    pub(crate) fn take_last((start, _): (usize, usize)) -> Vec<u8> {
        OUTBOX.with(|o| {
            let Ok(mut o) = o.try_borrow_mut() else { return Vec::new() };
            if start == 0 { std::mem::take(&mut o.bytes) } else { o.bytes.split_off(start) }
        })
    }

    /// Records the frame [`write`] just wrote as `msg`'s, for `peer`.
    pub(crate) fn commit(
        peer: &Arc<Peer>,
        (start, end): (usize, usize),
        msg: BoxMsg,
        reply_to: Option<ActorSender>,
        owed: bool,
    ) {
        OUTBOX.with(|o| {
            if let Ok(mut o) = o.try_borrow_mut() {
                let Outbox { items, runs, .. } = &mut *o;
                if runs.last().is_none_or(|r| !Arc::ptr_eq(&r.peer, peer)) {
                    runs.push(Run { peer: peer.clone(), first: items.len() });
                }
                items.push(Item { start, end, msg, reply_to, owed });
            }
        });
    }

    /// Whether anything waits in the outbox.
    pub(crate) fn is_empty() -> bool {
        OUTBOX.with(|o| o.try_borrow().is_ok_and(|o| o.items.is_empty()))
    }

    /// Takes what is in the outbox, leaving it empty (its buffer is kept by
    /// the caller and handed back with [`give_back`]).
    pub(crate) fn take() -> Outbox {
        OUTBOX.with(|o| o.try_borrow_mut().map(|mut o| std::mem::take(&mut *o)).unwrap_or_default())
    }

    /// Bytes of its buffer an outbox keeps once emptied: one that held a
    /// message sent in parts gives the rest back.
    const KEEP: usize = 1 << 20;

    /// Hands back an emptied outbox, so its buffers are reused.
    pub(crate) fn give_back(mut outbox: Outbox) {
        outbox.bytes.clear();
        outbox.bytes.shrink_to(KEEP);
        outbox.items.clear();
        outbox.runs.clear();
        OUTBOX.with(|o| {
            if let Ok(mut o) = o.try_borrow_mut()
                && o.items.is_empty()
                && o.bytes.capacity() < outbox.bytes.capacity()
            {
                *o = outbox;
            }
        });
    }
}
