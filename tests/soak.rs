//! Soak: mixed traffic for a set time while peers are killed, stopped and
//! restarted at random. A test binary of its own.
//!
//! This process runs a manager linked to three `ipchnl serve` children: `b`
//! (Unix socket) and `c` (TCP) are killed with SIGKILL, stopped with
//! SIGTERM or frozen with SIGSTOP past the heartbeat timeout, at random
//! (each again only once all its traffic has made progress since), and
//! restarted on the same address; `steady` (Unix socket) is left alone.
//! The traffic, all at once: round trips to each child, relayed round trips
//! (a child sends the request back to an actor here, which answers the
//! asker), numbered and bulky one-way messages to each child's sink, round
//! trips between two actors of this process, and short-lived managers that
//! link to a child, ask once and shut down.
//!
//! A watchdog samples every kind of traffic each second and fails the test
//! only if one makes no progress for ten times the longest reconnect
//! backoff plus the heartbeat timeout. At the end, with every child up and
//! the traffic paused, this process and the steady child hold no more
//! threads and descriptors than after the warm-up (a third of the run, at
//! most five minutes), their resident memory (once what was freed has gone
//! back to the system) and this process's live heap
//! (counted by its allocator, whatever the allocator keeps) are at most 10%
//! (the larger of 10% and 16 MiB in runs under an hour) above it, nothing
//! panicked here or in any child, and the steady child exits cleanly on
//! SIGTERM.
//!
//! `IPCHNL_SOAK_SECS` sets the duration (15 s by default, as in `.ci/run`;
//! 3600 for the hour-long run, with `MALLOC_ARENA_MAX=2`: glibc's default
//! of many arenas keeps freed memory resident, about 1 MB more every five
//! minutes under this load while the live heap stays flat, enough to
//! exceed the resident bound within the hour); `IPCHNL_SEED` replays a run's randomness;
//! `IPCHNL_SOAK_LOG=PATH` writes this process's log there (filtered by
//! `RUST_LOG`, which the children's logs, kept for the watchdog's report,
//! follow too).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipchnl::echo::{EchoReply, EchoReq};
use ipchnl::{ActorSender, Addr, AskError, Manager};
use rustix::process::Signal;
use support::*;
use testkit::{Bulk, Relay, Seq};

/// Counts the bytes this process holds on the heap, to tell a leak from
/// the allocator keeping freed pages.
#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

const DEFAULT_SECS: u64 = 15;
const HEARTBEAT: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(1));
const BACKOFF: (Duration, Duration) = (Duration::from_millis(20), Duration::from_millis(500));
/// How long a kind of traffic may make no progress before the watchdog fails.
const STALL: Duration = BACKOFF.1.saturating_add(HEARTBEAT.1).saturating_mul(10);
/// How often the driver prints progress, threads, descriptors and memory.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// The bound on one round trip; a child frozen or dead fails it sooner.
const ASK: Duration = Duration::from_secs(3);

/// One `ipchnl serve` child, restarted on the same address.
struct Peer {
    node: String,
    listen: String,
    stderr: tempfile_path::TempFile,
    serve: Serve,
    frozen_until: Option<Instant>,
    /// Its kinds of traffic, and how many of each were done at the last
    /// event: a peer is hit again only once each has made progress.
    traffic: Vec<Arc<Counter>>,
    done_before: Vec<u64>,
}

impl Peer {
    fn start(tag: &str, listen: &str) -> Self {
        let node = format!("soak-{tag}-{}", std::process::id());
        let stderr = tempfile_path::TempFile::with("");
        let serve = Self::spawn(listen, &node, &stderr);
        // Restarts bind the port the first start was given.
        let listen = serve.addr.to_string();
        Self { node, listen, stderr, serve, frozen_until: None, traffic: Vec::new(), done_before: Vec::new() }
    }

