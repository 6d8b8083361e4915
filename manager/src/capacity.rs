//! A counting semaphore: how many messages may be outstanding in a bounded
//! mailbox, or unacknowledged on a link.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use actor::{ActorSender, SendError, Wait};
use msg_header::BoxMsg;

use crate::sync::lock;

/// Why no place was taken.
pub(crate) enum Refusal {
    /// Full, and not waiting.
    Full,
    /// Still full at the deadline.
    Timeout,
    /// Closed while waiting.
    Closed,
}

impl Refusal {
    pub(crate) fn into_error(self, msg: BoxMsg) -> SendError {
        match self {
            Self::Full => SendError::Full(msg),
            Self::Timeout => SendError::Timeout(msg),
            Self::Closed => SendError::Disconnected(msg),
        }
    }
}

/// Places taken and not yet given back, up to a capacity; takers may wait,
/// and actors (which must not wait) may ask to be told when there is room.
pub(crate) struct Capacity {
    capacity: usize,
    used: AtomicUsize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    room: Condvar,
    /// Notes to send when a place frees: `(to, note)`.
    notes: Mutex<Vec<(ActorSender, BoxMsg)>>,
    has_notes: AtomicBool,
}

impl Capacity {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            used: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            room: Condvar::new(),
            notes: Mutex::new(Vec::new()),
            has_notes: AtomicBool::new(false),
        }
    }

    /// Sends `note` to `to` when a place frees; at once if one is free now.
    pub(crate) fn when_room(&self, to: ActorSender, note: BoxMsg) -> Result<(), SendError> {
        {
            let mut notes = lock(&self.notes);
            notes.push((to, note));
            self.has_notes.store(true, Ordering::SeqCst);
        }
        // Pairs with `release`: it frees a place, then looks for notes.
        if self.used.load(Ordering::SeqCst) < self.capacity {
            self.send_notes();
        }
        Ok(())
    }

    fn send_notes(&self) {
        if !self.has_notes.swap(false, Ordering::SeqCst) {
            return;
        }
        let notes = std::mem::take(&mut *lock(&self.notes));
        for (to, note) in notes {
            // The note goes to an actor's own mailbox: without waiting.
            if let Err(e) = to.forward(note, None, 0, Wait::No) {
                tracing::error!(actor = to.name(), error = %e, "room-again note not delivered");
            }
        }
    }

    /// How many places there are.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes a place if one is free.
    pub(crate) fn try_take(&self) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| (q < self.capacity).then_some(q + 1))
            .is_ok()
    }

    /// Takes as many places as are free, up to `n`; how many it took.
    pub(crate) fn try_take_up_to(&self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        match self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
            (q < self.capacity).then(|| q + n.min(self.capacity - q))
        }) {
            Ok(before) => n.min(self.capacity - before),
            Err(_) => 0,
        }
    }

    /// Takes a place, waiting as `wait` says while `open` holds.
    pub(crate) fn take(&self, wait: Wait, open: &AtomicBool) -> Result<(), Refusal> {
        if self.try_take() {
            return Ok(());
        }
        let deadline = match wait {
            Wait::No => return Err(Refusal::Full),
            Wait::Until(d) => Some(d),
            Wait::Forever => None,
        };
        let mut guard = lock(&self.lock);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let outcome = loop {
            if self.try_take() {
                break Ok(());
            }
            if !open.load(Ordering::Acquire) {
                break Err(Refusal::Closed);
            }
            guard = match deadline {
                None => self.room.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break Err(Refusal::Timeout);
                    }
                    self.room.wait_timeout(guard, d - now).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    /// Gives `n` places back.
    pub(crate) fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.used.fetch_sub(n, Ordering::SeqCst);
        // Pairs with `take`: a waiter registers before its last try, so
        // either it sees the room or we see it waiting.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&self.lock);
            self.room.notify_all();
        }
        if self.has_notes.load(Ordering::SeqCst) {
            self.send_notes();
        }
    }

    /// Wakes every waiter, e.g. to see that it closed.
    pub(crate) fn wake_all(&self) {
        let _guard = lock(&self.lock);
        self.room.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::Capacity;

    #[test]
    fn taking_up_to_n_takes_what_is_free_and_no_more() {
        let c = Capacity::new(4);
        assert_eq!(c.try_take_up_to(0), 0);
        assert!(c.try_take());
        assert_eq!(c.try_take_up_to(10), 3, "three were free");
        assert_eq!(c.try_take_up_to(1), 0, "none left");
        assert!(!c.try_take());
        c.release(2);
        assert_eq!(c.try_take_up_to(1), 1);
        assert_eq!(c.try_take_up_to(5), 1);
        assert_eq!(c.try_take_up_to(5), 0);
    }
}
