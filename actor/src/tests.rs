use std::sync::{Arc, Mutex};
use std::time::Duration;

use echo_reply::EchoReply;
use echo_req::EchoReq;
use echo_requestee_protocol::echo_requestee_protocol;
use msg_header::{ActorId, BoxMsg, IntoBoxMsg, MsgId, MsgType};
use msg_local_macro::msg_local_macro;
use msg1::Msg1;
use protocol::ProtocolId;
use protocol_set::ProtocolSet;

use super::*;

msg_local_macro! {
    struct Local("actor::tests::Local") {}
}

protocol::protocol! {
    fn local_protocol = "actor::tests::local" [local Local]
}

protocol_set::protocol_set! {
    fn test_set = "actor::tests" [echo_requestee_protocol(), local_protocol()]
}

/// Answers every `EchoReq` with an `EchoReply`, counts, and stops on `Local`.
struct Replier {
    handled: u64,
    started: bool,
}

impl Actor for Replier {
    fn protocol_set(&self) -> &'static ProtocolSet {
        test_set()
    }
    fn started(&mut self, _ctx: &mut Context<'_>) {
        self.started = true;
    }
    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        self.handled += 1;
        match msg.downcast::<EchoReq>() {
            Ok(req) => {
                ctx.reply(EchoReply::new(req.counter, req.req_timestamp_ns, 99)).unwrap();
            }
            Err(e) => {
                assert!(e.into_inner().is::<Local>());
                // Inside a handler, blocking is refused.
                let to = ctx.me().clone();
                assert!(matches!(
                    to.ask(Local::new().into_box_msg(), Duration::from_secs(60)),
                    Err(AskError::InHandler(_))
                ));
                ctx.stop();
            }
        }
    }
}

fn replier() -> Replier {
    Replier { handled: 0, started: false }
}

#[test]
fn test_actor() {
    let mut actor = replier();
    let (addr, rx) = ActorSender::channel("replier", &actor, None);
    let (me, my_rx) = ActorSender::inbox("test");
    let dir = StaticDirectory::new([addr.clone()]);

    actor.started(&mut Context::new(&addr, &dir));
    assert!(actor.started);

    addr.send_from(EchoReq::new(5, 11), &me).unwrap();
    let env = rx.try_recv().unwrap();
    assert_eq!(env.msg.header().dst_id(), addr.id());
    assert_eq!(env.msg.header().src_id(), me.id());
    assert!(!dispatch(&mut actor, &addr, &dir, env));
    assert_eq!(actor.handled, 1);

    let reply = my_rx.try_recv().unwrap();
    // A reply names its replier, and carries no address to answer it.
    assert!(reply.reply_to.is_none());
    assert_eq!(reply.msg.header().src_id(), addr.id());
    let reply = reply.msg.downcast::<EchoReply>().unwrap();
    assert_eq!((reply.counter, reply.req_timestamp_ns, reply.reply_timestamp_ns), (5, 11, 99));

    // A handler can ask to stop.
    addr.send(Local::new()).unwrap();
    assert!(dispatch(&mut actor, &addr, &dir, rx.try_recv().unwrap()));
    assert!(!on_executor_thread(), "dispatch restores the thread's mark");

    // The directory answers by protocol and by name.
    assert_eq!(dir.find_by_protocol(echo_requestee_protocol().id()), std::slice::from_ref(&addr));
    assert!(dir.find_by_protocol(ProtocolId::of_name("nope")).is_empty());
    assert_eq!(dir.find_by_name("replier"), Some(addr));
}

#[test]
fn a_message_the_actor_does_not_speak_is_refused_and_handed_back() {
    let actor = replier();
    let (addr, rx) = ActorSender::channel("actor", &actor, None);
    let err = addr.send(Msg1::new(1, Default::default())).unwrap_err();
    assert!(matches!(err, SendError::NotAccepted(_)), "{err:?}");
    assert_eq!(err.into_inner().msg_id(), Msg1::msg_id());
    assert!(rx.is_empty());
}

#[test]
fn a_full_mailbox_is_full_at_once_and_send_timeout_times_out() {
    let actor = replier();
    let (addr, rx) = ActorSender::channel("actor", &actor, Some(2));
    addr.try_send(EchoReq::new(1, 0)).unwrap();
    addr.try_send(EchoReq::new(2, 0)).unwrap();
    let full = addr.try_send(EchoReq::new(3, 0)).unwrap_err();
    assert!(matches!(&full, SendError::Full(m) if m.downcast_ref::<EchoReq>().unwrap().counter == 3));
    let late = addr.send_timeout(EchoReq::new(4, 0), Duration::from_millis(1)).unwrap_err();
    assert!(matches!(late, SendError::Timeout(_)));
    drop(rx);
    assert!(matches!(addr.send(EchoReq::new(5, 0)), Err(SendError::Disconnected(_))));
}

#[test]
fn reply_without_a_reply_address_is_an_error() {
    let actor = replier();
    let (addr, _rx) = ActorSender::channel("actor", &actor, None);
    let dir = StaticDirectory::default();
    let mut ctx = Context::new(&addr, &dir);
    assert!(matches!(ctx.reply(EchoReply::new(1, 2, 3)), Err(SendError::NoReplyTo(_))));
}

