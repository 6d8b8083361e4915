//! Errors of the manager.

use msg_header::ActorId;

/// A manager request failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// Another actor of this manager has the name.
    #[error("an actor named {0:?} already exists")]
    NameTaken(String),
    /// Another actor of this manager has the id.
    #[error("an actor with id {0} already exists")]
    DuplicateId(ActorId),
    /// There is no executor with this index.
    #[error("no executor {index}: the manager has {count}")]
    NoSuchExecutor {
        /// The index asked for.
        index: usize,
        /// How many executors there are.
        count: usize,
    },
    /// The manager is shutting down or shut down.
    #[error("the manager is shutting down")]
    ShuttingDown,
    /// The operating system refused a thread or a poller.
    #[error("i/o error")]
    Io(#[from] std::io::Error),
}
