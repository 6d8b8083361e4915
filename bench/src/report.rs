//! The feasibility report: the paths a message can take, each measured
//! against its bare baseline in the same run, alternating. A baseline does
//! the same work and waits the same way as ours (see each path's
//! [`PathResult::baseline`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actor::{ActorSender, StaticDirectory, dispatch};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use hdrhistogram::Histogram;
use manager::{ActorOptions, Addr, Encryption, Manager, ManagerConfig, Secret};
use msg_header::now_ns;
use serde::Serialize;
use server::Server;

use crate::actors::{PingFor, Pinger, Sink, StreamFor, Streamer};
use crate::bare::{self, SocketEcho, ThreadEcho};
use crate::child::{ChildProc, Mode};
use crate::{histogram, median};

/// How the report runs.
pub struct Options {
    /// Alternating rounds per measurement.
    pub rounds: usize,
    /// How long one sample (one side of one round) runs.
    pub sample: Duration,
    /// At most this many round trips per sample.
    pub max: u64,
    /// The program to start as the other process, and its arguments
    /// before `--mode` (e.g. `ipchnl bench-child`).
    pub child: (PathBuf, Vec<String>),
    /// Set (by a signal handler) to stop early.
    pub interrupted: Arc<AtomicBool>,
    /// A NATS server for the `nats` path (the `nats` feature); none: no
    /// such path.
    pub nats: Option<Addr>,
    /// Only the low-latency option: the cross-thread manager uses it too,
    /// and the default-mode `tcp` and `unix` paths are left out.
    pub low_latency: bool,
    /// Only the paths of these names (none: every path).
    pub only: Option<Vec<String>>,
}

impl Options {
    /// Whether the report measures the path `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.iter().any(|n| n == name))
    }
}

/// Round-trip percentiles, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Rtt {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
}

/// One path's figures.
#[derive(Clone, Debug, Serialize)]
pub struct PathResult {
    /// `same_thread`, `cross_thread`, `tcp`, `unix`, `tcp_low_latency`,
    /// `unix_low_latency`, `shm` or `nats`.
    pub name: &'static str,
    /// What ours does on this path.
    pub ours: &'static str,
    /// What its bare baseline does.
    pub baseline: &'static str,
    /// Through ipchnl.
    pub rtt_ns: Rtt,
    /// One-way messages per second through ipchnl.
    pub msgs_per_sec: f64,
    /// The bare baseline of the same path.
    pub baseline_rtt_ns: Rtt,
    /// One-way messages per second, bare.
    pub baseline_msgs_per_sec: f64,
    /// The median over rounds of ours p50 / bare p50.
    pub ratio_p50: f64,
    /// The median over rounds of ours messages per second / bare.
    pub ratio_stream: f64,
    /// CPU time per round trip through ipchnl, in ns: user and system time
    /// of every thread of this process and of the other processes
    /// (each process's CPU clock, exited threads included), median over rounds.
    pub cpu_ns_per_rtt: f64,
    /// The same for the bare baseline.
    pub baseline_cpu_ns_per_rtt: f64,
    /// CPU time per streamed message through ipchnl, in ns.
    pub cpu_ns_per_msg: f64,
    /// The same for the bare stream.
    pub baseline_cpu_ns_per_msg: f64,
    /// The same stream against what a user would write by hand, on the
    /// paths between processes that have one (tcp, unix, shm).
    pub hand_rolled: Option<HandRolled>,
    /// Every round trip through ipchnl.
    #[serde(skip)]
    pub rtt: Histogram<u64>,
    /// Every round trip of the baseline.
    #[serde(skip)]
    pub baseline_rtt: Histogram<u64>,
}

#[cfg(test)]
impl PathResult {
    /// A path of this name with every figure zero and empty histograms,
    /// for tests to fill in what they look at.
    pub(crate) fn named(name: &'static str) -> Self {
        Self {
            name,
            ours: "ours",
            baseline: "bare",
            rtt_ns: Rtt::default(),
            msgs_per_sec: 0.0,
            baseline_rtt_ns: Rtt::default(),
            baseline_msgs_per_sec: 0.0,
            ratio_p50: 0.0,
            ratio_stream: 0.0,
            cpu_ns_per_rtt: 0.0,
            baseline_cpu_ns_per_rtt: 0.0,
            cpu_ns_per_msg: 0.0,
            baseline_cpu_ns_per_msg: 0.0,
            hand_rolled: None,
            rtt: crate::histogram(),
            baseline_rtt: crate::histogram(),
        }
    }
}

/// A stream's figures against the hand-rolled combination of a socket and
/// a channel: a reader thread decodes each frame's JSON and sends the
/// message through a bounded crossbeam channel to a handler thread (the
/// question the project answers is whether combining channels and
/// network connections costs anything).
#[derive(Clone, Debug, Serialize)]
pub struct HandRolled {
    /// One-way messages per second through the hand-rolled pair, median
    /// over rounds.
    pub msgs_per_sec: f64,
    /// CPU time per message through it, in ns (as `cpu_ns_per_msg`).
    pub cpu_ns_per_msg: f64,
    /// The median over rounds of ours messages per second / hand-rolled.
    pub ratio_stream: f64,
    /// The median over rounds of ours CPU per message / hand-rolled.
    pub ratio_cpu_per_msg: f64,
}

