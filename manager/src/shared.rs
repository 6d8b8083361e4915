//! What a manager shares with its executors and links: its identity and
//! configuration, the peers and the directory, the dead letters, and the
//! executors' mailboxes. The executors see it as a [`Node`], the links as
//! a [`Host`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use actor::{ActorAddr, ActorSender, SendError, System, SystemError};
use connection::{
    DirEntry, DirectoryUpdate, FRAME_HEADER_LEN, FrameHeader, FrameKind, Incarnation, encode_frame,
};
use msg_header::{ActorId, BoxMsg, NodeId};
use protocol::ProtocolId;
use tracing::warn;

use crate::ManagerConfig;
use crate::admission::Admission;
use crate::budget::Budgets;
use crate::cell::ActorCell;
use crate::dead_letter::{DeadLetterReason, DeadLetters};
use crate::decoders::Decoders;
use crate::executor::{Command, ExecutorHandle, Node};
use crate::link;
use crate::net::{Host, NetCommand};
use crate::nodes::Nodes;
use crate::peer::RemoteRoute;
use crate::stats::Tally;
use crate::sync::Lifecycle;
use crate::throttle::Throttle;

/// What the executors and the manager share.
pub(crate) struct Shared {
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) config: ManagerConfig,
    pub(crate) node_id: NodeId,
    pub(crate) incarnation: Incarnation,
    /// The peers and the directory.
    pub(crate) nodes: Nodes,
    pub(crate) dead_letters: DeadLetters,
    pub(crate) executors: OnceLock<Arc<[Arc<ExecutorHandle>]>>,
    pub(crate) next_link_executor: AtomicUsize,
    /// How to decode every wire message this process knows, by id.
    pub(crate) decoders: Decoders,
    /// Links closed, by reason.
    pub(crate) closes: Tally,
    /// The caps on accepted links, and the links they count.
    pub(crate) admission: Admission,
    /// Repeated warnings, each kind once an interval.
    pub(crate) throttle: Throttle,
    /// What all links hold, against the node's budgets.
    pub(crate) budgets: Budgets,
}

impl Shared {
    pub(crate) fn executor(&self, index: usize) -> &Arc<ExecutorHandle> {
        let all = self.executors();
        &all[index.min(all.len() - 1)]
    }

    fn executors(&self) -> &Arc<[Arc<ExecutorHandle>]> {
        // Set by `Manager::new` before any executor runs a command.
        self.executors.get_or_init(|| Arc::from(Vec::new()))
    }

    /// Tells every linked node of a change of this node's actors.
    pub(crate) fn broadcast(&self, update: &DirectoryUpdate) {
        let peers = self.nodes.up_peers();
        if peers.is_empty() {
            return;
        }
        let Some(frame) = directory_frame(update, self.config.link.max_frame) else { return };
        for peer in peers {
            peer.send_control(frame.clone());
        }
    }
}

impl link::Host for Shared {
    fn config(&self) -> &ManagerConfig {
        &self.config
    }

    fn node_id(&self) -> NodeId {
        self.node_id
    }

    fn incarnation(&self) -> Incarnation {
        self.incarnation
    }

    fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    fn decoders(&self) -> &Decoders {
        &self.decoders
    }

    fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }

    fn closes(&self) -> &Tally {
        &self.closes
    }

    fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    fn admission(&self) -> &Admission {
        &self.admission
    }

    fn directory_frames(&self) -> Vec<Vec<u8>> {
        directory_frames(&self.nodes, &self.config.identity.node_name, self.config.link.max_frame)
    }

    fn is_stopping(&self) -> bool {
        !self.lifecycle.is_running()
    }
}

impl Host for Shared {
    fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    fn next_link_executor(&self) -> usize {
        let n = self.executors().len().max(1);
        match self.config.tuning.link_executor {
            Some(i) => i.min(n - 1),
            None => self.next_link_executor.fetch_add(1, Ordering::Relaxed) % n,
        }
    }

    fn push_to(&self, index: usize, cmd: NetCommand) {
        self.executor(index).push(Command::Net(cmd));
    }
}

impl Node for Shared {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    fn remove_local(&self, id: ActorId) {
        let mut dir = self.nodes.dir_mut();
        dir.remove(id);
        self.nodes.local_changed();
        drop(dir);
        self.broadcast(&DirectoryUpdate { remove: vec![id], ..DirectoryUpdate::default() });
    }
}

/// The local actors of `nodes`, node `name`'s full directory, in frames
/// that fit `max_frame`.
pub(crate) fn directory_frames(nodes: &Nodes, name: &str, max_frame: usize) -> Vec<Vec<u8>> {
    let entries = nodes.dir().local_entries();
    let mut frames = Vec::new();
    let mut chunks = entries.chunks(DIRECTORY_CHUNK).peekable();
    let mut first = true;
    loop {
        let add =
            chunks.next().map_or_else(Vec::new, |c| c.iter().map(|(cell, p)| dir_entry(cell, p)).collect());
        let update =
            DirectoryUpdate { node: first.then(|| name.to_owned()), full: first, add, remove: Vec::new() };
        first = false;
        frames.extend(directory_frame(&update, max_frame));
        if chunks.peek().is_none() {
            return frames;
        }
    }
}

/// Directory entries per frame, so a large directory fits the maximum frame.
const DIRECTORY_CHUNK: usize = 512;

pub(crate) fn dir_entry(cell: &ActorCell, protocols: &[ProtocolId]) -> DirEntry {
    DirEntry {
        id: cell.id,
        name: cell.name.clone(),
        protocols: protocols.to_vec(),
        msgs: cell.set.msg_ids().collect(),
    }
}

fn directory_frame(update: &DirectoryUpdate, max: usize) -> Option<Vec<u8>> {
    let body = serde_json::to_vec(update).ok()?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    match encode_frame(&FrameHeader::new(FrameKind::Directory), &body, max, &mut frame) {
        Ok(()) => Some(frame),
        Err(e) => {
            warn!(error = %e, "directory update too large for a frame; not sent");
            None
        }
    }
}

/// The directory, as actors see it through their [`Context`](actor::Context).
impl System for Shared {
    fn find_by_protocol(&self, protocol: ProtocolId) -> Vec<ActorSender> {
        self.nodes.dir().find_by_protocol(protocol)
    }

    fn find_by_name(&self, name: &str) -> Option<ActorSender> {
        self.nodes.find_by_name(name)
    }

    fn resolve(&self, addr: ActorAddr) -> Result<ActorSender, SystemError> {
        if addr.node_id == self.node_id || addr.node_id == NodeId::ZERO {
            return self
                .nodes
                .local_actor(addr.actor_id)
                .ok_or_else(|| SystemError::UnknownActor(addr.actor_id.to_string()));
        }
        // An address carries no protocols: the actor's node checks what it
        // is sent and refuses (NACKs) what the actor does not accept.
        let peer = self.nodes.up_peer(addr.node_id).ok_or(SystemError::UnreachableNode(addr.node_id))?;
        Ok(RemoteRoute::sender(peer, addr.actor_id, addr.actor_id.to_string(), Vec::new(), None))
    }

    fn unhandled(&self, me: &ActorSender, msg: BoxMsg) {
        self.dead_letters.report_msg(msg, me.id(), DeadLetterReason::Unhandled);
    }

    fn undelivered(&self, _me: &ActorSender, error: SendError) {
        self.dead_letters.report_send_error(error);
    }
}
