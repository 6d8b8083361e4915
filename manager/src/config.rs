//! How a manager and its actors are set up.

use std::time::Duration;

use connection::{DEFAULT_MAX_FRAME, Secret};

/// How a [`Manager`](crate::Manager) runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// Executor threads; each hosts many actors. Default: 2.
    pub executors: usize,
    /// How long an executor polls for new work, yielding the CPU as it
    /// goes (each turn on one CPU; every fourth turn, which reads its links
    /// each time, when it has links and more than one CPU), before it
    /// sleeps. Default: 10 µs (see [`low_latency`](Self::low_latency)).
    pub spin: Duration,
    /// Dead letters kept for [`Manager::dead_letters`](crate::Manager::dead_letters)
    /// until read; past that they are counted and logged only. Default: 10,000.
    pub dead_letter_capacity: usize,
    /// Names threads and log lines. Default: `ipchnl`.
    pub name: String,
    /// This node's name, unique among linked nodes (`NAME@NODE` names an
    /// actor on it); its `NodeId` is the hash of it. Default: `HOST-PID`.
    pub node_name: String,
    /// The shared secret links must prove; none by default.
    pub secret: Option<Secret>,
    /// Allows listening on a non-loopback address without a secret.
    pub allow_insecure: bool,
    /// Which users may connect over a Unix socket. Default: this process's.
    pub unix_peers: UnixPeers,
    /// How long a handshake may take. Default: 5 s.
    pub handshake_timeout: Duration,
    /// A link that has sent nothing for this long sends a heartbeat. Default: 1 s.
    pub heartbeat_interval: Duration,
    /// A link that has received nothing for this long is down. Default: 5 s.
    pub heartbeat_timeout: Duration,
    /// Messages sent on a link and not yet acknowledged, at most. Default: 1,024.
    pub window: usize,
    /// A link whose peer takes nothing we write for this long is cut
    /// (`slow_consumer`), so a stuck reader cannot hold our memory. Default: 10 s.
    pub write_deadline: Duration,
    /// The largest frame, header included. Default: 1 MiB.
    pub max_frame: usize,
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
    /// A NATS credentials file (`.creds`), for servers that want one; a
    /// token or a user and password go in the `nats://` URL.
    pub nats_credentials: Option<std::path::PathBuf>,
    /// Links at most (accepted ones; dialed ones are this node's own doing):
    /// past it a connection is closed at once and counted (`link_limit`).
    /// Default: 1,024.
    pub max_links: usize,
    /// Accepted connections still in their handshake, at most, per
    /// executor: past it the oldest is cut (`handshake_limit`), so a flood
    /// of stalled connections cannot lock out a real client. Default: 128.
    pub max_pending_handshakes: usize,
    /// Bytes of a link's inbound messages delivered and not yet handled,
    /// at most: past it the link acknowledges nothing and reads nothing
    /// (the peer's window fills, TCP pushes back) until they drain.
    /// Default: 8 MiB (never less than `max_frame`).
    pub max_inbound_bytes: usize,
    /// Bytes waiting to be written to a link, at most: past it the link
    /// reads nothing from its peer (a peer that does not read cannot make
    /// this side write more), and past `write_deadline` it is cut.
    /// Default: 8 MiB (never less than `max_frame`).
    pub max_write_buffer: usize,
    /// Bytes read from one link per executor turn, at most, before the
    /// others have theirs: one busy link cannot starve the rest. Default: 16 KiB.
    pub read_budget: usize,
    /// Watches of this node's actors one peer may hold. Default: 4,096.
    pub max_watches: usize,
    /// Actors one peer may announce. Default: 4,096.
    pub max_remote_actors: usize,
    /// The longest actor or node name a peer may announce, in bytes. Default: 255.
    pub max_name_len: usize,
    /// Protocols, and message ids, one announced actor may list. Default: 128.
    pub max_actor_ids: usize,
    /// Control frames (heartbeats, watches, directories, and ACKs or NACKs
    /// that settle nothing) one peer may send per second on average; past
    /// [`control_burst`](Self::control_burst) its link is read no more
    /// until the budget refills, so a flood of valid frames waits in TCP.
    /// A DIRECTORY costs one more per KiB. Default: 10,000.
    pub control_rate: u32,
    /// Control frames one peer may send at once before
    /// [`control_rate`](Self::control_rate) applies. Default: 10,000.
    pub control_burst: u32,
    /// Others forget this manager when it has not announced itself on NATS
    /// for this long; it announces itself every third of it (the expiry
    /// travels in the announcement, so each manager may choose its own).
    /// Default: 5 s.
    pub nats_expiry: Duration,
    /// How long the NATS bridge keeps polling (its sockets and NATS's,
    /// yielding, without sleeping) after link bytes last went through it,
    /// before it sleeps: a round trip through NATS takes 100-200 µs on
    /// loopback, and a sleeping bridge takes tens of µs to wake on a VM.
    /// Zero: it sleeps at once. An idle bridge sleeps either way. Default:
    /// 1 ms.
    pub nats_poll: Duration,
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

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            executors: 2,
            spin: Duration::from_micros(10),
            dead_letter_capacity: 10_000,
            name: "ipchnl".into(),
            node_name: default_node_name(),
            secret: None,
            allow_insecure: false,
            unix_peers: UnixPeers::default(),
            handshake_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(5),
            window: 1024,
            write_deadline: Duration::from_secs(10),
            max_frame: DEFAULT_MAX_FRAME,
            reconnect_backoff: (Duration::from_millis(50), Duration::from_secs(2)),
            link_executor: None,
            handshake_executor: None,
            nats_credentials: None,
            nats_expiry: Duration::from_secs(5),
            nats_poll: Duration::from_millis(1),
            max_links: 1024,
            max_pending_handshakes: 128,
            max_inbound_bytes: 8 << 20,
            max_write_buffer: 8 << 20,
            read_budget: 16 * 1024,
            max_watches: 4096,
            max_remote_actors: 4096,
            max_name_len: 255,
            max_actor_ids: 128,
            control_rate: 10_000,
            control_burst: 10_000,
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

    /// Sets this node's name.
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node_name = name.into();
        self
    }

    /// Requires links to prove they know `secret`.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Allows listening on a non-loopback address without a secret.
    pub fn allow_insecure(mut self, allow: bool) -> Self {
        self.allow_insecure = allow;
        self
    }

    /// Sets which users may connect over a Unix socket.
    pub fn unix_peers(mut self, peers: UnixPeers) -> Self {
        self.unix_peers = peers;
        self
    }

    /// Sets the handshake timeout.
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.handshake_timeout = d;
        self
    }

    /// Sets the heartbeat interval and the silence after which a link is down.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }

    /// Sets how many messages may be unacknowledged on a link (at least 1).
    pub fn window(mut self, n: usize) -> Self {
        self.window = n.max(1);
        self
    }

    /// Sets how long a peer may take nothing we write before its link is cut.
    pub fn write_deadline(mut self, d: Duration) -> Self {
        self.write_deadline = d;
        self
    }

    /// Sets the largest frame, header included.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Sets the first and longest pause between redials.
    pub fn reconnect_backoff(mut self, first: Duration, longest: Duration) -> Self {
        self.reconnect_backoff = (first, longest.max(first));
        self
    }

    /// Runs the listeners and the handshakes on executor `index` (see
    /// [`handshake_executor`](Self::handshake_executor)).
    pub fn handshake_executor(mut self, index: usize) -> Self {
        self.handshake_executor = Some(index);
        self
    }

    /// Runs every link on executor `index`.
    pub fn link_executor(mut self, index: usize) -> Self {
        self.link_executor = Some(index);
        self
    }

    /// Sets [`max_links`](Self::max_links).
    pub fn max_links(mut self, n: usize) -> Self {
        self.max_links = n;
        self
    }

    /// Sets [`max_pending_handshakes`](Self::max_pending_handshakes) (at least 1).
    pub fn max_pending_handshakes(mut self, n: usize) -> Self {
        self.max_pending_handshakes = n.max(1);
        self
    }

    /// Sets [`max_inbound_bytes`](Self::max_inbound_bytes).
    pub fn max_inbound_bytes(mut self, bytes: usize) -> Self {
        self.max_inbound_bytes = bytes;
        self
    }

    /// Sets [`max_write_buffer`](Self::max_write_buffer).
    pub fn max_write_buffer(mut self, bytes: usize) -> Self {
        self.max_write_buffer = bytes;
        self
    }

    /// Sets [`read_budget`](Self::read_budget) (at least 1).
    pub fn read_budget(mut self, bytes: usize) -> Self {
        self.read_budget = bytes.max(1);
        self
    }

    /// Sets [`max_watches`](Self::max_watches).
    pub fn max_watches(mut self, n: usize) -> Self {
        self.max_watches = n;
        self
    }

    /// Sets [`control_rate`](Self::control_rate) and
    /// [`control_burst`](Self::control_burst).
    pub fn control_budget(mut self, per_second: u32, burst: u32) -> Self {
        self.control_rate = per_second;
        self.control_burst = burst;
        self
    }

    /// Sets [`max_remote_actors`](Self::max_remote_actors).
    pub fn max_remote_actors(mut self, n: usize) -> Self {
        self.max_remote_actors = n;
        self
    }

    /// Sets [`nats_credentials`](Self::nats_credentials).
    pub fn nats_credentials(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.nats_credentials = Some(path.into());
        self
    }

    /// Sets [`nats_expiry`](Self::nats_expiry).
    pub fn nats_expiry(mut self, expiry: Duration) -> Self {
        self.nats_expiry = expiry;
        self
    }

    /// Sets [`nats_poll`](Self::nats_poll).
    pub fn nats_poll(mut self, poll: Duration) -> Self {
        self.nats_poll = poll;
        self
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
    /// use manager::ActorOptions;
    /// let options = ActorOptions::default().receipts(true);
    /// assert!(options.receipts);
    /// assert!(!ActorOptions::default().receipts);
    /// ```
    pub fn receipts(mut self, on: bool) -> Self {
        self.receipts = on;
        self
    }
}
