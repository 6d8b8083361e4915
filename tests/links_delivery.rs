//! Delivery across a link: NACKs as dead letters, local-only messages,
//! addresses handed across and resolved, remote watching.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ipchnl::echo::EchoReq;
use ipchnl::samples::Msg1;
use ipchnl::{
    ActorAddr, ActorId, AskError, DeadLetterReason, IntoBoxMsg, MsgType, NackReason, SendError, System,
    msg_local_macro, msg_serde_macro,
};
use support::*;
use testkit::{Nap, Relay};

msg_serde_macro! {
    /// `testkit::Nap` as a buggy peer might send it: same wire name, wrong field type.
    struct BadNap("testkit::Nap") {
        ms: String,
    }
}

msg_local_macro! {
    /// A local-only message: it may never leave its process.
    struct LocalOnly("links_delivery::LocalOnly") {}
}

fn nack_reason(m: &ipchnl::Manager) -> (DeadLetterReason, ipchnl::BoxMsg) {
    let letter = m.dead_letters().recv_timeout(HANG_GUARD).expect("a dead letter");
    (letter.reason, letter.msg)
}

#[test]
fn each_nack_reason_is_a_dead_letter_of_the_sender() {
    let serve = Serve::with_test_actors(&[]);
    let m = manager("nack");
    let peer = m.connect(&serve.addr).unwrap();
    let server = m.find_by_name("server").unwrap();
    let napper = m.find_by_name("napper").unwrap();

    // The destination does not accept it: an address carries no protocols,
    // so the remote node checks, and refuses.
    let by_addr = m.resolve(server.addr()).unwrap();
    by_addr.send(Msg1::new(1, HashMap::new())).unwrap();
    let (reason, msg) = nack_reason(&m);
    assert_eq!(reason, DeadLetterReason::Nacked(Some(NackReason::UnknownMsg)));
    assert_eq!(msg.msg_id(), Msg1::msg_id());

    // The body does not decode as that message.
    napper.send(BadNap::new("soon".into())).unwrap();
    let (reason, msg) = nack_reason(&m);
    assert_eq!(reason, DeadLetterReason::Nacked(Some(NackReason::BadBody)));
    assert!(msg.is::<BadNap>());

    // No such actor on that node.
    let nobody = m.resolve(ActorAddr { node_id: peer.node_id, actor_id: ActorId::new() }).unwrap();
    nobody.send(EchoReq::new(3, 0)).unwrap();
    let (reason, msg) = nack_reason(&m);
    assert_eq!(reason, DeadLetterReason::Nacked(Some(NackReason::UnknownDst)));
    assert_eq!(msg.downcast::<EchoReq>().unwrap().counter, 3);

    // A full mailbox: the napper takes one message at a time and sleeps.
    a_full_mailbox_refuses(&m, &napper);
    // The link stays up through all of it.
    assert_eq!(server.ask(EchoReq::new(9, 0), HANG_GUARD).unwrap().counter, 9);
}

/// Five requests to `napper` (a mailbox of one) while it naps: some come
/// back as `MailboxFull` dead letters, the others are answered.
fn a_full_mailbox_refuses(m: &ipchnl::Manager, napper: &ipchnl::ActorSender) {
    let (me, replies) = ipchnl::ActorSender::inbox("me");
    napper.send(Nap::new(300)).unwrap();
    for n in 0..5 {
        napper.send_from(EchoReq::new(n, 0), &me).unwrap();
    }
    let mut full = 0;
    let mut answered = 0;
    let deadline = Instant::now() + HANG_GUARD;
    while full + answered < 5 {
        assert!(Instant::now() < deadline, "of 5 requests, {full} refused and {answered} answered");
        if let Ok(letter) = m.dead_letters().recv_timeout(Duration::from_millis(10)) {
            assert_eq!(letter.reason, DeadLetterReason::Nacked(Some(NackReason::MailboxFull)));
            full += 1;
        }
        answered += replies.try_iter().count();
    }
    assert!(full >= 1, "a mailbox of one, five requests while it naps: some are refused");
}

#[test]
fn a_full_mailbox_on_the_links_own_executor_refuses_too() {
    // One executor: the napper runs where the link reads, and what the
    // link reads for it is handed over without its mailbox unless bounded.
    let serve = Serve::with_test_actors(&["--executors", "1"]);
    let m = manager("nack-here");
    m.connect(&serve.addr).unwrap();
    let napper = m.find_by_name("napper").unwrap();
    a_full_mailbox_refuses(&m, &napper);
}