    fn spawn(listen: &str, node: &str, stderr: &tempfile_path::TempFile) -> Serve {
        let args = ["--test-actors", "--node-name", node, "--heartbeat-ms", "200"];
        Serve::start_logging(listen, &args, &stderr.0)
    }

    fn restart(&mut self) {
        self.serve = Self::spawn(&self.listen, &self.node, &self.stderr);
    }

    fn thaw(&mut self) {
        if self.frozen_until.take().is_some() {
            self.serve.signal(Signal::CONT);
        }
    }

    /// Its pid, process state (from `/proc`) and whether we froze it.
    fn describe(&self) -> String {
        let pid = self.serve.pid();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(')').map_or("?", |(_, rest)| rest.trim_start().get(..1).unwrap_or("?"));
        let log = std::fs::read_to_string(&self.stderr.0).unwrap_or_default();
        let tail = log.get(log.len().saturating_sub(1500)..).unwrap_or_default();
        format!(
            "{} pid {pid} state {state} frozen {:?} log {tail}",
            self.node,
            self.frozen_until.map(|t| t.elapsed())
        )
    }

    fn actor(&self, name: &str) -> String {
        format!("{name}@{}", self.node)
    }
}

/// Progress of one kind of traffic.
#[derive(Default)]
struct Counter {
    done: AtomicU64,
    failed: AtomicU64,
    last_error: std::sync::Mutex<String>,
}

/// What the traffic threads share.
struct Shared {
    m: Manager,
    stop: AtomicBool,
    /// Traffic holds it for reading per operation; the main thread takes it
    /// for writing to pause everything.
    gate: RwLock<()>,
}

impl Shared {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }
}

