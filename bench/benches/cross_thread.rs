//! Cross-thread speed, issue 3's targets:
//!
//! * round trip: (a) the echo through the manager, client and server on
//!   different executors; (b) a bare crossbeam ping-pong between two
//!   threads with a `Box<dyn Any + Send>`; (c) ractor on a 2-worker tokio
//!   runtime, one actor asking another. Alternating a b c, per-round p50.
//!   Targets: a/b <= 1.3, a/c < 1.
//! * one-way stream: `EchoReq`s to a sink actor that counts them, against a
//!   bare crossbeam stream of the same `EchoReq`s to a counting thread.
//!   Target: at least 50% of it.
//!
//! `cargo bench -p bench --bench cross_thread` (`IPCHNL_BENCH_ROUNDS=N`).
//! Then the same three round trips as a criterion group.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::any::Any;
use std::hint::black_box;
use std::time::{Duration, Instant};

use actor::{Actor, ActorSender, Context};
use bench::{histogram, machine, rounds, summary};
use client::Client;
use criterion::Criterion;
use crossbeam_channel::{Receiver, Sender};
use echo_complete::EchoComplete;
use echo_req::EchoReq;
use echo_requestee_protocol::echo_requestee_protocol;
use echo_start::EchoStart;
use manager::{ActorOptions, Manager, ManagerConfig};
use msg_header::{BoxMsg, now_ns};
use protocol_set::ProtocolSet;
use ractor::{ActorProcessingErr, ActorRef, RpcReplyPort};
use server::Server;

const ROUND_TRIPS: u64 = 20_000;
const STREAM: u64 = 500_000;
const GUARD: Duration = Duration::from_secs(120);

/// (a) The echo through the manager: p50 of one run.
struct Ours {
    _manager: Manager,
    client: ActorSender,
}

impl Ours {
    /// Server on executor 0, client on `client_executor`.
    fn new(client_executor: usize) -> Self {
        let manager = Manager::new(ManagerConfig::default().executors(2)).unwrap();
        manager.add_with("server", Server::new(), ActorOptions::default().executor(0)).unwrap();
        let client = manager
            .add_with("client", Client::new(), ActorOptions::default().executor(client_executor))
            .unwrap();
        Self { _manager: manager, client }
    }

    fn run(&self, n: u64) -> EchoComplete {
        let done = self.client.ask(EchoStart::new(n), GUARD).unwrap();
        assert_eq!(done.received, n);
        done
    }
}

/// (b) A bare ping-pong between two threads.
struct Bare {
    to: Sender<Box<dyn Any + Send>>,
    from: Receiver<Box<dyn Any + Send>>,
}

impl Bare {
    fn new() -> Self {
        let (to, rx) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
        let (tx, from) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
        std::thread::spawn(move || {
            for m in rx {
                let n = *m.downcast::<u64>().unwrap();
                if tx.send(Box::new(n)).is_err() {
                    break;
                }
            }
        });
        Self { to, from }
    }

    fn round_trip(&self, n: u64) -> u64 {
        let start = now_ns();
        self.to.send(Box::new(n)).unwrap();
        let back = *self.from.recv().unwrap().downcast::<u64>().unwrap();
        assert_eq!(back, n);
        now_ns() - start
    }

    fn run(&self, n: u64) -> u64 {
        let mut h = histogram();
        for i in 0..n {
            h.saturating_record(self.round_trip(i));
        }
        h.value_at_quantile(0.5)
    }
}

/// (c) ractor: an asker actor calls an answerer actor `n` times.
enum AnswerMsg {
    Ping(u64, RpcReplyPort<u64>),
}

struct Answerer;

impl ractor::Actor for Answerer {
    type Msg = AnswerMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let AnswerMsg::Ping(n, reply) = msg;
        let _ = reply.send(n);
        Ok(())
    }
}

enum AskerMsg {
    Run(u64, RpcReplyPort<u64>),
}

struct Asker;