/// CPU time (user and system, in ns) process `pid` has used so far, every
/// thread it ever had included (a thread that exited keeps its share);
/// 0 for a process that is gone. Read from the process's CPU clock
/// (`clock_getcpuclockid`), which the kernel keeps in nanoseconds for the
/// whole thread group: a sum over `/proc/PID/task/*` would lose the time
/// of every thread that ended between two readings.
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(raw) = i32::try_from(pid) else { return 0 };
    let Ok(clock) = nix::time::clock_getcpuclockid(nix::unistd::Pid::from_raw(raw)) else { return 0 };
    match clock.now() {
        Ok(t) => {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec()).unwrap_or(0)
        }
        Err(_) => 0,
    }
}

/// A sample's result with the CPU time all the processes of the report
/// spent during it.
fn timed<T>(pids: &[u32], f: impl FnOnce() -> Result<T, String>) -> Result<(T, u64, Duration), String> {
    let cpu = || pids.iter().map(|&p| cpu_ns(p)).sum::<u64>();
    let (before, start) = (cpu(), Instant::now());
    let out = f()?;
    Ok((out, cpu().saturating_sub(before), start.elapsed()))
}

/// What a path can do: a round-trip sample and a stream sample, ours and bare.
trait Path {
    fn name(&self) -> &'static str;
    /// What ours does, and what the baseline does, for the legend.
    fn legend(&self) -> (&'static str, &'static str);
    fn rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String>;
    fn bare_rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String>;
    fn stream(&mut self, until: Instant) -> Result<f64, String>;
    fn bare_stream(&mut self, until: Instant) -> Result<f64, String>;
    /// The stream into a hand-rolled socket reader and handler thread
    /// ([`HandRolled`]), where the path has one.
    fn hand_stream(&mut self, _until: Instant) -> Option<Result<f64, String>> {
        None
    }
}

