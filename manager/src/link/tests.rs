//! Two nodes' link cores wired together in memory: every decision about a
//! link's frames and messages, with no socket, no poller and simulated
//! time. Each node has a host of its own (its peers, directory, decoders,
//! dead letters); its actors' mailboxes and its executors' queues are
//! recorders the test reads and answers by hand.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actor::{
    Actor, ActorSender, Envelope, Hold, LocalPool, Route, SendError, Terminated, TerminationReason, Wait,
};
use connection::{CloseReason, Incarnation, LinkLimits, NackReason, PeerCloseReason};
use crossbeam_channel::Receiver;
use echo_reply::EchoReply;
use echo_req::EchoReq;
use msg_header::{ActorId, MsgId, MsgType, NodeId, UnhandledReason};
use protocol::ProtocolId;
use server::Server;

use super::{Actions, Caches, Inbound, Input, LinkCommand, LinkCore, Origin, ReadGate, Redial};
use crate::cell::{ActorCell, ActorCommand};
use crate::dead_letter::{DeadLetter, DeadLetterReason};
use crate::nodes::Replaced;
use crate::peer::{LinkReplaced, Peer, PeerCommand, Place};
use crate::sync::Mailbox;
use crate::testing::TestHost;
use crate::{ActorOptions, Addr, ManagerError, PeerInfo};

/// A mailbox that keeps what it is given, for the test to take.
struct Recorder<C> {
    got: Mutex<Vec<C>>,
    /// Whether it answers as the calling thread's own executor.
    current: bool,
}

impl<C> Recorder<C> {
    fn new(current: bool) -> Arc<Self> {
        Arc::new(Self { got: Mutex::new(Vec::new()), current })
    }

    fn take(&self) -> Vec<C> {
        std::mem::take(&mut *self.got.lock().expect("recorder"))
    }
}

impl<C: Send> Mailbox<C> for Recorder<C> {
    fn push(&self, cmd: C) {
        self.got.lock().expect("recorder").push(cmd);
    }

    fn is_current(&self) -> bool {
        self.current
    }

    fn backlog(&self) -> usize {
        0
    }
}

/// One node of the harness with one link.
struct Node {
    host: TestHost,
    core: LinkCore,
    caches: Caches,
    /// What the link's inbound messages ask of its executor.
    link_cmds: Arc<Recorder<LinkCommand>>,
    /// What senders ask of the link (its peer's executor).
    peer_cmds: Arc<Recorder<PeerCommand>>,
    /// What reaches the local actors' executor (their deliveries).
    actor_cmds: Arc<Recorder<ActorCommand>>,
    dead: Receiver<DeadLetter>,
    /// Everything the cores asked the driver for, in order.
    downs: Vec<CloseReason>,
    replaced: Vec<Replaced>,
    handoffs: usize,
    redial: Option<Redial>,
}

fn limits() -> LinkLimits {
    LinkLimits::default()
}

impl Node {
    /// Node `name` (`incarnation`), its link in `origin`'s role, actors on
    /// an executor that is not the link's unless `actors_here`.
    fn new(name: &str, incarnation: u8, origin: Origin, limits: &LinkLimits, actors_here: bool) -> Self {
        let host = TestHost::new(name, incarnation, limits);
        let peer_cmds = Recorder::new(false);
        host.nodes.set_mailboxes(Arc::from(vec![peer_cmds.clone() as Arc<dyn Mailbox<PeerCommand>>]));
        let dead = host.dead_letters.receiver();
        let link_cmds = Recorder::new(false);
        let inbound = Inbound::new(limits.normalized().max_inbound_bytes, link_cmds.clone(), 0, 1);
        let place = Place { executor: 0, key: 0 };
        let deadline = now0() + limits.handshake_timeout;
        let mut core = LinkCore::new(&limits.normalized(), place, 1, origin, inbound.clone(), deadline);
        core.set_local(LocalPool::register(inbound));
        Self {
            host,
            core,
            caches: Caches::default(),
            link_cmds,
            peer_cmds,
            actor_cmds: Recorder::new(actors_here),
            dead,
            downs: Vec::new(),
            replaced: Vec::new(),
            handoffs: 0,
            redial: None,
        }
    }

    /// Adds a local echo server called `name`, with `options`.
    fn add_server(&mut self, name: &str, options: ActorOptions) -> ActorSender {
        let set = Server::new().protocol_set();
        let cell = Arc::new(ActorCell::new(
            ActorId::new(),
            name.to_owned(),
            set,
            self.actor_cmds.clone() as Arc<dyn Mailbox<ActorCommand>>,
            (0, 0),
            self.host.node_id,
            self.host.lifecycle.clone(),
            options,
        ));
        let sender = ActorSender::from_route(cell.clone());
        let protocols: Vec<ProtocolId> = set.protocols().iter().map(|p| p.id()).collect();
        self.host.nodes.dir_mut().insert_local(sender.clone(), cell, protocols).expect("a free name");
        self.host.nodes.local_changed();
        self.host.decoders.register(set.protocols().iter().flat_map(|p| p.messages()));
        sender
    }

    /// Carries out what the core asked for that the harness keeps.
    fn note(&mut self, actions: Actions) -> Actions {
        if let Some(reason) = &actions.down {
            self.downs.push(clone_reason(reason));
        }
        if let Some(old) = &actions.replaces {
            self.replaced.push(old.clone());
        }
        self.handoffs += usize::from(actions.handoff.is_some());
        actions
    }

