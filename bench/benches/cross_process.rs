//! Cross-process speed, issue 4's targets. The benchmark re-executes itself
//! for its second processes (`--mode`, as `ipchnl bench-child`).
//!
//! Three phases, so that what spins in one does not help or hurt another:
//!
//! 1. Round trips, p50 per round, alternating: (a) the echo through our
//!    managers, pinger on the executor that owns the link, over TCP and a
//!    Unix socket; (b) the bare baseline: one thread per side, blocking
//!    `read_exact` / `write_all`, `TCP_NODELAY`, the same frames and JSON
//!    work; (c) servo's
//!    `ipc-channel` doing the same round trip. Targets: a/b <= 1.2 (TCP),
//!    <= 1.3 (Unix); a < c.
//! 2. One-way stream over TCP: `EchoReq`s from an actor to a sink actor in
//!    the other process, against a bare stream of the same frames. Targets:
//!    >= 1,000,000 msg/s and >= 40% of the bare stream.
//! 3. The low-latency option (executors poll 100 µs before sleeping) over a
//!    Unix socket, against a bare spinning socket (non-blocking reads polled
//!    for the same 100 µs on both sides, then blocking). Targets: <= 1.5x
//!    it, <= c/4.
//!
//! 4. Against servo's `ipc-channel` (an `ipc::channel` pair across two
//!    processes, bincode, blocking), alternating in each round with our
//!    Unix round trip in both modes, from an actor and from a plain thread
//!    (`ask`, as `ipchnl echo` does). Each round is shown `fast` when
//!    ipc-channel's round trip is under 6 µs (the VM's wake-ups are fast:
//!    both kinds of round come minutes apart) and the ratios are summed up
//!    per kind. Targets (issue 25): ours / ipc-channel <= 1x in fast rounds,
//!    default and low-latency; ask / actor <= 1.1x.
//!
//! `cargo bench -p bench --bench cross_process` (`IPCHNL_BENCH_ROUNDS=N`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::time::{Duration, Instant};

use bench::bare::{SocketEcho, socket_stream};
use bench::child::{ChildProc, Mode, low_latency_spin};
use bench::report::Remote;
use bench::{histogram, machine, rounds, summary};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use manager::Addr;
use msg_header::now_ns;
use serde::{Deserialize, Serialize};

const SAMPLE: Duration = Duration::from_millis(300);

fn main() {
    if let Some((mode, addrs)) = bench::child::child_args().unwrap() {
        return bench::child::run(mode, &addrs).unwrap();
    }
    if let Ok(name) = std::env::var("IPCHNL_BENCH_IPC") {
        return ipc_child(name);
    }
    parent();
}

#[derive(Serialize, Deserialize)]
enum IpcMsg {
    Hello(IpcSender<IpcReply>),
    Req { counter: u64, req_timestamp_ns: u64 },
}

#[derive(Serialize, Deserialize)]
struct IpcReply {
    counter: u64,
    req_timestamp_ns: u64,
    reply_timestamp_ns: u64,
}

/// An ipc-channel echo: connects to the parent's one-shot server.
fn ipc_child(name: String) {
    let (tx, rx): (IpcSender<IpcMsg>, IpcReceiver<IpcMsg>) = ipc::channel().unwrap();
    IpcSender::connect(name).unwrap().send(tx).unwrap();
    let mut reply_to = None;
    while let Ok(m) = rx.recv() {
        match m {
            IpcMsg::Hello(r) => reply_to = Some(r),
            IpcMsg::Req { counter, req_timestamp_ns } => {
                let r = IpcReply { counter, req_timestamp_ns, reply_timestamp_ns: now_ns() };
                reply_to.as_ref().unwrap().send(r).unwrap();
            }
        }
    }
}

/// servo's ipc-channel, with a child process as the echo.
struct Ipc {
    child: std::process::Child,
    tx: IpcSender<IpcMsg>,
    rx: IpcReceiver<IpcReply>,
}

impl Ipc {
    fn new() -> Self {
        let (server, name) = IpcOneShotServer::<IpcSender<IpcMsg>>::new().unwrap();
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .env("IPCHNL_BENCH_IPC", name)
            .spawn()
            .unwrap();
        let (_, tx) = server.accept().unwrap();
        let (reply_tx, rx) = ipc::channel().unwrap();
        tx.send(IpcMsg::Hello(reply_tx)).unwrap();
        Self { child, tx, rx }
    }

