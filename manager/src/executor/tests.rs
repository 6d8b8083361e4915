//! One executor with no manager around it: its host is a stand-in that
//! records what the executor tells it.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actor::{Actor, ActorSender, Context, Envelope, Terminated, TerminationReason};
use echo_req::EchoReq;
use msg_header::{ActorId, BoxMsg, IntoBoxMsg, MsgType, NodeId};
use protocol_set::ProtocolSet;
use server::Server;

use super::{Command, Executor, ExecutorHandle};
use crate::ActorOptions;
use crate::cell::{ActorCell, ActorCommand};
use crate::dead_letter::DeadLetterReason;
use crate::net::NetCommand;
use crate::sync::Mailbox;
use crate::testing::TestHost;

/// Hang guard: ten times anything the executor is configured to wait.
const GUARD: Duration = Duration::from_secs(30);

/// The executor's host: no links, no directory lookups; it records which
/// actors ended.
type Stand = TestHost;

/// An executor running on its own thread, with its stand-in host.
struct Running {
    stand: Arc<Stand>,
    handle: Arc<ExecutorHandle>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    fn start() -> Self {
        let stand = Arc::new(TestHost::new("stand", 7, &connection::LinkLimits::default()));
        let (executor, handle) = Executor::new(0, Duration::ZERO, stand.clone()).expect("executor");
        let thread = std::thread::spawn(move || executor.run());
        Self { stand, handle, thread: Some(thread) }
    }

    /// Hosts `actor` as `name`; its address and its cell.
    fn spawn(&self, name: &str, actor: impl Actor) -> (ActorSender, Arc<ActorCell>) {
        let cell = Arc::new(ActorCell::new(
            ActorId::new(),
            name.to_owned(),
            actor.protocol_set(),
            self.handle.clone() as Arc<dyn Mailbox<ActorCommand>>,
            self.handle.alloc_slot(),
            NodeId::of_name("stand"),
            self.stand.lifecycle.clone(),
            ActorOptions::default(),
        ));
        let me = ActorSender::from_route(cell.clone());
        self.handle.push(Command::Actor(ActorCommand::Spawn { actor: Box::new(actor), cell: cell.clone() }));
        (me, cell)
    }

    fn watch(&self, actor: &ActorSender) -> crossbeam_channel::Receiver<Envelope> {
        let (watcher, told) = ActorSender::inbox("watcher");
        actor.watch(&watcher).expect("watch");
        told
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.push(Command::Exit);
        if let Some(t) = self.thread.take() {
            t.join().expect("the executor's thread ends on Exit");
        }
    }
}

/// Panics on every message.
struct Boom;

impl Actor for Boom {
    fn protocol_set(&self) -> &'static ProtocolSet {
        Server::new().protocol_set()
    }
    fn handle(&mut self, _: &mut Context<'_>, _: BoxMsg) {
        panic!("boom");
    }
}

fn ended(told: &crossbeam_channel::Receiver<Envelope>) -> TerminationReason {
    let env = told.recv_timeout(GUARD).expect("told");
    env.msg.downcast::<Terminated>().expect("Terminated").reason
}

#[test]
fn an_executor_runs_its_actors_handlers_and_their_replies_arrive() {
    let running = Running::start();
    let (server, _) = running.spawn("server", Server::new());
    for counter in 0..100 {
        let reply = server.ask(EchoReq::new(counter, 0), GUARD).expect("answered");
        assert_eq!(reply.counter, counter);
    }
}

#[test]
fn a_panic_stops_that_actor_only_and_its_watchers_are_told() {
    let running = Running::start();
    let (boom, cell) = running.spawn("boom", Boom);
    let (server, _) = running.spawn("server", Server::new());
    let told = running.watch(&boom);
    boom.send(EchoReq::new(1, 0)).expect("queued");
    assert_eq!(ended(&told), TerminationReason::Panicked);
    assert_eq!(*running.stand.ended.lock().expect("ended"), vec![cell.id], "it left the directory");
    assert!(boom.send(EchoReq::new(2, 0)).is_err(), "an ended actor refuses sends");
    let reply = server.ask(EchoReq::new(3, 0), GUARD).expect("the neighbour still answers");
    assert_eq!(reply.counter, 3);
}