    /// Feeds `bytes` to the link as reads of at most its buffer, then
    /// delivers whatever the turns' budgets left waiting.
    fn input(&mut self, bytes: &[u8], now: Instant) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = match self.core.input() {
                None => return,
                Some(Input::Buf(buf)) => {
                    let n = buf.len().min(rest.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    n
                }
                Some(Input::Direct(body, left)) => {
                    let n = left.min(rest.len());
                    body.extend_from_slice(&rest[..n]);
                    n
                }
            };
            rest = &rest[n..];
            let actions = self.core.read(&self.host, &mut self.caches, now, n);
            let _ = self.note(actions);
        }
        self.drain();
    }

    /// Delivers what waits (a backlog, deferred messages).
    fn drain(&mut self) {
        loop {
            let (gate, actions) = self.core.prepare_read(&self.host, &mut self.caches);
            let again = actions.again;
            let _ = self.note(actions);
            if !matches!(gate, ReadGate::Later) && !again {
                return;
            }
            if matches!(gate, ReadGate::Pause | ReadGate::Closed) {
                return;
            }
        }
    }

    /// Runs what senders and holds asked of the link since the last look.
    fn run_commands(&mut self) {
        for cmd in self.peer_cmds.take() {
            let actions = match cmd {
                PeerCommand::Send { peer, frame, msg, reply_to, owed } => {
                    if self.core.carries(&peer) {
                        self.core.send(&self.host, &frame, msg, reply_to, owed)
                    } else {
                        super::not_sent(&self.host, &peer, msg, owed);
                        Actions::default()
                    }
                }
                PeerCommand::SendLarge { peer, head, blobs, msg, reply_to } => {
                    if self.core.carries(&peer) {
                        self.core.send_large(&self.host, head, blobs, msg, reply_to)
                    } else {
                        super::not_sent_large(&self.host, &peer, msg);
                        Actions::default()
                    }
                }
                PeerCommand::Control { peer, frame } => {
                    if self.core.carries(&peer) {
                        self.core.control(&frame)
                    } else {
                        Actions::default()
                    }
                }
                PeerCommand::Watch { peer, target, target_name, watcher } => {
                    if self.core.carries(&peer) {
                        self.core.watch(&self.host, target, target_name, watcher)
                    } else {
                        super::watch_refused(&self.host, target, target_name, &watcher);
                        Actions::default()
                    }
                }
            };
            let _ = self.note(actions);
        }
        for cmd in self.link_cmds.take() {
            match cmd {
                LinkCommand::Resume { .. } => {
                    self.core.resume();
                }
                LinkCommand::ReturnUnhandled { returned, .. } => {
                    self.core.return_unhandled(&returned);
                }
                LinkCommand::Handled { seq, .. } => self.core.handled(seq),
            }
        }
        self.core.flush_acks();
    }

    /// What reached the local actors' mailboxes: envelopes and their holds.
    fn deliveries(&self) -> Vec<(Envelope, Option<Hold>)> {
        self.actor_cmds
            .take()
            .into_iter()
            .filter_map(|c| match c {
                ActorCommand::Deliver { env, hold, .. } => Some((env, hold)),
                _ => None,
            })
            .collect()
    }

    fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.try_iter().collect()
    }

    /// The peer this node's link carries.
    fn peer(&self) -> Arc<Peer> {
        self.host.nodes.peers().into_iter().next().expect("a peer")
    }

    /// The link goes down for `why`: what the core reports and whether it redials.
    fn down(&mut self, why: CloseReason) {
        self.redial = self.core.down(&self.host, &mut self.caches, &why);
    }
}

/// A reason, again (`CloseReason` is not `Clone`: it may carry an error).
fn clone_reason(r: &CloseReason) -> CloseReason {
    match r {
        CloseReason::PeerClosed => CloseReason::PeerClosed,
        CloseReason::HeartbeatTimeout => CloseReason::HeartbeatTimeout,
        CloseReason::HandshakeTimeout => CloseReason::HandshakeTimeout,
        CloseReason::Duplicate => CloseReason::Duplicate,
        CloseReason::Replaced => CloseReason::Replaced,
        CloseReason::Shutdown => CloseReason::Shutdown,
        CloseReason::Limit(k) => CloseReason::Limit(*k),
        CloseReason::Peer(r) => CloseReason::Peer(r.clone()),
        other => CloseReason::Io(other.to_string()),
    }
}

/// The harness's starting time; its clock only moves when a test moves it.
fn now0() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Moves what `from` has to send to `to`.
fn pass(from: &mut Node, to: &mut Node, now: Instant) {
    from.run_commands();
    let bytes = from.core.transmit().to_vec();
    from.core.transmitted(now, bytes.len());
    if !bytes.is_empty() {
        to.input(&bytes, now);
    }
}

/// Passes bytes both ways until neither side has anything left to send.
fn settle(a: &mut Node, b: &mut Node, now: Instant) {
    for _ in 0..64 {
        pass(a, b, now);
        pass(b, a, now);
        a.run_commands();
        b.run_commands();
        if a.core.pending_output() == 0 && b.core.pending_output() == 0 {
            return;
        }
    }
    panic!("the two links never went quiet");
}

/// A client `alpha` and a server `beta`, each with an echo server called
/// `server`, linked and with each other's directory.
struct Pair {
    a: Node,
    b: Node,
    now: Instant,
    /// `alpha`'s connect, answered once the link has beta's directory.
    connected: crossbeam_channel::Receiver<Result<PeerInfo, ManagerError>>,
}

impl Pair {
    fn new() -> Self {
        Self::with(&limits(), ActorOptions::default())
    }

    fn with(limits: &LinkLimits, options: ActorOptions) -> Self {
        let (tx, connected) = crossbeam_channel::bounded(1);
        let dial = Origin::dialed("tcp://127.0.0.1:9".parse().expect("an address"), Some(tx), 0);
        let mut a = Node::new("alpha", 1, dial, limits, false);
        let mut b = Node::new("beta", 2, Origin::accepted(), limits, false);
        a.add_server("server", options);
        b.add_server("server", options);
        let now = now0();
        a.core.start(&a.host, [1; 32], now);
        b.core.start(&b.host, [2; 32], now);
        let mut p = Self { a, b, now, connected };
        p.settle();
        assert!(p.a.core.is_up() && p.b.core.is_up(), "linked");
        p
    }

    fn settle(&mut self) {
        settle(&mut self.a, &mut self.b, self.now);
    }

    /// `node`'s view of the other's `server`.
    fn remote_server(node: &Node, other: &str) -> ActorSender {
        node.host.nodes.find_by_name(&format!("server@{other}")).expect("in the directory")
    }
}

#[test]
fn a_handshake_places_the_peer_exchanges_directories_and_answers_connect() {
    let p = Pair::new();
    let info = p.connected.try_recv().expect("answered").expect("linked");
    assert_eq!((info.node_name.as_str(), info.up), ("beta", true));
    assert!(Pair::remote_server(&p.a, "beta").is_remote());
    assert!(Pair::remote_server(&p.b, "alpha").is_remote());
    assert_eq!(p.a.peer().counters.links_up.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(p.a.downs.is_empty() && p.b.downs.is_empty());
}

#[test]
fn a_message_reaches_its_actors_mailbox_and_is_acknowledged() {
    let mut p = Pair::new();
    let server = Pair::remote_server(&p.a, "beta");
    server.try_send(EchoReq::new(7, 0)).expect("sent");
    p.settle();
    let got = p.b.deliveries();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.msg.downcast_ref::<EchoReq>().map(|r| r.counter), Some(7));
    // Acknowledged when it reached the mailbox: the window has its place back.
    assert!(p.a.peer().window.try_take(), "room again");
    assert!(p.a.dead_letters().is_empty() && p.b.dead_letters().is_empty());
}