#[test]
fn a_remote_ask_refused_with_a_nack_fails_at_once_and_is_a_dead_letter() {
    let serve = Serve::with_test_actors(&[]);
    let m = manager("nack-ask");
    let peer = m.connect(&serve.addr).unwrap();
    let server = m.find_by_name("server").unwrap();

    // HANG_GUARD is the ask's timeout: a refusal must end it long before.
    let by_addr = m.resolve(server.addr()).unwrap();
    let err = by_addr.ask(Msg1::new(1, HashMap::new()).into_box_msg(), HANG_GUARD).unwrap_err();
    assert!(matches!(err, AskError::Nacked(Some(NackReason::UnknownMsg))), "{err:?}");
    assert_eq!(err.to_string(), "request refused by the remote node: unknown_msg");
    let (reason, msg) = nack_reason(&m);
    assert_eq!(reason, DeadLetterReason::Nacked(Some(NackReason::UnknownMsg)));
    assert_eq!(msg.msg_id(), Msg1::msg_id());

    let nobody = m.resolve(ActorAddr { node_id: peer.node_id, actor_id: ActorId::new() }).unwrap();
    let err = nobody.ask(EchoReq::new(3, 0), HANG_GUARD).unwrap_err();
    assert!(matches!(err, AskError::Nacked(Some(NackReason::UnknownDst))), "{err:?}");
    let (reason, msg) = nack_reason(&m);
    assert_eq!(reason, DeadLetterReason::Nacked(Some(NackReason::UnknownDst)));
    assert_eq!(msg.downcast::<EchoReq>().unwrap().counter, 3);

    // The link stays up, and a good ask is answered.
    let reply = server.ask(EchoReq::new(9, 0), HANG_GUARD).unwrap();
    assert_eq!(reply.counter, 9);
}

#[test]
fn a_local_only_message_is_not_serializable_and_nothing_is_sent() {
    let serve = Serve::with_test_actors(&[]);
    let m = manager("local-only");
    m.connect(&serve.addr).unwrap();
    let sink = m.resolve(m.find_by_name("sink").unwrap().addr()).unwrap();
    let err = sink.send(LocalOnly::new()).unwrap_err();
    assert!(matches!(&err, SendError::NotSerializable(msg) if msg.name() == "links_delivery::LocalOnly"));
    assert!(err.to_string().contains("links_delivery::LocalOnly"), "{err}");
    assert_eq!(m.dead_letter_count(), 0);
}

#[test]
fn an_address_handed_across_is_resolved_there() {
    let serve = Serve::with_test_actors(&[]);
    let m = manager("addr");
    m.connect(&serve.addr).unwrap();
    // A server here; its address goes to the relay there, which resolves it
    // and sends it a request whose reply comes back to us.
    let here = m.add("here", ipchnl::echo::Server::new()).unwrap();
    let relay = m.find_by_name("relay").unwrap();
    let reply = relay.ask(Relay::new(here.addr(), 77), HANG_GUARD).unwrap();
    assert_eq!(reply.counter, 77);
    // An address of a node we have no link to is a typed error.
    let elsewhere = ActorAddr { node_id: ipchnl::HashId::of_name("nowhere"), actor_id: ActorId::new() };
    assert!(matches!(m.resolve(elsewhere), Err(ipchnl::SystemError::UnreachableNode(_))));
}

#[test]
fn an_ask_of_a_remote_actor_fails_when_the_link_dies() {
    let mut serve = Serve::with_test_actors(&[]);
    let m = manager("ask-dies");
    m.connect(&serve.addr).unwrap();
    let napper = m.find_by_name("napper").unwrap();
    napper.send(Nap::new(60_000)).unwrap();
    // Until the napper takes the nap off its mailbox of one, an ask is
    // refused at once (`mailbox_full`): ask again then.
    let (attempts, attempted) = crossbeam_channel::unbounded();
    let asker = std::thread::spawn(move || {
        loop {
            attempts.send(()).unwrap();
            match napper.ask(EchoReq::new(1, 0), HANG_GUARD) {
                Err(AskError::Nacked(Some(NackReason::MailboxFull))) => continue,
                other => return other,
            }
        }
    });
    // The last attempt was not refused at once: it waits in the mailbox.
    attempted.recv_timeout(HANG_GUARD).unwrap();
    while attempted.recv_timeout(Duration::from_millis(100)).is_ok() {}
    serve.kill9();
    let r = asker.join().unwrap();
    assert!(matches!(r, Err(AskError::Disconnected)), "{r:?}");
}

/// Reads frames until a MSG carrying `Terminated`; its header and body.
fn terminated_frame(client: &mut raw::Client<raw::Conn>) -> (connection::FrameHeader, serde_json::Value) {
    use ipchnl::MsgType;
    loop {
        let (h, body) = client.next_frame().expect("a frame before the hang guard");
        if h.kind == connection::FrameKind::Msg && h.msg_id == ipchnl::Terminated::msg_id() {
            return (h, serde_json::from_slice(&body).expect("a JSON body"));
        }
    }
}