/// Runs `op` until stopped, one call per turn of the gate, counting, with
/// `pause` after each success (and a short one after each failure).
fn traffic(
    shared: &Arc<Shared>,
    counter: &Arc<Counter>,
    pause: Duration,
    mut op: impl FnMut(&Manager, u64) -> Result<(), String> + Send + 'static,
) -> JoinHandle<()> {
    let (shared, counter) = (shared.clone(), counter.clone());

    std::thread::spawn(move || {
        let mut i = 0;
        while shared.running() {
            let outcome = {
                let _turn = shared.gate.read().unwrap_or_else(PoisonError::into_inner);
                i += 1;
                op(&shared.m, i)
            };
            match outcome {
                Ok(()) => {
                    counter.done.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(pause);
                }
                Err(e) => {
                    counter.failed.fetch_add(1, Ordering::Relaxed);
                    *counter.last_error.lock().unwrap_or_else(PoisonError::into_inner) = e;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    })
}

/// Runs `op` on the actor called `name`, found once and kept until an
/// operation on it fails.
fn cached(
    m: &Manager,
    cache: &mut Option<ActorSender>,
    name: &str,
    op: impl FnOnce(&ActorSender) -> Result<(), String>,
) -> Result<(), String> {
    if cache.is_none() {
        *cache = m.find_by_name(name);
    }
    let to = cache.as_ref().ok_or_else(|| format!("{name} not found"))?;
    let outcome = op(to);
    if outcome.is_err() {
        *cache = None;
    }
    outcome
}

/// A round trip to `to` that checks the answer.
fn round_trip(to: &ActorSender, counter: u64) -> Result<(), String> {
    answered(to.ask(EchoReq::new(counter, 0), ASK), counter)
}

/// Whether an ask was answered with the `EchoReply` for `counter` (a
/// reply of another type is `Err(WrongReply)`).
fn answered(reply: Result<EchoReply, AskError>, counter: u64) -> Result<(), String> {
    let reply = reply.map_err(|e| e.to_string())?;
    if reply.counter == counter { Ok(()) } else { Err(format!("answer {} to {counter}", reply.counter)) }
}

/// Pauses the traffic and waits until every peer is up and answering.
fn quiesce<'a>(shared: &'a Shared, peers: &mut [Peer]) -> RwLockWriteGuard<'a, ()> {
    let gate = shared.gate.write().unwrap_or_else(PoisonError::into_inner);
    for peer in peers.iter_mut() {
        peer.thaw();
    }
    for peer in peers.iter() {
        eventually(&format!("{} answering", peer.node), || {
            let relay = shared.m.find_by_name(&peer.actor("relay"))?;
            round_trip(&relay, 0).ok()
        });
    }
    gate
}

/// Threads and descriptors of `pid`, once two samples agree.
fn settled_counts(pid: i32) -> (usize, usize) {
    let mut last = counts(pid);
    eventually("thread and descriptor counts to settle", || {
        std::thread::sleep(Duration::from_millis(300));
        let now = counts(pid);
        let same = now == last;
        last = now;
        same.then_some(now)
    })
}

/// The tool's allocator gives freed pages back after `dirty_decay_ms`
/// (1 s, `.cargo/config.toml`); a resident figure is settled once it has
/// made no new low for twice that.
const RSS_SETTLE: Duration = Duration::from_secs(2);

/// `pid`'s resident memory once what it freed has gone back to the system:
/// the lowest sample, taken when no lower one has come for `RSS_SETTLE`.
/// Memory still held never comes down and is what the bound judges; a
/// backlog drained just before the sample (a sink still working through
/// bulky one-way messages) does not count against it.
fn settled_rss(pid: i32) -> u64 {
    let mut low = rss_bytes(pid);
    let mut low_at = Instant::now();
    eventually("resident memory to settle", || {
        std::thread::sleep(Duration::from_millis(100));
        let now = rss_bytes(pid);
        if now < low {
            (low, low_at) = (now, Instant::now());
        }
        (low_at.elapsed() >= RSS_SETTLE).then_some(low)
    })
}

#[test]
fn soak() {
    let secs = std::env::var("IPCHNL_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SECS);
    let seed = seed();
    println!("soak for {secs} s, seed = {seed} (rerun with IPCHNL_SEED={seed})");
    let rng = Rng(seed);
    if let Ok(f) = std::env::var("IPCHNL_SOAK_LOG") {
        let file = std::fs::File::create(f).unwrap();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_ansi(false)
            .with_thread_names(true)
            .with_writer(std::sync::Mutex::new(file))
            .init();
    }
    let panics = Arc::new(AtomicU64::new(0));
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new({
        let panics = panics.clone();
        move |info| {
            panics.fetch_add(1, Ordering::SeqCst);
            default_hook(info);
        }
    }));

    let (at_b, at_steady) = (socket_path("soak-b"), socket_path("soak-s"));
    let mut peers = vec![
        Peer::start("b", &at_b.url()),
        Peer::start("c", "tcp://127.0.0.1:0"),
        Peer::start("steady", &at_steady.url()),
    ];
    let m = Manager::new(
        config("soak").heartbeat(HEARTBEAT.0, HEARTBEAT.1).reconnect_backoff(BACKOFF.0, BACKOFF.1),
    )
    .unwrap();
    testkit::add_test_actors(&m, None, false).unwrap();
    let local_relay = m.find_by_name("relay").unwrap();
    let local_napper = m.find_by_name("napper").unwrap();
    for peer in &peers {
        m.connect(&peer.serve.addr).unwrap();
    }
    let shared = Arc::new(Shared { m, stop: AtomicBool::new(false), gate: RwLock::new(()) });

    // The traffic, by kind.
    let mut counters: Vec<(String, Arc<Counter>)> = Vec::new();
    let mut threads = Vec::new();
    let mut kind = |name: String| {
        let c = Arc::new(Counter::default());
        counters.push((name, c.clone()));
        c
    };
    for peer in &mut peers {
        let relay_name = peer.actor("relay");
        let counter = kind(format!("round trips to {}", peer.node));
        peer.traffic.push(counter.clone());
        let mut cache = None;
        threads.push(traffic(&shared, &counter, Duration::ZERO, move |m, i| {
            cached(m, &mut cache, &relay_name, |to| round_trip(to, i))
        }));

        let relay_name = peer.actor("relay");
        let back = local_relay.addr();
        let counter = kind(format!("relayed round trips via {}", peer.node));
        peer.traffic.push(counter.clone());
        let mut cache = None;
        threads.push(traffic(&shared, &counter, Duration::ZERO, move |m, i| {
            cached(m, &mut cache, &relay_name, |to| answered(to.ask(Relay::new(back, i), ASK), i))
        }));

        let sink_name = peer.actor("sink");
        let counter = kind(format!("one-way messages to {}", peer.node));
        peer.traffic.push(counter.clone());
        let mut cache = None;
        threads.push(traffic(&shared, &counter, Duration::ZERO, move |m, i| {
            cached(m, &mut cache, &sink_name, |to| {
                let sent = if i % 32 == 0 {
                    to.send_timeout(Bulk::new(i, "x".repeat(16 * 1024)), Duration::from_millis(100))
                } else {
                    to.send_timeout(Seq::new(i), Duration::from_millis(100))
                };
                sent.map_err(|e| e.to_string())
            })
        }));
    }
    // The local relay has the napper answer the asker.
    let napper = local_napper.addr();
    let counter = kind("local relayed round trips".to_string());
    threads.push(traffic(&shared, &counter, Duration::ZERO, move |_, i| {
        answered(local_relay.ask(Relay::new(napper, i), ASK), i)
    }));

    let addrs: Vec<(Addr, String)> = peers.iter().map(|p| (p.serve.addr.clone(), p.actor("relay"))).collect();
    // Paced: a burst of connects would overflow the children's listen
    // backlogs, and then every dial waits for TCP to retry.
    let counter = kind("short-lived managers".to_string());
    let mut churn_rng = Rng(seed.rotate_left(17) | 1);
    threads.push(traffic(&shared, &counter, Duration::from_millis(20), move |_, i| {
        let (addr, relay) = &addrs[churn_rng.below(addrs.len() as u64) as usize];
        let config =
            config("soak-churn").name("churn").executors(1).handshake_timeout(Duration::from_secs(1));
        let m = Manager::new(config).map_err(|e| e.to_string())?;
        let outcome = m.connect(addr).map_err(|e| e.to_string()).and_then(|_| {
            let to = m.find_by_name(relay).ok_or_else(|| format!("{relay} not found"))?;
            round_trip(&to, i)
        });
        m.shutdown();
        outcome
    }));

    // Warm-up, then the baseline with everything up and the traffic paused.
    let started = Instant::now();
    let warm_up = Duration::from_secs((secs / 3).clamp(5, 300));
    let end = started + Duration::from_secs(secs);
    let mut driver = Driver {
        chaos: Chaos::default(),
        watchdog: Watchdog::new(&counters),
        dead: BTreeMap::new(),
        rng,
        seed,
        next_report: None,
    };
    driver.run(started + warm_up, &shared, &mut peers, &counters);

    let me = std::process::id() as i32;
    let gate = quiesce(&shared, &mut peers);
    let base = settled_counts(me);
    let steady_pid = peers[2].serve.pid();
    let steady_base = settled_counts(steady_pid);
    let (rss_base, steady_rss_base, heap_base) = (settled_rss(me), settled_rss(steady_pid), HEAP.allocated());
    drop(gate);
    driver.watchdog.reset();
    println!(
        "after {:.1} s of warm-up: here {base:?} threads and descriptors, {} KiB resident, {} KiB on the heap; \
         steady child {steady_base:?}, {} KiB resident",
        warm_up.as_secs_f64(),
        rss_base / 1024,
        heap_base / 1024,
        steady_rss_base / 1024
    );

    driver.run(end, &shared, &mut peers, &counters);
    let Driver { chaos, dead, .. } = driver;

    // The end: everything up, traffic paused; nothing leaked.
    let gate = quiesce(&shared, &mut peers);
    let now = eventually("threads and descriptors here back to the baseline", || {
        std::thread::sleep(Duration::from_millis(100));
        let now = counts(me);
        (now.0 <= base.0 && now.1 <= base.1).then_some(now)
    });
    let steady_now = eventually("the steady child's threads and descriptors back to the baseline", || {
        std::thread::sleep(Duration::from_millis(100));
        let now = counts(steady_pid);
        (now.0 <= steady_base.0 && now.1 <= steady_base.1).then_some(now)
    });
    let (rss, steady_rss, heap) = (settled_rss(me), settled_rss(steady_pid), HEAP.allocated());
    shared.stop.store(true, Ordering::SeqCst);
    drop(gate);
    for t in threads {
        t.join().expect("a traffic thread ended without panicking");
    }

    println!("{:.1} s; {} peer events: {:?}", started.elapsed().as_secs_f64(), chaos.total(), chaos.events);
    for (name, c) in &counters {
        println!(
            "  {name}: {} done, {} failed",
            c.done.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed)
        );
    }
    println!("  dead letters: {dead:?}");
    println!(
        "  here: {now:?} threads and descriptors (baseline {base:?}), {} KiB resident (baseline {} KiB), \
         {} KiB on the heap (baseline {} KiB)",
        rss / 1024,
        rss_base / 1024,
        heap / 1024,
        heap_base / 1024
    );
    println!(
        "  steady child: {steady_now:?} (baseline {steady_base:?}), {} KiB resident (baseline {} KiB)",
        steady_rss / 1024,
        steady_rss_base / 1024
    );

    // Memory: what is resident (as the allocator keeps it) and what is
    // live on the heap (a leak, whatever the allocator does).
    let allowed = |base: usize| if secs >= 3600 { base / 10 } else { (base / 10).max(16 << 20) };
    for (what, base, now) in [
        ("this process's resident memory", rss_base as usize, rss as usize),
        ("the steady child's resident memory", steady_rss_base as usize, steady_rss as usize),
        ("this process's heap", heap_base, heap),
    ] {
        assert!(
            now <= base + allowed(base),
            "seed {seed}: {what} grew from {} KiB to {} KiB",
            base / 1024,
            now / 1024
        );
    }
    assert!(chaos.total() > 0, "seed {seed}: no peer was ever killed or stopped");
    for (name, c) in &counters {
        assert!(c.done.load(Ordering::Relaxed) > 0, "seed {seed}: no {name} completed");
    }
    let status = peers[2].serve.terminate();
    assert!(status.success(), "seed {seed}: the steady child exited with {status}");
    for peer in &mut peers {
        peer.serve.kill9();
        let log = std::fs::read_to_string(&peer.stderr.0).unwrap_or_default();
        assert!(!log.contains("panicked"), "seed {seed}: {} panicked:\n{log}", peer.node);
    }
    assert_eq!(panics.load(Ordering::SeqCst), 0, "seed {seed}: a thread of this process panicked");
}

