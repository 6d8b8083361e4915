//! The manager's own tables: actors by id, by name and by protocol.

use std::collections::{BTreeMap, HashMap};

use actor::ActorSender;
use msg_header::ActorId;
use protocol::ProtocolId;

use crate::ManagerError;

/// Every actor of a manager, by instance id, by name and by protocol.
///
/// Lookups by protocol answer in the order the actors were added.
#[derive(Default)]
pub(crate) struct Directory {
    by_id: HashMap<ActorId, Entry>,
    by_name: HashMap<String, ActorId>,
    by_protocol: HashMap<ProtocolId, BTreeMap<u64, ActorSender>>,
    next_seq: u64,
}

struct Entry {
    sender: ActorSender,
    seq: u64,
    protocols: Vec<ProtocolId>,
}

impl Directory {
    /// Checks that `name` and `id` are free.
    pub(crate) fn check_free(&self, name: &str, id: ActorId) -> Result<(), ManagerError> {
        if self.by_name.contains_key(name) {
            return Err(ManagerError::NameTaken(name.to_owned()));
        }
        if self.by_id.contains_key(&id) {
            return Err(ManagerError::DuplicateId(id));
        }
        Ok(())
    }

    /// Adds an actor speaking `protocols`; its name and id must be free.
    pub(crate) fn insert(
        &mut self,
        sender: ActorSender,
        protocols: impl IntoIterator<Item = ProtocolId>,
    ) -> Result<(), ManagerError> {
        self.check_free(sender.name(), sender.id())?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let protocols: Vec<ProtocolId> = protocols.into_iter().collect();
        for p in &protocols {
            self.by_protocol.entry(*p).or_default().insert(seq, sender.clone());
        }
        self.by_name.insert(sender.name().to_owned(), sender.id());
        self.by_id.insert(sender.id(), Entry { sender, seq, protocols });
        Ok(())
    }

    /// Removes an actor; unknown ids are ignored.
    pub(crate) fn remove(&mut self, id: ActorId) {
        let Some(entry) = self.by_id.remove(&id) else { return };
        self.by_name.remove(entry.sender.name());
        for p in entry.protocols {
            if let Some(m) = self.by_protocol.get_mut(&p) {
                m.remove(&entry.seq);
                if m.is_empty() {
                    self.by_protocol.remove(&p);
                }
            }
        }
    }

    pub(crate) fn find_by_protocol(&self, protocol: ProtocolId) -> Vec<ActorSender> {
        self.by_protocol.get(&protocol).map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    pub(crate) fn find_by_name(&self, name: &str) -> Option<ActorSender> {
        self.by_name.get(name).and_then(|id| self.by_id.get(id)).map(|e| e.sender.clone())
    }

    pub(crate) fn find_by_id(&self, id: ActorId) -> Option<ActorSender> {
        self.by_id.get(&id).map(|e| e.sender.clone())
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}
