//! How a manager and its actors are set up.

use std::time::Duration;

use connection::{LinkLimits, NodeKeys, Secret};

/// How a [`Manager`](crate::Manager) runs, in groups: who it is
/// ([`Identity`]), whom it lets in ([`Security`]), what one link may cost
/// ([`LinkLimits`]) and what the node bounds as a whole ([`NodeLimits`]),
/// how it runs ([`Tuning`]), and how it meets others through NATS
/// ([`NatsOptions`]). Every limit has one home and one default, listed in
/// `docs/GUARANTEES.md`; the builder methods set the common ones.
///
/// ```
/// # mod ipchnl { pub use manager::ManagerConfig; }
/// use std::time::Duration;
/// use ipchnl::ManagerConfig;
///
/// let config = ManagerConfig::default().node_name("alpha").window(64).max_links(16);
/// assert_eq!(config.identity.node_name, "alpha");
/// assert_eq!((config.link.window, config.limits.max_links), (64, 16));
/// assert_eq!(config.link.heartbeat_timeout, Duration::from_secs(5));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// Who this node is.
    pub identity: Identity,
    /// Whom it links with.
    pub security: Security,
    /// What each link may hold and do.
    pub link: LinkLimits,
    /// What the node bounds across its links and actors.
    pub limits: NodeLimits,
    /// How its executors run.
    pub tuning: Tuning,
    /// How it meets other managers through a NATS server.
    pub nats: NatsOptions,
}

/// Who a node is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Identity {
    /// Names threads and log lines. Default: `ipchnl`.
    pub name: String,
    /// This node's name, unique among linked nodes (`NAME@NODE` names an
    /// actor on it); its `NodeId` is the hash of it. Default: `HOST-PID`.
    pub node_name: String,
}

impl Default for Identity {
    fn default() -> Self {
        Self { name: "ipchnl".into(), node_name: default_node_name() }
    }
}

/// Whom a node links with.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Security {
    /// The shared secret links must prove; none by default.
    pub secret: Option<Secret>,
    /// Allows listening on a non-loopback address without a secret.
    pub allow_insecure: bool,
    /// Which users may connect over a Unix socket. Default: this process's.
    pub unix_peers: UnixPeers,
    /// Which links this node requires encrypted (keyed by `secret`; a
    /// link is encrypted when either end requires it). Default:
    /// [`Encryption::OffHost`].
    pub encryption: Encryption,
    /// This node's key and the keys of the nodes allowed to link, if
    /// links prove node keys (every link is then encrypted; it needs
    /// `secret` too). None by default.
    pub node_keys: Option<NodeKeys>,
}

/// Which links a node requires encrypted (WIRE.md §2, "The encrypted
/// link"). Encryption is keyed by the shared secret: a node without one
/// encrypts nothing, and [`Encryption::Always`] needs one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encryption {
    /// TCP links to or from another host (a non-loopback address), when
    /// the node has a secret; loopback TCP, Unix sockets and shared
    /// memory stay authenticated only (the kernel keeps their bytes from
    /// other users).
    #[default]
    OffHost,
    /// Every link.
    Always,
    /// None by this node's choice (a peer may still require it, and then
    /// the link is encrypted).
    Never,
}

/// How a node's executors run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Tuning {
    /// Executor threads; each hosts many actors. Default: 2.
    pub executors: usize,
    /// How long an executor polls for new work, yielding the CPU as it
    /// goes (each turn on one CPU; every fourth turn, which reads its links
    /// each time, when it has links and more than one CPU), before it
    /// sleeps. Default: 10 µs (see [`ManagerConfig::low_latency`]).
    pub spin: Duration,
    /// The first and the longest pause between attempts to redial a link
    /// that went down. Default: 50 ms and 2 s, with ±25% jitter.
    pub reconnect_backoff: (Duration, Duration),
    /// The executor every link runs on; by default executors are taken in turn.
    pub link_executor: Option<usize>,
    /// The executor that runs the listeners and the handshakes of the
    /// connections they accept; a link moves to its link executor once
    /// its handshake is done. A flood of connections that never finish
    /// their handshake then costs the links' executor nothing. Default:
    /// none: listeners run on the link executors, and an accepted
    /// connection does its handshake where it will run.
    pub handshake_executor: Option<usize>,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            executors: 2,
            spin: Duration::from_micros(10),
            reconnect_backoff: (Duration::from_millis(50), Duration::from_secs(2)),
            link_executor: None,
            handshake_executor: None,
        }
    }
}