/// The main thread's loop: the watchdog, the chaos, the dead letters.
struct Driver {
    chaos: Chaos,
    watchdog: Watchdog,
    dead: BTreeMap<String, u64>,
    rng: Rng,
    seed: u64,
    next_report: Option<Instant>,
}

impl Driver {
    fn run(
        &mut self,
        until: Instant,
        shared: &Shared,
        peers: &mut [Peer],
        counters: &[(String, Arc<Counter>)],
    ) {
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
            self.watchdog.sample(counters, self.seed, shared, peers);
            self.chaos.maybe(peers, &mut self.rng);
            for letter in shared.m.dead_letters().try_iter() {
                *self.dead.entry(letter.reason.key()).or_default() += 1;
            }
            let now = Instant::now();
            if self.next_report.is_none_or(|t| t <= now) {
                // The trend, for long runs: the end is checked against the warm-up.
                self.next_report = Some(now + REPORT_EVERY);
                let me = std::process::id() as i32;
                let done: u64 = counters.iter().map(|(_, c)| c.done.load(Ordering::Relaxed)).sum();
                println!(
                    "  {done} operations done; here {:?} threads and descriptors, {} KiB resident, {} KiB on the heap",
                    counts(me),
                    rss_bytes(me) / 1024,
                    HEAP.allocated() / 1024
                );
            }
        }
    }
}