#[test]
fn a_message_for_an_ended_actor_is_a_dead_letter_actor_stopped() {
    let running = Running::start();
    let dead = running.stand.dead_letters.receiver();
    let (server, cell) = running.spawn("server", Server::new());
    let told = running.watch(&server);
    server.stop().expect("stop");
    assert_eq!(ended(&told), TerminationReason::Stopped);
    // A message already on its way when the actor ended (queued for its
    // slot and generation) is reported, not dropped.
    let env = Envelope { msg: EchoReq::new(9, 0).into_box_msg(), reply_to: None };
    let (slot, generation) = (cell.slot, cell.generation);
    running.handle.push(Command::Actor(ActorCommand::Deliver {
        slot,
        generation,
        counted: false,
        env,
        hold: None,
    }));
    let letter = dead.recv_timeout(GUARD).expect("a dead letter");
    assert_eq!(letter.reason, DeadLetterReason::ActorStopped);
    assert_eq!(letter.msg.msg_id(), EchoReq::msg_id());
}

#[test]
fn a_slot_is_reused_with_a_new_generation_so_stale_messages_miss_the_newcomer() {
    let running = Running::start();
    let dead = running.stand.dead_letters.receiver();
    let (first, old) = running.spawn("first", Server::new());
    let told = running.watch(&first);
    first.stop().expect("stop");
    assert_eq!(ended(&told), TerminationReason::Stopped);
    let (second, new) = running.spawn("second", Server::new());
    assert_eq!(new.slot, old.slot, "the freed slot is reused");
    assert_ne!(new.generation, old.generation);
    let env = Envelope { msg: EchoReq::new(5, 0).into_box_msg(), reply_to: None };
    let (slot, generation) = (old.slot, old.generation);
    running.handle.push(Command::Actor(ActorCommand::Deliver {
        slot,
        generation,
        counted: false,
        env,
        hold: None,
    }));
    assert_eq!(dead.recv_timeout(GUARD).expect("dead letter").reason, DeadLetterReason::ActorStopped);
    let reply = second.ask(EchoReq::new(6, 0), GUARD).expect("the newcomer answers its own");
    assert_eq!(reply.counter, 6);
}

#[test]
fn when_aborting_queued_messages_are_reported_shutdown_not_handled() {
    let running = Running::start();
    let dead = running.stand.dead_letters.receiver();
    let (_server, cell) = running.spawn("server", Server::new());
    assert!(running.stand.lifecycle.begin_stop(false));
    let env = Envelope { msg: EchoReq::new(4, 0).into_box_msg(), reply_to: None };
    let (slot, generation) = (cell.slot, cell.generation);
    running.handle.push(Command::Actor(ActorCommand::Deliver {
        slot,
        generation,
        counted: false,
        env,
        hold: None,
    }));
    assert_eq!(dead.recv_timeout(GUARD).expect("dead letter").reason, DeadLetterReason::Shutdown);
}

#[test]
fn stopping_the_actors_tells_every_watcher_shutdown_and_answers() {
    let running = Running::start();
    let (a, _) = running.spawn("a", Server::new());
    let (b, _) = running.spawn("b", Server::new());
    let (told_a, told_b) = (running.watch(&a), running.watch(&b));
    let (done, stopped) = crossbeam_channel::bounded(1);
    running.handle.push(Command::StopActors { done });
    stopped.recv_timeout(GUARD).expect("the executor says it stopped them");
    assert_eq!(ended(&told_a), TerminationReason::Shutdown);
    assert_eq!(ended(&told_b), TerminationReason::Shutdown);
    assert_eq!(running.stand.ended.lock().expect("ended").len(), 2);
}

#[test]
fn print_sizes() {
    println!(
        "Command {} ActorCommand {} PeerCommand {} NetCommand {} Envelope {} Hold {}",
        std::mem::size_of::<Command>(),
        std::mem::size_of::<ActorCommand>(),
        std::mem::size_of::<crate::peer::PeerCommand>(),
        std::mem::size_of::<NetCommand>(),
        std::mem::size_of::<Envelope>(),
        std::mem::size_of::<actor::Hold>()
    );
    println!(
        "Listener {} Stream {} Origin {} Addr {} Handoff {}",
        std::mem::size_of::<crate::transport::Listener>(),
        std::mem::size_of::<crate::transport::Stream>(),
        std::mem::size_of::<crate::link::Origin>(),
        std::mem::size_of::<crate::Addr>(),
        std::mem::size_of::<crate::net::Handoff>()
    );
}
