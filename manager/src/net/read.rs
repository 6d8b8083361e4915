//! Following readiness and reading: events from the poller, polled
//! streams, links read again without an event, and the read loop with its
//! budget per turn.

use std::io;
use std::time::Instant;

use connection::CloseReason;
use mio::Registry;
use mio::event::Event as Readiness;

use super::listen::start;
use super::{Host, Io, Link, Net};
use crate::link::{Input, ReadGate};

/// With at most this many streams, a spinning executor reads its links
/// directly instead of polling for their readiness.
const SPECULATIVE_LINKS: usize = 4;

impl Net {
    /// Handles readiness of stream `token`.
    pub(crate) fn on_event<H: Host + ?Sized>(&mut self, host: &H, registry: &Registry, event: &Readiness) {
        let Some(key) = event.token().0.checked_sub(1) else { return };
        match self.io.get_mut(key) {
            Some(Io::Listener(_)) => self.accept(host, registry, key),
            Some(Io::Link(link)) => {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                let writable = event.is_writable() || event.is_error() || event.is_write_closed();
                let ended = event.is_read_closed() || event.is_error();
                if ended {
                    link.core.peer_ended();
                }
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

    pub(super) fn on_writable<H: Host + ?Sized>(&mut self, host: &H, key: usize) {
        let Some(link) = self.link(key) else { return };
        link.writable = true;
        if !link.core.has_session() {
            match link.stream.take_error() {
                Ok(Some(e)) | Err(e) => return self.fail(host, key, CloseReason::Io(e.to_string())),
                Ok(None) => {}
            }
            match link.stream.is_connected() {
                Ok(true) => {
                    if let Err(why) = start(host, link, Instant::now()) {
                        return self.fail(host, key, CloseReason::Io(why));
                    }
                }
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
            if matches!(io, Io::Link(l) if l.core.is_up() && !l.core.is_paused() && !l.polled) {
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
        keys.extend(self.io.iter().filter_map(|(k, io)| matches!(io, Io::Link(l) if l.polled).then_some(k)));
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
    pub(super) fn read_link<H: Host + ?Sized>(&mut self, host: &H, key: usize, to_the_end: bool) -> bool {
        // What it reads for this executor's actors joins the burst, which
        // the executor hands to their handlers once the read is done.
        self.caches.open_burst();
        let (any, acks) = self.read_link_open(host, key, to_the_end);
        self.caches.close_burst();
        if let (Some(link), Some(reading_on)) = (self.link(key), acks) {
            link.reading_on = reading_on;
        }
        any
    }

    /// As [`read_link`](Self::read_link); also whether the link reads on
    /// next turn with what it read unacknowledged (see `Link::reading_on`):
    /// `None` leaves that as it was (what it read last turn is still being
    /// delivered).
    fn read_link_open<H: Host + ?Sized>(
        &mut self,
        host: &H,
        key: usize,
        to_the_end: bool,
    ) -> (bool, Option<bool>) {
        const ACK_NOW: Option<bool> = Some(false);
        let mut budget = match self.io.get(key) {
            Some(Io::Link(link)) => link.stream.turn_bytes(host.config().link.read_budget.max(1)),
            _ => return (false, ACK_NOW),
        };
        let own_limit = host.config().limits.own_queue_read_limit;
        let mut any = false;
        loop {
            if self.handle.backlog() + self.caches.burst_len() >= own_limit {
                // What was read already waits for this thread's handlers:
                // read on once they have run (and acknowledge it meanwhile).
                self.ready.push(key);
                return (any, ACK_NOW);
            }
            let Some(Io::Link(link)) = self.io.get_mut(key) else { return (any, ACK_NOW) };
            let (gate, actions) = link.core.prepare_read(host, &mut self.caches);
            self.apply(host, key, actions);
            match gate {
                ReadGate::Read => {}
                ReadGate::Later => {
                    self.ready.push(key);
                    return (any, None);
                }
                ReadGate::Pause => {
                    if self.link(key).is_some_and(|l| l.core.pause()) {
                        self.ready.push(key);
                    }
                    return (any, ACK_NOW);
                }
                // Paused until the node's read budget has room (`check_budgets`).
                ReadGate::Closed | ReadGate::Budget => return (any, ACK_NOW),
            }
            let Some(Io::Link(link)) = self.io.get_mut(key) else { return (any, ACK_NOW) };
            let Link { stream, core, .. } = &mut **link;
            let (result, want) = match core.input() {
                None => return (any, ACK_NOW),
                Some(Input::Buf(buf)) => {
                    let want = buf.len().min(budget);
                    (stream.read(&mut buf[..want]), want)
                }
                Some(Input::Direct(body, left)) => {
                    let want = left.min(budget);
                    (stream.read_into(body, want), want)
                }
            };
            match result {
                Ok(0) => {
                    let actions = core.read(host, &mut self.caches, Instant::now(), 0);
                    self.apply(host, key, actions);
                    return (true, ACK_NOW);
                }
                Ok(n) => {
                    let actions = core.read(host, &mut self.caches, Instant::now(), n);
                    any = true;
                    budget -= n;
                    let backlog = core.has_backlog();
                    self.apply(host, key, actions);
                    if budget == 0 || backlog {
                        // The turn ended, not the burst.
                        self.ready.push(key);
                        return (any, Some(true));
                    }
                    // A short read emptied the stream: new bytes raise a new event.
                    if n < want && !to_the_end {
                        if let Some(link) = self.link(key) {
                            link.core.read_idle(host);
                        }
                        return (any, ACK_NOW);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    core.read_idle(host);
                    return (any, ACK_NOW);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(host, key, CloseReason::Io(e.to_string()));
                    return (true, ACK_NOW);
                }
            }
        }
    }
}