/// Runs the report; `tick` is called after every sample with the path's
/// name (for a progress bar). The number of samples is [`samples`].
pub fn run(opts: &Options, mut tick: impl FnMut(&str)) -> Result<Vec<PathResult>, String> {
    let cross = CrossThread::new(opts.low_latency)?;
    let mut paths: Vec<Box<dyn Path>> = vec![Box::new(SameThread::new()), Box::new(cross)];
    let dir = std::env::temp_dir();
    let sock = |tag: &str| Addr::Unix(dir.join(format!("ipchnl-bench-{}-{tag}.sock", std::process::id())));
    let tcp: Addr = Addr::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let (program, args) = &opts.child;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut listen = vec![tcp, sock("ours")];
    listen.extend(opts.nats.clone());
    let ours = ChildProc::start(program, &args, Mode::Ours, &listen)?;
    listen[1] = sock("bare");
    let bare = ChildProc::start(program, &args, Mode::BarePolling, &listen)?;
    // The low-latency pair: both wait by polling for the same spin (and
    // then sleep), so that neither burns a CPU while the others run.
    let shm = |tag: &str| Addr::Shm(format!("bench-{}-{tag}", std::process::id()));
    let listen_ll = [listen[0].clone(), sock("ours-ll"), shm("ours")];
    let ours_ll = ChildProc::start(program, &args, Mode::OursLowLatency, &listen_ll)?;
    let listen_ll = [listen[0].clone(), sock("bare-ll"), shm("bare")];
    let bare_ll = ChildProc::start(program, &args, Mode::BareSpinning, &listen_ll)?;
    let (default, low) = (Wait::Default, Wait::LowLatency);
    if !opts.low_latency {
        paths.push(Box::new(Linked::new("tcp", default, &ours.addrs[0], &bare.addrs[0])?));
        paths.push(Box::new(Linked::new("unix", default, &ours.addrs[1], &bare.addrs[1])?));
    }
    paths.push(Box::new(Linked::new("tcp_low_latency", low, &ours_ll.addrs[0], &bare_ll.addrs[0])?));
    paths.push(Box::new(Linked::new("unix_low_latency", low, &ours_ll.addrs[1], &bare_ll.addrs[1])?));
    paths.push(Box::new(OverShm::new(&ours_ll.addrs[2], &bare_ll.addrs[2])?));
    // Encrypted against plain TCP: a child of its own, with a secret.
    let secret = crate::child::random_secret()?;
    let secured =
        ChildProc::start_with_secret(program, &args, Mode::OursLowLatency, &listen[..1], Some(&secret))?;
    paths.push(Box::new(Encrypted::new(&secured.addrs[0], &secret)?));
    if let Some(nats) = &opts.nats {
        paths.push(over_nats(nats, &ours, &bare)?);
    }

    paths.retain(|p| opts.wants(p.name()));
    let pids = [std::process::id(), ours.pid(), bare.pid(), ours_ll.pid(), bare_ll.pid(), secured.pid()];
    let mut results = Vec::new();
    for path in &mut paths {
        let name = path.name();
        let (mut ours_h, mut bare_h, mut ratios) = (histogram(), histogram(), Vec::new());
        let (mut ours_cpu, mut bare_cpu) = (Vec::new(), Vec::new());
        // Warm up both sides, so that no first-time cost lands in a round.
        path.rtt(Instant::now() + opts.sample / 4, opts.max)?;
        path.bare_rtt(Instant::now() + opts.sample / 4, opts.max)?;
        for round in 0..opts.rounds {
            // Ours first in even rounds, the baseline first in odd ones:
            // whatever the second sample of a round gains or loses by
            // coming second (a warmer cache, a CPU frequency that moved)
            // falls to both alike.
            let mut one = |bare: bool| {
                timed(&pids, || {
                    sample(opts, || {
                        let until = Instant::now() + opts.sample;
                        if bare { path.bare_rtt(until, opts.max) } else { path.rtt(until, opts.max) }
                    })
                })
            };
            let first = one(round % 2 == 1)?;
            tick(name);
            let second = one(round % 2 == 0)?;
            tick(name);
            let ((a, a_cpu, _), (b, b_cpu, _)) =
                if round % 2 == 0 { (first, second) } else { (second, first) };
            if !a.is_empty() && !b.is_empty() {
                ratios.push(a.value_at_quantile(0.5) as f64 / b.value_at_quantile(0.5).max(1) as f64);
                ours_cpu.push(a_cpu as f64 / a.len() as f64);
                bare_cpu.push(b_cpu as f64 / b.len() as f64);
            }
            let _ = ours_h.add(&a);
            let _ = bare_h.add(&b);
        }
        let (mut ours_rates, mut bare_rates, mut stream_ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ours_msg_cpu, mut bare_msg_cpu) = (Vec::new(), Vec::new());
        // Per round: rate, CPU per message, and the two ratios of ours to it.
        let mut hand: Vec<(f64, f64, f64, f64)> = Vec::new();
        // CPU per message: the sample's CPU over the messages it moved.
        let per_msg = |cpu: u64, rate: f64, took: Duration| cpu as f64 / (rate * took.as_secs_f64()).max(1.0);
        for round in 0..opts.rounds {
            // Ours, the bare floor and the hand-rolled pair, in an order
            // that turns each round (as the round trips alternate).
            let mut got: [Option<(f64, f64)>; 3] = [None; 3];
            for k in 0..3 {
                let which = (k + round) % 3;
                let mut ran = true;
                let (rate, cpu, took) = timed(&pids, || {
                    sample(opts, || {
                        let until = Instant::now() + opts.sample;
                        match which {
                            0 => path.stream(until),
                            1 => path.bare_stream(until),
                            _ => {
                                let rate = path.hand_stream(until).transpose()?;
                                ran = rate.is_some();
                                Ok(rate.unwrap_or(0.0))
                            }
                        }
                    })
                })?;
                if ran {
                    got[which] = Some((rate, per_msg(cpu, rate, took)));
                    tick(name);
                }
            }
            let [Some((ours_rate, ours_cpu)), Some((rate, cpu)), hand_got] = got else {
                return Err(format!("{name}: a stream sample did not run"));
            };
            ours_rates.push(ours_rate);
            ours_msg_cpu.push(ours_cpu);
            bare_rates.push(rate);
            bare_msg_cpu.push(cpu);
            stream_ratios.push(ours_rate / rate.max(1.0));
            if let Some((rate, cpu)) = hand_got {
                hand.push((rate, cpu, ours_rate / rate.max(1.0), ours_cpu / cpu.max(1.0)));
            }
        }
        let hand_rolled = (!hand.is_empty()).then(|| {
            let of = |f: fn(&(f64, f64, f64, f64)) -> f64| median(&hand.iter().map(f).collect::<Vec<_>>());
            HandRolled {
                msgs_per_sec: of(|h| h.0),
                cpu_ns_per_msg: of(|h| h.1),
                ratio_stream: of(|h| h.2),
                ratio_cpu_per_msg: of(|h| h.3),
            }
        });
        let (ours_legend, baseline) = path.legend();
        results.push(PathResult {
            name,
            ours: ours_legend,
            baseline,
            rtt_ns: rtt_of(&ours_h),
            msgs_per_sec: median(&ours_rates),
            baseline_rtt_ns: rtt_of(&bare_h),
            baseline_msgs_per_sec: median(&bare_rates),
            ratio_p50: median(&ratios),
            ratio_stream: median(&stream_ratios),
            cpu_ns_per_rtt: median(&ours_cpu),
            baseline_cpu_ns_per_rtt: median(&bare_cpu),
            cpu_ns_per_msg: median(&ours_msg_cpu),
            baseline_cpu_ns_per_msg: median(&bare_msg_cpu),
            hand_rolled,
            rtt: ours_h,
            baseline_rtt: bare_h,
        });
    }
    Ok(results)
}

/// How many times [`run`] calls its `tick` for `rounds`, a `nats` path or
/// not, and the low-latency option only or not.
pub fn samples(rounds: usize, nats: bool, low_latency: bool) -> u64 {
    let extra = if low_latency { 0 } else { 2 };
    let paths = 6 + usize::from(nats) + extra;
    // Between processes, tcp, unix and shm have a hand-rolled stream too.
    let hand_rolled = 3 + extra;
    ((paths * 4 + hand_rolled) * rounds) as u64
}

