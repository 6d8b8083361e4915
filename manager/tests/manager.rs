//! The manager: routing, replies, backpressure, dead letters, watching,
//! panics, shutdown, the echo. Outcomes only; every wait is a hang guard.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use actor::{ActorSender, AskError, SendError, Terminated, TerminationReason};
use client::Client;
use common::*;
use echo_reply::EchoReply;
use echo_req::EchoReq;
use echo_requestee_protocol::echo_requestee_protocol;
use echo_start::EchoStart;
use manager::{ActorOptions, DeadLetterReason, Manager, ManagerConfig, ManagerError};
use msg_header::{BoxMsg, IntoBoxMsg, MsgType};
use msg1::Msg1;
use protocol::ProtocolId;
use server::Server;

fn manager(executors: usize) -> Manager {
    Manager::new(ManagerConfig::default().executors(executors)).unwrap()
}

fn on(executor: usize) -> ActorOptions {
    ActorOptions::default().executor(executor)
}

fn ping(actor: &ActorSender, n: u64) -> u64 {
    actor.ask(Ping::new(n), HANG_GUARD).unwrap().n
}

fn terminated(msg: BoxMsg) -> Terminated {
    *msg.downcast::<Terminated>().unwrap()
}

#[test]
fn test_manager() {
    let m = manager(2);
    let s1 = m.add("s1", Server::new()).unwrap();
    let (probe, _) = Probe::new("probe");
    let p = m.add(probe.name.clone(), probe).unwrap();
    let s2 = m.add("s2", Server::new()).unwrap();
    assert_eq!(m.actor_count(), 3);

    // By protocol: every speaker, in the order added.
    assert_eq!(m.find_by_protocol(echo_requestee_protocol().id()), [s1.clone(), p.clone(), s2.clone()]);
    assert!(m.find_by_protocol(ProtocolId::of_name("nobody speaks this")).is_empty());
    // By name: one or none.
    assert_eq!(m.find_by_name("s2"), Some(s2.clone()));
    assert_eq!(m.find_by_name("s3"), None);
    assert_eq!(m.find_by_id(s1.id()), Some(s1.clone()));

    // Each answers through what the directory returned.
    for (i, s) in m.find_by_protocol(echo_requestee_protocol().id()).iter().enumerate() {
        let reply = s.ask(EchoReq::new(i as u64, 7), HANG_GUARD).unwrap();
        assert_eq!((reply.counter, reply.req_timestamp_ns), (i as u64, 7));
    }
    // Names are unique per manager.
    assert!(matches!(m.add("s1", Server::new()), Err(ManagerError::NameTaken(n)) if n == "s1"));
    assert!(matches!(
        m.add_with("x", Server::new(), on(5)),
        Err(ManagerError::NoSuchExecutor { index: 5, count: 2 })
    ));

    // A stopped actor leaves the directory.
    s1.stop().unwrap();
    let (w, wrx) = ActorSender::inbox("w");
    s1.watch(&w).unwrap();
    assert_eq!(terminated(wrx.recv_timeout(HANG_GUARD).unwrap().msg).reason, TerminationReason::Stopped);
    assert_eq!(m.find_by_name("s1"), None);
    assert_eq!(m.find_by_protocol(echo_requestee_protocol().id()), [p, s2]);
}

#[test]
fn a_message_outside_the_protocol_set_is_refused() {
    let m = manager(1);
    let s = m.add("s", Server::new()).unwrap();
    let err = s.send(Msg1::new(1, Default::default())).unwrap_err();
    assert!(matches!(&err, SendError::NotAccepted(msg) if msg.msg_id() == Msg1::msg_id()));
}

#[test]
fn ask_with_timeout() {
    let m = manager(2);
    let (probe, _) = Probe::new("p");
    let p = m.add(probe.name.clone(), probe).unwrap();
    assert_eq!(ping(&p, 42), 42);

    // No reply in time: the actor is busy.
    let gate = block(&p);
    assert!(matches!(p.ask(Ping::new(1), Duration::from_millis(50)), Err(AskError::Timeout)));
    drop(gate);
    // Handled without a reply: the ask learns at once.
    assert!(matches!(p.ask(StopMe::new().into_box_msg(), HANG_GUARD), Err(AskError::Disconnected)));
    // Stopped: refused at send time.
    assert!(matches!(p.ask(Ping::new(1), HANG_GUARD), Err(AskError::Send(SendError::Disconnected(_)))));
}

