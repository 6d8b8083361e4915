//! The driver of an executor's links: it accepts, dials and redials,
//! reads and writes their streams, follows readiness and runs their
//! timers. Every decision about a link's frames and messages is its
//! [`LinkCore`]'s (`link`): the driver moves bytes through it and carries
//! out the [`Actions`] it returns. What needs the streams stays here: the
//! read budget per turn, pausing reads, the caps on links and pending
//! handshakes, the listener's backoff. Everything here runs on the
//! executor's thread; no other thread touches a link.
//!
//! Where links come from (listeners, dials and redials) is `listen`;
//! following readiness and reading is `read`; adding up what the links
//! hold for the node's budgets, and carrying out what the budgets' watch
//! says, is `budgets`; the rest is here.

mod budgets;
mod listen;
mod read;

use listen::ListenerState;

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor::{ActorSender, LocalPool};
use connection::{CloseReason, PeerHello, ProtocolError};
use mio::{Interest, Registry, Token};
use msg_header::{ActorId, BoxMsg};
use slab::Slab;
use tracing::{debug, info, warn};

use crate::Addr;
use crate::budget;
use crate::link::{self, Actions, Caches, Inbound, LinkCommand, LinkCore, Origin, Redial, ToHandle};
use crate::peer::{LinkReplaced, Peer, PeerCommand, Place, Waiter, outbox};
use crate::sync::Mailbox;
use crate::throttle::{Throttle, warn_throttled};
use crate::transport::{Listener, Stream};

/// The manager, as its links' driver sees it: the core's view, and what
/// places links on executors and caps them.
pub(crate) trait Host: link::Host {
    /// Repeated warnings, each kind once an interval.
    fn throttle(&self) -> &Throttle;
    /// The executor the next link runs on.
    fn next_link_executor(&self) -> usize;
    /// Queues `cmd` for the links of executor `index`.
    fn push_to(&self, index: usize, cmd: NetCommand);
}

/// What an executor is asked to do with its streams and links.
pub(crate) enum NetCommand {
    /// Serve a listening socket.
    AddListener(Listener),
    /// Take over a stream, accepted or dialed (boxed, as `Dial`'s address:
    /// every command is as large as the largest, and these are rare).
    AddStream { stream: Box<Stream>, origin: Box<Origin> },
    /// Dial `addr`.
    Dial { addr: Box<Addr>, waiter: Option<Waiter> },
    /// Close the link at `place` if it still carries `peer`.
    CloseLink { peer: Arc<Peer>, place: Place, reason: LinkReplaced },
    /// What a link's inbound messages ask of it.
    Link(LinkCommand),
    /// Take over a link whose handshake another executor (the handshake
    /// executor) did: it is up with this peer.
    Adopt(Handoff),
}

/// A link whose handshake is done, on its way to its link executor.
pub(crate) struct Handoff {
    link: Box<Link>,
    hello: PeerHello,
}

/// One link, owned by its executor: its stream and its core.
pub(crate) struct Link {
    stream: Stream,
    core: LinkCore,
    /// The stream takes writes (until one would block).
    writable: bool,
    /// Its stream is polled (no readiness events): asked once, kept.
    polled: bool,
    /// Its last read ended for the turn's budget, not for want of bytes:
    /// it is read again next turn, and what it read is acknowledged then,
    /// at the burst's end (or every `ack_every` messages), not at every
    /// flush (an ACK per turn of 64 messages took about 8% of a TCP
    /// receiver's CPU).
    reading_on: bool,
}

/// How often a busy executor adds its links' counters to their peers'
/// (which `Manager::stats` reads): every this many flushes, and whenever
/// it is about to sleep. Once per read and write, the atomic additions
/// cost a round trip about 0.1 µs.
const PUBLISH_EVERY_FLUSHES: u32 = 256;

enum Io {
    Listener(ListenerState),
    Link(Box<Link>),
}

/// A link to dial again at `at`.
struct Scheduled {
    at: Instant,
    redial: Redial,
}