fn sample<T>(opts: &Options, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    if opts.interrupted.load(Ordering::Relaxed) {
        return Err("interrupted".into());
    }
    f()
}

fn rtt_of(h: &Histogram<u64>) -> Rtt {
    Rtt { p50: h.value_at_quantile(0.5), p99: h.value_at_quantile(0.99) }
}

/// The seed's measurement: client and server in one thread.
struct SameThread {
    server: Server,
    addr: ActorSender,
    rx: crossbeam_channel::Receiver<actor::Envelope>,
    me: ActorSender,
    replies: crossbeam_channel::Receiver<actor::Envelope>,
    dir: StaticDirectory,
}

impl SameThread {
    fn new() -> Self {
        let server = Server::new();
        let (addr, rx) = ActorSender::channel("server", &server, None);
        let (me, replies) = ActorSender::inbox("report");
        Self { server, addr, rx, me, replies, dir: StaticDirectory::default() }
    }
}

impl Path for SameThread {
    fn name(&self) -> &'static str {
        "same_thread"
    }

    fn legend(&self) -> (&'static str, &'static str) {
        (
            "an EchoReq sent to the echo server's mailbox, dispatched and answered in one thread",
            "two crossbeam channels of Box<dyn Any + Send>, a request and a reply boxed and downcast in one thread",
        )
    }

    fn rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        let mut h = histogram();
        while h.len() < max && Instant::now() < until {
            let start = now_ns();
            self.addr.send_from(EchoReq::stamped(h.len() + 1), &self.me).map_err(|e| e.to_string())?;
            let env = self.rx.try_recv().map_err(|e| e.to_string())?;
            dispatch(&mut self.server, &self.addr, &self.dir, env);
            let reply = self.replies.try_recv().map_err(|e| e.to_string())?;
            reply.msg.downcast::<EchoReply>().map_err(|e| e.to_string())?;
            h.saturating_record(now_ns() - start);
        }
        Ok(h)
    }

    fn bare_rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        Ok(bare::same_thread_echo(until, max))
    }

    fn stream(&mut self, until: Instant) -> Result<f64, String> {
        let mut sink = Sink::default();
        let (to, rx) = ActorSender::channel("sink", &sink, None);
        let start = Instant::now();
        let mut n = 0u64;
        while Instant::now() < until {
            for i in 0..256 {
                to.send(EchoReq::new(i + 1, 0)).map_err(|e| e.to_string())?;
            }
            for env in rx.try_iter() {
                dispatch(&mut sink, &to, &self.dir, env);
                n += 1;
            }
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    }

    fn bare_stream(&mut self, until: Instant) -> Result<f64, String> {
        Ok(bare::same_thread_stream(until))
    }
}

fn failed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Through a manager: client and server on different executors.
struct CrossThread {
    manager: Manager,
    pinger: ActorSender,
    server: ActorSender,
    bare: ThreadEcho,
    low_latency: bool,
}

impl CrossThread {
    fn new(low_latency: bool) -> Result<Self, String> {
        let mut config = ManagerConfig::default().executors(2);
        if low_latency {
            config = config.low_latency();
        }
        let manager = Manager::new(config).map_err(failed)?;
        let server =
            manager.add_with("server", Server::new(), ActorOptions::default().executor(0)).map_err(failed)?;
        let pinger = manager
            .add_with("pinger", Pinger::default(), ActorOptions::default().executor(1))
            .map_err(failed)?;
        manager.add_with("sink", Sink::default(), ActorOptions::default().executor(1)).map_err(failed)?;
        // The bare pair waits as the executors do: it polls for their spin.
        let bare = ThreadEcho::new(manager.config().tuning.spin);
        Ok(Self { manager, pinger, server, bare, low_latency })
    }
}

/// Runs a pinger against `partner` until `until`.
fn ping(
    pinger: &ActorSender,
    partner: &ActorSender,
    until: Instant,
    max: u64,
) -> Result<Histogram<u64>, String> {
    let (done, got) = crossbeam_channel::bounded(1);
    let until_ns = now_ns() + until.saturating_duration_since(Instant::now()).as_nanos() as u64;
    pinger.send(PingFor::new(partner.clone(), until_ns, max, done)).map_err(failed)?;
    got.recv_timeout(GUARD).map_err(|_| "the round trips did not end".to_string())
}

/// A guard on every wait of the report: far beyond any sample.
/// How long a sample may wait for the other side: a hang guard.
pub(crate) const GUARD: Duration = Duration::from_secs(60);

