//! How a manager and its actors are set up.

use std::time::Duration;

/// How a [`Manager`](crate::Manager) runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// Executor threads; each hosts many actors. Default: 2.
    pub executors: usize,
    /// How long an executor polls for new work, yielding the CPU on each
    /// turn, before it sleeps. Default: 10 µs (see [`low_latency`](Self::low_latency)).
    pub spin: Duration,
    /// Dead letters kept for [`Manager::dead_letters`](crate::Manager::dead_letters)
    /// until read; past that they are counted and logged only. Default: 10,000.
    pub dead_letter_capacity: usize,
    /// Names threads and log lines. Default: `ipchnl`.
    pub name: String,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            executors: 2,
            spin: Duration::from_micros(10),
            dead_letter_capacity: 10_000,
            name: "ipchnl".into(),
        }
    }
}

impl ManagerConfig {
    /// Sets the number of executor threads (at least 1).
    pub fn executors(mut self, n: usize) -> Self {
        self.executors = n.max(1);
        self
    }

    /// Sets how long executors poll, yielding, before they sleep.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// The low-latency option: executors poll for 100 µs before they sleep,
    /// trading idle CPU for round trips near a spinning socket's.
    pub fn low_latency(self) -> Self {
        self.spin(Duration::from_micros(100))
    }

    /// Sets how many unread dead letters are kept.
    pub fn dead_letter_capacity(mut self, n: usize) -> Self {
        self.dead_letter_capacity = n.max(1);
        self
    }

    /// Sets the name used for threads and logs.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

/// Where and how one actor runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActorOptions {
    /// The executor to run on; by default executors are taken in turn.
    pub executor: Option<usize>,
    /// The mailbox capacity; by default unbounded.
    pub capacity: Option<usize>,
}

impl ActorOptions {
    /// Runs the actor on executor `index`.
    pub fn executor(mut self, index: usize) -> Self {
        self.executor = Some(index);
        self
    }

    /// Bounds the actor's mailbox to `capacity` messages not yet handled.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }
}