#[test]
fn a_watch_over_the_wire_is_answered_by_the_actor_that_ended() {
    let m = manager("wire-watch");
    let server = m.add("server", ipchnl::echo::Server::new()).unwrap();
    let addr = m.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let mut client = raw::Client::start(raw::connect(&addr), "wire-watcher").unwrap();
    let watch = |dst| connection::FrameHeader {
        dst,
        src: client.me(),
        ..connection::FrameHeader::new(connection::FrameKind::Watch)
    };
    let (live, ghost) = (watch(server.id()), watch(ipchnl::ActorId::from_u128(0x9405)));
    client.send_frame(live, &[]).unwrap();
    // An actor this node does not know (it never was, or it ended and left
    // the directory: the node cannot tell which) is reported `stopped` at
    // once, with no name.
    client.send_frame(ghost, &[]).unwrap();
    let (h, body) = terminated_frame(&mut client);
    assert_eq!((h.src, h.dst), (ghost.dst, client.me()), "from the watched actor to the watcher");
    assert_eq!(body, serde_json::json!({"actor": ghost.dst.to_string(), "name": "", "reason": "stopped"}));
    m.stop(&server).unwrap();
    let (h, body) = terminated_frame(&mut client);
    assert_eq!((h.src, h.dst), (server.id(), client.me()));
    assert_eq!(
        body,
        serde_json::json!({"actor": server.id().to_string(), "name": "server", "reason": "stopped"})
    );
}

/// Handles its first message only when told to, then stops if `stops`:
/// what came behind that message was acknowledged and is never handled.
struct Gate {
    go: crossbeam_channel::Receiver<()>,
    stops: bool,
}

impl ipchnl::Actor for Gate {
    fn protocol_set(&self) -> &'static ipchnl::ProtocolSet {
        ipchnl::echo::server_protocol_set()
    }
    fn handle(&mut self, ctx: &mut ipchnl::Context<'_>, _: ipchnl::BoxMsg) {
        self.go.recv_timeout(HANG_GUARD).expect("told to go");
        if self.stops {
            ctx.stop();
        }
    }
}

/// Node `a` (a send window of `window`) linked to node `b`. `b`'s gate runs
/// on the executor its link does not, so the link reads on while the gate
/// waits; `b`'s echo server runs on the link's executor. Each side's
/// address as `a` sees it.
struct Gated {
    a: ipchnl::Manager,
    b: ipchnl::Manager,
    gate: ipchnl::ActorSender,
    server: ipchnl::ActorSender,
    go: crossbeam_channel::Sender<()>,
}

fn gated(tag: &str, window: usize, gate: ipchnl::ActorOptions, stops: bool) -> Gated {
    let b = ipchnl::Manager::new(config(&format!("{tag}-b")).executors(2)).unwrap();
    let addr = b.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let a = ipchnl::Manager::new(config(&format!("{tag}-a")).window(window)).unwrap();
    a.connect(&addr).unwrap();
    let link_executor = eventually("b sees the link", || b.peers().first().map(|p| p.executor));
    let (go, wait) = crossbeam_channel::unbounded();
    b.add_with("gate", Gate { go: wait, stops }, gate.executor(1 - link_executor)).unwrap();
    let here = ipchnl::ActorOptions::default().executor(link_executor);
    b.add_with("server", ipchnl::echo::Server::new(), here).unwrap();
    let gate = eventually("a sees the gate", || a.find_by_name("gate"));
    let server = eventually("a sees the server", || a.find_by_name("server"));
    Gated { a, b, gate, server, go }
}

/// As [`gated`], once `b` has read 11 requests from `a` for the gate: the
/// first waits in the gate, ten are queued behind it.
fn eleven_behind_a_gate(
    stops: bool,
) -> (ipchnl::Manager, ipchnl::Manager, ActorId, crossbeam_channel::Sender<()>) {
    let Gated { a, b, gate, go, server: _ } = gated("gate", 1024, ipchnl::ActorOptions::default(), stops);
    for n in 1..=11 {
        gate.send(EchoReq::new(n, 0)).unwrap();
    }
    eventually("b read all eleven", || (b.stats().links[0].msgs_in >= 11).then_some(()));
    (a, b, gate.id(), go)
}

/// The ten letters `a` gets back, in order, with their reason.
fn ten_returned(a: &ipchnl::Manager, gate: ActorId, reason: DeadLetterReason) {
    for n in 2..=11 {
        let letter = a.dead_letters().recv_timeout(HANG_GUARD).expect("a dead letter");
        assert_eq!((letter.reason, letter.dst), (reason, gate));
        assert_eq!(letter.msg.downcast::<EchoReq>().expect("an EchoReq").counter, n);
    }
}

