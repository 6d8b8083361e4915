//! Directories and addresses across links: actors added and stopped after
//! the link is up, and an address handed from one node to a third.
//!
//! The nodes are managers in this process linked over a Unix socket or TCP
//! loopback (`ipchnl serve` cannot be told to add or stop an actor): the
//! link and the wire are the real ones.

mod support;

use std::sync::LazyLock;

use crossbeam_channel::Sender;
use ipchnl::echo::{EchoReq, Server, echo_requestee_protocol};
use ipchnl::{
    Actor, ActorAddr, ActorSender, BoxMsg, Context, MsgInfo, Protocol, ProtocolSet, SendError, System,
    SystemError, Terminated, TerminationReason, msg_serde_macro,
};
use support::*;

fn tcp_loopback() -> ipchnl::Addr {
    "tcp://127.0.0.1:0".parse().unwrap()
}

/// The `Terminated` that `seen` gets next (up to the hang guard).
fn next_end(seen: &crossbeam_channel::Receiver<ipchnl::Envelope>) -> Terminated {
    *seen.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Terminated>().unwrap()
}

#[test]
fn an_actor_added_after_the_link_is_up_is_found_and_asked_and_leaves_when_stopped() {
    let path = socket_path("dir");
    directory_follows_actors(&path.url());
}

#[test]
fn over_shared_memory_an_actor_added_after_the_link_is_up_is_found_and_leaves_when_stopped() {
    let name = shm_name("dir");
    directory_follows_actors(&name.url());
}

fn directory_follows_actors(listen: &str) {
    let a = manager("dir-a");
    let b = manager("dir-b");
    let stays = b.add("stays", Server::new()).unwrap();
    let at_b = b.listen(&listen.parse().unwrap()).unwrap();
    let peer = a.connect(&at_b).unwrap();
    let requestees = || a.find_by_protocol(echo_requestee_protocol().id());
    assert!(a.find_by_name("late").is_none());
    assert_eq!(requestees().len(), 1, "only `stays` so far");

    // Added on B after the link is up: A hears of it.
    let late_at_b = b.add("late", Server::new()).unwrap();
    let exact = format!("late@{}", peer.node_name);
    let late = eventually("B's new actor in A's directory", || a.find_by_name(&exact));
    assert!(late.is_remote());
    assert_eq!((late.id(), late.node_id()), (late_at_b.id(), b.node_id()));
    assert_eq!(a.find_by_name("late"), Some(late.clone()));
    assert_eq!(requestees().iter().map(ActorSender::id).collect::<Vec<_>>(), [stays.id(), late.id()]);
    let reply = late.ask(EchoReq::new(1, 0), HANG_GUARD).unwrap();
    assert_eq!(reply.counter, 1);

    // Watched from A (both, so that what the watcher gets can be told apart).
    let (watcher, seen) = ActorSender::inbox("watcher");
    late.watch(&watcher).unwrap();
    let stays_at_a = a.find_by_name("stays").unwrap();
    stays_at_a.watch(&watcher).unwrap();
    // Frames keep their order: once this is answered, both watches are registered.
    late.ask(EchoReq::new(2, 0), HANG_GUARD).unwrap();

    // Stopped on B: A's watcher hears `Stopped`, and the actor leaves A's directory.
    b.stop(&late_at_b).unwrap();
    let end = next_end(&seen);
    assert_eq!((end.actor, end.reason), (late.id(), TerminationReason::Stopped));
    eventually("B's stopped actor gone from A's directory", || {
        a.find_by_name(&exact).is_none().then_some(())
    });
    assert!(a.find_by_name("late").is_none());
    assert_eq!(requestees(), std::slice::from_ref(&stays_at_a));
    // The address A kept is dead: the message comes back.
    let err = late.send(EchoReq::new(3, 0)).unwrap_err();
    assert!(matches!(&err, SendError::Disconnected(m) if m.downcast_ref::<EchoReq>().unwrap().counter == 3));

    // The link stays up, and later changes still reach A.
    assert!(a.peers()[0].up);
    let later_at_b = b.add("later", Server::new()).unwrap();
    let later = eventually("B's next actor in A's directory", || a.find_by_name("later"));
    assert_eq!(later.id(), later_at_b.id());
    assert_eq!(later.ask(EchoReq::new(4, 0), HANG_GUARD).unwrap().counter, 4);
    assert_eq!(a.dead_letter_count(), 0);

    // B shuts down: the other watched actor ends with `Shutdown`; the
    // stopped one is not reported a second time (as `LinkDown` or else).
    b.shutdown();
    let end = next_end(&seen);
    assert_eq!((end.actor, end.reason), (stays.id(), TerminationReason::Shutdown));
    a.shutdown(); // joins A's executors: whatever they had to tell the watcher is told
    let more: Vec<_> = seen.try_iter().map(|e| e.msg.downcast::<Terminated>().unwrap()).collect();
    assert!(more.is_empty(), "nothing more for the watcher: {more:?}");
}

