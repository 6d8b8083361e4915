//! The directory alone: names, ids, lookup order, a node's removal.

use std::sync::Arc;

use actor::{Actor, ActorSender};
use connection::Incarnation;
use msg_header::{ActorId, NodeId};
use protocol::ProtocolId;
use server::Server;

use super::Directory;
use crate::cell::{ActorCell, ActorCommand};
use crate::peer::{Peer, PeerCommand, RemoteRoute};
use crate::sync::{Lifecycle, Mailbox};
use crate::{ActorOptions, ManagerError};

/// A mailbox that drops what it is given: the directory never sends.
struct Nowhere;

impl<C> Mailbox<C> for Nowhere {
    fn push(&self, _: C) {}

    fn is_current(&self) -> bool {
        false
    }

    fn backlog(&self) -> usize {
        0
    }
}

fn protocol() -> ProtocolId {
    Server::new().protocol_set().protocols()[0].id()
}

/// Adds a local actor called `name`; its id.
fn add_local(dir: &mut Directory, name: &str) -> Result<ActorId, ManagerError> {
    let id = ActorId::new();
    insert_local(dir, name, id)?;
    Ok(id)
}

fn insert_local(dir: &mut Directory, name: &str, id: ActorId) -> Result<(), ManagerError> {
    let set = Server::new().protocol_set();
    let cell = Arc::new(ActorCell::new(
        id,
        name.to_owned(),
        set,
        Arc::new(Nowhere) as Arc<dyn Mailbox<ActorCommand>>,
        (0, 0),
        NodeId::of_name("here"),
        Arc::new(Lifecycle::new()),
        ActorOptions::default(),
    ));
    let sender = ActorSender::from_route(cell.clone());
    dir.insert_local(sender, cell, [protocol()])
}

fn peer(node: &str, rank: u64) -> Arc<Peer> {
    let mailboxes: Arc<[Arc<dyn Mailbox<PeerCommand>>]> = Arc::from(vec![Arc::new(Nowhere) as _]);
    Arc::new(Peer::new(
        NodeId::of_name(node),
        Incarnation([1; 16]),
        rank,
        mailboxes,
        &connection::LinkLimits::default(),
    ))
}

fn add_remote(dir: &mut Directory, peer: &Arc<Peer>, name: &str, id: ActorId) {
    let route = RemoteRoute::new(peer.clone(), id, name.to_owned(), vec![protocol()], Some(Vec::new()));
    let sender = ActorSender::from_route(route.clone());
    dir.insert_remote(sender, route, peer.rank, vec![protocol()], (peer.node_id, peer.node_name()));
}

fn ids(senders: Vec<ActorSender>) -> Vec<ActorId> {
    senders.iter().map(ActorSender::id).collect()
}

#[test]
fn a_local_name_and_id_are_taken_once() {
    let mut dir = Directory::default();
    let id = add_local(&mut dir, "a").expect("free");
    assert!(matches!(add_local(&mut dir, "a"), Err(ManagerError::NameTaken(n)) if n == "a"));
    assert!(matches!(insert_local(&mut dir, "b", id), Err(ManagerError::DuplicateId(d)) if d == id));
    assert_eq!(dir.local_len(), 1);
    // Once removed, the name is free again.
    assert!(dir.remove(id).is_some());
    assert!(add_local(&mut dir, "a").is_ok());
}

#[test]
fn a_peer_cannot_shadow_a_local_actor() {
    let mut dir = Directory::default();
    let id = add_local(&mut dir, "a").expect("free");
    let p = peer("there", 1);
    add_remote(&mut dir, &p, "intruder", id);
    let found = dir.find_by_id(id).expect("still there");
    assert!(!found.is_remote(), "the local actor stays");
    assert_eq!(dir.local_len(), 1);
    // A remote actor of the same name is listed after the local one.
    add_remote(&mut dir, &p, "a", ActorId::new());
    assert_eq!(dir.find_by_name("a", "here").map(|s| s.id()), Some(id));
}

#[test]
fn lookups_list_local_actors_first_then_nodes_in_the_order_first_linked() {
    let mut dir = Directory::default();
    let (early, late) = (peer("early", 1), peer("late", 2));
    let (l1, l2, e1, r1) = (ActorId::new(), ActorId::new(), ActorId::new(), ActorId::new());
    // Added out of order: a later node's actor first.
    add_remote(&mut dir, &late, "r1", r1);
    insert_local(&mut dir, "l1", l1).expect("free");
    add_remote(&mut dir, &early, "e1", e1);
    insert_local(&mut dir, "l2", l2).expect("free");
    assert_eq!(ids(dir.find_by_protocol(protocol())), vec![l1, l2, e1, r1]);
    let local: Vec<ActorId> = dir.local_entries().iter().map(|(c, _)| c.id).collect();
    assert_eq!(local, vec![l1, l2]);
}

#[test]
fn removing_a_node_removes_only_its_actors() {
    let mut dir = Directory::default();
    let (a, b) = (peer("a", 1), peer("b", 2));
    let local = add_local(&mut dir, "l").expect("free");
    let (a1, a2, b1) = (ActorId::new(), ActorId::new(), ActorId::new());
    add_remote(&mut dir, &a, "x", a1);
    add_remote(&mut dir, &a, "y", a2);
    add_remote(&mut dir, &b, "x", b1);
    let gone = dir.remove_node(a.node_id);
    assert_eq!(gone.len(), 2);
    assert_eq!(ids(dir.find_by_protocol(protocol())), vec![local, b1]);
    assert_eq!(dir.find_by_name("x", "here").map(|s| s.id()), Some(b1));
    assert!(dir.find_by_name("y", "here").is_none());
}

#[test]
fn name_at_node_names_one_nodes_actor_this_nodes_included() {
    let mut dir = Directory::default();
    let local = add_local(&mut dir, "x").expect("free");
    let there = peer("there", 1);
    there.set_node_name("there".into());
    let remote = ActorId::new();
    add_remote(&mut dir, &there, "x", remote);
    assert_eq!(dir.find_by_name("x", "here").map(|s| s.id()), Some(local));
    assert_eq!(dir.find_by_name("x@here", "here").map(|s| s.id()), Some(local));
    assert_eq!(dir.find_by_name("x@there", "here").map(|s| s.id()), Some(remote));
    assert!(dir.find_by_name("x@nowhere", "here").is_none());
    assert!(dir.local_by_id(remote).is_none(), "not a local actor");
}