impl ractor::Actor for Asker {
    type Msg = AskerMsg;
    type State = ActorRef<AnswerMsg>;
    type Arguments = ActorRef<AnswerMsg>;

    async fn pre_start(
        &self,
        _: ActorRef<Self::Msg>,
        answerer: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(answerer)
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        msg: Self::Msg,
        answerer: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let AskerMsg::Run(n, reply) = msg;
        let mut h = histogram();
        for i in 0..n {
            let start = now_ns();
            let back = answerer.call(|port| AnswerMsg::Ping(i, port), None).await?;
            assert_eq!(back.unwrap(), i);
            h.saturating_record(now_ns() - start);
        }
        let _ = reply.send(h.value_at_quantile(0.5));
        Ok(())
    }
}

struct Ractor {
    rt: tokio::runtime::Runtime,
    asker: ActorRef<AskerMsg>,
    _other: Option<tokio::runtime::Runtime>,
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap()
}

impl Ractor {
    /// Both actors on one 2-worker runtime, as a ractor user would start
    /// them. (Tokio then runs both on one worker: a same-thread round trip.)
    fn new() -> Self {
        let rt = runtime(2);
        let asker = rt.block_on(async {
            let (answerer, _) = ractor::Actor::spawn(None, Answerer, ()).await.unwrap();
            let (asker, _) = ractor::Actor::spawn(None, Asker, answerer).await.unwrap();
            asker
        });
        Self { rt, asker, _other: None }
    }

    /// Each actor on a 1-worker runtime of its own: a cross-thread round trip.
    fn across_threads() -> Self {
        let other = runtime(1);
        let answerer = other.block_on(async { ractor::Actor::spawn(None, Answerer, ()).await.unwrap().0 });
        let rt = runtime(1);
        let asker = rt.block_on(async { ractor::Actor::spawn(None, Asker, answerer).await.unwrap().0 });
        Self { rt, asker, _other: Some(other) }
    }

    fn run(&self, n: u64) -> u64 {
        self.rt
            .block_on(async { self.asker.call(|port| AskerMsg::Run(n, port), None).await.unwrap().unwrap() })
    }
}

/// A sink actor: counts `EchoReq`s and says when it has `target`.
struct Sink {
    count: u64,
    target: u64,
    done: Sender<u64>,
}

protocol_set::protocol_set! {
    /// What the sink speaks.
    fn sink_set = "bench::Sink" [echo_requestee_protocol()]
}

impl Actor for Sink {
    fn protocol_set(&self) -> &'static ProtocolSet {
        sink_set()
    }
    fn handle(&mut self, _ctx: &mut Context<'_>, msg: BoxMsg) {
        if msg.is::<EchoReq>() {
            self.count += 1;
            if self.count == self.target {
                // The bench waits for this with a guard; one that gave up has failed already.
                self.done.send(self.count).ok();
            }
        }
    }
}

/// Messages per second through a sink actor on another executor.
fn stream_ours(manager: &Manager, round: usize) -> f64 {
    let (done, finished) = crossbeam_channel::bounded(1);
    let sink = Sink { count: 0, target: STREAM, done };
    let sink = manager.add_with(format!("sink{round}"), sink, ActorOptions::default().executor(1)).unwrap();
    let start = Instant::now();
    for i in 0..STREAM {
        sink.send(EchoReq::new(i, 0)).unwrap();
    }
    assert_eq!(finished.recv_timeout(GUARD).unwrap(), STREAM);
    let rate = STREAM as f64 / start.elapsed().as_secs_f64();
    sink.stop().unwrap();
    rate
}

