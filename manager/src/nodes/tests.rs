//! The peers table and the directory, with no executor: the links'
//! mailboxes are a recorder.

use std::sync::{Arc, Mutex};

use connection::{DirEntry, DirectoryUpdate, Incarnation, PeerHello};
use msg_header::{ActorId, NodeId};
use rustc_hash::FxHashMap;

use super::{Known, Nodes, Placed};

/// The bound on nodes remembered while down, in these tests.
const DOWN_PEERS_KEPT: usize = 64;
use crate::peer::{LinkReplaced, PeerCommand, Place};
use crate::sync::Mailbox;

/// A mailbox that keeps what it is given.
#[derive(Default)]
struct Recorder(Mutex<Vec<PeerCommand>>);

impl Mailbox<PeerCommand> for Recorder {
    fn push(&self, cmd: PeerCommand) {
        self.0.lock().expect("recorder").push(cmd);
    }

    fn is_current(&self) -> bool {
        false
    }

    fn backlog(&self) -> usize {
        0
    }
}

fn nodes(me: &str) -> (Nodes, Arc<Recorder>) {
    let mut limits = connection::LinkLimits::default();
    limits.window = 8;
    let nodes = Nodes::new(NodeId::of_name(me), me.to_owned(), &limits, DOWN_PEERS_KEPT);
    let recorder = Arc::new(Recorder::default());
    nodes.set_mailboxes(Arc::from(vec![recorder.clone() as Arc<dyn Mailbox<PeerCommand>>]));
    (nodes, recorder)
}

fn hello(node: &str, incarnation: u8) -> PeerHello {
    dialed(node, incarnation, 1)
}

/// The hello of a link with dial number `dial`.
fn dialed(node: &str, incarnation: u8, dial: u64) -> PeerHello {
    PeerHello {
        node_id: NodeId::of_name(node),
        incarnation: Incarnation([incarnation; 16]),
        version: 1,
        capabilities: 0,
        authenticated: true,
        encrypted: false,
        dial,
    }
}

fn at(key: usize) -> Place {
    Place { executor: 0, key }
}

fn replaced(placed: &Placed) -> Option<(Place, LinkReplaced)> {
    placed.replaces.as_ref().map(|r| (r.place, r.reason))
}

fn entry(id: ActorId, name: &str) -> DirEntry {
    DirEntry { id, name: name.to_owned(), protocols: Vec::new(), msgs: Vec::new() }
}

fn full(node: &str, entries: Vec<DirEntry>) -> DirectoryUpdate {
    DirectoryUpdate { node: Some(node.to_owned()), full: true, add: entries, remove: Vec::new() }
}

#[test]
fn a_first_link_makes_a_peer_that_is_up_and_kept() {
    let (nodes, _) = nodes("here");
    let placed = nodes.peer_for(&hello("there", 1), NodeId::of_name("here"), at(3));
    assert!(placed.keep);
    assert!(placed.replaces.is_none());
    assert!(placed.peer.is_up());
    assert_eq!(placed.peer.place(), at(3));
    assert_eq!(nodes.peers().len(), 1);
}

#[test]
fn the_same_dialer_dialing_again_replaces_its_old_link() {
    let (nodes, _) = nodes("here");
    let me = NodeId::of_name("here");
    let first = nodes.peer_for(&dialed("there", 1, 1), me, at(1));
    let again = nodes.peer_for(&dialed("there", 1, 2), me, at(2));
    assert!(Arc::ptr_eq(&first.peer, &again.peer), "one incarnation, one peer");
    assert!(again.keep);
    assert_eq!(replaced(&again), Some((at(1), LinkReplaced::Newer)));
    assert!(Arc::ptr_eq(&again.replaces.as_ref().expect("replaces").peer, &first.peer));
    assert_eq!(again.peer.place(), at(2));
    // The old link going down now changes nothing: it is not the current one.
    assert!(nodes.link_lost(&first.peer, at(1)).is_none());
    assert!(again.peer.is_up());
}

