//! A node's tables with nothing running, for the unit tests of what runs
//! on them (an executor, a link's core): it records what it is told.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actor::{ActorAddr, ActorSender, System, SystemError, Terminated};
use connection::{Incarnation, LinkLimits};
use msg_header::{ActorId, NodeId};
use protocol::{MsgInfo, ProtocolId};

use crate::ManagerConfig;
use crate::admission::Admission;
use crate::budget::Budgets;
use crate::dead_letter::DeadLetters;
use crate::decoders::Decoders;
use crate::executor::Node;
use crate::link;
use crate::net::{self, NetCommand};
use crate::nodes::Nodes;
use crate::stats::Tally;
use crate::sync::Lifecycle;
use crate::throttle::Throttle;

/// A stand-in for the manager: its tables, a lifecycle, and the actors
/// that ended.
pub(crate) struct TestHost {
    pub(crate) config: ManagerConfig,
    pub(crate) node_id: NodeId,
    pub(crate) incarnation: Incarnation,
    pub(crate) nodes: Nodes,
    pub(crate) decoders: Decoders,
    pub(crate) dead_letters: DeadLetters,
    pub(crate) closes: Tally,
    pub(crate) admission: Admission,
    pub(crate) throttle: Throttle,
    pub(crate) budgets: Budgets,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Shutdown has begun, as far as links are concerned.
    pub(crate) stopping: AtomicBool,
    /// The local actors that ended, in order.
    pub(crate) ended: Mutex<Vec<ActorId>>,
}

impl TestHost {
    /// Node `name` (incarnation `incarnation`, every byte of it) with `limits`.
    pub(crate) fn new(name: &str, incarnation: u8, limits: &LinkLimits) -> Self {
        let mut config = ManagerConfig::default().node_name(name);
        config.link = limits.clone();
        let node_id = NodeId::of_name(name);
        let decoders = Decoders::default();
        decoders.register(&[MsgInfo::wire::<Terminated>()]);
        Self {
            nodes: Nodes::new(node_id, name.to_owned(), limits, 16),
            node_id,
            incarnation: Incarnation([incarnation; 16]),
            decoders,
            dead_letters: DeadLetters::new(1024),
            closes: Tally::default(),
            admission: Admission::new(&config.limits),
            throttle: Throttle::default(),
            budgets: Budgets::new(&config.limits, 1),
            lifecycle: Arc::new(Lifecycle::new()),
            stopping: AtomicBool::new(false),
            ended: Mutex::default(),
            config,
        }
    }
}

impl link::Host for TestHost {
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
        crate::shared::directory_frames(
            &self.nodes,
            &self.config.identity.node_name,
            self.config.link.max_frame,
        )
    }
    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst) || !self.lifecycle.is_running()
    }
}

impl net::Host for TestHost {
    fn throttle(&self) -> &Throttle {
        &self.throttle
    }
    fn next_link_executor(&self) -> usize {
        0
    }
    fn push_to(&self, _: usize, _: NetCommand) {}
}

/// No directory lookups: the tests address actors directly.
impl System for TestHost {
    fn find_by_protocol(&self, _: ProtocolId) -> Vec<ActorSender> {
        Vec::new()
    }
    fn find_by_name(&self, _: &str) -> Option<ActorSender> {
        None
    }
    fn resolve(&self, addr: ActorAddr) -> Result<ActorSender, SystemError> {
        Err(SystemError::UnknownActor(addr.actor_id.to_string()))
    }
}

impl Node for TestHost {
    fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
    fn remove_local(&self, id: ActorId) {
        self.ended.lock().expect("ended").push(id);
    }
}