/// How a node meets others through a NATS server (`nats://` addresses,
/// with the `nats` feature).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NatsOptions {
    /// A NATS credentials file (`.creds`), for servers that want one; a
    /// token or a user and password go in the `nats://` URL.
    pub credentials: Option<std::path::PathBuf>,
    /// Others forget this manager when it has not announced itself on NATS
    /// for this long; it announces itself every third of it (the expiry
    /// travels in the announcement, so each manager may choose its own).
    /// Default: 5 s.
    pub expiry: Duration,
    /// How long the NATS bridge keeps polling (its sockets and NATS's,
    /// yielding, without sleeping) after link bytes last went through it,
    /// before it sleeps: a round trip through NATS takes 100-200 µs on
    /// loopback, and a sleeping bridge takes tens of µs to wake on a VM.
    /// Zero: it sleeps at once. An idle bridge sleeps either way. Default:
    /// 1 ms.
    pub poll: Duration,
}

impl Default for NatsOptions {
    fn default() -> Self {
        Self { credentials: None, expiry: Duration::from_secs(5), poll: Duration::from_millis(1) }
    }
}

connection::limits! {
    /// What a node bounds as a whole, across its links and actors (each
    /// link's own limits are [`LinkLimits`]). One `Default`, shown in
    /// `docs/GUARANTEES.md` (checked against it by a test).
    ///
    /// ```
    /// # mod ipchnl { pub use manager::NodeLimits; }
    /// use ipchnl::NodeLimits;
    /// assert_eq!(NodeLimits::default().max_links, 1024);
    /// ```
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct NodeLimits {
        /// Links accepted at once (dialed ones are this node's own doing):
        /// past it a connection is closed at once and counted, `link_limit`.
        /// Default: 1,024.
        max_links: usize = 1024 => len,
        /// Accepted connections still in their handshake, per executor:
        /// past it the oldest is cut, `handshake_limit`, so a flood of
        /// stalled connections cannot lock out a real client. Default: 128.
        max_pending_handshakes: usize = 128 => len,
        /// Connections a listener accepts per executor turn: a flood of
        /// connects cannot keep the executor from the handshakes under way
        /// (the pending handshakes' cap cuts the oldest, so a real client's
        /// handshake must get its turn before that many newer ones arrive),
        /// nor the links up from their round trips. Default: 1.
        accepts_per_turn: usize = 1 => len,
        /// Commands an executor gave itself (messages read for its own
        /// actors among them) past which its links read no more until they
        /// are handled: what links read for one thread's actors is bounded
        /// by this and one read budget per link. Default: 64.
        own_queue_read_limit: usize = 64 => len,
        /// Dead letters kept for `Manager::dead_letters`
        /// until read; past that they are counted and logged only. Default: 10,000.
        dead_letter_capacity: usize = 10_000 => len,
        /// Links accepted at once from one user (a uid on this host, an
        /// address elsewhere), below `max_links`: one process cannot take
        /// every link; a link past it is closed after its handshake with
        /// `too_many_links_from_user`. Default: 256.
        max_links_per_user: usize = 256 => len,
        /// Links accepted at once from one node (its name in the
        /// handshake); past it a link is closed after its handshake with
        /// `too_many_links_from_node`. Default: 16.
        max_links_per_node: usize = 16 => len,
        /// Bytes of read buffers grown for frames larger than a link's
        /// base buffer, and of messages coming in parts, all links
        /// together: a link whose frame or message needs more waits until
        /// others give theirs back (each does once its frame or message is
        /// whole, and each must progress within `frame_deadline`). Twice
        /// the largest message. Default: 128 MiB.
        max_read_buffers: usize = 128 << 20 => bytes,
        /// Bytes of inbound messages delivered and not yet handled, all links
        /// together: past it the links holding any read no more until they
        /// drain. Twice the largest message. Default: 128 MiB.
        max_inbound_total: usize = 128 << 20 => bytes,
        /// Bytes waiting to be written, all links together: past it the
        /// links holding any read no more (so they make no more replies)
        /// until it drains. Default: 64 MiB.
        max_output_total: usize = 64 << 20 => bytes,
        /// How long the node may stay over one of its budgets before it cuts
        /// the link holding the most of it, `over_budget` (one a check,
        /// every 10 ms, until it is under; over the read budget again right
        /// after a cut for it, this is not waited for anew, and those cuts
        /// are paced to free about the budget per grace). Default: 1 s.
        budget_grace: Duration = Duration::from_secs(1) => duration,
        /// Nodes whose link is down that are remembered (their counters and
        /// incarnation), the longest known forgotten first: peers that come
        /// and go under new names cannot grow the table. Default: 1,024.
        max_down_peers: usize = 1024 => len,
    }
}