#[test]
fn of_two_links_one_node_dialed_at_once_both_ends_keep_the_newer() {
    // `connect` during a redial: dials 1 and 2 of `here`, their handshakes
    // finished in either order at either end.
    let here = NodeId::of_name("here");
    for (first, second) in [(1, 2), (2, 1)] {
        let (nodes, _) = nodes("there");
        let a = nodes.peer_for(&dialed("here", 1, first), here, at(first as usize));
        let b = nodes.peer_for(&dialed("here", 1, second), here, at(second as usize));
        assert_eq!(b.peer.place(), at(2), "dial 2 kept, whichever finished first");
        assert!(a.keep && b.keep == (second == 2));
        if second == 2 {
            assert_eq!(replaced(&b), Some((at(1), LinkReplaced::Newer)));
        } else {
            assert!(b.replaces.is_none(), "the older link is closed, the newer kept");
        }
    }
}

#[test]
fn of_two_links_dialed_at_once_the_lower_node_ids_is_kept() {
    let (here, there) = (NodeId::of_name("here"), NodeId::of_name("there"));
    let (nodes, _) = nodes("here");
    // Ours (dialed by `here`) is up first; then theirs arrives.
    let ours = nodes.peer_for(&hello("there", 1), here, at(1));
    assert!(ours.keep);
    let theirs = nodes.peer_for(&hello("there", 1), there, at(2));
    if there < here {
        assert!(theirs.keep);
        assert_eq!(replaced(&theirs), Some((at(1), LinkReplaced::Duplicate)));
        assert_eq!(theirs.peer.place(), at(2));
    } else {
        assert!(!theirs.keep, "the higher node's link loses");
        assert!(theirs.replaces.is_none());
        assert_eq!(theirs.peer.place(), at(1));
    }
}

#[test]
fn a_new_incarnation_replaces_the_old_link_and_forgets_the_old_actors() {
    let (nodes, _) = nodes("here");
    let me = NodeId::of_name("here");
    let old = nodes.peer_for(&hello("there", 1), me, at(1));
    let mut known = FxHashMap::default();
    let actor = ActorId::new();
    nodes.apply_directory(&old.peer, full("there", vec![entry(actor, "a")]), &mut known);
    let route = known.get(&actor).map(|k: &Known| k.route.clone()).expect("known");
    assert!(nodes.find_by_name("a@there").is_some());

    let new = nodes.peer_for(&hello("there", 2), me, at(2));
    assert!(!Arc::ptr_eq(&old.peer, &new.peer), "a restart is a new peer");
    assert!(new.peer.rank > old.peer.rank);
    assert_eq!(replaced(&new), Some((at(1), LinkReplaced::Newer)));
    let old_link = new.replaces.as_ref().expect("replaces");
    assert!(Arc::ptr_eq(&old_link.peer, &old.peer), "the old link is closed as the old peer's");
    assert!(!old.peer.is_up());
    assert!(nodes.find_by_name("a@there").is_none(), "the old incarnation's actors are gone");
    let sender = actor::ActorSender::from_route(route);
    let sent = sender.try_send(actor::Terminated::new(actor, "a".into(), actor::TerminationReason::Stopped));
    assert!(matches!(sent, Err(actor::SendError::Disconnected(_))), "old routes refuse sends");
}

#[test]
fn a_lost_link_takes_its_peer_down_and_its_actors_out_of_the_directory() {
    let (nodes, _) = nodes("here");
    let placed = nodes.peer_for(&hello("there", 1), NodeId::of_name("here"), at(1));
    let mut known = FxHashMap::default();
    let (a, b) = (ActorId::new(), ActorId::new());
    nodes.apply_directory(&placed.peer, full("there", vec![entry(a, "a"), entry(b, "b")]), &mut known);
    assert_eq!(nodes.dir().find_by_id(a).map(|s| s.id()), Some(a));

    let gone = nodes.link_lost(&placed.peer, at(1)).expect("the current link");
    assert_eq!(gone.len(), 2);
    assert!(!placed.peer.is_up());
    assert!(nodes.dir().find_by_id(a).is_none() && nodes.dir().find_by_id(b).is_none());
    assert!(nodes.link_lost(&placed.peer, at(1)).is_none(), "only once");
    assert!(nodes.up_peer(placed.peer.node_id).is_none());
}