msg_serde_macro! {
    /// An address handed from one node to another.
    struct Handoff("links_directory::Handoff") {
        to: ActorAddr,
    }
}

fn resolver_set() -> &'static ProtocolSet {
    static P: LazyLock<Protocol> =
        LazyLock::new(|| Protocol::new("links_directory::handoff", [MsgInfo::wire::<Handoff>()]));
    static S: LazyLock<ProtocolSet> = LazyLock::new(|| ProtocolSet::new("links_directory::Resolver", [&*P]));
    &S
}

/// Resolves every address it is handed with its context, and passes the
/// outcome on to the test.
struct Resolver {
    out: Sender<Result<ActorSender, SystemError>>,
}

impl Actor for Resolver {
    fn protocol_set(&self) -> &'static ProtocolSet {
        resolver_set()
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        let handoff = msg.downcast::<Handoff>().unwrap();
        self.out.send(ctx.resolve(handoff.to)).unwrap();
    }
}

/// A, B and C; links A-B and B-C. B hands A the address of C's server in a
/// message. Resolving needs a link to the address's node: A gets
/// `UnreachableNode(C)` until it links to C too, then reaches the server.
#[test]
fn an_address_handed_on_from_a_third_node_resolves_once_linked_to_that_node() {
    let a = manager("hand-a");
    let b = manager("hand-b");
    let c = manager("hand-c");
    let server_at_c = c.add("server", Server::new()).unwrap();
    let (out, resolved) = crossbeam_channel::unbounded();
    a.add("resolver", Resolver { out }).unwrap();
    let at_b = b.listen(&tcp_loopback()).unwrap();
    let at_c = c.listen(&tcp_loopback()).unwrap();
    b.connect(&at_c).unwrap();
    a.connect(&at_b).unwrap();

    // B knows C's server through its link; A knows only B's actors.
    let server_at_b = b.find_by_name(&format!("server@{}", c.config().identity.node_name)).unwrap();
    assert!(a.find_by_name("server").is_none(), "directories are not passed on");
    let resolver = eventually("A's resolver in B's directory", || b.find_by_name("resolver"));
    let addr = server_at_b.addr();
    assert_eq!(addr, server_at_c.addr());

    // Not linked to C: the address is of an unreachable node.
    resolver.send(Handoff::new(addr)).unwrap();
    let err = resolved.recv_timeout(HANG_GUARD).unwrap().unwrap_err();
    assert_eq!(err, SystemError::UnreachableNode(c.node_id()));
    assert_eq!(a.resolve(addr).unwrap_err(), SystemError::UnreachableNode(c.node_id()));

    // Linked to C: the same address, handed again, reaches the server.
    a.connect(&at_c).unwrap();
    resolver.send(Handoff::new(addr)).unwrap();
    let server = resolved.recv_timeout(HANG_GUARD).unwrap().unwrap();
    assert!(server.is_remote());
    assert_eq!((server.id(), server.node_id()), (server_at_c.id(), c.node_id()));
    let reply = server.ask(EchoReq::new(11, 5), HANG_GUARD).unwrap();
    assert_eq!((reply.counter, reply.req_timestamp_ns), (11, 5));
    assert_eq!(a.resolve(addr).unwrap().id(), server_at_c.id());
    assert_eq!(a.dead_letter_count() + b.dead_letter_count() + c.dead_letter_count(), 0);
}