#[test]
fn ask_inside_a_handler_is_refused() {
    let m = manager(2);
    let (a, _) = Probe::new("a");
    let (b, _) = Probe::new("b");
    let a = m.add_with(a.name.clone(), a, on(0)).unwrap();
    let b = m.add_with(b.name.clone(), b, on(1)).unwrap();
    let (report, outcome) = crossbeam_channel::bounded(1);
    a.send(AskInside::new(b, report)).unwrap();
    assert_eq!(outcome.recv_timeout(HANG_GUARD).unwrap(), "Err(InHandler(manager::tests::Ping))");
}

#[test]
fn a_bounded_mailbox_is_full_after_exactly_its_capacity_and_stalls_no_neighbour() {
    const CAP: usize = 5;
    let m = manager(1);
    let (full, full_counts) = Probe::new("full");
    let (neighbour, _) = Probe::new("neighbour");
    let full = m.add_with(full.name.clone(), full, on(0).capacity(CAP)).unwrap();
    let neighbour = m.add_with(neighbour.name.clone(), neighbour, on(0).capacity(CAP)).unwrap();

    // Its actor is blocked, so nothing is taken out while we count.
    let gate = block(&full);
    for n in 0..CAP as u64 {
        full.try_send(Ping::new(n)).unwrap();
    }
    let err = full.try_send(Ping::new(99)).unwrap_err();
    assert!(matches!(&err, SendError::Full(msg) if msg.downcast_ref::<Ping>().unwrap().n == 99));
    assert!(matches!(
        full.send_timeout(Ping::new(100), Duration::from_millis(20)),
        Err(SendError::Timeout(_))
    ));

    // The neighbour, on the same executor, still takes messages: its own
    // capacity is untouched by the full one.
    let asker = std::thread::spawn({
        let neighbour = neighbour.clone();
        move || ping(&neighbour, 7)
    });
    // `send` waits for room, and gets it when the actor drains.
    let waiter = std::thread::spawn({
        let full = full.clone();
        move || full.send(Ping::new(101))
    });
    drop(gate);
    assert_eq!(asker.join().unwrap(), 7);
    waiter.join().unwrap().unwrap();
    for n in 0..CAP as u64 {
        ping(&full, n);
    }
    // 1 block + CAP pings + the waiter's ping + CAP asked pings.
    assert_eq!(full_counts.handled(), 1 + CAP + 1 + CAP);
}

#[test]
fn sends_inside_a_handler_never_wait() {
    let m = manager(2);
    let (sender, _) = Probe::new("sender");
    let (target, _) = Probe::new("target");
    let sender = m.add_with(sender.name.clone(), sender, on(0)).unwrap();
    let target = m.add_with(target.name.clone(), target, on(1).capacity(2)).unwrap();
    let gate = block(&target);
    let (report, outcomes) = crossbeam_channel::unbounded();
    sender.send(SendPings::new(target.clone(), 3, report)).unwrap();
    let outcomes: Vec<_> = (0..3).map(|_| outcomes.recv_timeout(HANG_GUARD).unwrap()).collect();
    assert_eq!(outcomes, [Ok(()), Ok(()), Err("Full(manager::tests::Ping)".to_string())]);
    drop(gate);
}

#[test]
fn a_dead_letter_for_a_stopped_actor() {
    let m = manager(1);
    let dead = m.dead_letters();
    let (probe, _) = Probe::new("p");
    let p = m.add(probe.name.clone(), probe).unwrap();
    let gate = block(&p);
    p.send(StopMe::new()).unwrap();
    // Accepted: the actor is alive when these are sent...
    p.send(Ping::new(1)).unwrap();
    p.send(Ping::new(2)).unwrap();
    drop(gate);
    // ...but it stops before handling them.
    for n in 1..=2 {
        let letter = dead.recv_timeout(HANG_GUARD).unwrap();
        assert_eq!(letter.reason, DeadLetterReason::ActorStopped);
        assert_eq!(letter.dst, p.id());
        assert_eq!(letter.msg.downcast::<Ping>().unwrap().n, n);
    }
    assert_eq!(m.dead_letter_count(), 2);
    // After it stopped, the send itself fails: that is an error, not a dead letter.
    assert!(matches!(p.send(Ping::new(3)), Err(SendError::Disconnected(_))));
    assert!(dead.try_recv().is_err());
}

