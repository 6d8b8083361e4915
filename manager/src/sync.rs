//! Small shared pieces with no knowledge of actors or links: poison-free
//! locking, the manager's lifecycle, which executor the calling thread
//! runs, and the mailbox seam through which cells, peers and links reach
//! an executor without knowing its type.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves no broken invariant behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The manager's state, shared with every cell so that sends can be
/// refused once shutdown begins.
pub(crate) struct Lifecycle(AtomicU8);

impl Lifecycle {
    const RUNNING: u8 = 0;
    const STOPPING: u8 = 1;
    const ABORTING: u8 = 2;

    pub(crate) fn new() -> Self {
        Self(AtomicU8::new(Self::RUNNING))
    }

    pub(crate) fn is_running(&self) -> bool {
        self.0.load(Ordering::Acquire) == Self::RUNNING
    }

    /// Moves to stopping, or aborting (queued messages are not handled);
    /// `false` if it was not running.
    pub(crate) fn begin_stop(&self, drain: bool) -> bool {
        let next = if drain { Self::STOPPING } else { Self::ABORTING };
        self.0.compare_exchange(Self::RUNNING, next, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Whether queued messages are to be reported rather than handled.
    pub(crate) fn is_aborting(&self) -> bool {
        self.0.load(Ordering::Relaxed) == Self::ABORTING
    }
}

/// Where commands of type `C` go: an executor's mailbox, seen by those who
/// need only to queue their own kind of command (a cell its actor's, a
/// peer its link's).
pub(crate) trait Mailbox<C>: Send + Sync {
    /// Queues `cmd`, waking the executor if it sleeps.
    fn push(&self, cmd: C);

    /// Whether the calling thread runs this executor.
    fn is_current(&self) -> bool;

    /// Commands the calling thread gave itself and has not run yet (on
    /// another thread than the executor's: 0).
    fn backlog(&self) -> usize;
}

static NEXT_EXECUTOR_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The executor this thread runs (its [`ExecutorId`]), or 0.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// An executor's identity in this process, unique among all managers'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExecutorId(usize);

impl ExecutorId {
    pub(crate) fn next() -> Self {
        Self(NEXT_EXECUTOR_ID.fetch_add(1, Ordering::Relaxed))
    }

    /// Marks the calling thread as the one that runs this executor.
    pub(crate) fn enter(self) {
        CURRENT.with(|c| c.set(self.0));
    }

    /// Whether the calling thread runs this executor.
    pub(crate) fn is_current(self) -> bool {
        CURRENT.with(Cell::get) == self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executor_id_is_current_only_on_the_thread_that_entered_it() {
        let (a, b) = (ExecutorId::next(), ExecutorId::next());
        assert_ne!(a, b);
        assert!(!a.is_current());
        a.enter();
        assert!(a.is_current() && !b.is_current());
        std::thread::spawn(move || assert!(!a.is_current())).join().expect("thread");
    }

    #[test]
    fn a_lifecycle_stops_once() {
        let l = Lifecycle::new();
        assert!(l.is_running());
        assert!(l.begin_stop(false));
        assert!(!l.begin_stop(true), "a second stop is refused");
        assert!(!l.is_running() && l.is_aborting());
    }
}