#[test]
fn ask_gets_the_reply_or_a_typed_error() {
    let mut actor = replier();
    let (addr, rx) = ActorSender::channel("actor", &actor, None);
    let server_addr = addr.clone();
    let server = std::thread::spawn(move || {
        let dir = StaticDirectory::default();
        // Answer one request, then drop one unanswered (by stopping on it).
        for env in rx.iter().take(2) {
            dispatch(&mut actor, &server_addr, &dir, env);
        }
    });
    let reply = addr.ask(EchoReq::new(8, 0), Duration::from_secs(60)).unwrap();
    assert_eq!(reply.counter, 8);
    assert!(matches!(
        addr.ask(Local::new().into_box_msg(), Duration::from_secs(60)),
        Err(AskError::Disconnected)
    ));
    server.join().unwrap();
    // Nobody left to answer: the mailbox is gone.
    assert!(matches!(addr.ask(EchoReq::new(9, 0), Duration::from_secs(60)), Err(AskError::Send(_))));
}

#[test]
fn a_reply_of_another_type_than_the_request_names_is_a_typed_error() {
    let (to, requests) = ActorSender::inbox("confused");
    let answerer = std::thread::spawn(move || {
        let env = requests.recv().unwrap();
        let corr = env.msg.header().corr_id();
        // An EchoReq names EchoReply; this answers with an EchoReq.
        let wrong = EchoReq::new(1, 2).into_box_msg();
        env.reply_to.unwrap().forward(wrong, None, corr, Wait::No).unwrap();
    });
    match to.ask(EchoReq::new(7, 0), Duration::from_secs(60)) {
        Err(AskError::WrongReply(got)) => assert_eq!(got.downcast::<EchoReq>().unwrap().counter, 1),
        other => panic!("expected WrongReply, got {other:?}"),
    }
    answerer.join().unwrap();
}

#[test]
fn ask_times_out() {
    let actor = replier();
    let (addr, _rx) = ActorSender::channel("actor", &actor, None);
    assert!(matches!(addr.ask(EchoReq::new(1, 0), Duration::from_millis(1)), Err(AskError::Timeout)));
}

/// A stand-in for a link with a window: `room` more messages fit until
/// [`grant`](Self::grant) makes more; [`down`](Self::down) cuts it. It
/// keeps the counters of the `EchoReq`s it took and the `Wait` of every
/// delivery.
struct FakeLink {
    id: ActorId,
    state: Mutex<LinkState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct LinkState {
    room: usize,
    down: bool,
    taken: Vec<u64>,
    waits: Vec<Wait>,
}

impl FakeLink {
    fn new(room: usize) -> Arc<Self> {
        let state = LinkState { room, ..LinkState::default() };
        Arc::new(Self { id: ActorId::new(), state: Mutex::new(state), changed: std::sync::Condvar::new() })
    }

    fn grant(&self, n: usize) {
        self.state.lock().unwrap().room += n;
        self.changed.notify_all();
    }

    fn down(&self) {
        self.state.lock().unwrap().down = true;
        self.changed.notify_all();
    }
}

impl Route for FakeLink {
    fn actor_id(&self) -> ActorId {
        self.id
    }
    fn actor_name(&self) -> &str {
        "linked"
    }
    fn accepts(&self, _: MsgId) -> bool {
        true
    }
    fn speaks(&self, _: ProtocolId) -> bool {
        false
    }
    fn is_remote(&self) -> bool {
        true
    }
    /// As a link does: down is `Disconnected`, a full window is `Full` or
    /// waits as `wait` says, and every error hands the message back.
    fn deliver(&self, env: Envelope, wait: Wait) -> Result<(), SendError> {
        let mut state = self.state.lock().unwrap();
        state.waits.push(wait);
        loop {
            if state.down {
                return Err(SendError::Disconnected(env.msg));
            }
            if state.room > 0 {
                state.room -= 1;
                let counter = env.msg.downcast_ref::<EchoReq>().map_or(u64::MAX, |r| r.counter);
                state.taken.push(counter);
                return Ok(());
            }
            state = match wait {
                Wait::No => return Err(SendError::Full(env.msg)),
                Wait::Until(deadline) => {
                    let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                        return Err(SendError::Timeout(env.msg));
                    };
                    self.changed.wait_timeout(state, left).unwrap().0
                }
                Wait::Forever => self.changed.wait(state).unwrap(),
            };
        }
    }
}

#[test]
fn a_local_only_message_to_a_remote_actor_is_not_serializable() {
    let link = FakeLink::new(8);
    let remote = ActorSender::from_route(link.clone());
    assert!(remote.is_remote());
    let err = remote.send(Local::new()).unwrap_err();
    assert!(matches!(&err, SendError::NotSerializable(m) if m.name() == "actor::tests::Local"));
    assert!(err.to_string().contains("actor::tests::Local"));
    remote.send(EchoReq::new(1, 0)).unwrap();
    // Only the serde message reached the link.
    assert_eq!(link.state.lock().unwrap().taken, [1]);
}

