//! What an actor runs in, as seen from its handlers.

use msg_header::{ActorId, BoxMsg, NodeId};
use protocol::ProtocolId;
use serde::{Deserialize, Serialize};

use crate::ActorSender;

/// Where an actor is, in a form that can travel inside a message: its node
/// and its id. Resolve it with [`Context::resolve`](crate::Context::resolve).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActorAddr {
    /// The actor's node.
    pub node_id: NodeId,
    /// The actor, on that node.
    pub actor_id: ActorId,
}

/// A lifecycle request (watch, stop) could not be carried out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SystemError {
    /// The address does not offer this service (a plain channel has no
    /// lifecycle to watch or stop).
    #[error("not supported by this host: {0}")]
    Unsupported(&'static str),
    /// The actor is not known to this host.
    #[error("unknown actor {0}")]
    UnknownActor(String),
    /// The host is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// No link to the node of an address.
    #[error("node {0} is not reachable")]
    UnreachableNode(NodeId),
}

/// The services a [`Context`](crate::Context) forwards to: the directory,
/// and whatever else the host (a manager) offers.
pub trait System: Send + Sync {
    /// Every actor that speaks `protocol`, in an order the host documents.
    fn find_by_protocol(&self, protocol: ProtocolId) -> Vec<ActorSender>;

    /// The actor called `name`, if there is one.
    fn find_by_name(&self, name: &str) -> Option<ActorSender>;

    /// The actor at `addr`, in this process or a linked one.
    fn resolve(&self, addr: ActorAddr) -> Result<ActorSender, SystemError>;

    /// Actor `me` has no handler for `msg` (see [`dispatch!`](crate::dispatch!)):
    /// a manager reports it as a dead letter. By default it is logged as
    /// an error.
    fn unhandled(&self, me: &ActorSender, msg: BoxMsg) {
        tracing::error!(actor = me.name(), msg = msg.name(), "no handler for this message; dropped");
    }

    /// A send or reply that could not wait failed (see
    /// [`Context::undelivered`](crate::Context::undelivered)): a manager
    /// reports it as a dead letter with why. By default it is logged as an
    /// error.
    fn undelivered(&self, me: &ActorSender, error: crate::SendError) {
        tracing::error!(actor = me.name(), %error, "not delivered; dropped");
    }
}

/// A fixed directory, for actors driven by hand without a manager.
///
/// Lookups answer in the order the actors were added.
#[derive(Clone, Debug, Default)]
pub struct StaticDirectory {
    actors: Vec<ActorSender>,
}

impl StaticDirectory {
    /// A directory of these actors.
    pub fn new(actors: impl IntoIterator<Item = ActorSender>) -> Self {
        Self { actors: actors.into_iter().collect() }
    }

    /// Adds an actor.
    pub fn add(&mut self, actor: ActorSender) {
        self.actors.push(actor);
    }
}

impl System for StaticDirectory {
    fn find_by_protocol(&self, protocol: ProtocolId) -> Vec<ActorSender> {
        self.actors.iter().filter(|a| a.speaks(protocol)).cloned().collect()
    }

    fn find_by_name(&self, name: &str) -> Option<ActorSender> {
        self.actors.iter().find(|a| a.name() == name).cloned()
    }

    fn resolve(&self, addr: ActorAddr) -> Result<ActorSender, SystemError> {
        self.actors
            .iter()
            .find(|a| a.id() == addr.actor_id)
            .cloned()
            .ok_or_else(|| SystemError::UnknownActor(addr.actor_id.to_string()))
    }
}