impl Path for CrossThread {
    fn name(&self) -> &'static str {
        "cross_thread"
    }

    fn legend(&self) -> (&'static str, &'static str) {
        let ours = if self.low_latency {
            "a pinger actor and the echo server on two executors of one manager (low-latency: poll 100 µs, then sleep)"
        } else {
            "a pinger actor and the echo server on two executors of one manager (default: poll 10 µs, then sleep)"
        };
        let bare = if self.low_latency {
            "a boxed request through crossbeam channels to an echo thread, answered with a new boxed reply, both sides polling 100 µs before a blocking recv"
        } else {
            "a boxed request through crossbeam channels to an echo thread, answered with a new boxed reply, both sides polling 10 µs before a blocking recv"
        };
        (ours, bare)
    }

    fn rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        ping(&self.pinger, &self.server, until, max)
    }

    fn bare_rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        Ok(self.bare.run(until, max))
    }

    fn stream(&mut self, until: Instant) -> Result<f64, String> {
        let sink = self.manager.find_by_name("sink").ok_or("no sink")?;
        let before = count_of(&sink)?;
        let start = Instant::now();
        while Instant::now() < until {
            for i in 0..256 {
                sink.send(EchoReq::new(i + 1, 0)).map_err(failed)?;
            }
        }
        // The count comes after every request sent: one sender, in order.
        let n = count_of(&sink)? - before;
        Ok(n as f64 / start.elapsed().as_secs_f64())
    }

    fn bare_stream(&mut self, until: Instant) -> Result<f64, String> {
        Ok(bare::thread_stream(until))
    }
}

fn count_of(sink: &ActorSender) -> Result<u64, String> {
    let reply = sink.ask(EchoReq::new(0, 0), GUARD).map_err(failed)?;
    Ok(reply.counter)
}

/// Our side of a link to a child's manager: a pinger and a streamer on
/// the executor that owns the link, the child's server and sink.
pub struct Remote {
    manager: Manager,
    pinger: ActorSender,
    streamer: ActorSender,
    server: ActorSender,
    sink: ActorSender,
}

impl Remote {
    /// Links to the child's manager at `addr`.
    pub fn connect(name: &str, addr: &Addr, low_latency: bool) -> Result<Self, String> {
        Self::connect_to(name, addr, low_latency, None)
    }

    /// Links to the manager of node `node` (`None`: the only one) through
    /// `addr`; waits for it to be announced when `addr` is a NATS server.
    pub fn connect_to(
        name: &str,
        addr: &Addr,
        low_latency: bool,
        node: Option<&str>,
    ) -> Result<Self, String> {
        Self::connect_actors(name, addr, low_latency, node, ("server", "sink"))
    }

    /// As [`connect_to`](Self::connect_to), with the child's echo server
    /// and sink of these names.
    pub fn connect_actors(
        name: &str,
        addr: &Addr,
        low_latency: bool,
        node: Option<&str>,
        actors: (&str, &str),
    ) -> Result<Self, String> {
        Self::connect_with(name, addr, low_latency, node, actors, None)
    }

    /// As [`connect`](Self::connect), with `secret`, and `encryption` of
    /// the link.
    pub fn connect_secure(
        name: &str,
        addr: &Addr,
        low_latency: bool,
        secret: Secret,
        encryption: Encryption,
    ) -> Result<Self, String> {
        Self::connect_with(name, addr, low_latency, None, ("server", "sink"), Some((secret, encryption)))
    }

    fn connect_with(
        name: &str,
        addr: &Addr,
        low_latency: bool,
        node: Option<&str>,
        (server_name, sink_name): (&str, &str),
        security: Option<(Secret, Encryption)>,
    ) -> Result<Self, String> {
        let mut config = ManagerConfig::default()
            .node_name(format!("bench-{name}-{}", std::process::id()))
            .link_executor(0);
        if low_latency {
            config = config.low_latency();
        }
        if let Some((secret, encryption)) = security {
            config = config.secret(secret).encryption(encryption);
        }
        let manager = Manager::new(config).map_err(failed)?;
        manager.connect(addr).map_err(failed)?;
        let named = |actor: &str| node.map_or_else(|| actor.to_owned(), |n| format!("{actor}@{n}"));
        let deadline = Instant::now() + GUARD;
        let (server, sink) = loop {
            match (manager.find_by_name(&named(server_name)), manager.find_by_name(&named(sink_name))) {
                (Some(server), Some(sink)) => break (server, sink),
                _ if Instant::now() < deadline && matches!(addr, Addr::Nats(_)) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return Err(format!("no server and sink at {}", node.unwrap_or("the linked node"))),
            }
        };
        // On the link's executor (every link is on executor 0): their
        // sends are written without a hand-off.
        let on_link = ActorOptions::default().executor(0);
        let pinger = manager.add_with("pinger", Pinger::default(), on_link).map_err(failed)?;
        let streamer = manager.add_with("streamer", Streamer::new(), on_link).map_err(failed)?;
        Ok(Self { manager, pinger, streamer, server, sink })
    }

    /// Its manager, linked to the child's.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Round trips with the child's server until `until` (or `max`).
    pub fn rtt(&self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        ping(&self.pinger, &self.server, until, max)
    }

    /// The same round trips asked from this thread, outside any actor (as
    /// `ipchnl echo` does): each request is sent with `ask`, which waits
    /// for the reply.
    pub fn ask_rtt(&self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        let mut h = histogram();
        while h.len() < max && Instant::now() < until {
            let start = now_ns();
            let reply: EchoReply =
                self.server.ask(EchoReq::new(h.len() + 1, start), GUARD).map_err(failed)?;
            if reply.counter != h.len() + 1 {
                return Err(format!("reply {} to request {}", reply.counter, h.len() + 1));
            }
            h.saturating_record(now_ns() - start);
        }
        Ok(h)
    }