/// The counter of the `EchoReq` a send error handed back, and that its
/// header was stamped for `to`.
fn handed_back(err: SendError, to: &ActorSender) -> u64 {
    let msg = err.into_inner();
    assert_eq!(msg.header().dst_id(), to.id());
    msg.downcast::<EchoReq>().unwrap().counter
}

#[test]
fn a_remote_route_that_is_down_hands_every_send_back_as_disconnected() {
    let link = FakeLink::new(8);
    let remote = ActorSender::from_route(link.clone());
    remote.send(EchoReq::new(1, 0)).unwrap();
    link.down();
    let (me, _replies) = ActorSender::inbox("me");
    let errors = [
        remote.try_send(EchoReq::new(2, 0)).unwrap_err(),
        remote.send(EchoReq::new(3, 0)).unwrap_err(),
        remote.send_timeout(EchoReq::new(4, 0), Duration::from_secs(60)).unwrap_err(),
        remote.send_from(EchoReq::new(5, 0), &me).unwrap_err(),
    ];
    for (err, counter) in errors.into_iter().zip(2..) {
        assert!(matches!(err, SendError::Disconnected(_)), "{err:?}");
        assert!(err.to_string().contains("echo_req::EchoReq"), "{err}");
        assert_eq!(handed_back(err, &remote), counter);
    }
    // An ask fails at once with the send's error, the request inside it.
    let err = remote.ask(EchoReq::new(6, 0), Duration::from_secs(60)).unwrap_err();
    let AskError::Send(send) = err else { panic!("{err:?}") };
    assert!(matches!(send, SendError::Disconnected(_)), "{send:?}");
    assert_eq!(handed_back(send, &remote), 6);
    assert_eq!(link.state.lock().unwrap().taken, [1]);
}

#[test]
fn a_full_remote_route_is_full_for_try_send_times_out_for_send_timeout_and_waits_for_send() {
    let link = FakeLink::new(1);
    let remote = ActorSender::from_route(link.clone());
    remote.try_send(EchoReq::new(1, 0)).unwrap();

    let full = remote.try_send(EchoReq::new(2, 0)).unwrap_err();
    assert!(matches!(full, SendError::Full(_)), "{full:?}");
    assert_eq!(handed_back(full, &remote), 2);

    // The route gets the deadline and gives the message back when it passes
    // (1 ms: nothing will make room, so the outcome does not depend on it).
    let late = remote.send_timeout(EchoReq::new(3, 0), Duration::from_millis(1)).unwrap_err();
    assert!(matches!(late, SendError::Timeout(_)), "{late:?}");
    assert_eq!(handed_back(late, &remote), 3);

    // On an executor thread no send waits: send_timeout is try_send there.
    {
        let _on_executor = crate::sender::ExecutorThreadGuard::enter();
        let full = remote.send_timeout(EchoReq::new(4, 0), Duration::from_secs(60)).unwrap_err();
        assert!(matches!(full, SendError::Full(_)), "{full:?}");
        assert_eq!(handed_back(full, &remote), 4);
    }

    // `send` waits for room, however the grant and the send interleave.
    let sending = {
        let remote = remote.clone();
        std::thread::spawn(move || remote.send(EchoReq::new(5, 0)))
    };
    link.grant(1);
    sending.join().unwrap().unwrap();

    let state = link.state.lock().unwrap();
    assert_eq!(state.taken, [1, 5]);
    assert!(
        matches!(state.waits[..], [Wait::No, Wait::No, Wait::Until(_), Wait::No, Wait::Forever]),
        "{:?}",
        state.waits
    );
}

/// A remote node that refuses everything, then answers anyway: the
/// refusal is the ask's one answer.
struct Refuser;

impl Route for Refuser {
    fn actor_id(&self) -> ActorId {
        ActorId::NONE
    }
    fn actor_name(&self) -> &str {
        "refuser"
    }
    fn accepts(&self, _: MsgId) -> bool {
        true
    }
    fn speaks(&self, _: ProtocolId) -> bool {
        false
    }
    fn deliver(&self, env: Envelope, _wait: Wait) -> Result<(), SendError> {
        let reply_to = env.reply_to.expect("an ask has a reply address");
        reply_to.route().refused(Some(msg_header::NackReason::MailboxFull));
        assert!(matches!(reply_to.send(EchoReply::new(1, 0, 0)), Err(SendError::Full(_))));
        Ok(())
    }
}

#[test]
fn an_ask_refused_by_the_remote_node_fails_at_once() {
    let refuser = ActorSender::from_route(Arc::new(Refuser));
    let err = refuser.ask(EchoReq::new(1, 0), Duration::from_secs(60)).unwrap_err();
    assert!(matches!(err, AskError::Nacked(Some(msg_header::NackReason::MailboxFull))), "{err:?}");
    assert_eq!(err.to_string(), "request refused by the remote node: mailbox_full");
}

#[test]
fn public_handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<ActorSender>();
    send_sync::<StaticDirectory>();
    send::<Envelope>();
    send::<SendError>();
    send::<AskError>();
}