    fn p50(&self, until: Instant) -> f64 {
        let mut h = histogram();
        let mut i = 0;
        while Instant::now() < until {
            i += 1;
            let start = now_ns();
            self.tx.send(IpcMsg::Req { counter: i, req_timestamp_ns: start }).unwrap();
            assert_eq!(self.rx.recv().unwrap().counter, i);
            h.saturating_record(now_ns() - start);
        }
        h.value_at_quantile(0.5) as f64
    }
}

impl Drop for Ipc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn p50(h: hdrhistogram::Histogram<u64>) -> f64 {
    h.value_at_quantile(0.5) as f64
}

fn later() -> Instant {
    Instant::now() + SAMPLE
}

fn parent() {
    println!("cross_process: {}", machine());
    let me = std::env::current_exe().unwrap();
    let dir = std::env::temp_dir();
    let sock = |tag: &str| Addr::Unix(dir.join(format!("ipchnl-cp-{}-{tag}.sock", std::process::id())));
    let tcp: Addr = "tcp://127.0.0.1:0".parse().unwrap();
    let n = u64::MAX;

    // Phase 1 and 2: blocking baselines; nothing spins between samples.
    let ours_child = ChildProc::start(&me, &[], Mode::Ours, &[tcp.clone(), sock("ours")]).unwrap();
    let bare_child = ChildProc::start(&me, &[], Mode::Bare, &[tcp.clone(), sock("bare")]).unwrap();
    let ours_tcp = Remote::connect("tcp", &ours_child.addrs[0], false).unwrap();
    let ours_unix = Remote::connect("unix", &ours_child.addrs[1], false).unwrap();
    let mut bare_tcp = SocketEcho::connect(&bare_child.addrs[0], Duration::ZERO).unwrap();
    let mut bare_unix = SocketEcho::connect(&bare_child.addrs[1], Duration::ZERO).unwrap();
    let ipc = Ipc::new();

    println!("\n1. round trip, p50 per round of {} ms (ns):", SAMPLE.as_millis());
    println!(
        "{:>5} {:>8} {:>8} {:>8} {:>8} {:>8} | {:>6} {:>6} {:>6}",
        "round", "tcp", "bare", "unix", "bare", "ipc-ch", "t/b", "u/b", "u/ipc"
    );
    let mut r: [Vec<f64>; 3] = Default::default();
    for round in 0..=rounds() {
        let t = p50(ours_tcp.rtt(later(), n).unwrap());
        let tb = p50(bare_tcp.run(later(), n).unwrap());
        let u = p50(ours_unix.rtt(later(), n).unwrap());
        let ub = p50(bare_unix.run(later(), n).unwrap());
        let c = ipc.p50(later());
        if round == 0 {
            continue; // the warm-up round
        }
        let row = [t / tb, u / ub, u / c];
        for (v, x) in r.iter_mut().zip(row) {
            v.push(x);
        }
        println!(
            "{round:>5} {t:>8.0} {tb:>8.0} {u:>8.0} {ub:>8.0} {c:>8.0} | {:>6.2} {:>6.2} {:>6.2}",
            row[0], row[1], row[2]
        );
    }
    println!("tcp / bare tcp:      {} (target <= 1.2x)", summary(&r[0]));
    println!("unix / bare unix:    {} (target <= 1.3x)", summary(&r[1]));
    println!("unix / ipc-channel:  {} (target < 1x)", summary(&r[2]));

    println!("\n2. one-way stream over TCP, {} ms per sample (msgs/s):", SAMPLE.as_millis());
    println!("{:>5} {:>12} {:>12} {:>8}", "round", "ipchnl", "bare", "ratio");
    let mut ratios = Vec::new();
    let mut ours_rates = Vec::new();
    for round in 0..=rounds() {
        let a = ours_tcp.stream(later()).unwrap();
        let b = socket_stream(&bare_child.addrs[0], later(), bench::bare::Sink::Floor).unwrap();
        if round == 0 {
            continue;
        }
        ratios.push(a / b);
        ours_rates.push(a);
        println!("{round:>5} {a:>12.0} {b:>12.0} {:>8.2}", a / b);
    }
    println!(
        "ipchnl stream: median {:.0} msg/s (target >= 1,000,000); / bare: {} (target >= 0.4x)",
        bench::median(&ours_rates),
        summary(&ratios)
    );
    let ipc_p50 = bench::median(&(0..3).map(|_| ipc.p50(later())).collect::<Vec<_>>());
    drop((ours_tcp, ours_unix, bare_tcp, bare_unix, ipc, ours_child, bare_child));

    // Phase 3: both sides spin.
    let low_child = ChildProc::start(&me, &[], Mode::OursLowLatency, &[sock("low")]).unwrap();
    let spin_child = ChildProc::start(&me, &[], Mode::BareSpinning, &[sock("spin")]).unwrap();
    let low = Remote::connect("low", &low_child.addrs[0], true).unwrap();
    // Each sample on a new connection, as before the spin was bounded.
    let spin_sample = || {
        let mut spin = SocketEcho::connect(&spin_child.addrs[0], low_latency_spin()).unwrap();
        p50(spin.run(later(), n).unwrap())
    };
    println!("\n3. low-latency option vs a bare spinning socket (Unix), p50 per round (ns):");
    println!("{:>5} {:>8} {:>8} | {:>6} {:>8}", "round", "low", "spin", "l/s", "l/ipc");
    let (mut ls, mut li) = (Vec::new(), Vec::new());
    for round in 0..=rounds() {
        let l = p50(low.rtt(later(), n).unwrap());
        let s = spin_sample();
        if round == 0 {
            continue;
        }
        ls.push(l / s);
        li.push(l / ipc_p50);
        println!("{round:>5} {l:>8.0} {s:>8.0} | {:>6.2} {:>8.2}", l / s, l / ipc_p50);
    }
    println!("low-latency / bare spinning:  {} (target <= 1.5x)", summary(&ls));
    println!(
        "low-latency / ipc-channel:    {} (target <= 0.25x; ipc-channel p50 {ipc_p50:.0} ns)",
        summary(&li)
    );

    // Phase 4: ipc-channel, round by round, against both of our modes.
    let ours_child = ChildProc::start(&me, &[], Mode::Ours, &[sock("ours-4")]).unwrap();
    let ours = Remote::connect("unix", &ours_child.addrs[0], false).unwrap();
    let ipc = Ipc::new();
    against_ipc_channel(&ipc, &ours, &low);
    println!("load average after: {}", machine().rsplit("load average ").next().unwrap_or(""));
}

