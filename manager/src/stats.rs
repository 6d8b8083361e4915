//! Counters: what each link carried and refused, why links closed, and the
//! dead letters by reason.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use msg_header::NodeId;
use serde::Serialize;

/// The counters of the links to one node, kept across its reconnects;
/// updated by the executor that owns the link.
#[derive(Default)]
pub(crate) struct LinkCounters {
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) msgs_in: AtomicU64,
    pub(crate) msgs_out: AtomicU64,
    pub(crate) heartbeats_in: AtomicU64,
    pub(crate) heartbeats_out: AtomicU64,
    /// NACKs sent, by reason code (1..=5; 0 for an unknown code).
    pub(crate) nacks_out: [AtomicU64; 6],
    /// NACKs received, by reason code.
    pub(crate) nacks_in: [AtomicU64; 6],
    pub(crate) heartbeats_missed: AtomicU64,
    pub(crate) control_throttled: AtomicU64,
    pub(crate) links_up: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn by_reason(counts: &[AtomicU64; 6]) -> BTreeMap<String, u64> {
    let names = ["unknown", "unknown_msg", "bad_body", "unknown_dst", "mailbox_full", "dst_stopped"];
    names.iter().zip(counts).filter(|(_, c)| get(c) > 0).map(|(n, c)| ((*n).to_owned(), get(c))).collect()
}

impl LinkCounters {
    pub(crate) fn snapshot(&self, node: NodeId, node_name: String, up: bool) -> LinkStats {
        LinkStats {
            node: node.to_string(),
            node_name,
            up,
            frames_in: get(&self.frames_in),
            frames_out: get(&self.frames_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            msgs_in: get(&self.msgs_in),
            msgs_out: get(&self.msgs_out),
            heartbeats_in: get(&self.heartbeats_in),
            heartbeats_out: get(&self.heartbeats_out),
            heartbeats_missed: get(&self.heartbeats_missed),
            control_throttled: get(&self.control_throttled),
            nacks_in: by_reason(&self.nacks_in),
            nacks_out: by_reason(&self.nacks_out),
            links_up: get(&self.links_up),
        }
    }
}

/// What the links to one node carried, since this manager first linked to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    /// The node's id.
    pub node: String,
    /// The node's name.
    pub node_name: String,
    /// Whether a link to it is up now.
    pub up: bool,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub msgs_in: u64,
    /// Messages sent.
    pub msgs_out: u64,
    /// Heartbeats received.
    pub heartbeats_in: u64,
    /// Heartbeats sent.
    pub heartbeats_out: u64,
    /// Times a link to it went silent past the heartbeat timeout.
    pub heartbeats_missed: u64,
    /// Times reading from it waited because it sent control frames faster
    /// than [`ManagerConfig::control_rate`](crate::ManagerConfig::control_rate).
    pub control_throttled: u64,
    /// NACKs received, by reason.
    pub nacks_in: BTreeMap<String, u64>,
    /// NACKs sent, by reason.
    pub nacks_out: BTreeMap<String, u64>,
    /// Times a link to it came up.
    pub links_up: u64,
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