    /// A stream to the child's sink until `until`; messages per second.
    pub fn stream(&self, until: Instant) -> Result<f64, String> {
        let (done, got) = crossbeam_channel::bounded(1);
        let start = Instant::now();
        let until_ns = now_ns() + until.saturating_duration_since(start).as_nanos() as u64;
        self.streamer.send(StreamFor::new(self.sink.clone(), until_ns, done)).map_err(failed)?;
        let n = got.recv_timeout(GUARD).map_err(|_| "the stream did not end".to_string())?;
        Ok(n as f64 / start.elapsed().as_secs_f64())
    }
}

/// How both sides of a cross-process path wait for bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Ours: executors poll 10 µs, then sleep in `epoll_wait`. Bare:
    /// non-blocking reads polled for the same 10 µs, then blocking.
    Default,
    /// Ours: the low-latency option (executors poll 100 µs, then sleep).
    /// Bare: non-blocking reads polled for the same 100 µs, then blocking.
    LowLatency,
}

/// Across processes: our manager linked to a child's, against bare sockets
/// to another child.
struct Linked {
    name: &'static str,
    wait: Wait,
    ours: Remote,
    bare_addr: Addr,
    bare: SocketEcho,
}

impl Linked {
    fn new(name: &'static str, wait: Wait, ours: &Addr, bare: &Addr) -> Result<Self, String> {
        let low = wait == Wait::LowLatency;
        let ours = Remote::connect(name, ours, low)?;
        let spin = if low { crate::child::low_latency_spin() } else { crate::child::default_spin() };
        let bare_echo = SocketEcho::connect(bare, spin).map_err(failed)?;
        Ok(Self { name, wait, ours, bare_addr: bare.clone(), bare: bare_echo })
    }
}

impl Path for Linked {
    fn name(&self) -> &'static str {
        self.name
    }

    fn legend(&self) -> (&'static str, &'static str) {
        match self.wait {
            Wait::Default => (
                "a pinger actor and the other process's echo server over a link (executors poll 10 µs, then sleep)",
                "one thread per side, the same frames and JSON encoding and decoding, non-blocking reads polled for 10 µs before blocking",
            ),
            Wait::LowLatency => (
                "as above with the low-latency option on both sides (executors poll 100 µs, then sleep)",
                "as above, non-blocking reads polled for 100 µs before blocking on both sides",
            ),
        }
    }

    fn rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        self.ours.rtt(until, max)
    }

    fn bare_rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        self.bare.run(until, max).map_err(failed)
    }

    fn stream(&mut self, until: Instant) -> Result<f64, String> {
        self.ours.stream(until)
    }

    fn bare_stream(&mut self, until: Instant) -> Result<f64, String> {
        bare::socket_stream(&self.bare_addr, until, bare::Sink::Floor).map_err(failed)
    }

    fn hand_stream(&mut self, until: Instant) -> Option<Result<f64, String>> {
        Some(bare::socket_stream(&self.bare_addr, until, bare::Sink::HandRolled).map_err(failed))
    }
}

/// The `tcp_encrypted` path: our manager linked to a child's over TCP,
/// both with a secret, the link encrypted, against a plain (authenticated)
/// TCP link between the same two processes; both low-latency.
struct Encrypted {
    ours: Remote,
    plain: Remote,
}

impl Encrypted {
    fn new(addr: &Addr, secret: &str) -> Result<Self, String> {
        let secret = crate::child::secret_of(secret)?;
        Ok(Self {
            ours: Remote::connect_secure("tcp-encrypted", addr, true, secret.clone(), Encryption::Always)?,
            plain: Remote::connect_secure("tcp-plain", addr, true, secret, Encryption::Never)?,
        })
    }
}

impl Path for Encrypted {
    fn name(&self) -> &'static str {
        "tcp_encrypted"
    }

    fn legend(&self) -> (&'static str, &'static str) {
        (
            "a pinger actor and the other process's echo server over an encrypted TCP link (Noise, AES-256-GCM records), low-latency option",
            "ours over a plain TCP link (authenticated, not encrypted) to the same process, low-latency option",
        )
    }

    fn rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        self.ours.rtt(until, max)
    }

    fn bare_rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        self.plain.rtt(until, max)
    }

    fn stream(&mut self, until: Instant) -> Result<f64, String> {
        self.ours.stream(until)
    }

    fn bare_stream(&mut self, until: Instant) -> Result<f64, String> {
        self.plain.stream(until)
    }
}

/// The `shm` path: our manager linked to the child's over shared memory,
/// with the low-latency option, against bare iceoryx2 request-response
/// with the bare child.
struct OverShm {
    ours: Remote,
    bare: crate::bare_shm::ShmEcho,
}

