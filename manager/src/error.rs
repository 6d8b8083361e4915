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
    /// The operating system refused a thread, a poller or a socket.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// An address that does not parse or resolve.
    #[error(transparent)]
    Addr(#[from] crate::AddrError),
    /// Listening on a non-loopback address without a secret, not allowed.
    #[error(
        "refusing to listen on {0} without a secret: frames are not encrypted; set a secret or allow insecure"
    )]
    Insecure(String),
    /// Something already listens on the Unix socket path, or the path is
    /// not a socket.
    #[error("{0} is in use (a live listener, or not a socket)")]
    InUse(String),
    /// The configured secret is too short to resist a dictionary.
    #[error("the secret is {0} bytes: at least {min} are needed", min = crate::MIN_SECRET_LEN)]
    WeakSecret(usize),
    /// Encryption of every link was asked for without a secret to key it.
    #[error("encrypting every link (or node keys) needs a shared secret (ManagerConfig::secret)")]
    EncryptionNeedsSecret,
    /// A link could not be established.
    #[error("cannot link to {addr}: {reason}")]
    Connect {
        /// The address dialed.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}