#[test]
fn a_message_for_an_unknown_actor_is_nacked_and_its_place_given_back() {
    let mut p = Pair::new();
    let peer = p.a.peer();
    let nobody =
        crate::peer::RemoteRoute::sender(peer.clone(), ActorId::new(), "nobody".into(), Vec::new(), None);
    nobody.try_send(EchoReq::new(1, 0)).expect("sent");
    p.settle();
    let dead = p.a.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DeadLetterReason::Nacked(Some(NackReason::UnknownDst)));
    assert!(p.b.deliveries().is_empty());
    let c = p.b.core.session.as_mut().map(connection::Session::take_counters).expect("a session");
    assert_eq!(c.nacks_out[NackReason::UnknownDst as usize], 1);
}

#[test]
fn a_message_its_actor_does_not_take_is_nacked_as_unknown() {
    let mut p = Pair::new();
    let peer = p.a.peer();
    let server_id = Pair::remote_server(&p.a, "beta").id();
    // An address the peer does not know the protocols of: the peer decides.
    let anyone = crate::peer::RemoteRoute::sender(peer, server_id, "server".into(), Vec::new(), None);
    anyone.try_send(echo_start::EchoStart::new(1)).expect("sent");
    p.settle();
    let dead = p.a.dead_letters();
    assert_eq!(dead[0].reason, DeadLetterReason::Nacked(Some(NackReason::UnknownMsg)));
}

