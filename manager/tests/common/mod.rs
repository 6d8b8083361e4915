//! A probe actor and local test messages for the manager's tests.
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use actor::{Actor, ActorSender, Context, SendError};
use crossbeam_channel::{Receiver, Sender};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use echo_requestee_protocol::echo_requestee_protocol;
use msg_header::{ActorId, BoxMsg};
use msg_local_macro::msg_local_macro;
use protocol::{MsgInfo, Protocol};
use protocol_set::ProtocolSet;

/// A generous hang guard: nothing in these tests should take a tenth of it.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

msg_local_macro! {
    /// Answered with `Pong { n }`.
    pub struct Ping("manager::tests::Ping") -> Pong { pub n: u64 }
}
msg_local_macro! {
    /// The answer to `Ping`.
    pub struct Pong("manager::tests::Pong") { pub n: u64 }
}
msg_local_macro! {
    /// Blocks the handler (and so its executor) until `gate` yields or closes;
    /// `entered` is signalled first.
    pub struct Block("manager::tests::Block") { pub entered: Sender<()>, pub gate: Receiver<()> }
}
msg_local_macro! {
    /// Makes the handler panic.
    pub struct Explode("manager::tests::Explode") {}
}
msg_local_macro! {
    /// Makes the actor stop itself.
    pub struct StopMe("manager::tests::StopMe") {}
}
msg_local_macro! {
    /// Asks the actor to `ask` someone from inside its handler and report the outcome.
    pub struct AskInside("manager::tests::AskInside") { pub to: ActorSender, pub report: Sender<String> }
}
msg_local_macro! {
    /// Asks the actor to send `count` pings to `to` with `send` and report each outcome.
    pub struct SendPings("manager::tests::SendPings") {
        pub to: ActorSender,
        pub count: u64,
        pub report: Sender<Result<(), String>>,
    }
}

msg_local_macro! {
    /// Asks the actor to find `name` in the directory, send it a ping and
    /// report the outcome.
    pub struct PingByName("manager::tests::PingByName") {
        pub name: String,
        pub report: Sender<Result<(), String>>,
    }
}

pub fn probe_set() -> &'static ProtocolSet {
    static P: LazyLock<Protocol> = LazyLock::new(|| {
        Protocol::new(
            "manager::tests::probe",
            [
                MsgInfo::local::<Ping>(),
                MsgInfo::local::<Pong>(),
                MsgInfo::local::<Block>(),
                MsgInfo::local::<Explode>(),
                MsgInfo::local::<StopMe>(),
                MsgInfo::local::<AskInside>(),
                MsgInfo::local::<SendPings>(),
                MsgInfo::local::<PingByName>(),
            ],
        )
    });
    static S: LazyLock<ProtocolSet> =
        LazyLock::new(|| ProtocolSet::new("manager::tests::Probe", [&*P, echo_requestee_protocol()]));
    &S
}

/// What a probe saw, shared with the test.
#[derive(Default)]
pub struct Counts {
    pub started: AtomicUsize,
    pub handled: AtomicUsize,
    pub stopped: AtomicUsize,
}

impl Counts {
    pub fn handled(&self) -> usize {
        self.handled.load(Ordering::SeqCst)
    }
    pub fn stopped(&self) -> usize {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// Answers pings, blocks, panics, stops on request; forwards every other
/// message (e.g. `Terminated`, `Pong`) to `seen`.
pub struct Probe {
    pub name: String,
    pub id: ActorId,
    pub counts: Arc<Counts>,
    pub seen: Option<Sender<BoxMsg>>,
}

impl Probe {
    pub fn new(name: &str) -> (Self, Arc<Counts>) {
        let counts = Arc::new(Counts::default());
        (Self { name: name.into(), id: ActorId::new(), counts: counts.clone(), seen: None }, counts)
    }

    pub fn seeing(name: &str) -> (Self, Arc<Counts>, Receiver<BoxMsg>) {
        let (mut probe, counts) = Self::new(name);
        let (tx, rx) = crossbeam_channel::unbounded();
        probe.seen = Some(tx);
        (probe, counts, rx)
    }
}

impl Actor for Probe {
    fn protocol_set(&self) -> &'static ProtocolSet {
        probe_set()
    }
    fn started(&mut self, _ctx: &mut Context<'_>) {
        self.counts.started.fetch_add(1, Ordering::SeqCst);
    }
    fn stopped(&mut self, _ctx: &mut Context<'_>) {
        self.counts.stopped.fetch_add(1, Ordering::SeqCst);
    }
    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        self.counts.handled.fetch_add(1, Ordering::SeqCst);
        if let Some(ping) = msg.downcast_ref::<Ping>() {
            // An ask that timed out is gone; that is the asker's business.
            let _ = ctx.reply(Pong::new(ping.n));
        } else if let Some(req) = msg.downcast_ref::<EchoReq>() {
            let _ = ctx.reply(EchoReply::new(req.counter, req.req_timestamp_ns, 0));
        } else if let Some(block) = msg.downcast_ref::<Block>() {
            let _ = block.entered.send(());
            let _ = block.gate.recv_timeout(HANG_GUARD);
        } else if msg.is::<Explode>() {
            panic!("probe {} explodes on request", self.name);
        } else if msg.is::<StopMe>() {
            ctx.stop();
        } else if let Some(ask) = msg.downcast_ref::<AskInside>() {
            let outcome = ask.to.ask(Ping::new(1), HANG_GUARD);
            let _ = ask.report.send(format!("{outcome:?}"));
        } else if let Some(send) = msg.downcast_ref::<SendPings>() {
            for n in 0..send.count {
                let outcome = send.to.send(Ping::new(n)).map_err(|e: SendError| format!("{e:?}"));
                let _ = send.report.send(outcome);
            }
        } else if let Some(by_name) = msg.downcast_ref::<PingByName>() {
            let outcome = match ctx.find_by_name(&by_name.name) {
                Some(to) => ctx.send(&to, Ping::new(0)).map_err(|e| format!("{e:?}")),
                None => Err(format!("{} not found", by_name.name)),
            };
            let _ = by_name.report.send(outcome);
        } else if let Some(seen) = &self.seen {
            let _ = seen.send(msg);
        }
    }
}

/// Blocks `actor`'s handler (and executor) until the returned sender is
/// dropped or sent to; returns once the handler is inside the block.
pub fn block(actor: &ActorSender) -> Sender<()> {
    let (entered_tx, entered_rx) = crossbeam_channel::bounded(1);
    let (gate_tx, gate_rx) = crossbeam_channel::bounded(1);
    actor.send(Block::new(entered_tx, gate_rx)).unwrap();
    entered_rx.recv_timeout(HANG_GUARD).expect("the actor entered the block");
    gate_tx
}
