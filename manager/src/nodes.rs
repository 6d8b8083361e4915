//! What a manager knows of the nodes it is linked with: each one's
//! [`Peer`] (which link carries its traffic, which incarnation it is) and
//! the directory they share with this node's actors.
//!
//! The directory and the peers change together under one lock order
//! (peers, then directory), so that a link going down cannot take away
//! the actors a newer link to the same node has just announced. Nothing
//! here does I/O: closing a replaced link is returned to the caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use actor::ActorSender;
use connection::{DirectoryUpdate, LinkLimits, PeerHello};
use msg_header::{ActorId, NodeId};
use rustc_hash::FxHashMap;

use crate::cell::ActorCell;
use crate::directory::{Directory, Managed};
use crate::peer::{Dialed, LinkMailboxes, LinkReplaced, Peer, Place, RemoteRoute, Waiter};
use crate::sync::lock;

/// A link that just finished its handshake, placed.
pub(crate) struct Placed {
    /// The node's peer (a new one for a new incarnation).
    pub(crate) peer: Arc<Peer>,
    /// Whether this link carries the peer's traffic (if not, it lost to
    /// another link to the same node and is to be closed `duplicate`).
    pub(crate) keep: bool,
    /// The link this one replaces, to be closed.
    pub(crate) replaces: Option<Replaced>,
}

/// A link to close because another replaced it.
#[derive(Clone)]
pub(crate) struct Replaced {
    /// The peer it carried (the old incarnation's, after a restart).
    pub(crate) peer: Arc<Peer>,
    pub(crate) place: Place,
    pub(crate) reason: LinkReplaced,
}

/// An actor of a peer that a link keeps, as its directory announced it.
pub(crate) struct Known {
    pub(crate) sender: ActorSender,
    pub(crate) route: Arc<RemoteRoute>,
}

/// The peers and the directory of one manager.
pub(crate) struct Nodes {
    node_id: NodeId,
    node_name: String,
    directory: RwLock<Directory>,
    /// Bumped on every change of the local actors, for executors' caches.
    dir_version: AtomicU64,
    peers: std::sync::Mutex<HashMap<NodeId, Arc<Peer>>>,
    next_rank: AtomicU64,
    /// The dial number of the last link this node dialed.
    dials: AtomicU64,
    /// The executors, as a peer's senders reach its link.
    mailboxes: std::sync::OnceLock<LinkMailboxes>,
    /// What each peer's link may hold (its window, its frames).
    limits: LinkLimits,
    /// Nodes whose link is down that are remembered (for their counters
    /// and their next incarnation) at most: past it the longest known are
    /// forgotten, so peers that come and go under new names cannot grow
    /// the table without bound.
    max_down_peers: usize,
}

impl Nodes {
    pub(crate) fn new(
        node_id: NodeId,
        node_name: String,
        limits: &LinkLimits,
        max_down_peers: usize,
    ) -> Self {
        Self {
            node_id,
            node_name,
            directory: RwLock::default(),
            dir_version: AtomicU64::new(0),
            peers: std::sync::Mutex::default(),
            next_rank: AtomicU64::new(1),
            dials: AtomicU64::new(0),
            mailboxes: std::sync::OnceLock::new(),
            limits: limits.normalized(),
            max_down_peers,
        }
    }

    /// Sets the executors peers send through (once, before any link).
    pub(crate) fn set_mailboxes(&self, mailboxes: LinkMailboxes) {
        let _ = self.mailboxes.set(mailboxes);
    }

    pub(crate) fn dir(&self) -> RwLockReadGuard<'_, Directory> {
        // The directory's invariants hold between its method calls, so a
        // panic elsewhere cannot leave it broken.
        self.directory.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn dir_mut(&self) -> RwLockWriteGuard<'_, Directory> {
        self.directory.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes with every change of the local actors.
    pub(crate) fn dir_version(&self) -> u64 {
        self.dir_version.load(Ordering::Acquire)
    }