#[test]
fn a_dead_letter_for_a_shutdown() {
    let m = manager(1);
    let dead = m.dead_letters();
    let (probe, counts) = Probe::new("p");
    let p = m.add(probe.name.clone(), probe).unwrap();
    let gate = block(&p);
    for n in 0..3 {
        p.send(Ping::new(n)).unwrap();
    }
    std::thread::scope(|s| {
        s.spawn(|| m.shutdown_now());
        // Shutdown has begun: sends from outside are refused.
        while p.send(Ping::new(100)).is_ok() {
            std::thread::yield_now();
        }
        drop(gate);
    });
    let letters: Vec<_> = dead.try_iter().collect();
    assert!(letters.iter().all(|l| l.reason == DeadLetterReason::Shutdown && l.dst == p.id()));
    let pings: Vec<u64> = letters.iter().map(|l| l.msg.downcast_ref::<Ping>().unwrap().n).collect();
    // The three queued first, then the ones accepted before the refusal.
    assert_eq!(pings[..3], [0, 1, 2]);
    assert!(pings[3..].iter().all(|n| *n == 100));
    assert_eq!(counts.handled(), 1, "only the block: everything queued became a dead letter");
    assert_eq!(counts.stopped(), 1, "stopped hooks run even on shutdown_now");
}

#[test]
fn a_panic_stops_only_its_actor() {
    let m = manager(1);
    let (bomb, bomb_counts) = Probe::new("bomb");
    let (neighbour, _) = Probe::new("neighbour");
    let (watcher, _, seen) = Probe::seeing("watcher");
    let bomb = m.add(bomb.name.clone(), bomb).unwrap();
    let neighbour = m.add(neighbour.name.clone(), neighbour).unwrap();
    let watcher = m.add(watcher.name.clone(), watcher).unwrap();
    bomb.watch(&watcher).unwrap();

    bomb.send(Explode::new()).unwrap();
    let t = terminated(seen.recv_timeout(HANG_GUARD).unwrap());
    assert_eq!((t.actor, t.name.as_str(), t.reason), (bomb.id(), "bomb", TerminationReason::Panicked));
    assert_eq!(bomb_counts.stopped(), 0, "no stopped hook after a panic");
    assert!(matches!(bomb.send(Ping::new(1)), Err(SendError::Disconnected(_))));
    // Same executor, still answering.
    assert_eq!(ping(&neighbour, 5), 5);
    assert_eq!(m.find_by_name("bomb"), None);
}

#[test]
fn watching_a_stopped_actor_notifies_at_once() {
    let m = manager(1);
    let (p, counts) = Probe::new("p");
    let p = m.add(p.name.clone(), p).unwrap();
    assert!(matches!(p.ask(StopMe::new().into_box_msg(), HANG_GUARD), Err(AskError::Disconnected)));
    let (w, wrx) = ActorSender::inbox("w");
    p.watch(&w).unwrap();
    let t = terminated(wrx.recv_timeout(HANG_GUARD).unwrap().msg);
    assert_eq!((t.actor, t.reason), (p.id(), TerminationReason::Stopped));
    assert_eq!(counts.stopped(), 1);
}

#[test]
fn the_manager_stops_its_own_actors_after_what_is_queued() {
    let m = manager(1);
    let (probe, counts) = Probe::new("p");
    let p = m.add(probe.name.clone(), probe).unwrap();
    let (w, wrx) = ActorSender::inbox("w");
    p.watch(&w).unwrap();
    let gate = block(&p);
    p.send(Ping::new(1)).unwrap();
    m.stop(&p).unwrap();
    drop(gate);
    let t = terminated(wrx.recv_timeout(HANG_GUARD).unwrap().msg);
    assert_eq!((t.actor, t.reason), (p.id(), TerminationReason::Stopped));
    assert_eq!((counts.handled(), counts.stopped()), (2, 1), "the block and the ping, then the hook");
    assert_eq!(m.dead_letter_count(), 0);
    // Stopping it again changes nothing.
    m.stop(&p).unwrap();
    // Not an actor of this manager: another manager's, an inbox.
    let other = manager(1);
    let (q, _) = Probe::new("q");
    let q = other.add(q.name.clone(), q).unwrap();
    assert!(matches!(m.stop(&q), Err(actor::SystemError::UnknownActor(name)) if name == "q"));
    assert!(matches!(m.stop(&w), Err(actor::SystemError::UnknownActor(_))));
    assert_eq!(ping(&q, 3), 3);
}