/// Messages per second through a bare crossbeam channel to a thread that
/// counts them: the same `EchoReq`s, boxed as `Box<dyn Any + Send>`.
fn stream_bare() -> f64 {
    let (tx, rx) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
    let counter =
        std::thread::spawn(move || rx.iter().filter(|m| m.is::<EchoReq>()).take(STREAM as usize).count());
    let start = Instant::now();
    for i in 0..STREAM {
        tx.send(Box::new(EchoReq::new(i, 0))).unwrap();
    }
    assert_eq!(counter.join().unwrap() as u64, STREAM);
    STREAM as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    println!("cross_thread: {}", machine());
    let (ours, bare, ractor) = (Ours::new(1), Bare::new(), Ractor::new());
    let (ours_same, ractor_across) = (Ours::new(0), Ractor::across_threads());
    // Warm up each, so that no first-run cost lands in a round.
    ours.run(ROUND_TRIPS);
    bare.run(ROUND_TRIPS);
    ractor.run(ROUND_TRIPS);
    ours_same.run(ROUND_TRIPS);
    ractor_across.run(ROUND_TRIPS);

    println!("\nround trip, p50 of {ROUND_TRIPS} per round (ns):");
    println!("  a: ipchnl, client and server on different executors");
    println!("  b: bare crossbeam ping-pong between two threads");
    println!("  c: ractor, both actors on one 2-worker tokio runtime (tokio runs them on one worker)");
    println!("  c': ractor, each actor on a 1-worker runtime of its own (across threads)");
    println!("  s: ipchnl, client and server on one executor (same thread, compare with c)");
    println!(
        "{:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7}",
        "round", "a", "b", "c", "c'", "s", "a/b", "a/c", "a/c'", "s/c"
    );
    let mut ratios: [Vec<f64>; 4] = Default::default();
    for r in 0..rounds() {
        let a = ours.run(ROUND_TRIPS).rtt_p50_ns as f64;
        let b = bare.run(ROUND_TRIPS) as f64;
        let c = ractor.run(ROUND_TRIPS) as f64;
        let c2 = ractor_across.run(ROUND_TRIPS) as f64;
        let s = ours_same.run(ROUND_TRIPS).rtt_p50_ns as f64;
        let row = [a / b, a / c, a / c2, s / c];
        for (v, x) in ratios.iter_mut().zip(row) {
            v.push(x);
        }
        println!(
            "{r:>5} {a:>8.0} {b:>8.0} {c:>8.0} {c2:>8.0} {s:>8.0} {:>7.2} {:>7.2} {:>7.2} {:>7.2}",
            row[0], row[1], row[2], row[3]
        );
    }
    println!("a/b  ipchnl / bare crossbeam:          {} (target <= 1.3x)", summary(&ratios[0]));
    println!("a/c  ipchnl / ractor (same worker):    {} (target < 1x)", summary(&ratios[1]));
    println!("a/c' ipchnl / ractor (across threads): {}", summary(&ratios[2]));
    println!("s/c  ipchnl same executor / ractor:    {}", summary(&ratios[3]));

    println!("\none-way stream of {STREAM} (msgs/s):");
    println!("{:>5} {:>12} {:>12} {:>8}", "round", "ipchnl", "bare", "ratio");
    let manager = Manager::new(ManagerConfig::default().executors(2)).unwrap();
    let mut ratios = Vec::new();
    for r in 0..rounds() {
        let a = stream_ours(&manager, r);
        let b = stream_bare();
        ratios.push(a / b);
        println!("{r:>5} {a:>12.0} {b:>12.0} {:>8.2}", a / b);
    }
    println!("ipchnl / bare stream: {} (target >= 0.5x)", summary(&ratios));
    println!("load average after: {}", machine().rsplit("load average ").next().unwrap_or(""));

    if std::env::args().any(|a| a == "--rounds-only") {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("cross_thread");
    group.bench_function("bare_crossbeam_round_trip", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(bare.round_trip(i))
        })
    });
    group.bench_function("ipchnl_manager_round_trip", |b| {
        b.iter_custom(|iters| Duration::from_nanos(ours.run(iters).elapsed_ns))
    });
    group.bench_function("ractor_round_trip", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            ractor.run(iters);
            start.elapsed()
        })
    });
    group.finish();
    c.final_summary();
}