/// Which users may connect to a Unix socket (checked with `SO_PEERCRED`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum UnixPeers {
    /// Only the user this process runs as.
    #[default]
    SameUser,
    /// Only these user ids.
    Users(Vec<u32>),
    /// Anyone who can open the socket file.
    Anyone,
}

impl UnixPeers {
    /// Whether a peer of `peer_uid` may connect to a process of `own_uid`.
    pub fn allows(&self, peer_uid: u32, own_uid: u32) -> bool {
        match self {
            Self::SameUser => peer_uid == own_uid,
            Self::Users(uids) => uids.contains(&peer_uid),
            Self::Anyone => true,
        }
    }
}

/// `HOST-PID`: distinct for every process on a network of distinct hosts.
fn default_node_name() -> String {
    let uname = rustix::system::uname();
    format!("{}-{}", uname.nodename().to_string_lossy(), std::process::id())
}

impl ManagerConfig {
    /// Sets the number of executor threads (at least 1).
    pub fn executors(mut self, n: usize) -> Self {
        self.tuning.executors = n.max(1);
        self
    }

    /// Sets how long executors poll, yielding, before they sleep.
    pub fn spin(mut self, spin: Duration) -> Self {
        self.tuning.spin = spin;
        self
    }

    /// The low-latency option: executors poll for 100 µs before they sleep,
    /// trading idle CPU for round trips near a spinning socket's.
    pub fn low_latency(self) -> Self {
        self.spin(Duration::from_micros(100))
    }

    /// Sets how many unread dead letters are kept.
    pub fn dead_letter_capacity(mut self, n: usize) -> Self {
        self.limits.dead_letter_capacity = n.max(1);
        self
    }