#[test]
fn shutdown_drains_what_was_queued() {
    let m = manager(2);
    let (p, counts) = Probe::new("p");
    let p = m.add_with(p.name.clone(), p, on(0)).unwrap();
    let (w, wrx) = ActorSender::inbox("w");
    p.watch(&w).unwrap();
    let gate = block(&p);
    let (report, pongs) = ActorSender::inbox("pongs");
    for n in 0..100 {
        p.send_from(Ping::new(n), &report).unwrap();
    }
    std::thread::scope(|s| {
        s.spawn(|| m.shutdown());
        while p.send(Ping::new(1000)).is_ok() {
            std::thread::yield_now();
        }
        drop(gate);
    });
    let answered: Vec<u64> = pongs.try_iter().map(|e| e.msg.downcast::<Pong>().unwrap().n).collect();
    assert_eq!(answered, (0..100).collect::<Vec<_>>());
    assert_eq!(counts.stopped(), 1);
    assert_eq!(terminated(wrx.try_recv().unwrap().msg).reason, TerminationReason::Shutdown);
    assert_eq!(m.dead_letter_count(), 0);
    assert!(matches!(m.add("late", Server::new()), Err(ManagerError::ShuttingDown)));
    assert_eq!(m.actor_count(), 0);
}

#[test]
fn a_thousand_actors_on_two_executors_all_answer() {
    let m = manager(2);
    let actors: Vec<_> = (0..1000).map(|i| m.add(format!("s{i}"), Server::new()).unwrap()).collect();
    let (me, replies) = ActorSender::inbox("me");
    for (i, a) in actors.iter().enumerate() {
        a.send_from(EchoReq::new(i as u64, 0), &me).unwrap();
    }
    let mut got: Vec<u64> = (0..1000)
        .map(|_| replies.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<EchoReply>().unwrap().counter)
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[test]
fn the_echo_through_the_manager() {
    let m = manager(2);
    m.add_with("server", Server::new(), on(0)).unwrap();
    let client = m.add_with("client", Client::new(), on(1)).unwrap();
    for n in [0, 1, 10_000] {
        let done = client.ask(EchoStart::new(n), HANG_GUARD).unwrap();
        assert_eq!((done.sent, done.received), (n, n));
    }
    assert_eq!(m.dead_letter_count(), 0);
}

#[test]
fn dropping_the_manager_shuts_it_down() {
    let (p, counts) = Probe::new("p");
    let addr = {
        let m = manager(2);
        let addr = m.add(p.name.clone(), p).unwrap();
        assert_eq!(ping(&addr, 1), 1);
        addr
    };
    assert_eq!(counts.started.load(Ordering::SeqCst), 1);
    assert_eq!(counts.stopped(), 1);
    assert!(matches!(addr.send(Ping::new(1)), Err(SendError::Disconnected(_))));
}

#[test]
fn public_handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Manager>();
    send_sync::<ActorSender>();
    fn send<T: Send>() {}
    send::<manager::DeadLetter>();
}

#[test]
fn when_room_tells_an_actor_that_a_full_mailbox_has_room_again() {
    let m = manager(1);
    let (full, _) = Probe::new("full");
    let full = m.add_with(full.name.clone(), full, on(0).capacity(1)).unwrap();
    let (me, notes) = ActorSender::inbox("me");
    // Room now: the note comes at once.
    full.when_room(&me, Pong::new(1)).unwrap();
    assert_eq!(notes.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Pong>().unwrap().n, 1);
    // Full: the note waits for the actor to take a message.
    let gate = block(&full);
    full.try_send(Ping::new(1)).unwrap();
    assert!(matches!(full.try_send(Ping::new(2)), Err(SendError::Full(_))));
    full.when_room(&me, Pong::new(2)).unwrap();
    assert!(notes.try_recv().is_err(), "no room yet");
    drop(gate);
    assert_eq!(notes.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Pong>().unwrap().n, 2);
    full.try_send(Ping::new(3)).unwrap();
}