/// A round of ipc-channel counts as one of fast wake-ups under this p50.
const FAST_IPC_NS: f64 = 6_000.0;

/// Phase 4: ipc-channel against our Unix round trip, default (`ours`) and
/// low-latency (`low`), each from an actor and asked from this thread.
fn against_ipc_channel(ipc: &Ipc, ours: &Remote, low: &Remote) {
    let n = u64::MAX;
    println!(
        "\n4. against servo's ipc-channel (Unix), p50 per round (ns); fast: ipc-channel under {:.0} µs",
        FAST_IPC_NS / 1000.0
    );
    println!(
        "{:>5} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} | {:>6} {:>6} {:>6} {:>6} {:>6}",
        "round", "mode", "ipc-ch", "actor", "ask", "ll", "ll-ask", "a/ipc", "k/ipc", "l/ipc", "lk/ipc", "k/a"
    );
    // Per kind of round (fast, slow): the four ratios to ipc-channel.
    let mut by_mode: [[Vec<f64>; 4]; 2] = Default::default();
    let (mut ask_actor, mut ll_ask_actor) = (Vec::new(), Vec::new());
    for round in 0..=rounds() {
        let c = ipc.p50(later());
        let a = p50(ours.rtt(later(), n).unwrap());
        let k = p50(ours.ask_rtt(later(), n).unwrap());
        let l = p50(low.rtt(later(), n).unwrap());
        let lk = p50(low.ask_rtt(later(), n).unwrap());
        if round == 0 {
            continue; // the warm-up round
        }
        let fast = c < FAST_IPC_NS;
        let row = [a / c, k / c, l / c, lk / c];
        for (v, x) in by_mode[usize::from(!fast)].iter_mut().zip(row) {
            v.push(x);
        }
        ask_actor.push(k / a);
        ll_ask_actor.push(lk / l);
        println!(
            "{round:>5} {:>5} {c:>8.0} {a:>8.0} {k:>8.0} {l:>8.0} {lk:>8.0} | {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2}",
            if fast { "fast" } else { "slow" },
            row[0],
            row[1],
            row[2],
            row[3],
            k / a
        );
    }
    for (mode, ratios) in ["fast", "slow"].iter().zip(&by_mode) {
        if ratios[0].is_empty() {
            println!("{mode} rounds: none");
            continue;
        }
        println!(
            "{mode} rounds ({}): / ipc-channel: actor {}, ask {}, low-latency actor {}, low-latency ask {} (target in fast rounds <= 1x)",
            ratios[0].len(),
            summary(&ratios[0]),
            summary(&ratios[1]),
            summary(&ratios[2]),
            summary(&ratios[3])
        );
    }
    println!("ask / actor, default:      {} (target <= 1.1x)", summary(&ask_actor));
    println!("ask / actor, low-latency:  {} (target <= 1.1x)", summary(&ll_ask_actor));
}