    /// The local actors changed (call with the directory still held).
    pub(crate) fn local_changed(&self) {
        self.dir_version.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn local_actor(&self, id: ActorId) -> Option<ActorSender> {
        self.dir().local_by_id(id)
    }

    /// A local actor by id, with its cell.
    pub(crate) fn local_cell(&self, id: ActorId) -> Option<(ActorSender, Arc<ActorCell>)> {
        self.dir().local_cell_by_id(id)
    }

    /// The actor called `name` (see [`Directory::find_by_name`]).
    pub(crate) fn find_by_name(&self, name: &str) -> Option<ActorSender> {
        self.dir().find_by_name(name, &self.node_name)
    }

    fn peers_lock(&self) -> MutexGuard<'_, HashMap<NodeId, Arc<Peer>>> {
        lock(&self.peers)
    }

    /// The number of a link this node dials: larger than every earlier one's.
    pub(crate) fn next_dial(&self) -> u64 {
        self.dials.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Every peer known, in the order first linked.
    pub(crate) fn peers(&self) -> Vec<Arc<Peer>> {
        let mut peers: Vec<Arc<Peer>> = self.peers_lock().values().cloned().collect();
        peers.sort_by_key(|p| p.rank);
        peers
    }

    /// The peers whose link is up.
    pub(crate) fn up_peers(&self) -> Vec<Arc<Peer>> {
        self.peers_lock().values().filter(|p| p.is_up()).cloned().collect()
    }

    /// `node`'s peer, if its link is up.
    pub(crate) fn up_peer(&self, node: NodeId) -> Option<Arc<Peer>> {
        self.peers_lock().get(&node).filter(|p| p.is_up()).cloned()
    }

    /// The peer a link that just finished its handshake belongs to, and
    /// whether the link is kept. Of two links between the same two nodes,
    /// one dialed by each, the one dialed by the lower `NodeId` is kept; of
    /// two dialed by the same node, the newer (the larger dial number: both
    /// ends agree, whatever order the handshakes finished in). A kept link
    /// is the peer's current link on return: the switch happens under the
    /// peers lock, so the link it replaces, going down meanwhile, cannot
    /// take the peer down with it (see [`Nodes::link_lost`]).
    pub(crate) fn peer_for(&self, hello: &PeerHello, dialer: NodeId, place: Place) -> Placed {
        let dialed = Dialed { by: dialer, dial: hello.dial };
        let mut peers = self.peers_lock();
        if let Some(peer) = peers.get(&hello.node_id) {
            if peer.incarnation == hello.incarnation {
                if !peer.is_up() {
                    peer.link_up(place, dialed);
                    return Placed { peer: peer.clone(), keep: true, replaces: None };
                }
                let current = *peer.dialed.read().unwrap_or_else(|e| e.into_inner());
                // The same dialer: its newer link (it gave up on the older,
                // or dialed twice at once, say `connect` during a redial).
                // Two dialers: the lower `NodeId`'s link (WIRE.md §3).
                let same = current.by == dialer;
                let keep =
                    if same { dialed.dial > current.dial } else { dialer == self.node_id.min(hello.node_id) };
                let mut replaces = None;
                if keep {
                    let old = peer.place();
                    peer.link_up(place, dialed);
                    let reason = if same { LinkReplaced::Newer } else { LinkReplaced::Duplicate };
                    replaces = Some(Replaced { peer: peer.clone(), place: old, reason });
                }
                return Placed { peer: peer.clone(), keep, replaces };
            }
            // A new incarnation: the node restarted; what we knew of it is
            // gone, and its old link (if still up here) is closed `replaced`:
            // nothing sent from now on goes to it.
            let was_up = peer.is_up();
            peer.link_down();
            let replaces = was_up.then(|| Replaced {
                peer: peer.clone(),
                place: peer.place(),
                reason: LinkReplaced::Newer,
            });
            for gone in self.dir_mut().remove_node(peer.node_id) {
                if let Managed::Remote(route) = gone.route {
                    route.mark_removed();
                }
            }
            let peer = self.new_peer(&mut peers, hello, dialed, place);
            return Placed { peer, keep: true, replaces };
        }
        let peer = self.new_peer(&mut peers, hello, dialed, place);
        Placed { peer, keep: true, replaces: None }
    }

    fn new_peer(
        &self,
        peers: &mut HashMap<NodeId, Arc<Peer>>,
        hello: &PeerHello,
        dialed: Dialed,
        place: Place,
    ) -> Arc<Peer> {
        let rank = self.next_rank.fetch_add(1, Ordering::Relaxed);
        let mailboxes = self.mailboxes.get().cloned().unwrap_or_else(|| Arc::from(Vec::new()));
        let peer = Arc::new(Peer::new(hello.node_id, hello.incarnation, rank, mailboxes, &self.limits));
        peer.link_up(place, dialed);
        peers.insert(hello.node_id, peer.clone());
        peer
    }

    /// The link at `place` went down: if it was `peer`'s current link, the
    /// peer is down and its actors leave the directory (their routes are
    /// returned); if another link had replaced it, nothing changes.
    pub(crate) fn link_lost(&self, peer: &Peer, place: Place) -> Option<Vec<Arc<RemoteRoute>>> {
        let mut peers = self.peers_lock();
        if !peer.is_up() || peer.place() != place {
            return None;
        }
        peer.link_down();
        forget_old_peers(&mut peers, self.max_down_peers);
        let gone = self.dir_mut().remove_node(peer.node_id);
        Some(
            gone.into_iter()
                .filter_map(|e| if let Managed::Remote(r) = e.route { Some(r) } else { None })
                .collect(),
        )
    }

    /// Answers `waiter` once `peer`'s current link has its directory (at
    /// once if it has).
    pub(crate) fn await_directory(&self, peer: &Peer, waiter: Waiter) {
        lock(&peer.waiters).push(waiter);
        if peer.is_up() && peer.has_directory.load(Ordering::SeqCst) {
            self.answer_waiters(peer);
        }
    }

    /// Answers the `connect` calls waiting for `peer`.
    pub(crate) fn answer_waiters(&self, peer: &Peer) {
        let waiters = std::mem::take(&mut *lock(&peer.waiters));
        for w in waiters {
            let _ = w.send(Ok(peer.info()));
        }
    }

    /// Applies a peer's directory (already checked by its session) for the
    /// link that keeps `known`, its actors as announced on it.
    pub(crate) fn apply_directory(
        &self,
        peer: &Arc<Peer>,
        update: DirectoryUpdate,
        known: &mut FxHashMap<ActorId, Known>,
    ) {
        if let Some(name) = &update.node {
            peer.set_node_name(name.clone());
        }
        let node = (peer.node_id, peer.node_name());
        let mut dir = self.dir_mut();
        // A full directory replaces what we knew of the node. An actor it
        // still lists keeps its route: senders handed out from an earlier
        // link to this incarnation (one that lost to a duplicate) stay good.
        let mut before: FxHashMap<ActorId, Arc<RemoteRoute>> = FxHashMap::default();
        if update.full {
            for gone in dir.remove_node(peer.node_id) {
                if let Managed::Remote(route) = gone.route {
                    before.insert(route.id, route);
                }
            }
            known.clear();
        }
        for id in &update.remove {
            if let Some(gone) = known.remove(id) {
                gone.route.mark_removed();
                dir.remove(*id);
            }
        }
        for e in update.add {
            let kept = before.remove(&e.id).filter(|r| Arc::ptr_eq(&r.peer, peer));
            let route = kept.unwrap_or_else(|| {
                RemoteRoute::new(peer.clone(), e.id, e.name, e.protocols.clone(), Some(e.msgs))
            });
            let sender = ActorSender::from_route(route.clone());
            dir.insert_remote(sender.clone(), route.clone(), peer.rank, e.protocols, node.clone());
            known.insert(e.id, Known { sender, route });
        }
        for gone in before.values() {
            gone.mark_removed();
        }
        drop(dir);
        if update.full {
            peer.has_directory.store(true, Ordering::SeqCst);
            self.answer_waiters(peer);
        }
    }
}

fn forget_old_peers(peers: &mut HashMap<NodeId, Arc<Peer>>, kept: usize) {
    let down = peers.values().filter(|p| !p.is_up()).count();
    if down <= kept {
        return;
    }
    let mut ranks: Vec<u64> = peers.values().filter(|p| !p.is_up()).map(|p| p.rank).collect();
    ranks.sort_unstable();
    let cutoff = ranks[down - kept - 1];
    peers.retain(|_, p| p.is_up() || p.rank > cutoff);
}

#[cfg(test)]
mod tests;
