//! Where links come from: listeners (accepting, with a backoff when the
//! process runs out of descriptors), dials and redials, and the caps on
//! accepted links and pending handshakes.

use std::io;
use std::time::{Duration, Instant};

use actor::LocalPool;
use connection::{CloseReason, LimitKind};
use mio::{Interest, Registry};
use tracing::{debug, warn};

use super::{Host, Io, Link, Net, NetCommand, Scheduled, token};
use crate::ManagerError;
use crate::link::{self, LinkCore, Origin, Redial};
use crate::peer::{Place, Waiter};
use crate::transport::{self, Listener, Stream};

/// A listening socket and its backoff after the process ran out of
/// descriptors (or memory).
pub(super) struct ListenerState {
    pub(super) listener: Listener,
    backoff: Duration,
    /// When to accept again after a shortage.
    pub(super) retry_at: Option<Instant>,
}

/// The first pause of a listener that could not accept for lack of
/// descriptors or memory; it doubles on each failure, up to
/// [`ACCEPT_BACKOFF_MAX`] (as Go's `net/http` does).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

impl Net {
    pub(super) fn add_listener(&mut self, registry: &Registry, mut listener: Listener) {
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
    pub(super) fn add_stream<H: Host + ?Sized>(
        &mut self,
        host: &H,
        registry: &Registry,
        mut stream: Stream,
        origin: Origin,
    ) {
        let accepted = origin.is_accepted();
        let limits = &host.config().limits;
        let mut origin = origin;
        if accepted {
            // Past a cap, the link still does its handshake, to hear why.
            match host.admission().accept(stream.peer_user()) {
                Ok(admitted) => origin.admitted = Some(admitted),
                Err(kind) => origin.refuse = Some(kind),
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
        let polled = stream.is_polled();
        let mut link = Link { stream, core, writable: false, polled, reading_on: false };
        // An accepted stream is connected already: start at once.
        if accepted {
            self.pending.push_back((key, id));
            if let Err(why) = start(host, &mut link, now) {
                warn!(reason = %why, "an accepted link cannot start");
                link.stream.shutdown();
                let _ = link.core.down(host, &mut self.caches, &CloseReason::Io(why));
                self.pending.pop_back();
                return;
            }
            self.dirty.push(key);
        }
        self.polled += usize::from(link.polled);
        self.io.insert(Io::Link(Box::new(link)));
        self.timers_changed = true;
        if accepted {
            self.apply_downs(host, registry);
        }
    }

    /// Starts a non-blocking connect; `waiter` hears how it went.
    pub(super) fn dial<H: Host + ?Sized>(
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

    pub(super) fn schedule_redial<H: Host + ?Sized>(&mut self, host: &H, redial: Redial) {
        let (first, longest) = host.config().tuning.reconnect_backoff;
        let pause = first.saturating_mul(1 << redial.attempt.min(16)).min(longest);
        let jitter = 0.75 + f64::from(getrandom::u32().unwrap_or(0) % 1000) / 2000.0;
        self.redials.push(Scheduled { at: Instant::now() + pause.mul_f64(jitter), redial });
        self.timers_changed = true;
    }

    /// Accepts until the listener has nothing more, at most
    /// `accepts_per_turn` a turn (then it is accepted from again next
    /// turn, after the handshakes already under way have read their
    /// bytes). Out of descriptors or memory, it backs off on a timer and
    /// tries again (the listener is edge-triggered: without the timer it
    /// would never be polled again).
    pub(super) fn accept<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry, key: usize) {
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
}

/// Starts the session of a connected stream (its handshake).
pub(super) fn start<H: Host + ?Sized>(host: &H, link: &mut Link, now: Instant) -> Result<(), String> {
    link.stream.connected(&host.config().security.unix_peers)?;
    let mut nonce = [0; 32];
    // Without randomness the handshake cannot be safe.
    getrandom::fill(&mut nonce).map_err(|e| format!("no randomness for a handshake nonce: {e}"))?;
    link.core.set_off_host(link.stream.is_off_host());
    link.core.start(host, nonce, now);
    link.writable = true;
    Ok(())
}

/// Whether accepting failed for want of descriptors or memory, which a
/// pause may cure.
fn is_resource_shortage(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(Errno::from_io_error(e), Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM))
}