impl OverShm {
    fn new(ours: &Addr, bare: &Addr) -> Result<Self, String> {
        let Addr::Shm(bare) = bare else { return Err(format!("{bare} is not a shm: address")) };
        let spin = crate::child::low_latency_spin();
        Ok(Self {
            ours: Remote::connect("shm", ours, true)?,
            bare: crate::bare_shm::ShmEcho::connect(bare, spin).map_err(failed)?,
        })
    }
}

impl Path for OverShm {
    fn name(&self) -> &'static str {
        "shm"
    }

    fn legend(&self) -> (&'static str, &'static str) {
        (
            "a pinger actor and the other process's echo server over a shared-memory link, low-latency option",
            "iceoryx2 request-response (a stream: publish-subscribe) of the same frames and JSON work, polled for 100 µs",
        )
    }

    fn rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        self.ours.rtt(until, max)
    }

    fn bare_rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        self.bare.run(until, max).map_err(failed)
    }

    fn stream(&mut self, until: Instant) -> Result<f64, String> {
        self.ours.stream(until)
    }

    fn bare_stream(&mut self, until: Instant) -> Result<f64, String> {
        self.bare.stream(until, bare::Sink::Floor).map_err(failed)
    }

    fn hand_stream(&mut self, until: Instant) -> Option<Result<f64, String>> {
        Some(self.bare.stream(until, bare::Sink::HandRolled).map_err(failed))
    }
}

/// A ratio between two paths of one report (not between a path and its
/// own baseline).
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// What is compared with what.
    pub what: &'static str,
    /// The first over the second: p50s of all rounds for round trips,
    /// median rates for streams.
    pub ratio: f64,
}

/// The report's answer in one line, drawn from its own figures: whether
/// combining channels and network connections costs anything, and how
/// much (round trips like for like, within a thread and across
/// processes; one-way streams).
pub fn verdict(results: &[PathResult]) -> String {
    let find = |name: &str| results.iter().find(|r| r.name == name);
    let range = |names: &[&str], f: fn(&PathResult) -> f64| {
        let v: Vec<f64> = names.iter().filter_map(|n| find(n)).map(f).collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        (!v.is_empty()).then_some((lo, hi))
    };
    let show = |(lo, hi): (f64, f64)| {
        if (hi - lo).abs() < 0.005 { format!("{lo:.2}x") } else { format!("{lo:.2}-{hi:.2}x") }
    };
    let mut parts = Vec::new();
    if let Some(r) = find("same_thread") {
        parts.push(format!("within a thread a round trip costs {:.2}x a bare boxed channel", r.ratio_p50));
    }
    if let Some(r) = find("cross_thread") {
        parts.push(format!("between threads {:.2}x crossbeam", r.ratio_p50));
    }
    let across = ["tcp_low_latency", "unix_low_latency", "shm"];
    let rtt = range(&across, |r| r.ratio_p50);
    if let Some(rtt) = rtt {
        parts.push(format!("across processes {} a bare socket (or iceoryx2) polled alike", show(rtt)));
    }
    // Against a bare stream: every path but the encrypted one (whose
    // baseline is our own plain link).
    let all: Vec<&str> = results.iter().map(|r| r.name).filter(|n| *n != "tcp_encrypted").collect();
    if let Some(stream) = range(&all, |r| r.ratio_stream) {
        parts.push(format!(
            "a one-way stream runs at {} of a bare stream doing the same JSON work",
            show(stream)
        ));
    }
    let handed: Vec<f64> =
        results.iter().filter_map(|r| Some(r.hand_rolled.as_ref()?.ratio_stream)).collect();
    if !handed.is_empty() {
        let lo = handed.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = handed.iter().copied().fold(0.0, f64::max);
        parts.push(format!("and at {} of a hand-rolled socket reader and channel", show((lo, hi))));
    }
    let answer = match rtt {
        Some((_, hi)) if hi <= 1.5 => "yes",
        Some(_) => "yes, at a cost",
        None => "measured",
    };
    format!("Verdict: {answer}: one send reaches a thread or another process; {}.", parts.join("; "))
}

/// The comparisons between paths the report makes when both are in
/// `results`: shared memory against threads and against Unix sockets.
pub fn comparisons(results: &[PathResult]) -> Vec<Comparison> {
    let find = |name: &str| results.iter().find(|r| r.name == name);
    let mut out = Vec::new();
    if let Some(shm) = find("shm") {
        if let Some(threads) = find("cross_thread") {
            out.push(Comparison {
                what: "shm rtt p50 / crossbeam ping-pong between two threads (cross_thread's bare) p50",
                ratio: shm.rtt_ns.p50 as f64 / threads.baseline_rtt_ns.p50.max(1) as f64,
            });
        }
        if let Some(unix) = find("unix_low_latency") {
            out.push(Comparison {
                what: "shm rtt p50 / unix_low_latency rtt p50, both ours",
                ratio: shm.rtt_ns.p50 as f64 / unix.rtt_ns.p50.max(1) as f64,
            });
            out.push(Comparison {
                what: "shm stream / unix_low_latency stream, both ours (msg/s)",
                ratio: shm.msgs_per_sec / unix.msgs_per_sec.max(1.0),
            });
        }
    }
    out
}

