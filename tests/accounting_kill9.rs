//! Every message accounted for: numbered messages stream to a sink in
//! another process while that process is killed (`kill -9`) at random
//! points and restarted, 20 times. A test binary of its own.
//!
//! At the end every message sent is in the sink's log or was reported to
//! the sender (a send error or a dead letter), and both only for messages
//! reported `Unacknowledged`. Acknowledged messages missing from the log
//! are allowed only as lost with the mailbox of the process that died:
//! within each incarnation, a contiguous run right after its last logged
//! message. Nothing out of order, nothing twice. With receipts (the sink
//! acknowledges what it has handled, not what is in its mailbox), nothing
//! at all is lost without a report.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ipchnl::echo::EchoReq;
use ipchnl::{DeadLetterReason, Manager};
use support::*;
use testkit::Seq;

const CYCLES: usize = 20;

#[test]
fn every_message_is_accounted_for_across_kill_9() {
    let path = socket_path("kill9");
    run(false, &path.url());
}

#[test]
fn with_receipts_no_message_is_lost_silently_across_kill_9() {
    let path = socket_path("kill9r");
    run(true, &path.url());
}

#[test]
fn over_shared_memory_every_message_is_accounted_for_across_kill_9() {
    let name = shm_name("kill9");
    run(false, &name.url());
}

#[test]
fn over_shared_memory_with_receipts_no_message_is_lost_silently_across_kill_9() {
    let name = shm_name("kill9r");
    run(true, &name.url());
}

fn run(receipts: bool, listen: &str) {
    let seed = seed();
    println!("seed = {seed} (rerun with IPCHNL_SEED={seed})");
    let mut rng = Rng(seed);
    let started = Instant::now();

    let log = tempfile_path::TempFile::with("");
    let node = format!("accounted-{}", std::process::id());
    let mut args = vec!["--test-actors", "--sink-log", log.path(), "--node-name", &node];
    if receipts {
        args.push("--sink-receipts");
    }
    let start = || Serve::start(listen, &args);
    let mut receiver = start();

    let m = Arc::new(
        Manager::new(
            config("kill9-sender")
                .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(50))
                .dead_letter_capacity(10_000_000),
        )
        .unwrap(),
    );
    m.connect(&receiver.addr).unwrap();

    // The sender: numbered messages, as fast as the link takes them.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = std::thread::spawn({
        let (m, stop) = (m.clone(), stop.clone());
        move || {
            let (mut next, mut errors) = (1u64, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let Some(sink) = m.find_by_name("sink") else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                for _ in 0..64 {
                    if sink.send_timeout(Seq::new(next), Duration::from_millis(100)).is_err() {
                        errors.push(next);
                    }
                    next += 1;
                }
            }
            (next - 1, errors)
        }
    });

    // The killer: each incarnation is killed at a random point after it
    // has logged its first message (not after a fixed time, which a busy
    // machine may spend entirely on starting it and linking).
    let mut tail = LogTail::default();
    for _ in 0..CYCLES {
        let pid = receiver.pid() as u32;
        eventually("the receiver's first logged message", || tail.logged_by(&log.0, pid).then_some(()));
        std::thread::sleep(Duration::from_millis(rng.below(120)));
        receiver.kill9();
        std::thread::sleep(Duration::from_millis(rng.below(30)));
        receiver = start();
    }
    stop.store(true, Ordering::SeqCst);
    let (last, send_errors) = sender.join().unwrap();

    // Settle: the last incarnation has handled all it took. Until the link
    // to the one before is seen down (a busy machine may take a while), the
    // directory can still name that one's sink, and an ask of it fails.
    eventually("an answer from the last incarnation's sink", || {
        m.find_by_name("sink")?.ask(EchoReq::new(1, 0), HANG_GUARD).ok()
    });
    let dead: Vec<(u64, DeadLetterReason)> = m
        .dead_letters()
        .try_iter()
        .filter_map(|l| Some((l.msg.downcast_ref::<Seq>()?.n, l.reason)))
        .collect();
    let logged = read_log_by_process(&log.0);

    // Nothing twice, nothing out of order.
    let numbers: Vec<u64> = logged.iter().map(|(_, n)| *n).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "seed {seed}: log out of order or repeated");
    let in_log: HashSet<u64> = numbers.iter().copied().collect();
    let mut reported: HashMap<u64, DeadLetterReason> = HashMap::new();
    for (n, reason) in &dead {
        assert!(reported.insert(*n, *reason).is_none(), "seed {seed}: {n} reported twice");
    }
    for n in &send_errors {
        assert!(!reported.contains_key(n), "seed {seed}: {n} both refused and reported");
    }
    let refused: HashSet<u64> = send_errors.iter().copied().collect();

    // Delivered and reported: only if reported Unacknowledged.
    for n in &in_log {
        assert!(!refused.contains(n), "seed {seed}: {n} refused at send time yet delivered");
        if let Some(r) = reported.get(n) {
            assert_eq!(*r, DeadLetterReason::Unacknowledged, "seed {seed}: {n} delivered and reported {r:?}");
        }
    }

    // Neither logged nor reported: lost with a mailbox. Per incarnation, a
    // contiguous run right after its last logged message.
    let mut last_of: BTreeMap<u64, u32> = BTreeMap::new(); // last logged n -> pid
    let mut seen_pids = Vec::new();
    for (pid, n) in &logged {
        if seen_pids.last() != Some(pid) {
            seen_pids.push(*pid);
        }
        last_of.retain(|_, p| p != pid);
        last_of.insert(*n, *pid);
    }
    let lost: Vec<u64> = (1..=last)
        .filter(|n| !in_log.contains(n) && !reported.contains_key(n) && !refused.contains(n))
        .collect();
    let mut runs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for n in &lost {
        let after = last_of.range(..n).next_back().map(|(l, _)| *l);
        let after = after.unwrap_or_else(|| panic!("seed {seed}: {n} lost before anything was logged"));
        runs.entry(after).or_default().push(*n);
    }
    for (after, run) in &runs {
        let expected: Vec<u64> = (after + 1..after + 1 + run.len() as u64).collect();
        assert_eq!(run, &expected, "seed {seed}: what was lost after {after} is not a run right after it");
    }
    assert!(seen_pids.len() >= CYCLES, "seed {seed}: every incarnation killed had logged");
    if receipts {
        assert_eq!(lost, Vec::<u64>::new(), "seed {seed}: with receipts, nothing is lost silently");
    }
    println!(
        "receipts {receipts}: {last} sent in {:.1} s over {} incarnations: {} logged, {} reported ({} also logged), {} refused, {} lost with a mailbox",
        started.elapsed().as_secs_f64(),
        seen_pids.len(),
        in_log.len(),
        reported.len(),
        reported.keys().filter(|n| in_log.contains(n)).count(),
        refused.len(),
        lost.len()
    );
}

/// Reads a growing log from where it last stopped.
#[derive(Default)]
struct LogTail {
    offset: u64,
    partial: String,
}

impl LogTail {
    /// Whether a line of process `pid` was appended since the last call.
    fn logged_by(&mut self, path: &std::path::Path, pid: u32) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = std::fs::File::open(path) else { return false };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return false;
        }
        let mut more = String::new();
        let Ok(n) = file.read_to_string(&mut more) else { return false };
        self.offset += n as u64;
        self.partial.push_str(&more);
        let prefix = format!("{pid} ");
        let complete = self.partial.rfind('\n').map_or(0, |i| i + 1);
        let found = self.partial[..complete].lines().any(|l| l.starts_with(&prefix));
        self.partial.drain(..complete);
        found
    }
}
