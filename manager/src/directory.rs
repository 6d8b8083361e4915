//! The manager's own tables: actors by id, by name and by protocol, local
//! and on linked nodes.
//!
//! Order of lookups: this node's actors first, in the order they were
//! added; then each linked node's, nodes in the order they were first
//! linked, actors in the order the node announced them.

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use actor::ActorSender;
use msg_header::{ActorId, NodeId};
use protocol::ProtocolId;

use crate::ManagerError;
use crate::cell::ActorCell;
use crate::peer::RemoteRoute;

/// What is behind a directory entry: a closed set, so that the manager
/// never downcasts an `ActorSender`'s route to learn it.
#[derive(Clone)]
pub(crate) enum Managed {
    /// One of this manager's actors.
    Local(Arc<ActorCell>),
    /// An actor of a linked node.
    Remote(Arc<RemoteRoute>),
}

/// Where an entry sorts: (0 for local or the peer's rank, then arrival).
type Key = (u64, u64);

/// Every actor the manager knows, by instance id, by name and by protocol.
#[derive(Default)]
pub(crate) struct Directory {
    entries: HashMap<ActorId, Entry>,
    by_name: HashMap<String, BTreeMap<Key, ActorId>>,
    by_protocol: HashMap<ProtocolId, BTreeMap<Key, ActorId>>,
    next_seq: u64,
    local: usize,
}

pub(crate) struct Entry {
    pub(crate) sender: ActorSender,
    pub(crate) route: Managed,
    key: Key,
    pub(crate) protocols: Vec<ProtocolId>,
    /// The node of a remote actor, with its name; `None` for a local one.
    node: Option<(NodeId, String)>,
}

impl Directory {
    /// Checks that a local actor may take `name` and `id`.
    pub(crate) fn check_free(&self, name: &str, id: ActorId) -> Result<(), ManagerError> {
        let local_named = self.by_name.get(name).is_some_and(|m| m.keys().next().is_some_and(|k| k.0 == 0));
        if local_named {
            return Err(ManagerError::NameTaken(name.to_owned()));
        }
        if self.entries.contains_key(&id) {
            return Err(ManagerError::DuplicateId(id));
        }
        Ok(())
    }

    /// Adds a local actor speaking `protocols`; its name and id must be free.
    pub(crate) fn insert_local(
        &mut self,
        sender: ActorSender,
        cell: Arc<ActorCell>,
        protocols: impl IntoIterator<Item = ProtocolId>,
    ) -> Result<(), ManagerError> {
        self.check_free(sender.name(), sender.id())?;
        self.local += 1;
        self.insert(sender, Managed::Local(cell), 0, protocols.into_iter().collect(), None);
        Ok(())
    }

    /// Adds (or replaces) an actor of a linked node.
    pub(crate) fn insert_remote(
        &mut self,
        sender: ActorSender,
        route: Arc<RemoteRoute>,
        rank: u64,
        protocols: Vec<ProtocolId>,
        node: (NodeId, String),
    ) {
        if self.entries.get(&sender.id()).is_some_and(|e| e.node.is_none()) {
            return; // never let a peer shadow a local actor
        }
        self.remove(sender.id());
        self.insert(sender, Managed::Remote(route), rank, protocols, Some(node));
    }

    fn insert(
        &mut self,
        sender: ActorSender,
        route: Managed,
        rank: u64,
        protocols: Vec<ProtocolId>,
        node: Option<(NodeId, String)>,
    ) {
        let key = (rank, self.next_seq);
        self.next_seq += 1;
        let id = sender.id();
        for p in &protocols {
            self.by_protocol.entry(*p).or_default().insert(key, id);
        }
        self.by_name.entry(sender.name().to_owned()).or_default().insert(key, id);
        self.entries.insert(id, Entry { sender, route, key, protocols, node });
    }

    /// Removes an actor; unknown ids are ignored.
    pub(crate) fn remove(&mut self, id: ActorId) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if entry.node.is_none() {
            self.local -= 1;
        }
        unindex(&mut self.by_name, entry.sender.name(), entry.key);
        for p in &entry.protocols {
            unindex(&mut self.by_protocol, p, entry.key);
        }
        Some(entry)
    }

    /// Removes every actor of `node`; returns them.
    pub(crate) fn remove_node(&mut self, node: NodeId) -> Vec<Entry> {
        let ids: Vec<ActorId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.node.as_ref().is_some_and(|n| n.0 == node))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    pub(crate) fn find_by_protocol(&self, protocol: ProtocolId) -> Vec<ActorSender> {
        self.by_protocol
            .get(&protocol)
            .map(|m| m.values().filter_map(|id| self.entries.get(id)).map(|e| e.sender.clone()).collect())
            .unwrap_or_default()
    }

    /// The actor called `name`: local first, then linked nodes in order.
    /// `NAME@NODE` names the actor `NAME` of node `NODE` (this node's own
    /// name included) exactly.
    pub(crate) fn find_by_name(&self, name: &str, own_node: &str) -> Option<ActorSender> {
        if let Some(found) = self.first_named(name, |_| true) {
            return Some(found);
        }
        let (name, node) = name.rsplit_once('@')?;
        self.first_named(name, |e| match &e.node {
            None => node == own_node,
            Some((_, n)) => n == node,
        })
    }

    fn first_named(&self, name: &str, keep: impl Fn(&Entry) -> bool) -> Option<ActorSender> {
        self.by_name
            .get(name)?
            .values()
            .filter_map(|id| self.entries.get(id))
            .find(|e| keep(e))
            .map(|e| e.sender.clone())
    }

    pub(crate) fn find_by_id(&self, id: ActorId) -> Option<ActorSender> {
        self.entries.get(&id).map(|e| e.sender.clone())
    }

    /// A local actor by id.
    pub(crate) fn local_by_id(&self, id: ActorId) -> Option<ActorSender> {
        self.entries.get(&id).filter(|e| e.node.is_none()).map(|e| e.sender.clone())
    }

    /// A local actor by id, with its cell.
    pub(crate) fn local_cell_by_id(&self, id: ActorId) -> Option<(ActorSender, Arc<ActorCell>)> {
        match self.entries.get(&id) {
            Some(Entry { sender, route: Managed::Local(cell), .. }) => Some((sender.clone(), cell.clone())),
            _ => None,
        }
    }

    /// Every local actor's cell with its protocols, in the order added.
    pub(crate) fn local_entries(&self) -> Vec<(Arc<ActorCell>, Vec<ProtocolId>)> {
        let mut local: Vec<&Entry> = self.entries.values().filter(|e| e.node.is_none()).collect();
        local.sort_by_key(|e| e.key);
        local
            .into_iter()
            .filter_map(|e| match &e.route {
                Managed::Local(cell) => Some((cell.clone(), e.protocols.clone())),
                Managed::Remote(_) => None,
            })
            .collect()
    }

    /// How many local actors there are.
    pub(crate) fn local_len(&self) -> usize {
        self.local
    }
}

fn unindex<K: std::hash::Hash + Eq + ?Sized + ToOwned>(
    map: &mut HashMap<K::Owned, BTreeMap<Key, ActorId>>,
    k: &K,
    key: Key,
) where
    K::Owned: std::hash::Hash + Eq + std::borrow::Borrow<K>,
{
    if let Some(m) = map.get_mut(k) {
        m.remove(&key);
        if m.is_empty() {
            map.remove(k);
        }
    }
}

#[cfg(test)]
mod tests;