#[test]
fn a_send_from_the_executor_thread_never_overtakes_the_spawn_of_its_target() {
    // The executor runs what its own thread queued before its mailbox. A
    // handler that finds an actor another thread has just added, and whose
    // start is still in the mailbox, must still reach it.
    let m = manager(1);
    let (finder, _) = Probe::new("finder");
    let finder = m.add_with(finder.name.clone(), finder, on(0)).unwrap();
    let gate = block(&finder);
    let (report, outcome) = crossbeam_channel::unbounded();
    finder.send(PingByName::new("late".into(), report)).unwrap();
    // Queued behind the request above, while the executor is blocked.
    let (late, late_counts) = Probe::new("late");
    let late = m.add_with(late.name.clone(), late, on(0)).unwrap();
    drop(gate);
    assert_eq!(outcome.recv_timeout(HANG_GUARD).unwrap(), Ok(()));
    // The ping arrived: the next one is answered after it, in order.
    assert_eq!(ping(&late, 1), 1);
    assert_eq!(late_counts.handled(), 2);
    assert_eq!(m.dead_letter_count(), 0);
}

/// Answers `EchoReq`s through `dispatch!`; has no arm for anything else.
struct Dispatching;

impl actor::Actor for Dispatching {
    fn protocol_set(&self) -> &'static protocol_set::ProtocolSet {
        server::server_protocol_set()
    }
    fn handle(&mut self, ctx: &mut actor::Context<'_>, msg: BoxMsg) {
        actor::dispatch!(msg, ctx, {
            req: EchoReq => ctx.answer_to(&req, EchoReply::new(req.counter, 0, 0)),
            _reply: EchoReply => {},
        })
    }
}

#[test]
fn dispatch_hands_each_message_to_its_arm_and_reports_the_rest_as_unhandled() {
    let m = manager(2);
    let dead = m.dead_letters();
    let d = m.add_with("dispatching", Dispatching, on(0)).unwrap();
    let answer = d.ask(EchoReq::new(5, 0), HANG_GUARD).unwrap();
    assert_eq!(answer.counter, 5);
    // A plain send has no one to answer: the reply is a dead letter saying so.
    d.send(EchoReq::new(6, 0)).unwrap();
    let letter = dead.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(letter.reason, DeadLetterReason::NoReplyTo);
    assert_eq!(letter.msg.downcast::<EchoReply>().unwrap().counter, 6);
    // A `Terminated` (every actor may be sent one) has no arm here.
    let other = m.add_with("other", Server::new(), on(1)).unwrap();
    other.watch(&d).unwrap();
    other.stop().unwrap();
    let letter = dead.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!((letter.reason, letter.dst), (DeadLetterReason::Unhandled, d.id()));
    assert_eq!(terminated(letter.msg).actor, other.id());
    assert_eq!(m.stats().dead_letters.get("unhandled"), Some(&1));
    assert_eq!(m.stats().dead_letters.get("no_reply_to"), Some(&1));
}

/// Speaks the echo requestee protocol but has an arm for `EchoReq` only:
/// an arm is missing.
struct MissingArm;

impl actor::Actor for MissingArm {
    fn protocol_set(&self) -> &'static protocol_set::ProtocolSet {
        server::server_protocol_set()
    }
    fn handle(&mut self, ctx: &mut actor::Context<'_>, msg: BoxMsg) {
        actor::dispatch!(msg, ctx, {
            req: EchoReq => ctx.answer_to(&req, EchoReply::new(req.counter, 0, 0)),
        })
    }
}

#[test]
fn a_message_of_the_protocol_set_without_an_arm_is_reported_and_the_actor_goes_on() {
    let m = manager(1);
    let dead = m.dead_letters();
    let actor = m.add("missing-arm", MissingArm).unwrap();
    let (watcher, told) = ActorSender::inbox("watcher");
    actor.watch(&watcher).unwrap();
    actor.send(EchoReply::new(1, 0, 0)).unwrap();
    // Never a panic in the middle of traffic (an error is logged): a dead
    // letter, and the actor goes on.
    let letter = dead.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(letter.reason, DeadLetterReason::Unhandled);
    assert_eq!(actor.ask(EchoReq::new(2, 0), HANG_GUARD).unwrap().counter, 2);
    assert!(told.try_recv().is_err(), "it did not end");
}