/// The `nats` path: our manager and the child's meet through a NATS
/// server; the baseline is a bare `async-nats` request/reply of the same
/// frames with the bare child.
#[cfg(feature = "nats")]
fn over_nats(nats: &Addr, ours: &ChildProc, bare: &ChildProc) -> Result<Box<dyn Path>, String> {
    struct OverNats {
        ours: Remote,
        bare: crate::nats::BareNats,
    }
    impl Path for OverNats {
        fn name(&self) -> &'static str {
            "nats"
        }
        fn legend(&self) -> (&'static str, &'static str) {
            (
                "a pinger actor and the other process's echo server meeting through the NATS server",
                "async-nats request/reply of the same frames with a bare responder",
            )
        }
        fn rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
            self.ours.rtt(until, max)
        }
        fn bare_rtt(&mut self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
            self.bare.rtt(until, max)
        }
        fn stream(&mut self, until: Instant) -> Result<f64, String> {
            self.ours.stream(until)
        }
        fn bare_stream(&mut self, until: Instant) -> Result<f64, String> {
            self.bare.stream(until)
        }
    }
    let Addr::Nats(addr) = nats else { return Err(format!("{nats} is not a NATS server")) };
    let node = format!("bench-child-{}", ours.pid());
    let ours = Remote::connect_to("nats", nats, false, Some(&node))?;
    let bare = crate::nats::BareNats::connect(addr, crate::nats::subject(bare.pid()))?;
    Ok(Box::new(OverNats { ours, bare }))
}

#[cfg(not(feature = "nats"))]
fn over_nats(nats: &Addr, _: &ChildProc, _: &ChildProc) -> Result<Box<dyn Path>, String> {
    Err(format!("{nats}: this build has no NATS support (cargo feature `nats`)"))
}

#[cfg(test)]
mod cpu_tests {
    use super::cpu_ns;
    use std::time::{Duration, Instant};

    /// Spins for `d` of wall time: at least that much CPU when it runs alone.
    fn spin(d: Duration) {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < d {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
    }

    #[test]
    fn this_process_cpu_time_grows_with_work_and_a_gone_process_has_none() {
        let me = std::process::id();
        let before = cpu_ns(me);
        spin(Duration::from_millis(50));
        assert!(cpu_ns(me) > before, "50 ms of work shows");
        assert_eq!(cpu_ns(u32::MAX), 0);
        assert_eq!(cpu_ns(0x7fff_fff0), 0, "no such process");
    }

    /// Threads come and go (as the bench's baselines' do) while other tests
    /// load the machine: what an exited thread ran stays counted, so the
    /// reading never goes back and covers each thread's own CPU time.
    #[test]
    fn cpu_time_of_threads_that_exited_stays_counted() {
        let me = std::process::id();
        let mut last = cpu_ns(me);
        for _ in 0..8 {
            let worker = std::thread::spawn(|| {
                let t0 = cpu_thread_ns();
                spin(Duration::from_millis(20));
                cpu_thread_ns() - t0
            });
            let ran = worker.join().expect("worker");
            let now = cpu_ns(me);
            assert!(now >= last + ran, "{ran} ns of an exited thread counted ({last} -> {now})");
            last = now;
        }
    }

    /// This thread's own CPU time, in ns.
    fn cpu_thread_ns() -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        u64::try_from(t.tv_sec).expect("time") * 1_000_000_000 + u64::try_from(t.tv_nsec).expect("time")
    }
}

#[cfg(test)]
mod verdict_tests {
    use super::{PathResult, verdict};

    fn path(name: &'static str, ratio_p50: f64, ratio_stream: f64) -> PathResult {
        PathResult { ratio_p50, ratio_stream, ..PathResult::named(name) }
    }

    #[test]
    fn the_verdict_is_drawn_from_the_figures() {
        let near = [
            path("same_thread", 1.3, 0.7),
            path("cross_thread", 1.5, 0.5),
            path("tcp_low_latency", 1.2, 0.3),
            path("unix_low_latency", 1.4, 0.35),
        ];
        let v = verdict(&near);
        assert!(v.starts_with("Verdict: yes:"), "{v}");
        assert!(v.contains("within a thread a round trip costs 1.30x"), "{v}");
        assert!(v.contains("across processes 1.20-1.40x"), "{v}");
        assert!(v.contains("0.30-0.70x of a bare stream"), "{v}");
        assert!(!v.contains("hand-rolled"), "no path had one: {v}");
        let mut handed = path("unix", 1.1, 0.3);
        handed.hand_rolled = Some(super::HandRolled {
            msgs_per_sec: 1.0,
            cpu_ns_per_msg: 1.0,
            ratio_stream: 0.55,
            ratio_cpu_per_msg: 2.0,
        });
        let v = verdict(&[handed]);
        assert!(v.contains("and at 0.55x of a hand-rolled socket reader and channel"), "{v}");
        let far = [path("unix_low_latency", 2.5, 0.2)];
        assert!(verdict(&far).starts_with("Verdict: yes, at a cost:"), "{}", verdict(&far));
        assert!(verdict(&[path("same_thread", 1.0, 1.0)]).starts_with("Verdict: measured:"));
    }
}
