//! The driver of an executor's links: it accepts, dials and redials,
//! reads and writes their streams, follows readiness and runs their
//! timers. Every decision about a link's frames and messages is its
//! [`LinkCore`]'s (`link`): the driver moves bytes through it and carries
//! out the [`Actions`] it returns. What needs the streams stays here: the
//! read budget per turn, pausing reads, the caps on links and pending
//! handshakes, the listener's backoff. Everything here runs on the
//! executor's thread; no other thread touches a link.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actor::{ActorSender, LocalPool};
use connection::{CloseReason, LimitKind, PeerHello};
use mio::event::Event as Readiness;
use mio::{Interest, Registry, Token};
use msg_header::{ActorId, BoxMsg};
use slab::Slab;
use tracing::{debug, warn};

use crate::link::{self, Actions, Caches, Inbound, LinkCommand, LinkCore, Origin, ReadGate, Redial};
use crate::peer::{LinkReplaced, Peer, PeerCommand, Place, Waiter, outbox};
use crate::sync::Mailbox;
use crate::transport::{self, Listener, Stream};
use crate::{Addr, ManagerError};

/// The manager, as its links' driver sees it: the core's view, and what
/// places links on executors and caps them.
pub(crate) trait Host: link::Host {
    /// Accepted links open now, every executor's (`max_links`).
    fn open_links(&self) -> &std::sync::atomic::AtomicUsize;
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

/// How often a busy executor adds its links' counters to their peers'
/// (which `Manager::stats` reads): every this many flushes, and whenever
/// it is about to sleep. Once per read and write, the atomic additions
/// cost a round trip about 0.1 µs.
const PUBLISH_EVERY_FLUSHES: u32 = 256;

/// With at most this many streams, a spinning executor reads its links
/// directly instead of polling for their readiness.
const SPECULATIVE_LINKS: usize = 4;

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
        !self.ready.is_empty()
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
            if link.core.is_accepted() {
                host.open_links().fetch_sub(1, Ordering::SeqCst);
            }
            link::Host::closes(host).add(&CloseReason::Io(e.to_string()).key());
            return;
        }
        let (id, inbound) = self.new_slot(host, key);
        let local = LocalPool::register(inbound.clone());
        link.core.moved(Place { executor: self.index, key }, id, inbound, local);
        link.writable = true;
        let actions = link.core.up(host, hello);
        self.polled += usize::from(link.stream.is_polled());
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
        let key = peer.place().key;
        match self.link(key).filter(|l| l.core.carries(peer)) {
            Some(link) => {
                let actions = link.core.send(host, frame, msg, reply_to, owed);
                self.apply(host, key, actions);
            }
            None => link::not_sent(host, peer, msg, owed),
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

    /// Moves what handlers of this executor wrote to the outbox to their links.
    pub(crate) fn drain_outbox<H: Host + ?Sized>(&mut self, host: &H) {
        if outbox::is_empty() {
            return;
        }
        let mut out = outbox::take();
        for item in out.items.drain(..) {
            let frame = &out.bytes[item.start..item.end];
            self.link_send(host, &item.peer, frame, item.msg, item.reply_to, item.owed);
        }
        outbox::give_back(out);
    }

    fn add_listener(&mut self, registry: &Registry, mut listener: Listener) {
        let entry = self.io.vacant_entry();
        if let Err(e) = registry.register(&mut listener, token(entry.key()), Interest::READABLE) {
            warn!(error = %e, "cannot watch listener");
            return;
        }
        entry.insert(Io::Listener(ListenerState { listener, backoff: ACCEPT_BACKOFF_MIN, retry_at: None }));
    }

    /// Takes over a connected (or connecting) stream. An accepted one is
    /// refused at once past `max_links`; past `max_pending_handshakes` on
    /// this executor, the oldest pending handshake is cut to make room.
    fn add_stream<H: Host + ?Sized>(
        &mut self,
        host: &H,
        registry: &Registry,
        mut stream: Stream,
        origin: Origin,
    ) {
        let accepted = origin.is_accepted();
        let limits = &host.config().limits;
        if accepted {
            if host.open_links().load(Ordering::SeqCst) >= limits.max_links {
                stream.shutdown();
                link::Host::closes(host).add(&CloseReason::Limit(LimitKind::Links).key());
                debug!(max = limits.max_links, "link refused: too many links");
                return;
            }
            while self.pending.len() >= limits.max_pending_handshakes.max(1) {
                let Some((key, id)) = self.pending.pop_front() else { break };
                if self.link_of(key, id).is_some() {
                    debug!("oldest pending handshake cut: too many pending handshakes");
                    self.fail(host, key, CloseReason::Limit(LimitKind::PendingHandshakes));
                    self.apply_downs(host, registry);
                }
            }
        }
        let key = self.io.vacant_key();
        if let Err(e) = registry.register(&mut stream, token(key), Interest::READABLE | Interest::WRITABLE) {
            warn!(error = %e, "cannot watch socket");
            if let Some(w) = origin.waiter {
                let _ = w.send(Err(ManagerError::Io(e)));
            }
            return;
        }
        let (id, inbound) = self.new_slot(host, key);
        let now = Instant::now();
        let deadline = now + host.config().link.handshake_timeout;
        let place = Place { executor: self.index, key };
        let runs_here = origin.home.is_none_or(|home| home == self.index);
        let limits = host.config().link.normalized();
        let mut core = LinkCore::new(&limits, place, id, origin, inbound.clone(), deadline);
        if runs_here {
            core.set_local(LocalPool::register(inbound));
        }
        let mut link = Link { stream, core, writable: false };
        // An accepted stream is connected already: start at once.
        if accepted {
            host.open_links().fetch_add(1, Ordering::SeqCst);
            self.pending.push_back((key, id));
            start(host, &mut link, now);
            self.dirty.push(key);
        }
        self.polled += usize::from(link.stream.is_polled());
        self.io.insert(Io::Link(Box::new(link)));
        self.timers_changed = true;
        if accepted {
            self.apply_downs(host, registry);
        }
    }

    /// Starts a non-blocking connect; `waiter` hears how it went.
    fn dial<H: Host + ?Sized>(
        &mut self,
        host: &H,
        registry: &Registry,
        redial: Redial,
        waiter: Option<Waiter>,
    ) {
        let Redial { addr, attempt } = redial;
        match transport::dial(&addr) {
            Ok(stream) => self.add_stream(host, registry, stream, Origin::dialed(addr, waiter, attempt)),
            Err(e) => {
                let why = CloseReason::Io(e.to_string());
                if let Some(again) = link::dial_failed(host, addr, waiter, attempt, &why) {
                    self.schedule_redial(host, again);
                }
            }
        }
    }

    fn schedule_redial<H: Host + ?Sized>(&mut self, host: &H, redial: Redial) {
        let (first, longest) = host.config().tuning.reconnect_backoff;
        let pause = first.saturating_mul(1 << redial.attempt.min(16)).min(longest);
        let jitter = 0.75 + f64::from(getrandom::u32().unwrap_or(0) % 1000) / 2000.0;
        self.redials.push(Scheduled { at: Instant::now() + pause.mul_f64(jitter), redial });
        self.timers_changed = true;
    }

    /// Handles readiness of stream `token`.
    pub(crate) fn on_event<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry, event: &Readiness) {
        let Some(key) = event.token().0.checked_sub(1) else { return };
        match self.io.get_mut(key) {
            Some(Io::Listener(_)) => self.accept(host, registry, key),
            Some(Io::Link(link)) => {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                let writable = event.is_writable() || event.is_error() || event.is_write_closed();
                let ended = event.is_read_closed() || event.is_error();
                let ready = link.stream.on_event(readable, writable, ended, link.writable);
                if ready.writable && !ready.write_after_read {
                    self.on_writable(host, key);
                }
                if ready.readable {
                    self.read_link(host, key, ready.read_to_end);
                }
                if ready.writable && ready.write_after_read {
                    self.on_writable(host, key);
                }
            }
            None => {}
        }
        self.apply_downs(host, registry);
    }

    /// Accepts until the listener has nothing more, at most
    /// `accepts_per_turn` a turn (then it is accepted from again next
    /// turn, after the handshakes already under way have read their
    /// bytes). Out of descriptors or memory, it backs off on a timer and
    /// tries again (the listener is edge-triggered: without the timer it
    /// would never be polled again).
    fn accept<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry, key: usize) {
        for _ in 0..host.config().limits.accepts_per_turn.max(1) {
            let Some(Io::Listener(state)) = self.io.get_mut(key) else { return };
            if state.retry_at.is_some() {
                return;
            }
            let stream = match state.listener.accept() {
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
                    link::Host::closes(host).add("accept_backoff");
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
            if let Err(why) = stream.check_peer(&host.config().security.unix_peers) {
                warn!(reason = %why, "unix peer refused");
                link::Host::closes(host).add("unix_peer_refused");
                continue;
            }
            let executor = host.next_link_executor();
            if executor == self.index {
                self.add_stream(host, registry, stream, Origin::accepted());
            } else if host.config().tuning.handshake_executor == Some(self.index) && !stream.is_thread_bound()
            {
                // The handshake here, the link there once it is up.
                self.add_stream(host, registry, stream, Origin::accepted_for(executor));
            } else {
                let (stream, origin) = (Box::new(stream), Box::new(Origin::accepted()));
                host.push_to(executor, NetCommand::AddStream { stream, origin });
            }
        }
        // More may wait: next turn.
        self.ready.push(key);
    }

    fn on_writable<H: Host + ?Sized>(&mut self, host: &H, key: usize) {
        let Some(link) = self.link(key) else { return };
        link.writable = true;
        if !link.core.has_session() {
            match link.stream.take_error() {
                Ok(Some(e)) | Err(e) => return self.fail(host, key, CloseReason::Io(e.to_string())),
                Ok(None) => {}
            }
            match link.stream.is_connected() {
                Ok(true) => start(host, link, Instant::now()),
                Ok(false) => return,
                Err(e) => return self.fail(host, key, CloseReason::Io(e.to_string())),
            }
        }
        self.write(host, key);
    }

    /// Reads the links of this executor without waiting for readiness
    /// (while spinning, a read that finds bytes saves the poll); whether
    /// any had bytes. Only worth it with few links.
    pub(crate) fn read_links<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry) -> Option<bool> {
        if self.io.len() > SPECULATIVE_LINKS {
            return None;
        }
        let mut keys = [None; SPECULATIVE_LINKS];
        for (slot, (key, io)) in keys.iter_mut().zip(self.io.iter()) {
            // Polled streams: `poll_links` looks at them.
            if matches!(io, Io::Link(l) if l.core.is_up() && !l.core.is_paused() && !l.stream.is_polled()) {
                *slot = Some(key);
            }
        }
        let mut any = false;
        for key in keys.into_iter().flatten() {
            any |= self.read_link(host, key, false);
        }
        self.apply_downs(host, registry);
        Some(any)
    }

    /// Looks at the links whose streams are polled (their bytes and room
    /// come with no event): reads those with bytes, writes those with room
    /// again; whether any had something.
    pub(crate) fn poll_links<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry) -> bool {
        if self.polled == 0 {
            return false;
        }
        let mut keys = std::mem::take(&mut self.polled_keys);
        keys.clear();
        keys.extend(
            self.io
                .iter()
                .filter_map(|(k, io)| matches!(io, Io::Link(l) if l.stream.is_polled()).then_some(k)),
        );
        let mut any = false;
        for &key in &keys {
            let Some(link) = self.link(key) else { continue };
            let ready = match link.stream.poll() {
                Ok(ready) => ready,
                Err(e) => {
                    self.fail(host, key, CloseReason::Io(e.to_string()));
                    continue;
                }
            };
            if ready.writable {
                any = true;
                self.on_writable(host, key);
            }
            if ready.readable && self.link(key).is_some_and(|l| !l.core.is_paused()) {
                any |= self.read_link(host, key, ready.read_to_end);
            }
        }
        self.polled_keys = keys;
        self.apply_downs(host, registry);
        any
    }

    /// Before the executor sleeps: each polled stream says so to its peer
    /// (which then wakes it when it writes); whether one has work after
    /// all, and the executor must not sleep.
    pub(crate) fn prepare_sleep<H: Host + ?Sized>(&mut self, host: &H) -> bool {
        if self.polled == 0 {
            return false;
        }
        let mut work = false;
        let mut failed = Vec::new();
        for (key, io) in self.io.iter_mut() {
            let Io::Link(link) = io else { continue };
            match link.stream.prepare_sleep() {
                // A paused link reads nothing until it resumes (which wakes
                // the executor): what waits for it is no work now.
                Ok(ready) => work |= (ready.readable && !link.core.is_paused()) || ready.writable,
                Err(e) => failed.push((key, e)),
            }
        }
        for (key, e) in failed {
            self.fail(host, key, CloseReason::Io(e.to_string()));
            work = true;
        }
        work
    }

    /// Reads again the links whose budget ran out or that resumed.
    pub(crate) fn read_ready<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry) {
        let mut ready = std::mem::take(&mut self.ready);
        ready.sort_unstable();
        ready.dedup();
        for key in ready {
            match self.io.get(key) {
                Some(Io::Listener(_)) => self.accept(host, registry, key),
                // No event says what is there: read until the stream says.
                Some(Io::Link(_)) => {
                    self.read_link(host, key, true);
                }
                None => {}
            }
        }
        self.apply_downs(host, registry);
    }

    /// Reads what `key` has, up to the read budget, handling it as it
    /// comes; whether there was anything. A link over its caps is paused
    /// instead (resumed when its output drains or its inbound messages
    /// are handled); one whose budget ran out is read again next turn. A
    /// short read ends the turn (new bytes raise a new event), unless
    /// `to_the_end`: the stream has ended, and the end must be read.
    fn read_link<H: Host + ?Sized>(&mut self, host: &H, key: usize, to_the_end: bool) -> bool {
        let mut budget = host.config().link.read_budget.max(1);
        let own_limit = host.config().limits.own_queue_read_limit;
        let mut any = false;
        loop {
            if self.handle.backlog() >= own_limit {
                // What was read already waits for this thread's handlers:
                // read on once they have run.
                self.ready.push(key);
                return any;
            }
            let Some(Io::Link(link)) = self.io.get_mut(key) else { return any };
            let (gate, actions) = link.core.prepare_read(host, &mut self.caches);
            self.apply(host, key, actions);
            match gate {
                ReadGate::Read => {}
                ReadGate::Later => {
                    self.ready.push(key);
                    return any;
                }
                ReadGate::Pause => {
                    if self.link(key).is_some_and(|l| l.core.pause()) {
                        self.ready.push(key);
                    }
                    return any;
                }
                ReadGate::Closed => return any,
            }
            let Some(Io::Link(link)) = self.io.get_mut(key) else { return any };
            let Link { stream, core, .. } = &mut **link;
            let Some(buf) = core.input_buf() else { return any };
            let want = buf.len().min(budget);
            match stream.read(&mut buf[..want]) {
                Ok(0) => {
                    let actions = core.read(host, &mut self.caches, Instant::now(), 0);
                    self.apply(host, key, actions);
                    return true;
                }
                Ok(n) => {
                    let actions = core.read(host, &mut self.caches, Instant::now(), n);
                    any = true;
                    budget -= n;
                    let backlog = core.has_backlog();
                    self.apply(host, key, actions);
                    if budget == 0 || backlog {
                        self.ready.push(key);
                        return any;
                    }
                    // A short read emptied the stream: new bytes raise a new event.
                    if n < want && !to_the_end {
                        return any;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return any,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(host, key, CloseReason::Io(e.to_string()));
                    return true;
                }
            }
        }
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
    fn write<H: Host + ?Sized>(&mut self, _host: &H, key: usize) {
        let Some(link) = self.link(key) else { return };
        let Link { stream, core, writable } = &mut *link;
        while *writable && core.pending_output() > 0 {
            match stream.write(core.transmit()) {
                Ok(0) => {
                    core.close(CloseReason::PeerClosed);
                    break;
                }
                Ok(n) => core.transmitted(Instant::now(), n),
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
        self.flushes = self.flushes.wrapping_add(1);
        let publish = self.flushes.is_multiple_of(PUBLISH_EVERY_FLUSHES);
        for (key, io) in self.io.iter_mut() {
            if let Io::Link(link) = io {
                if link.core.flush_acks() {
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
        self.apply_downs(host, registry);
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
        io.chain(self.redials.iter().map(|r| r.at)).min()
    }

    /// Hands over the links that went up for another executor, and takes
    /// down the links marked so.
    fn apply_downs<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry) {
        for (key, hello) in std::mem::take(&mut self.handoffs) {
            // What the handshake left to write goes out from here if it can;
            // the rest, with the session, from the link's executor.
            self.write(host, key);
            if let Some(Io::Link(mut link)) = self.io.try_remove(key) {
                self.polled -= usize::from(link.stream.is_polled());
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
        self.polled -= usize::from(link.stream.is_polled());
        if link.core.is_accepted() {
            host.open_links().fetch_sub(1, Ordering::SeqCst);
            let id = link.core.id();
            self.pending.retain(|(_, p)| *p != id);
        }
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

/// Starts the session of a connected stream (its handshake).
fn start<H: Host + ?Sized>(host: &H, link: &mut Link, now: Instant) {
    link.stream.connected();
    let mut nonce = [0; 32];
    if getrandom::fill(&mut nonce).is_err() {
        // Without randomness the handshake cannot be safe: the link times out.
        warn!("no randomness for a handshake nonce");
        return;
    }
    link.core.start(host, nonce, now);
    link.writable = true;
}

/// Whether accepting failed for want of descriptors or memory, which a
/// pause may cure.
fn is_resource_shortage(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(Errno::from_io_error(e), Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM))
}
