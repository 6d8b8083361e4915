//! Counters: what each link carried and refused, why links closed, and the
//! dead letters by reason.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use connection::{NACK_CODES, SessionCounters};
use msg_header::NodeId;
use serde::Serialize;

/// Makes the per-node counters from the session's list of counts
/// ([`connection::session_counters!`]): the atomics the links add to
/// ([`LinkCounters`]) and their snapshot ([`LinkStats`]), with the counts
/// only a node keeps.
macro_rules! link_counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// The counters of the links to one node, kept across its
        /// reconnects; updated by the executor that owns the link.
        #[derive(Default)]
        pub(crate) struct LinkCounters {
            $(pub(crate) $name: AtomicU64,)*
            /// NACKs received, by reason code (0 for an unknown code).
            pub(crate) nacks_in: [AtomicU64; NACK_CODES],
            /// NACKs sent, by reason code.
            pub(crate) nacks_out: [AtomicU64; NACK_CODES],
            pub(crate) heartbeats_missed: AtomicU64,
            pub(crate) links_up: AtomicU64,
        }

        impl LinkCounters {
            /// Adds what a session counted.
            pub(crate) fn add(&self, c: &SessionCounters) {
                $(bump(&self.$name, c.$name);)*
                for (counter, n) in self.nacks_in.iter().zip(c.nacks_in) {
                    bump(counter, n);
                }
                for (counter, n) in self.nacks_out.iter().zip(c.nacks_out) {
                    bump(counter, n);
                }
            }

            pub(crate) fn snapshot(&self, node: NodeId, node_name: String, up: bool) -> LinkStats {
                LinkStats {
                    node: node.to_string(),
                    node_name,
                    up,
                    $($name: get(&self.$name),)*
                    heartbeats_missed: get(&self.heartbeats_missed),
                    nacks_in: by_reason(&self.nacks_in),
                    nacks_out: by_reason(&self.nacks_out),
                    links_up: get(&self.links_up),
                }
            }
        }

        /// What the links to one node carried, since this manager first
        /// linked to it.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
        pub struct LinkStats {
            /// The node's id.
            pub node: String,
            /// The node's name.
            pub node_name: String,
            /// Whether a link to it is up now.
            pub up: bool,
            $($(#[doc = $doc])* pub $name: u64,)*
            /// Times a link to it went silent past the heartbeat timeout.
            pub heartbeats_missed: u64,
            /// NACKs received, by reason.
            pub nacks_in: BTreeMap<String, u64>,
            /// NACKs sent, by reason.
            pub nacks_out: BTreeMap<String, u64>,
            /// Times a link to it came up.
            pub links_up: u64,
        }
    };
}

connection::session_counters!(link_counters);

fn bump(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn by_reason(counts: &[AtomicU64; NACK_CODES]) -> BTreeMap<String, u64> {
    let names = ["unknown", "unknown_msg", "bad_body", "unknown_dst", "mailbox_full", "dst_stopped"];
    names.iter().zip(counts).filter(|(_, c)| get(c) > 0).map(|(n, c)| ((*n).to_owned(), get(c))).collect()
}

/// A manager's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Per linked node, in the order first linked.
    pub links: Vec<LinkStats>,
    /// Links closed, by reason (`peer_closed`, `truncated_frame` (the
    /// peer closed in the middle of a frame), `heartbeat_timeout`,
    /// `slow_consumer`, `protocol`, ...).
    pub closes: BTreeMap<String, u64>,
    /// Dead letters, by reason.
    pub dead_letters: BTreeMap<String, u64>,
    /// What all links hold now, against the node's budgets.
    pub held: Held,
}

/// What a node's links hold together now, against its budgets
/// ([`NodeLimits`](crate::NodeLimits)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Held {
    /// Bytes of read buffers grown for large frames.
    pub read_buffers: usize,
    /// Bytes of inbound messages delivered and not yet handled (as the
    /// executors last added them up).
    pub inbound: usize,
    /// Bytes waiting to be written (likewise).
    pub output: usize,
    /// Reads that waited for the read buffers' budget, since the start.
    pub read_waits: u64,
}

/// Counts by name, behind a lock: rare events only.
#[derive(Default)]
pub(crate) struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    pub(crate) fn add(&self, what: &str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(what.to_owned()).or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