/// The streams of one executor.
pub(crate) struct Net {
    index: usize,
    handle: Arc<dyn Mailbox<LinkCommand>>,
    io: Slab<Io>,
    redials: Vec<Scheduled>,
    caches: Caches,
    /// Links with bytes to write.
    dirty: Vec<usize>,
    /// Links whose write budget ran out with more to write and room for
    /// it: written again at the next flush.
    write_again: Vec<usize>,
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
    handoffs: Vec<(usize, PeerHello)>,
    next_id: u64,
    /// Something changed that moves the next timer (a link, a redial).
    timers_changed: bool,
    /// Links whose streams are polled (their bytes come with no event).
    polled: usize,
    /// Their keys, gathered anew on each look (kept for its allocation).
    polled_keys: Vec<usize>,
    /// This executor's watch over the node's budgets.
    budgets: budget::Watch,
}

/// Tokens: 0 is the executor's waker; io `k` is `k + 1`.
fn token(key: usize) -> Token {
    Token(key + 1)
}

impl Net {
    pub(crate) fn new(index: usize, handle: Arc<dyn Mailbox<LinkCommand>>) -> Self {
        Self {
            index,
            handle,
            io: Slab::new(),
            redials: Vec::new(),
            caches: Caches::default(),
            dirty: Vec::new(),
            write_again: Vec::new(),
            ready: Vec::new(),
            downs: Vec::new(),
            pending: VecDeque::new(),
            closing: Vec::new(),
            flushes: 0,
            handoffs: Vec::new(),
            next_id: 0,
            timers_changed: false,
            polled: 0,
            polled_keys: Vec::new(),
            budgets: budget::Watch::default(),
        }
    }

    /// Whether the next timer may have moved since [`timers`](Self::timers) ran.
    pub(crate) fn timers_changed(&self) -> bool {
        self.timers_changed
    }

    pub(crate) fn has_io(&self) -> bool {
        !self.io.is_empty() || !self.redials.is_empty()
    }

    /// Whether a link of this executor has a polled stream (shared memory).
    pub(crate) fn has_polled(&self) -> bool {
        self.polled > 0
    }