/// Kills, stops and freezes peers `b` and `c` at random moments, each
/// only once every kind of its traffic has made progress since the last.
#[derive(Default)]
struct Chaos {
    next: Option<Instant>,
    events: BTreeMap<&'static str, u64>,
}

impl Chaos {
    fn total(&self) -> u64 {
        self.events.values().sum()
    }

    fn maybe(&mut self, peers: &mut [Peer], rng: &mut Rng) {
        let now = Instant::now();
        for peer in peers.iter_mut() {
            if peer.frozen_until.is_some_and(|t| t <= now) {
                peer.thaw();
            }
        }
        let next = *self.next.get_or_insert_with(|| now + rng.millis(300, 1500));
        if now < next {
            return;
        }
        self.next = Some(now + rng.millis(300, 1500));
        let peer = &mut peers[rng.below(2) as usize];
        let done: Vec<u64> = peer.traffic.iter().map(|c| c.done.load(Ordering::Relaxed)).collect();
        let recovered = done.iter().zip(&peer.done_before).all(|(now, before)| now > before);
        if peer.frozen_until.is_some() || !recovered {
            return;
        }
        peer.done_before = done;
        let event = match rng.below(10) {
            0..=4 => {
                peer.serve.kill9();
                std::thread::sleep(rng.millis(0, 100));
                peer.restart();
                "killed (SIGKILL) and restarted"
            }
            5..=6 => {
                let status = peer.serve.terminate();
                assert!(status.success(), "{} exited with {status} on SIGTERM", peer.node);
                peer.restart();
                "stopped (SIGTERM) and restarted"
            }
            _ => {
                peer.serve.signal(Signal::STOP);
                peer.frozen_until = Some(now + rng.millis(300, 2500));
                "frozen (SIGSTOP) for up to 2.5 s"
            }
        };
        *self.events.entry(event).or_default() += 1;
    }
}