#[test]
fn a_body_that_does_not_decode_is_nacked_with_its_detail() {
    let mut p = Pair::new();
    let peer = p.a.peer();
    let server_id = Pair::remote_server(&p.a, "beta").id();
    let header = connection::FrameHeader {
        msg_id: EchoReq::msg_id(),
        dst: server_id,
        ..connection::FrameHeader::new(connection::FrameKind::Msg)
    };
    let mut frame = Vec::new();
    connection::encode_frame(&header, br#"{"counter":"not a number"}"#, 1 << 20, &mut frame)
        .expect("a frame");
    assert!(peer.window.try_take());
    let actions = p.a.core.send(&p.a.host, &frame, Box::new(EchoReq::new(0, 0)), None, false);
    assert!(actions.write);
    p.settle();
    assert_eq!(p.a.dead_letters()[0].reason, DeadLetterReason::Nacked(Some(NackReason::BadBody)));
    assert!(p.b.deliveries().is_empty());
}

/// Sends `EchoReq(n)` from `inbox` on `a` to beta's server; beta replies
/// `EchoReply(n)` to its sender.
fn ask_and_reply(p: &mut Pair, inbox: &ActorSender, n: u64) {
    Pair::remote_server(&p.a, "beta").send_from(EchoReq::new(n, 0), inbox).expect("sent");
    pass(&mut p.a, &mut p.b, p.now);
    for (env, hold) in p.b.deliveries() {
        let to = env.reply_to.expect("a reply address");
        to.try_send(EchoReply::new(n, 0, 0)).expect("replied");
        if let Some(hold) = hold {
            hold.handled();
        }
    }
    pass(&mut p.b, &mut p.a, p.now);
}

#[test]
fn a_reply_comes_back_to_the_inbox_that_asked() {
    let mut p = Pair::new();
    let (inbox, rx) = ActorSender::inbox("asker");
    ask_and_reply(&mut p, &inbox, 5);
    let env = rx.try_recv().expect("the reply");
    assert_eq!(env.msg.downcast_ref::<EchoReply>().map(|r| r.counter), Some(5));
}

/// A reply address that records, as its reply is delivered, whether the
/// window of the link it came over has room.
struct Probe {
    id: ActorId,
    peer: Mutex<Option<Arc<Peer>>>,
    room_at_delivery: Mutex<Vec<bool>>,
}

impl Route for Probe {
    fn actor_id(&self) -> ActorId {
        self.id
    }
    fn actor_name(&self) -> &str {
        "probe"
    }
    fn accepts(&self, _: MsgId) -> bool {
        true
    }
    fn speaks(&self, _: ProtocolId) -> bool {
        false
    }
    fn deliver(&self, _env: Envelope, _wait: Wait) -> Result<(), SendError> {
        let peer = self.peer.lock().expect("probe").clone().expect("a peer");
        let room = peer.window.try_take();
        if room {
            peer.window.release(1);
        }
        self.room_at_delivery.lock().expect("probe").push(room);
        Ok(())
    }
}

/// bc175b4: what a frame acknowledges goes back to the window before the
/// message it came with is delivered, so that an asker woken by its reply
/// finds the room its request took free (with a window of one, the next
/// ask would otherwise fail `Full`).
#[test]
fn an_acknowledgement_frees_the_window_before_the_reply_it_came_with_is_delivered() {
    let mut l = limits();
    l.window = 1;
    let mut p = Pair::with(&l, ActorOptions::default());
    let probe =
        Arc::new(Probe { id: ActorId::new(), peer: Mutex::new(None), room_at_delivery: Mutex::default() });
    *probe.peer.lock().expect("probe") = Some(p.a.peer());
    let asker = ActorSender::from_route(probe.clone());
    for n in 1..=3 {
        ask_and_reply(&mut p, &asker, n);
        p.settle();
    }
    assert_eq!(*probe.room_at_delivery.lock().expect("probe"), [true, true, true]);
}

#[test]
fn sends_past_the_window_are_owed_and_paid_as_acknowledgements_come() {
    let mut l = limits();
    l.window = 2;
    let mut p = Pair::with(&l, ActorOptions::default());
    let peer = p.a.peer();
    let server = Pair::remote_server(&p.a, "beta");
    // As a handler would: the window is full, so the link owes the message.
    for n in 0..2 {
        server.try_send(EchoReq::new(n, 0)).expect("in the window");
    }
    p.a.run_commands();
    assert!(!peer.window.try_take(), "full");
    let frame = {
        let mut f = Vec::new();
        let h = connection::FrameHeader {
            msg_id: EchoReq::msg_id(),
            dst: server.id(),
            ..connection::FrameHeader::new(connection::FrameKind::Msg)
        };
        connection::encode_frame(&h, br#"{"counter":2,"req_timestamp_ns":0}"#, 1 << 20, &mut f)
            .expect("frame");
        f
    };
    peer.owed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let actions = p.a.core.send(&p.a.host, &frame, Box::new(EchoReq::new(2, 0)), None, true);
    assert!(!actions.write, "owed, not sent");
    p.settle();
    let counters: Vec<u64> =
        p.b.deliveries()
            .iter()
            .filter_map(|(e, _)| e.msg.downcast_ref::<EchoReq>().map(|r| r.counter))
            .collect();
    assert_eq!(counters, [0, 1, 2], "in order, the owed one once room came");
    assert_eq!(peer.owed.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A pair with a window of one in which alpha owes beta a full window
/// (one message unacknowledged, one owed), and beta has sent alpha a
/// request that alpha has read: alpha defers it.
fn owing_pair() -> Pair {
    let mut l = limits();
    l.window = 1;
    let mut p = Pair::with(&l, ActorOptions::default());
    let a_peer = p.a.peer();
    let server_at_b = Pair::remote_server(&p.a, "beta");
    assert!(a_peer.window.try_take());
    let _ =
        p.a.core.send(&p.a.host, &req_frame(server_at_b.id(), 1), Box::new(EchoReq::new(1, 0)), None, false);
    a_peer.owed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let _ =
        p.a.core.send(&p.a.host, &req_frame(server_at_b.id(), 2), Box::new(EchoReq::new(2, 0)), None, true);
    // beta's request comes before beta has read alpha's first: alpha owes.
    Pair::remote_server(&p.b, "alpha").try_send(EchoReq::new(9, 0)).expect("sent");
    pass(&mut p.b, &mut p.a, p.now);
    assert!(p.a.deliveries().is_empty(), "deferred while it owes a window");
    p
}

#[test]
fn a_link_that_owes_a_window_defers_what_it_reads_until_it_owes_less() {
    let mut p = owing_pair();
    // Once beta acknowledges, alpha pays what it owes and delivers.
    p.settle();
    let got = p.a.deliveries();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.msg.downcast_ref::<EchoReq>().map(|r| r.counter), Some(9));
}

/// A request frame for `dst` with counter `n`.
fn req_frame(dst: ActorId, n: u64) -> Vec<u8> {
    let h = connection::FrameHeader {
        msg_id: EchoReq::msg_id(),
        dst,
        ..connection::FrameHeader::new(connection::FrameKind::Msg)
    };
    let mut f = Vec::new();
    connection::encode_frame(
        &h,
        format!(r#"{{"counter":{n},"req_timestamp_ns":0}}"#).as_bytes(),
        1 << 20,
        &mut f,
    )
    .expect("frame");
    f
}

#[test]
fn with_receipts_a_message_is_acknowledged_only_once_handled() {
    let mut p = Pair::with(&limits(), ActorOptions::default().receipts(true));
    let peer = p.a.peer();
    let mut l = limits();
    l.window = 1;
    let _ = l;
    Pair::remote_server(&p.a, "beta").try_send(EchoReq::new(1, 0)).expect("sent");
    p.settle();
    let mut got = p.b.deliveries();
    assert_eq!(got.len(), 1);
    let unacked = p.a.core.session.as_ref().map(|s| s.unacked_len()).expect("a session");
    assert_eq!(unacked, 1, "in the mailbox is not enough");
    let hold = got.pop().and_then(|(_, h)| h).expect("a hold with its receipt");
    hold.handled();
    p.settle();
    let unacked = p.a.core.session.as_ref().map(|s| s.unacked_len()).expect("a session");
    assert_eq!(unacked, 0, "acknowledged once handled");
    assert!(peer.window.try_take());
}

#[test]
fn a_message_acknowledged_then_not_handled_comes_back_as_a_dead_letter() {
    let mut p = Pair::new();
    let (inbox, rx) = ActorSender::inbox("asker");
    Pair::remote_server(&p.a, "beta").send_from(EchoReq::new(3, 0), &inbox).expect("sent");
    p.settle();
    let (env, hold) = p.b.deliveries().pop().expect("delivered");
    // Its actor stopped before handling it: the hold returns it.
    hold.expect("a hold").unhandled(&env.msg, UnhandledReason::ActorStopped);
    p.settle();
    let dead = p.a.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DeadLetterReason::ActorStopped);
    assert_eq!(dead[0].msg.downcast_ref::<EchoReq>().map(|r| r.counter), Some(3));
    assert!(rx.try_recv().is_err(), "no reply");
}

#[test]
fn a_link_that_goes_down_reports_what_it_carried_unacknowledged_and_owed() {
    let mut l = limits();
    l.window = 1;
    let mut p = Pair::with(&l, ActorOptions::default());
    let peer = p.a.peer();
    let server = Pair::remote_server(&p.a, "beta");
    server.try_send(EchoReq::new(1, 0)).expect("sent");
    p.a.run_commands();
    peer.owed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let _ = p.a.core.send(&p.a.host, &req_frame(server.id(), 2), Box::new(EchoReq::new(2, 0)), None, true);
    p.a.down(CloseReason::PeerClosed);
    let mut reasons: Vec<DeadLetterReason> = p.a.dead_letters().into_iter().map(|d| d.reason).collect();
    reasons.sort_by_key(|r| r.key());
    assert_eq!(reasons, [DeadLetterReason::NotSent, DeadLetterReason::Unacknowledged]);
    assert!(peer.window.try_take(), "the window's place came back");
    assert_eq!(peer.owed.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(!peer.is_up(), "the peer is down with its only link");
    assert!(p.a.host.nodes.find_by_name("server@beta").is_none(), "its actors left the directory");
}

#[test]
fn watches_across_a_link_end_with_it_as_link_down_or_shutdown() {
    for (why, expected) in [
        (CloseReason::PeerClosed, TerminationReason::LinkDown),
        (CloseReason::Peer(PeerCloseReason::Shutdown), TerminationReason::Shutdown),
    ] {
        let mut p = Pair::new();
        let (watcher, rx) = ActorSender::inbox("watcher");
        let server = Pair::remote_server(&p.a, "beta");
        server.watch(&watcher).expect("watching");
        p.settle();
        p.a.down(why);
        let env = rx.try_recv().expect("told");
        let end = env.msg.downcast_ref::<Terminated>().expect("a Terminated");
        assert_eq!((end.actor, end.reason), (server.id(), expected));
    }
}

#[test]
fn watching_an_actor_the_peer_does_not_have_ends_at_once() {
    let mut p = Pair::new();
    let (watcher, rx) = ActorSender::inbox("watcher");
    let peer = p.a.peer();
    let ghost = crate::peer::RemoteRoute::sender(peer, ActorId::new(), "ghost".into(), Vec::new(), None);
    ghost.watch(&watcher).expect("asked");
    p.settle();
    let env = rx.try_recv().expect("told");
    let end = env.msg.downcast_ref::<Terminated>().expect("a Terminated");
    assert_eq!((end.actor, end.reason), (ghost.id(), TerminationReason::Stopped));
}

#[test]
fn a_watch_across_a_link_that_is_gone_is_told_link_down() {
    let p = Pair::new();
    let (watcher, rx) = ActorSender::inbox("watcher");
    super::watch_refused(&p.a.host, ActorId::from_u128(5), "gone".into(), &watcher);
    let env = rx.try_recv().expect("told");
    assert_eq!(env.msg.downcast_ref::<Terminated>().map(|t| t.reason), Some(TerminationReason::LinkDown));
}

#[test]
fn the_peers_watch_of_a_local_actor_is_told_when_it_ends() {
    let mut p = Pair::new();
    let (watcher, rx) = ActorSender::inbox("watcher");
    let server_at_b = Pair::remote_server(&p.a, "beta");
    server_at_b.watch(&watcher).expect("watching");
    p.settle();
    // beta's server ends: its cell tells its watchers, alpha's among them,
    // over the link.
    let local = p.b.host.nodes.local_actor(server_at_b.id()).expect("beta's own");
    let cell = local.route() as &dyn std::any::Any;
    let cell = cell.downcast_ref::<ActorCell>().expect("a cell");
    cell.close(TerminationReason::Stopped);
    p.settle();
    let env = rx.try_recv().expect("told over the link");
    assert_eq!(
        env.msg.downcast_ref::<Terminated>().map(|t| (t.actor, t.reason)),
        Some((server_at_b.id(), TerminationReason::Stopped))
    );
}

#[test]
fn a_dialed_link_that_goes_down_is_redialed_unless_replaced_or_shutting_down() {
    for (why, redials) in [
        (CloseReason::PeerClosed, true),
        (CloseReason::HeartbeatTimeout, true),
        (CloseReason::Duplicate, false),
        (CloseReason::Replaced, false),
        // The peer kept a newer link this node dialed.
        (CloseReason::Peer(PeerCloseReason::Replaced), false),
        (CloseReason::Shutdown, false),
    ] {
        let mut p = Pair::new();
        let _ = p.connected.try_recv();
        p.a.down(why);
        assert_eq!(p.a.redial.as_ref().map(|r| r.attempt), redials.then_some(0));
        // The accepting side never redials.
        p.b.down(CloseReason::PeerClosed);
        assert!(p.b.redial.is_none());
    }
    let mut p = Pair::new();
    let _ = p.connected.try_recv();
    p.a.host.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    p.a.down(CloseReason::PeerClosed);
    assert!(p.a.redial.is_none(), "not while stopping");
}

#[test]
fn a_dial_that_fails_tells_its_caller_or_is_tried_again_later() {
    let p = Pair::new();
    let addr: Addr = "tcp://127.0.0.1:9".parse().expect("an address");
    let (tx, rx) = crossbeam_channel::bounded(1);
    let why = CloseReason::Io("refused".into());
    assert!(super::dial_failed(&p.a.host, addr.clone(), Some(tx), 0, &why).is_none());
    assert!(matches!(rx.try_recv(), Ok(Err(ManagerError::Connect { .. }))));
    let again = super::dial_failed(&p.a.host, addr.clone(), None, 3, &why).expect("again");
    assert_eq!((again.addr, again.attempt), (addr.clone(), 4));
    p.a.host.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(super::dial_failed(&p.a.host, addr, None, 3, &why).is_none());
}

#[test]
fn a_link_whose_connect_fails_before_its_session_tells_its_waiter() {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let dial = Origin::dialed("tcp://127.0.0.1:9".parse().expect("an address"), Some(tx), 0);
    let mut a = Node::new("alpha", 1, dial, &limits(), false);
    let actions = a.core.fail(&a.host, &mut a.caches, CloseReason::Io("refused".into()));
    let why = actions.down.expect("down at once: no session");
    a.down(why);
    assert!(matches!(rx.try_recv(), Ok(Err(ManagerError::Connect { .. }))));
    assert!(a.redial.is_none(), "its caller decides");
}

#[test]
fn a_handshake_that_does_not_finish_by_its_deadline_ends_the_link() {
    let mut a = Node::new("alpha", 1, Origin::accepted(), &limits(), false);
    let t0 = now0();
    a.core.start(&a.host, [1; 32], t0);
    assert!(a.core.on_timeout(&a.host, &mut a.caches, t0).is_none(), "nothing due yet");
    let deadline = a.core.poll_timeout().expect("a deadline");
    let actions = a.core.on_timeout(&a.host, &mut a.caches, deadline).expect("due");
    assert!(matches!(actions.down, Some(CloseReason::HandshakeTimeout)));
    // Before its session starts, the connect has the same deadline.
    let b = Node::new("beta", 1, Origin::accepted(), &limits(), false);
    assert_eq!(b.core.poll_timeout(), Some(t0 + limits().handshake_timeout));
}

#[test]
fn a_silent_peer_is_cut_at_the_heartbeat_timeout_and_counted() {
    let mut p = Pair::new();
    let later = p.now + limits().heartbeat_timeout + Duration::from_millis(1);
    let actions = p.a.core.on_timeout(&p.a.host, &mut p.a.caches, later).expect("due");
    let actions = p.a.note(actions);
    assert!(matches!(actions.down, Some(CloseReason::HeartbeatTimeout)));
    p.a.down(CloseReason::HeartbeatTimeout);
    assert_eq!(p.a.peer().counters.heartbeats_missed.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(p.a.host.closes.snapshot().get("heartbeat_timeout"), Some(&1));
}

#[test]
fn heartbeats_keep_a_quiet_link_up() {
    let mut p = Pair::new();
    let interval = limits().heartbeat_interval;
    for _ in 0..20 {
        p.now += interval;
        for node in [&mut p.a, &mut p.b] {
            if let Some(actions) = node.core.on_timeout(&node.host, &mut node.caches, p.now) {
                let _ = node.note(actions);
            }
        }
        p.settle();
    }
    assert!(p.a.downs.is_empty() && p.b.downs.is_empty(), "{:?} {:?}", p.a.downs, p.b.downs);
}

#[test]
fn a_link_over_its_inbound_bound_pauses_and_resumes_when_its_messages_are_handled() {
    let mut l = limits();
    l.max_frame = 4096;
    l.max_inbound_bytes = 4096;
    let mut p = Pair::with(&l, ActorOptions::default());
    let server = Pair::remote_server(&p.a, "beta");
    for n in 0..40 {
        server.try_send(EchoReq::new(n, 0)).expect("sent");
    }
    p.settle();
    // The messages wait in beta's mailbox holding its link's memory.
    let held = p.b.deliveries();
    assert_eq!(held.len(), 40);
    let (gate, _) = p.b.core.prepare_read(&p.b.host, &mut p.b.caches);
    assert!(matches!(gate, ReadGate::Pause), "over its bound");
    assert!(!p.b.core.pause(), "stays paused");
    drop(held);
    let resumes = p.b.link_cmds.take();
    assert!(resumes.iter().any(|c| matches!(c, LinkCommand::Resume { .. })), "woken when they drain");
    assert!(p.b.core.resume());
    let (gate, _) = p.b.core.prepare_read(&p.b.host, &mut p.b.caches);
    assert!(matches!(gate, ReadGate::Read));
}

#[test]
fn a_burst_past_the_turns_budget_waits_for_the_next_turn() {
    let mut l = limits();
    l.msgs_per_turn = 4;
    let mut p = Pair::with(&l, ActorOptions::default());
    let server = Pair::remote_server(&p.a, "beta");
    for n in 0..10 {
        server.try_send(EchoReq::new(n, 0)).expect("sent");
    }
    p.a.run_commands();
    let bytes = p.a.core.transmit().to_vec();
    p.a.core.transmitted(p.now, bytes.len());
    let buf = p.b.core.input_buf().expect("a session");
    buf[..bytes.len()].copy_from_slice(&bytes);
    let _ = p.b.core.read(&p.b.host, &mut p.b.caches, p.now, bytes.len());
    assert!(p.b.core.has_backlog());
    assert_eq!(p.b.deliveries().len(), 4, "one turn's worth");
    let (gate, _) = p.b.core.prepare_read(&p.b.host, &mut p.b.caches);
    assert!(matches!(gate, ReadGate::Later), "the next turn delivers first");
    assert_eq!(p.b.deliveries().len(), 4);
    p.b.drain();
    assert_eq!(p.b.deliveries().len(), 2);
}

#[test]
fn reply_addresses_are_bounded_and_the_oldest_forgotten() {
    let mut l = limits();
    l.max_reply_targets = 2;
    let mut p = Pair::with(&l, ActorOptions::default());
    let inboxes: Vec<(ActorSender, Receiver<Envelope>)> =
        (0..3).map(|i| ActorSender::inbox(&format!("i{i}"))).collect();
    let server = Pair::remote_server(&p.a, "beta");
    for (inbox, _) in &inboxes {
        server.send_from(EchoReq::new(1, 0), inbox).expect("sent");
    }
    p.settle();
    for (env, _) in p.b.deliveries() {
        env.reply_to.expect("a reply address").try_send(EchoReply::new(1, 0, 0)).expect("replied");
    }
    p.settle();
    assert!(inboxes[0].1.try_recv().is_err(), "the oldest was forgotten");
    assert!(inboxes[1].1.try_recv().is_ok() && inboxes[2].1.try_recv().is_ok());
    let dead = p.b.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DeadLetterReason::Nacked(Some(NackReason::UnknownDst)));
}

#[test]
fn a_link_up_for_another_executor_is_handed_over_before_it_delivers() {
    let mut a = Node::new(
        "alpha",
        1,
        Origin::dialed("tcp://127.0.0.1:9".parse().expect("addr"), None, 0),
        &limits(),
        false,
    );
    let mut b = Node::new("beta", 2, Origin::accepted_for(1), &limits(), false);
    let t = now0();
    a.core.start(&a.host, [1; 32], t);
    b.core.start(&b.host, [2; 32], t);
    pass(&mut a, &mut b, t);
    assert_eq!(b.handoffs, 1, "up, for executor 1");
    assert!(b.core.runs_elsewhere() && b.core.home() == 1);
    assert!(b.host.nodes.peers().is_empty(), "placed by the executor it runs on");
    // Its new executor places it and answers.
    let inbound = Inbound::new(1 << 20, b.link_cmds.clone(), 3, 9);
    b.core.moved(Place { executor: 1, key: 3 }, 9, inbound.clone(), LocalPool::register(inbound));
    let hello = connection::PeerHello {
        node_id: NodeId::of_name("alpha"),
        incarnation: Incarnation([1; 16]),
        version: connection::VERSION_MAX,
        capabilities: 0,
        authenticated: false,
        encrypted: false,
        dial: 1,
    };
    let actions = b.core.up(&b.host, hello);
    assert!(actions.write);
    assert_eq!(b.peer().place(), Place { executor: 1, key: 3 });
}

/// Two links between the same nodes: the one dialed by the lower node id
/// is kept, the other closes `duplicate`, and a connect waiting on the
/// loser is answered by the one kept.
#[test]
fn of_two_links_between_two_nodes_the_lower_dialers_is_kept() {
    let names = ("alpha", "beta");
    let lower = if NodeId::of_name(names.0) < NodeId::of_name(names.1) { names.0 } else { names.1 };
    let mut p = Pair::new();
    let _ = p.connected.try_recv();
    // The other direction: beta dials alpha on a second link.
    let (tx, rx) = crossbeam_channel::bounded(1);
    let mut b2 = Node::new(
        "beta",
        2,
        Origin::dialed("tcp://127.0.0.1:9".parse().expect("addr"), Some(tx), 0),
        &limits(),
        false,
    );
    // The same tables as beta's first link (one node, two links).
    std::mem::swap(&mut b2.host, &mut p.b.host);
    b2.core.place = Place { executor: 0, key: 1 };
    let mut a2 = Node::new("alpha", 1, Origin::accepted(), &limits(), false);
    std::mem::swap(&mut a2.host, &mut p.a.host);
    a2.core.place = Place { executor: 0, key: 1 };
    b2.core.start(&b2.host, [3; 32], p.now);
    a2.core.start(&a2.host, [4; 32], p.now);
    settle(&mut b2, &mut a2, p.now);
    if lower == "alpha" {
        // alpha's dial (the first link) is kept; the second closes duplicate.
        assert!(
            b2.downs.iter().chain(&a2.downs).any(CloseReason::is_duplicate),
            "{:?} {:?}",
            b2.downs,
            a2.downs
        );
        b2.down(CloseReason::Duplicate);
        let info = rx.try_recv().expect("answered").expect("by the kept link");
        assert_eq!(info.node_name, "alpha");
        assert!(b2.redial.is_none(), "a duplicate that lost is not redialed");
    } else {
        // beta's dial wins: it replaces the first link, which is closed.
        assert!(!b2.replaced.is_empty() || !a2.replaced.is_empty(), "the first link is replaced");
        let old = b2.replaced.first().or(a2.replaced.first()).expect("one");
        assert_eq!(old.reason, LinkReplaced::Duplicate);
    }
}

#[test]
fn a_new_incarnation_of_a_node_replaces_its_old_link() {
    let mut p = Pair::new();
    let old_peer = p.a.peer();
    // beta restarts: a new incarnation dials alpha on a new link.
    let mut b2 = Node::new(
        "beta",
        3,
        Origin::dialed("tcp://127.0.0.1:9".parse().expect("addr"), None, 0),
        &limits(),
        false,
    );
    b2.add_server("server", ActorOptions::default());
    let mut a2 = Node::new("alpha", 1, Origin::accepted(), &limits(), false);
    std::mem::swap(&mut a2.host, &mut p.a.host);
    a2.core.place = Place { executor: 0, key: 1 };
    b2.core.start(&b2.host, [5; 32], p.now);
    a2.core.start(&a2.host, [6; 32], p.now);
    settle(&mut b2, &mut a2, p.now);
    let old = a2.replaced.first().expect("the old link is closed");
    assert!(Arc::ptr_eq(&old.peer, &old_peer));
    assert_eq!((old.place, old.reason), (Place { executor: 0, key: 0 }, LinkReplaced::Newer));
    let new_peer = a2.host.nodes.up_peer(NodeId::of_name("beta")).expect("up");
    assert_eq!(new_peer.incarnation, Incarnation([3; 16]));
    // The old link's close, when it comes, takes nothing of the new one's.
    let actions = p.a.core.replaced(&a2.host, &mut p.a.caches, &old_peer, LinkReplaced::Newer);
    assert!(actions.down.is_some() || p.a.core.session.as_ref().is_some_and(|s| s.is_closed()));
    p.a.core.down(&a2.host, &mut p.a.caches, &CloseReason::Replaced);
    assert!(a2.host.nodes.find_by_name("server@beta").is_some(), "the new incarnation's actors stay");
}

#[test]
fn a_message_for_a_link_that_no_longer_carries_its_peer_is_reported() {
    let p = Pair::new();
    let peer = p.a.peer();
    assert!(peer.window.try_take());
    super::not_sent(&p.a.host, &peer, Box::new(EchoReq::new(1, 0)), false);
    peer.owed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    super::not_sent(&p.a.host, &peer, Box::new(EchoReq::new(2, 0)), true);
    let reasons: Vec<_> = p.a.dead_letters().into_iter().map(|d| d.reason).collect();
    assert_eq!(reasons, [DeadLetterReason::Unacknowledged, DeadLetterReason::NotSent]);
    assert!(peer.window.try_take(), "its place came back");
    assert_eq!(peer.owed.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn what_a_link_counted_reaches_its_peers_counters() {
    let mut p = Pair::new();
    Pair::remote_server(&p.a, "beta").try_send(EchoReq::new(1, 0)).expect("sent");
    p.settle();
    p.a.core.publish_counters();
    p.b.core.publish_counters();
    let a = p.a.peer().counters.snapshot(NodeId::of_name("beta"), "beta".into(), true);
    let b = p.b.peer().counters.snapshot(NodeId::of_name("alpha"), "alpha".into(), true);
    assert_eq!((a.msgs_out, b.msgs_in), (1, 1));
    assert!(a.frames_out >= 2 && a.bytes_out > 0 && b.bytes_in == a.bytes_out);
}

#[test]
fn messages_deferred_when_the_link_ends_are_delivered_not_lost() {
    let mut p = owing_pair();
    p.a.down(CloseReason::PeerClosed);
    let got = p.a.deliveries();
    assert_eq!(got.len(), 1, "acknowledged, so handed to its mailbox at the end");
}

#[test]
fn a_nack_fails_the_ask_waiting_for_the_answer_at_once() {
    let mut p = Pair::new();
    let peer = p.a.peer();
    let (inbox, _rx) = ActorSender::inbox("asker");
    let nobody = crate::peer::RemoteRoute::sender(peer, ActorId::new(), "nobody".into(), Vec::new(), None);
    nobody.send_from(EchoReq::new(1, 0), &inbox).expect("sent");
    p.settle();
    let dead = p.a.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, DeadLetterReason::Nacked(Some(NackReason::UnknownDst)));
}

/// Feeds `bytes` to `node`'s link the way the driver reads: asking first
/// (the read budget may make it wait); how many were taken before it had
/// to wait.
fn read_as_the_driver_does(node: &mut Node, bytes: &[u8], now: Instant) -> usize {
    let mut taken = 0;
    while taken < bytes.len() {
        let (gate, actions) = node.core.prepare_read(&node.host, &mut node.caches);
        let _ = node.note(actions);
        match gate {
            ReadGate::Read => {}
            ReadGate::Budget => return taken,
            ReadGate::Later => continue,
            ReadGate::Pause | ReadGate::Closed => panic!("the link stopped reading"),
        }
        let buf = node.core.input_buf().expect("a session");
        let n = buf.len().min(bytes.len() - taken).min(4096);
        buf[..n].copy_from_slice(&bytes[taken..taken + n]);
        taken += n;
        let actions = node.core.read(&node.host, &mut node.caches, now, n);
        let _ = node.note(actions);
    }
    taken
}

/// What `a` writes for an `EchoReq` to beta's server padded to `len` bytes
/// (in parts, if that is larger than a frame).
fn large_request(p: &mut Pair, len: usize) -> Vec<u8> {
    let server = Pair::remote_server(&p.a, "beta");
    let body = format!(r#"{{"counter":1,"req_timestamp_ns":0,"pad":"{}"}}"#, "x".repeat(len));
    let h = connection::FrameHeader {
        msg_id: EchoReq::msg_id(),
        dst: server.id(),
        ..connection::FrameHeader::new(connection::FrameKind::Msg)
    };
    let mut frame = Vec::new();
    connection::encode_frame(&h, body.as_bytes(), usize::MAX, &mut frame).expect("a frame");
    assert!(p.a.peer().window.try_take());
    let _ = p.a.core.send(&p.a.host, &frame, Box::new(EchoReq::new(1, 0)), None, false);
    // Parts go as the output drains: drain it all.
    let mut bytes = Vec::new();
    loop {
        let out = p.a.core.transmit().to_vec();
        if out.is_empty() {
            return bytes;
        }
        p.a.core.transmitted(p.now, out.len());
        bytes.extend(out);
    }
}

#[test]
fn a_read_buffer_grown_for_a_large_frame_is_reserved_from_the_node_and_given_back() {
    let mut p = Pair::new();
    let bytes = large_request(&mut p, 300_000);
    assert_eq!(read_as_the_driver_does(&mut p.b, &bytes, p.now), bytes.len());
    assert_eq!(p.b.deliveries().len(), 1);
    let (reserved, ..) = p.b.host.budgets.snapshot();
    assert!(reserved >= 300_000 - connection::READ_BUFFER_BASE, "reserved: {reserved}");
    assert_eq!(p.b.core.holding(connection::BudgetKind::ReadBuffers), reserved);
    p.b.core.read_idle(&p.b.host);
    assert_eq!(p.b.host.budgets.snapshot().0, 0, "given back once the stream had nothing more");
}

#[test]
fn a_frame_that_needs_more_than_the_read_budget_waits_for_room() {
    let mut p = Pair::new();
    let node_limits = crate::NodeLimits { max_read_buffers: 128 << 10, ..crate::NodeLimits::default() };
    p.b.host.budgets = crate::budget::Budgets::new(&node_limits, 1);
    let bytes = large_request(&mut p, 300_000);
    let taken = read_as_the_driver_does(&mut p.b, &bytes, p.now);
    assert!(taken < bytes.len(), "it waits");
    assert!(p.b.core.is_budget_paused());
    assert!(p.b.host.budgets.snapshot().0 <= 128 << 10, "never past the budget");
    assert!(!p.b.core.resume(), "a resume of its own does not end the wait");
    // Another link gives its buffer back: the budget has room again.
    p.b.host.budgets = crate::budget::Budgets::new(&crate::NodeLimits::default(), 1);
    assert!(p.b.core.set_budget_paused(false), "reads again");
    let rest = read_as_the_driver_does(&mut p.b, &bytes[taken..], p.now);
    assert_eq!(taken + rest, bytes.len());
    assert_eq!(p.b.deliveries().len(), 1);
}

#[test]
fn a_piece_waiting_for_room_reads_again_once_the_budget_has_room() {
    let mut p = Pair::new();
    let node_limits = crate::NodeLimits { max_read_buffers: 256 << 10, ..crate::NodeLimits::default() };
    p.b.host.budgets = crate::budget::Budgets::new(&node_limits, 1);
    // A request of 2 MiB: larger than a frame, it goes in parts.
    let bytes = large_request(&mut p, 2 << 20);
    let taken = read_as_the_driver_does(&mut p.b, &bytes, p.now);
    assert!(taken < bytes.len(), "it waits");
    assert!(p.b.core.is_budget_paused());
    // Its stream is readable meanwhile: the driver finds it paused.
    let (gate, _) = p.b.core.prepare_read(&p.b.host, &mut p.b.caches);
    assert!(matches!(gate, ReadGate::Pause), "paused");
    let _ = p.b.core.pause();
    // Other links give theirs back: the budget has room again, and the
    // piece that waits for it must not keep the link paused.
    p.b.host.budgets = crate::budget::Budgets::new(&crate::NodeLimits::default(), 1);
    assert!(p.b.core.set_budget_paused(false), "reads again");
    let rest = read_as_the_driver_does(&mut p.b, &bytes[taken..], p.now);
    assert_eq!(taken + rest, bytes.len());
    let (gate, actions) = p.b.core.prepare_read(&p.b.host, &mut p.b.caches);
    let _ = p.b.note(actions);
    assert!(matches!(gate, ReadGate::Read), "reading on");
    assert_eq!(p.b.deliveries().len(), 1);
}

/// alpha dials beta, whose accepted link is `refuse`d or `admitted` as given.
fn dial_into(
    b_origin: Origin,
    b_limits: Option<crate::NodeLimits>,
) -> (Node, Node, Receiver<Result<PeerInfo, ManagerError>>) {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let dial = Origin::dialed("tcp://127.0.0.1:9".parse().expect("an address"), Some(tx), 0);
    let mut a = Node::new("alpha", 1, dial, &limits(), false);
    let mut b = Node::new("beta", 2, b_origin, &limits(), false);
    if let Some(l) = b_limits {
        b.host.admission = crate::admission::Admission::new(&l);
        b.host.config.limits = l;
    }
    let now = now0();
    a.core.start(&a.host, [1; 32], now);
    b.core.start(&b.host, [2; 32], now);
    settle(&mut a, &mut b, now);
    (a, b, rx)
}

#[test]
fn a_link_past_a_cap_hears_which_after_its_handshake_and_is_never_placed() {
    let mut origin = Origin::accepted();
    origin.refuse = Some(connection::LimitKind::LinksPerUser);
    let (mut a, b, connected) = dial_into(origin, None);
    assert!(b.host.nodes.peers().is_empty(), "never placed");
    assert!(b.downs.iter().any(|r| r.key() == "user_link_limit"), "{:?}", b.downs);
    let why = a.downs.pop().expect("alpha's link ended");
    assert_eq!(why.key(), "closed_too_many_links_from_user");
    a.down(why);
    let Err(ManagerError::Connect { reason, .. }) = connected.try_recv().expect("answered") else {
        panic!("refused")
    };
    assert!(reason.contains("too many links from this user"), "{reason}");
}

#[test]
fn one_node_past_its_cap_of_links_is_refused_by_name() {
    let l = crate::NodeLimits { max_links_per_node: 1, ..crate::NodeLimits::default() };
    let admission = crate::admission::Admission::new(&l);
    // alpha holds its one link already.
    let mut first = admission.accept(crate::admission::PeerUser::Uid(7)).expect("admitted");
    admission.named(&mut first, NodeId::of_name("alpha")).expect("its first");
    let mut origin = Origin::accepted();
    origin.admitted = Some(admission.accept(crate::admission::PeerUser::Uid(7)).expect("under the total"));
    let (tx, _rx) = crossbeam_channel::bounded(1);
    let dial = Origin::dialed("tcp://127.0.0.1:9".parse().expect("an address"), Some(tx), 0);
    let mut a = Node::new("alpha", 1, dial, &limits(), false);
    let mut b = Node::new("beta", 2, origin, &limits(), false);
    b.host.admission = admission;
    let now = now0();
    a.core.start(&a.host, [1; 32], now);
    b.core.start(&b.host, [2; 32], now);
    settle(&mut a, &mut b, now);
    assert!(a.downs.iter().any(|r| r.key() == "closed_too_many_links_from_node"), "{:?}", a.downs);
    // Its end gives its place back: the node's count is its first link's.
    let why = b.downs.pop().expect("down");
    b.down(why);
    assert_eq!(b.host.admission.links(), 1, "the refused link's place was given back");
    b.host.admission.release(first);
    let mut again = b.host.admission.accept(crate::admission::PeerUser::Uid(7)).expect("admitted");
    assert!(b.host.admission.named(&mut again, NodeId::of_name("alpha")).is_ok());
}