    /// Whether links wait to be read again without a readiness event.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty() || !self.write_again.is_empty()
    }

    /// What its links read for this executor's actors (see
    /// `link::Burst`), in the order read; give the emptied vector back with
    /// [`give_back_burst`](Self::give_back_burst).
    pub(crate) fn take_burst(&mut self) -> Option<Vec<ToHandle>> {
        (self.caches.burst_len() > 0).then(|| self.caches.take_burst())
    }

    pub(crate) fn give_back_burst(&mut self, emptied: Vec<ToHandle>) {
        self.caches.give_back_burst(emptied);
    }

    fn link(&mut self, key: usize) -> Option<&mut Link> {
        match self.io.get_mut(key) {
            Some(Io::Link(link)) => Some(link),
            _ => None,
        }
    }

    /// The link at `key` and the executor's caches, to call its core.
    fn core(&mut self, key: usize) -> Option<(&mut LinkCore, &mut Caches)> {
        match self.io.get_mut(key) {
            Some(Io::Link(link)) => Some((&mut link.core, &mut self.caches)),
            _ => None,
        }
    }

    /// Link `id` at `key`, if it is still there (slab keys are reused).
    fn link_of(&mut self, key: usize, id: u64) -> Option<&mut Link> {
        self.link(key).filter(|l| l.core.id() == id)
    }

    /// Carries out what a link's core asked for.
    fn apply<H: Host + ?Sized>(&mut self, host: &H, key: usize, actions: Actions) {
        let Actions { write, write_now, again, up, handoff, down, replaces } = actions;
        if write {
            self.dirty.push(key);
        }
        if again {
            self.ready.push(key);
        }
        if up {
            if let Some(id) = self.link(key).map(|l| l.core.id()) {
                self.pending.retain(|(_, p)| *p != id);
            }
            self.timers_changed = true;
        }
        if let Some(old) = replaces {
            let (peer, place, reason) = (old.peer, old.place, old.reason);
            host.push_to(place.executor, NetCommand::CloseLink { peer, place, reason });
        }
        if let Some(hello) = handoff {
            self.handoffs.push((key, hello));
        }
        if let Some(reason) = down {
            self.downs.push((key, reason));
        }
        if write_now {
            self.write(host, key);
        }
    }

    /// Does what the executor was asked to with its streams and links.
    pub(crate) fn execute<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry, cmd: NetCommand) {
        match cmd {
            NetCommand::AddListener(listener) => self.add_listener(registry, listener),
            NetCommand::AddStream { stream, origin } => self.add_stream(host, registry, *stream, *origin),
            NetCommand::Dial { addr, waiter } => {
                self.dial(host, registry, Redial { addr: *addr, attempt: 0 }, waiter)
            }
            NetCommand::CloseLink { peer, place, reason } => {
                if let Some((core, caches)) = self.core(place.key) {
                    let actions = core.replaced(host, caches, &peer, reason);
                    self.apply(host, place.key, actions);
                }
                self.apply_downs(host, registry);
            }
            NetCommand::Link(LinkCommand::Resume { key, id }) => {
                if self.link_of(key, id).is_some_and(|l| l.core.resume()) {
                    self.ready.push(key);
                }
            }
            NetCommand::Link(LinkCommand::ReturnUnhandled { key, id, returned }) => {
                // A link that went down took its peer's view of it along.
                if self.link_of(key, id).is_some_and(|l| l.core.return_unhandled(&returned)) {
                    self.dirty.push(key);
                }
            }
            // Acknowledged at the next flush, with what else is due.
            NetCommand::Link(LinkCommand::Handled { key, id, seq }) => {
                if let Some(link) = self.link_of(key, id) {
                    link.core.handled(seq);
                }
            }
            NetCommand::Adopt(handoff) => self.adopt(host, registry, handoff),
        }
    }

    /// A new link's id and its inbound pool, for the slot at `key`.
    fn new_slot<H: Host + ?Sized>(&mut self, host: &H, key: usize) -> (u64, Arc<Inbound>) {
        self.next_id += 1;
        let limits = host.config().link.normalized();
        (self.next_id, Inbound::new(limits.max_inbound_bytes, self.handle.clone(), key, self.next_id))
    }

    /// Takes over a link whose handshake the handshake executor did.
    fn adopt<H: Host + ?Sized>(
        &mut self,
        host: &H,
        registry: &Registry,
        Handoff { mut link, hello }: Handoff,
    ) {
        let key = self.io.vacant_key();
        if let Err(e) =
            registry.register(&mut link.stream, token(key), Interest::READABLE | Interest::WRITABLE)
        {
            warn!(error = %e, "cannot watch a link handed over");
            let _ = link.core.down(host, &mut self.caches, &CloseReason::Io(e.to_string()));
            return;
        }
        let (id, inbound) = self.new_slot(host, key);
        let local = LocalPool::register(inbound.clone());
        link.core.moved(Place { executor: self.index, key }, id, inbound, local);
        link.writable = true;
        // Whatever the handshake executor last read is acknowledged here.
        link.reading_on = false;
        let actions = link.core.up(host, hello);
        self.polled += usize::from(link.polled);
        self.io.insert(Io::Link(link));
        self.timers_changed = true;
        self.apply(host, key, actions);
        // What the peer sent after its handshake is read (and its own events
        // handled) here, from now on.
        self.drive(host, key);
        self.ready.push(key);
        self.dirty.push(key);
        self.apply_downs(host, registry);
    }

    /// Does what a sender asked of one of this executor's links.
    pub(crate) fn execute_peer<H: Host + ?Sized>(&mut self, host: &H, cmd: PeerCommand) {
        match cmd {
            PeerCommand::Send { peer, frame, msg, reply_to, owed } => {
                self.link_send(host, &peer, &frame, msg, reply_to, owed)
            }
            PeerCommand::SendLarge { peer, head, blobs, msg, reply_to } => {
                let key = peer.place().key;
                match self.link(key).filter(|l| l.core.carries(&peer)) {
                    Some(link) => {
                        let actions = link.core.send_large(host, head, blobs, msg, reply_to);
                        self.apply(host, key, actions);
                    }
                    None => link::not_sent_large(host, &peer, msg),
                }
            }
            PeerCommand::Control { peer, frame } => {
                let key = peer.place().key;
                if let Some(link) = self.link(key).filter(|l| l.core.carries(&peer)) {
                    let actions = link.core.control(&frame);
                    self.apply(host, key, actions);
                }
            }
            PeerCommand::Watch { peer, target, target_name, watcher } => {
                self.link_watch(host, &peer, target, target_name, watcher)
            }
        }
    }

    /// A message for `peer`'s link, encoded by its sender.
    fn link_send<H: Host + ?Sized>(
        &mut self,
        host: &H,
        peer: &Arc<Peer>,
        frame: &[u8],
        msg: BoxMsg,
        reply_to: Option<ActorSender>,
        owed: bool,
    ) {
        self.link_send_run(host, peer, std::iter::once((frame, msg, reply_to, owed)));
    }

    /// Messages for `peer`'s link, in order (each as [`LinkCore::send`]
    /// takes it): the link is found once for them all.
    fn link_send_run<'b, H: Host + ?Sized>(
        &mut self,
        host: &H,
        peer: &Arc<Peer>,
        msgs: impl Iterator<Item = (&'b [u8], BoxMsg, Option<ActorSender>, bool)>,
    ) {
        let key = peer.place().key;
        match self.link(key).filter(|l| l.core.carries(peer)) {
            Some(link) => {
                let actions = link.core.send_run(host, msgs);
                self.apply(host, key, actions);
            }
            None => {
                for (_, msg, _, owed) in msgs {
                    link::not_sent(host, peer, msg, owed);
                }
            }
        }
    }

    /// `watcher` (local) watches `target` across `peer`'s link.
    fn link_watch<H: Host + ?Sized>(
        &mut self,
        host: &H,
        peer: &Arc<Peer>,
        target: ActorId,
        name: String,
        watcher: ActorSender,
    ) {
        let key = peer.place().key;
        match self.link(key).filter(|l| l.core.carries(peer)) {
            Some(link) => {
                let actions = link.core.watch(host, target, name, watcher);
                self.apply(host, key, actions);
            }
            None => link::watch_refused(host, target, name, &watcher),
        }
    }

    /// Moves what handlers of this executor wrote to the outbox to their
    /// links, a run for one peer at a time.
    pub(crate) fn drain_outbox<H: Host + ?Sized>(&mut self, host: &H) {
        if outbox::is_empty() {
            return;
        }
        let mut out = outbox::take();
        let outbox::Outbox { bytes, items, runs } = &mut out;
        let total = items.len();
        let mut items = items.drain(..);
        for (i, run) in runs.iter().enumerate() {
            // A run's items go up to the next run's first.
            let end = runs.get(i + 1).map_or(total, |next| next.first);
            let run_items = items
                .by_ref()
                .take(end - run.first)
                .map(|item| (&bytes[item.start..item.end], item.msg, item.reply_to, item.owed));
            self.link_send_run(host, &run.peer, run_items);
        }
        drop(items);
        outbox::give_back(out);
    }

    /// Ends `key` for `reason` (a CLOSE frame is queued where one is sent).
    fn fail<H: Host + ?Sized>(&mut self, host: &H, key: usize, reason: CloseReason) {
        let Some((core, caches)) = self.core(key) else { return };
        let actions = core.fail(host, caches, reason);
        self.apply(host, key, actions);
    }

    /// Handles every event `key`'s session has.
    fn drive<H: Host + ?Sized>(&mut self, host: &H, key: usize) {
        let Some((core, caches)) = self.core(key) else { return };
        let actions = core.drive(host, caches, usize::MAX);
        self.apply(host, key, actions);
    }

    /// Writes what is pending on `key`, as far as the stream takes it. A
    /// link paused for its output reads again once the output is under
    /// its cap.
    ///
    /// At most [`write_budget`](connection::LinkLimits::write_budget)
    /// bytes go per call: a link with more (the parts of a large message)
    /// is written again next turn, after the commands that came meanwhile.
    fn write<H: Host + ?Sized>(&mut self, host: &H, key: usize) {
        let mut budget = host.config().link.write_budget.max(1);
        let Some(link) = self.link(key) else { return };
        let Link { stream, core, writable, .. } = &mut *link;
        let mut again = false;
        while *writable && core.pending_output() > 0 {
            if budget == 0 {
                again = true;
                break;
            }
            // The frames and the blob slices between them, in one write.
            let mut slices = [&[][..]; 4];
            let count = core.transmit_vectored(&mut slices);
            let (mut io, mut room) = ([io::IoSlice::new(&[]); 4], budget);
            for (slot, s) in io.iter_mut().zip(&slices[..count]) {
                let s = &s[..s.len().min(room)];
                room -= s.len();
                *slot = io::IoSlice::new(s);
            }
            match stream.write_vectored(&io[..count]) {
                Ok(0) => {
                    core.close(CloseReason::PeerClosed);
                    break;
                }
                Ok(n) => {
                    budget -= n;
                    core.transmitted(Instant::now(), n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *writable = false;
                    core.write_blocked(Instant::now());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    core.close(CloseReason::Io(e.to_string()));
                    break;
                }
            }
        }
        let (resumes, ended) = core.after_write();
        if again {
            self.write_again.push(key);
        }
        if resumes {
            self.ready.push(key);
        }
        if ended {
            // A write failure: its event takes the link down.
            self.closing.push(key);
        }
    }

    /// Adds what every link counted to its peer's counters (see
    /// [`PUBLISH_EVERY_FLUSHES`]).
    pub(crate) fn publish_counters(&mut self) {
        for (_, io) in self.io.iter_mut() {
            if let Io::Link(link) = io {
                link.core.publish_counters();
            }
        }
    }

    /// Acknowledges what was read and writes every link with bytes pending.
    pub(crate) fn flush<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.append(&mut self.write_again);
        self.flushes = self.flushes.wrapping_add(1);
        let publish = self.flushes.is_multiple_of(PUBLISH_EVERY_FLUSHES);
        for (key, io) in self.io.iter_mut() {
            if let Io::Link(link) = io {
                if !link.reading_on && link.core.flush_acks() {
                    dirty.push(key);
                }
                if publish {
                    link.core.publish_counters();
                }
            }
        }
        dirty.sort_unstable();
        dirty.dedup();
        for key in dirty.drain(..) {
            self.write(host, key);
        }
        self.dirty = dirty;
        // Budgets change slowly next to a flush: looked at every few, and
        // every time while the node is over one.
        if self.flushes.is_multiple_of(budgets::EVERY_FLUSHES) || self.budgets.is_close() {
            self.check_budgets(host);
        }
        self.apply_downs(host, registry);
    }

    /// The keys of every link and listener.
    fn keys(&self) -> Vec<usize> {
        self.io.iter().map(|(k, _)| k).collect()
    }

    /// Heartbeats, timeouts, listener retries and redials due by `now`;
    /// the next deadline.
    pub(crate) fn timers<H: Host + ?Sized>(
        &mut self,
        host: &H,
        registry: &Registry,
        now: Instant,
    ) -> Option<Instant> {
        self.timers_changed = false;
        let mut retries = Vec::new();
        let mut due = Vec::new();
        for (key, io) in self.io.iter_mut() {
            match io {
                Io::Link(link) => {
                    if link.core.poll_timeout().is_some_and(|t| t <= now) {
                        due.push(key);
                    }
                }
                Io::Listener(state) => {
                    if state.retry_at.is_some_and(|t| t <= now) {
                        state.retry_at = None;
                        retries.push(key);
                    }
                }
            }
        }
        for key in due {
            let Some((core, caches)) = self.core(key) else { continue };
            if let Some(actions) = core.on_timeout(host, caches, now) {
                self.apply(host, key, actions);
            }
        }
        for key in retries {
            self.accept(host, registry, key);
        }
        if self.budgets.next_check().is_some_and(|t| t <= now) {
            self.check_budgets(host);
        }
        // Links that went down may schedule redials: apply them first.
        self.apply_downs(host, registry);
        if self.redials.iter().any(|r| r.at <= now) {
            let (due, later): (Vec<Scheduled>, Vec<Scheduled>) =
                std::mem::take(&mut self.redials).into_iter().partition(|r| r.at <= now);
            self.redials = later;
            for r in due {
                debug!(addr = %r.redial.addr, attempt = r.redial.attempt, "redialing");
                self.dial(host, registry, r.redial, None);
            }
        }
        if !self.dirty.is_empty() {
            self.flush(host, registry);
        }
        self.timers_changed = false;
        self.next_deadline()
    }

    /// The soonest of every link's, listener's and redial's next deadline.
    fn next_deadline(&self) -> Option<Instant> {
        let io = self.io.iter().filter_map(|(_, io)| match io {
            Io::Link(link) => link.core.poll_timeout(),
            Io::Listener(state) => state.retry_at,
        });
        io.chain(self.redials.iter().map(|r| r.at)).chain(self.budgets.next_check()).min()
    }

    /// Hands over the links that went up for another executor, and takes
    /// down the links marked so.
    fn apply_downs<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry) {
        for (key, hello) in std::mem::take(&mut self.handoffs) {
            // What the handshake left to write goes out from here if it can;
            // the rest, with the session, from the link's executor.
            self.write(host, key);
            if let Some(Io::Link(mut link)) = self.io.try_remove(key) {
                self.polled -= usize::from(link.polled);
                let _ = registry.deregister(&mut link.stream);
                let home = link.core.home();
                host.push_to(home, NetCommand::Adopt(Handoff { link, hello }));
            }
        }
        for key in std::mem::take(&mut self.closing) {
            self.drive(host, key);
        }
        while let Some((key, why)) = self.downs.pop() {
            if self.link(key).is_some() {
                // What is pending (a CLOSE frame, a NACK) goes out first.
                self.write(host, key);
                if let Io::Link(link) = self.io.remove(key) {
                    self.down(host, registry, *link, why);
                }
            }
        }
    }

    /// Closes a link that went down: the core reports what it leaves
    /// behind, and says whether to dial it again.
    fn down<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry, mut link: Link, why: CloseReason) {
        self.polled -= usize::from(link.polled);
        if link.core.is_accepted() {
            let id = link.core.id();
            self.pending.retain(|(_, p)| *p != id);
        }
        log_end(host, &link.core, &why);
        let _ = registry.deregister(&mut link.stream);
        if link.core.was_up() {
            // The peer hears the end at once, whoever else holds the stream.
            link.stream.shutdown();
        }
        if let Some(redial) = link.core.down(host, &mut self.caches, &why) {
            self.schedule_redial(host, redial);
        }
    }

    /// Closes every link in order (CLOSE, flush, up to `grace`), then the
    /// listeners. What is unacknowledged is reported.
    pub(crate) fn close_all<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry, grace: Duration) {
        self.redials.clear();
        let keys: Vec<usize> = self.io.iter().map(|(k, _)| k).collect();
        for &key in &keys {
            if let Some(link) = self.link(key) {
                link.core.close(CloseReason::Shutdown);
                link.writable = true;
            }
        }
        let deadline = Instant::now() + grace;
        loop {
            for &key in &keys {
                self.write(host, key);
            }
            let pending = keys
                .iter()
                .any(|k| matches!(self.io.get(*k), Some(Io::Link(l)) if l.core.pending_output() > 0));
            if !pending || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            for &key in &keys {
                if let Some(link) = self.link(key) {
                    link.writable = true;
                }
            }
        }
        for &key in &keys {
            if let Some(link) = self.link(key) {
                // Read what the peer sent meanwhile: closing with unread
                // input resets the socket, and the peer might then lose our
                // CLOSE frame. End our side first.
                link.stream.drain_input();
                link.stream.shutdown_write();
                if link.core.has_session() {
                    self.drive(host, key);
                } else {
                    self.downs.push((key, CloseReason::Shutdown));
                }
            }
        }
        self.apply_downs(host, registry);
        for (_, io) in self.io.iter_mut() {
            if let Io::Listener(state) = io {
                let _ = registry.deregister(&mut state.listener);
            }
        }
        self.io.clear();
    }
}

/// Says why a link ended: what a peer did wrong (a failed handshake, a
/// protocol error, a cut frame) and what a cap or a budget refused, at
/// most once every [`LOG_INTERVAL`](crate::throttle::LOG_INTERVAL) per
/// kind, with a count of those left out; an orderly end at `info`.
fn log_end<H: Host + ?Sized>(host: &H, core: &LinkCore, why: &CloseReason) {
    let peer = core.peer_node();
    let throttle = host.throttle();
    match why {
        CloseReason::Protocol(ProtocolError::Handshake(e)) => {
            warn_throttled!(throttle, "handshake", error = %e, "link refused: its handshake failed")
        }
        CloseReason::Protocol(_) | CloseReason::Truncated(_) | CloseReason::SlowFrame => {
            warn_throttled!(throttle, "protocol", ?peer, reason = %why, "link closed")
        }
        CloseReason::Limit(_) | CloseReason::Budget(_) => {
            warn_throttled!(throttle, "limit", ?peer, reason = %why, "link refused or cut")
        }
        _ if core.was_up() => info!(?peer, reason = %why, "link down"),
        _ => debug!(reason = %why, "link failed before it was up"),
    }
}