/// Fails the test if some kind of traffic makes no progress for [`STALL`].
struct Watchdog {
    last: Vec<(u64, Instant)>,
    next_sample: Instant,
}

impl Watchdog {
    fn new(counters: &[(String, Arc<Counter>)]) -> Self {
        let now = Instant::now();
        Self { last: counters.iter().map(|_| (0, now)).collect(), next_sample: now }
    }

    fn reset(&mut self) {
        let now = Instant::now();
        for (_, at) in &mut self.last {
            *at = now;
        }
    }

    fn sample(&mut self, counters: &[(String, Arc<Counter>)], seed: u64, shared: &Shared, peers: &[Peer]) {
        let now = Instant::now();
        if now < self.next_sample {
            return;
        }
        self.next_sample = now + Duration::from_secs(1);
        for ((name, c), (seen, at)) in counters.iter().zip(&mut self.last) {
            let done = c.done.load(Ordering::Relaxed);
            if done != *seen {
                (*seen, *at) = (done, now);
            }
            assert!(
                now.duration_since(*at) < STALL,
                "seed {seed}: no {name} completed for {:?} (the limit is ten times the longest backoff plus \
                 the heartbeat timeout); {} failed meanwhile, the last with {:?}; children {:?}; peers {:?}; stats {}",
                now.duration_since(*at),
                c.failed.load(Ordering::Relaxed),
                c.last_error.lock().unwrap_or_else(PoisonError::into_inner),
                peers.iter().map(Peer::describe).collect::<Vec<_>>(),
                shared.m.peers(),
                serde_json::to_string(&shared.m.stats()).unwrap_or_default()
            );
        }
    }
}