#[test]
fn down_peers_are_remembered_up_to_a_bound() {
    let (nodes, _) = nodes("here");
    let me = NodeId::of_name("here");
    let staying = nodes.peer_for(&hello("staying", 1), me, at(0));
    for i in 0..DOWN_PEERS_KEPT + 10 {
        let p = nodes.peer_for(&hello(&format!("n{i}"), 1), me, at(i + 1));
        assert!(nodes.link_lost(&p.peer, at(i + 1)).is_some());
    }
    let peers = nodes.peers();
    assert_eq!(peers.len(), DOWN_PEERS_KEPT + 1, "the bound, and the one that is up");
    assert!(peers.iter().any(|p| Arc::ptr_eq(p, &staying.peer)));
    assert!(!peers.iter().any(|p| p.node_id == NodeId::of_name("n0")), "the longest known went first");
}

#[test]
fn a_directory_adds_removes_and_keeps_routes_of_actors_still_listed() {
    let (nodes, _) = nodes("here");
    let placed = nodes.peer_for(&hello("there", 1), NodeId::of_name("here"), at(1));
    let mut known = FxHashMap::default();
    let (a, b) = (ActorId::new(), ActorId::new());
    nodes.apply_directory(&placed.peer, full("there", vec![entry(a, "a"), entry(b, "b")]), &mut known);
    assert_eq!(placed.peer.node_name(), "there");
    let route_a = known[&a].route.clone();

    // A removal: b leaves, its route refuses from now on.
    let route_b = known[&b].route.clone();
    let remove = DirectoryUpdate { remove: vec![b], ..DirectoryUpdate::default() };
    nodes.apply_directory(&placed.peer, remove, &mut known);
    assert!(nodes.find_by_name("b").is_none());
    assert!(route_b.removed.load(std::sync::atomic::Ordering::Acquire));

    // A full directory again (a duplicate link's): a is still listed and
    // keeps its route, so senders handed out before stay good.
    nodes.apply_directory(&placed.peer, full("there", vec![entry(a, "a")]), &mut known);
    assert!(Arc::ptr_eq(&known[&a].route, &route_a));
    assert!(!route_a.removed.load(std::sync::atomic::Ordering::Acquire));
    assert_eq!(nodes.find_by_name("a").map(|s| s.id()), Some(a));
}

#[test]
fn remote_actors_are_found_by_plain_name_or_name_at_node() {
    let (nodes, _) = nodes("here");
    let placed = nodes.peer_for(&hello("there", 1), NodeId::of_name("here"), at(1));
    let mut known = FxHashMap::default();
    let remote = ActorId::new();
    nodes.apply_directory(&placed.peer, full("there", vec![entry(remote, "a")]), &mut known);
    assert_eq!(nodes.find_by_name("a").map(|s| s.id()), Some(remote));
    assert_eq!(nodes.find_by_name("a@there").map(|s| s.id()), Some(remote));
    assert!(nodes.find_by_name("a@elsewhere").is_none());
}

#[test]
fn connect_calls_are_answered_once_the_directory_is_in() {
    let (nodes, _) = nodes("here");
    let placed = nodes.peer_for(&hello("there", 1), NodeId::of_name("here"), at(1));
    let (tx, rx) = crossbeam_channel::unbounded();
    nodes.await_directory(&placed.peer, tx.clone());
    assert!(rx.try_recv().is_err(), "no directory yet");
    nodes.apply_directory(&placed.peer, full("there", Vec::new()), &mut FxHashMap::default());
    let info = rx.try_recv().expect("answered").expect("linked");
    assert_eq!((info.node_name.as_str(), info.up), ("there", true));
    // Once it has its directory, a later call is answered at once.
    nodes.await_directory(&placed.peer, tx);
    assert!(rx.try_recv().is_ok());
}

#[test]
fn a_removal_announced_by_a_directory_reaches_only_this_links_actors() {
    let (nodes, _) = nodes("here");
    let placed = nodes.peer_for(&hello("there", 1), NodeId::of_name("here"), at(1));
    let mut known = FxHashMap::default();
    let a = ActorId::new();
    nodes.apply_directory(&placed.peer, full("there", vec![entry(a, "a")]), &mut known);
    // Another link (none of whose actors it is) cannot remove it.
    let stranger = DirectoryUpdate { remove: vec![a], ..DirectoryUpdate::default() };
    nodes.apply_directory(&placed.peer, stranger, &mut FxHashMap::default());
    assert!(nodes.dir().find_by_id(a).is_some());
}