    /// Sets the name used for threads and logs.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.identity.name = name.into();
        self
    }

    /// Sets this node's name.
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.identity.node_name = name.into();
        self
    }

    /// Requires links to prove they know `secret`.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.security.secret = Some(secret);
        self
    }

    /// Links prove node keys: this node's, and one of those `keys`
    /// allows from the peer (every link is then encrypted; it needs
    /// [`secret`](Self::secret) too).
    pub fn node_keys(mut self, keys: NodeKeys) -> Self {
        self.security.node_keys = Some(keys);
        self
    }

    /// Sets which links this node requires encrypted.
    pub fn encryption(mut self, encryption: Encryption) -> Self {
        self.security.encryption = encryption;
        self
    }

    /// Allows listening on a non-loopback address without a secret.
    pub fn allow_insecure(mut self, allow: bool) -> Self {
        self.security.allow_insecure = allow;
        self
    }

    /// Sets which users may connect over a Unix socket.
    pub fn unix_peers(mut self, peers: UnixPeers) -> Self {
        self.security.unix_peers = peers;
        self
    }

    /// Sets the handshake timeout.
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.link.handshake_timeout = d;
        self
    }

    /// Sets the heartbeat interval and the silence after which a link is down.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.link.heartbeat_interval = interval;
        self.link.heartbeat_timeout = timeout;
        self
    }

    /// Sets how many messages may be unacknowledged on a link (at least 1).
    pub fn window(mut self, n: usize) -> Self {
        self.link.window = n.max(1);
        self
    }

    /// Sets how long a peer may take nothing we write before its link is cut.
    pub fn write_deadline(mut self, d: Duration) -> Self {
        self.link.write_deadline = d;
        self
    }

    /// Sets the largest frame, header included.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.link.max_frame = bytes;
        self
    }

    /// Sets the largest message body (one larger than a frame goes in
    /// parts; one larger than this is refused, `SendError::TooLarge`).
    ///
    /// ```
    /// # mod ipchnl { pub use manager::ManagerConfig; }
    /// use ipchnl::ManagerConfig;
    /// assert_eq!(ManagerConfig::default().max_message(16 << 20).link.max_message, 16 << 20);
    /// ```
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.link.max_message = bytes;
        self
    }

    /// Sets the first and longest pause between redials.
    pub fn reconnect_backoff(mut self, first: Duration, longest: Duration) -> Self {
        self.tuning.reconnect_backoff = (first, longest.max(first));
        self
    }

    /// Runs the listeners and the handshakes on executor `index` (see
    /// [`Tuning::handshake_executor`]).
    pub fn handshake_executor(mut self, index: usize) -> Self {
        self.tuning.handshake_executor = Some(index);
        self
    }

    /// Runs every link on executor `index`.
    pub fn link_executor(mut self, index: usize) -> Self {
        self.tuning.link_executor = Some(index);
        self
    }

    /// Sets [`NodeLimits::max_links`].
    pub fn max_links(mut self, n: usize) -> Self {
        self.limits.max_links = n;
        self
    }

    /// Sets [`NodeLimits::max_pending_handshakes`] (at least 1).
    pub fn max_pending_handshakes(mut self, n: usize) -> Self {
        self.limits.max_pending_handshakes = n.max(1);
        self
    }

    /// Sets [`LinkLimits::max_inbound_bytes`].
    pub fn max_inbound_bytes(mut self, bytes: usize) -> Self {
        self.link.max_inbound_bytes = bytes;
        self
    }

    /// Sets [`LinkLimits::max_write_buffer`].
    pub fn max_write_buffer(mut self, bytes: usize) -> Self {
        self.link.max_write_buffer = bytes;
        self
    }

    /// Sets [`LinkLimits::read_budget`] (at least 1).
    pub fn read_budget(mut self, bytes: usize) -> Self {
        self.link.read_budget = bytes.max(1);
        self
    }

    /// Sets [`LinkLimits::max_watches`].
    pub fn max_watches(mut self, n: usize) -> Self {
        self.link.max_watches = n;
        self
    }

    /// Sets [`LinkLimits::control_rate`] and [`LinkLimits::control_burst`].
    pub fn control_budget(mut self, per_second: u32, burst: u32) -> Self {
        self.link.control_rate = per_second;
        self.link.control_burst = burst;
        self
    }

    /// Sets [`LinkLimits::max_remote_actors`].
    pub fn max_remote_actors(mut self, n: usize) -> Self {
        self.link.max_remote_actors = n;
        self
    }

    /// Sets [`NatsOptions::credentials`].
    pub fn nats_credentials(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.nats.credentials = Some(path.into());
        self
    }

    /// Sets [`NatsOptions::expiry`].
    pub fn nats_expiry(mut self, expiry: Duration) -> Self {
        self.nats.expiry = expiry;
        self
    }

    /// Sets [`NatsOptions::poll`].
    pub fn nats_poll(mut self, poll: Duration) -> Self {
        self.nats.poll = poll;
        self
    }

    /// Every limit, the node's and each link's, with its value here: the
    /// table `docs/GUARANTEES.md` prints for the defaults.
    pub fn limit_rows(&self) -> Vec<connection::LimitRow> {
        let mut rows = self.link.rows();
        rows.extend(self.limits.rows());
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_peer_policy() {
        assert!(UnixPeers::SameUser.allows(1000, 1000));
        assert!(!UnixPeers::SameUser.allows(1001, 1000));
        assert!(!UnixPeers::SameUser.allows(0, 1000));
        assert!(UnixPeers::Users(vec![7, 8]).allows(8, 1000));
        assert!(!UnixPeers::Users(vec![7, 8]).allows(1000, 1000));
        assert!(UnixPeers::Anyone.allows(12345, 1000));
    }
}

/// Where and how one actor runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActorOptions {
    /// The executor to run on; by default executors are taken in turn.
    pub executor: Option<usize>,
    /// The mailbox capacity; by default unbounded.
    pub capacity: Option<usize>,
    /// Messages from other nodes are acknowledged only once handled (a
    /// receipt); by default once in the mailbox. See
    /// [`receipts`](Self::receipts).
    pub receipts: bool,
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

    /// Acknowledges a message from another node only once the actor has
    /// handled it (or once it is returned to its sender as a dead letter),
    /// not when it reaches the mailbox: then even a `kill -9` of this
    /// process leaves its senders nothing unreported, as what was not
    /// handled is `Unacknowledged` there. The cost: the link's window does
    /// not reopen past a message until it is handled, so a slow actor
    /// slows its senders on that link (backpressure, as a bounded mailbox
    /// gives).
    ///
    /// ```
    /// # mod ipchnl { pub use manager::ActorOptions; }
    /// use ipchnl::ActorOptions;
    /// let options = ActorOptions::default().receipts(true);
    /// assert!(options.receipts);
    /// assert!(!ActorOptions::default().receipts);
    /// ```
    pub fn receipts(mut self, on: bool) -> Self {
        self.receipts = on;
        self
    }
}