#[test]
fn messages_acknowledged_then_not_handled_come_back_as_the_senders_dead_letters() {
    let (a, b, gate, go) = eleven_behind_a_gate(true);
    assert_eq!(a.dead_letter_count(), 0, "acknowledged is not lost");
    go.send(()).unwrap();
    // The gate stops after the first: ten were in its mailbox.
    ten_returned(&a, gate, DeadLetterReason::ActorStopped);
    assert_eq!(b.dead_letter_count(), 10, "the receiving node reports them too");
    assert!(a.peers()[0].up, "the link stays up");
    assert_eq!(a.dead_letter_count(), 10);
}

#[test]
fn messages_queued_at_a_shutdown_now_come_back_as_the_senders_dead_letters() {
    let (a, b, gate, go) = eleven_behind_a_gate(false);
    let b = std::sync::Arc::new(b);
    let stopping = std::thread::spawn({
        let b = b.clone();
        move || b.shutdown_now()
    });
    // The manager refuses new actors from the moment it stops (asked for an
    // executor it does not have, it says which refusal comes first).
    eventually("b is shutting down", || {
        let probe = Gate { go: crossbeam_channel::never(), stops: false };
        let refused = b.add_with("probe", probe, ipchnl::ActorOptions::default().executor(99));
        matches!(refused, Err(ipchnl::ManagerError::ShuttingDown)).then_some(())
    });
    go.send(()).unwrap();
    ten_returned(&a, gate, DeadLetterReason::Shutdown);
    stopping.join().unwrap();
}

#[test]
fn with_receipts_a_message_is_acknowledged_only_once_handled() {
    let receipts = ipchnl::ActorOptions::default().receipts(true);
    // Both managers stay up to the end: a dropped manager shuts down.
    let Gated { a, b: _b, gate, server, go } = gated("receipts", 4, receipts, false);
    // Three wait in the gate, in b's mailbox, unhandled.
    for n in 1..=3 {
        gate.try_send(EchoReq::new(n, 0)).unwrap();
    }
    // The window's last place: an ask of another actor of b. Its reply
    // carries every acknowledgement b sent before it, and b acknowledges
    // nothing past a message not yet handled.
    let reply = server.ask(EchoReq::new(9, 0), HANG_GUARD).unwrap();
    assert_eq!(reply.counter, 9);
    let full = gate.try_send(EchoReq::new(4, 0));
    assert!(matches!(full, Err(SendError::Full(_))), "nothing acknowledged yet: {full:?}");
    // Handled: acknowledged, and the window reopens.
    for _ in 1..=3 {
        go.send(()).unwrap();
    }
    eventually("the window reopens", || gate.try_send(EchoReq::new(4, 0)).is_ok().then_some(()));
    go.send(()).unwrap();
    assert_eq!(a.dead_letter_count(), 0);
}

#[test]
fn without_receipts_a_message_is_acknowledged_in_the_mailbox() {
    let Gated { a: _a, b: _b, gate, server, go } =
        gated("mailbox", 4, ipchnl::ActorOptions::default(), false);
    for n in 1..=3 {
        gate.try_send(EchoReq::new(n, 0)).unwrap();
    }
    server.ask(EchoReq::new(9, 0), HANG_GUARD).unwrap();
    // All four acknowledged with the reply, the three for the gate while it
    // has handled none: the window has room as soon as the reply is seen
    // (what a frame acknowledges goes back to the window before its message
    // is delivered).
    gate.try_send(EchoReq::new(4, 0)).unwrap();
    for _ in 1..=4 {
        go.send(()).unwrap();
    }
}

/// Takes what it is sent and answers nothing: no reply carries an `ack`.
struct Quiet;

impl ipchnl::Actor for Quiet {
    fn protocol_set(&self) -> &'static ipchnl::ProtocolSet {
        ipchnl::echo::server_protocol_set()
    }
    fn handle(&mut self, _: &mut ipchnl::Context<'_>, _: ipchnl::BoxMsg) {}
}

#[test]
fn a_burst_of_messages_is_acknowledged_to_its_end() {
    // 1,000 requests in one write (more than a turn reads, and not a
    // multiple of `ack_every`) to an actor that answers none: an ACK comes
    // that covers the last of them, once the burst is read. (No heartbeat
    // comes before the hang guard to carry it instead.)
    let quiet = HANG_GUARD * 10;
    let m = ipchnl::Manager::new(config("burst-ack").heartbeat(quiet, quiet * 3)).unwrap();
    m.add("server", Quiet).unwrap();
    let addr = m.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let mut client = raw::Client::start(raw::connect(&addr), "burst-acker").unwrap();
    let burst: Vec<u8> = (1..=1000).flat_map(|n| client.encode_request(n)).collect();
    std::io::Write::write_all(client.stream(), &burst).unwrap();
    loop {
        let (h, _) = client.next_frame().expect("an ACK of the whole burst before the hang guard");
        assert!(h.ack <= 1000, "acknowledged past what was sent: {}", h.ack);
        if h.ack == 1000 {
            break;
        }
    }
}
