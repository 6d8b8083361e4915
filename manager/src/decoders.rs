//! How to decode every wire message this process knows, by id: read by the
//! links without a lock on their hot path (each keeps the snapshot of the
//! version it last saw), grown when an actor or a protocol is added.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use msg_header::MsgId;
use protocol::MsgInfo;
use rustc_hash::FxHashMap;

/// The decoders known, by message id, behind a version counter.
#[derive(Default)]
pub(crate) struct Decoders {
    map: RwLock<Arc<FxHashMap<MsgId, MsgInfo>>>,
    version: AtomicU64,
}

impl Decoders {
    /// The decoders known now.
    pub(crate) fn snapshot(&self) -> Arc<FxHashMap<MsgId, MsgInfo>> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes whenever decoders are added.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Learns how to decode the wire messages of `messages`.
    pub(crate) fn register<'a>(&self, messages: impl IntoIterator<Item = &'a MsgInfo>) {
        let mut current = self.map.write().unwrap_or_else(|e| e.into_inner());
        let added: Vec<&MsgInfo> =
            messages.into_iter().filter(|m| m.is_wire() && !current.contains_key(&m.id())).collect();
        if added.is_empty() {
            return;
        }
        let mut next = FxHashMap::clone(&current);
        for m in added {
            next.insert(m.id(), *m);
        }
        *current = Arc::new(next);
        self.version.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actor::Terminated;
    use msg_header::MsgType;

    #[test]
    fn registering_a_known_message_leaves_the_version_alone() {
        let d = Decoders::default();
        assert_eq!(d.version(), 0);
        d.register(&[MsgInfo::wire::<Terminated>()]);
        assert_eq!(d.version(), 1);
        assert!(d.snapshot().contains_key(&Terminated::msg_id()));
        d.register(&[MsgInfo::wire::<Terminated>()]);
        assert_eq!(d.version(), 1, "nothing new, no new version: caches stay good");
    }
}
