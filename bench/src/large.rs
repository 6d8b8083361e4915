//! The `large` path: messages of 16 MiB one way, ours (an `EchoBytes` whose
//! payload is a blob, sent in parts) against a bare socket moving the same
//! bytes (an 8-byte length, then the bytes, read whole by the other side),
//! over TCP, a Unix socket and shared memory; small round trips while a
//! large transfer runs on the same link, against the same without it; and
//! the memory each side holds per 64 MiB message in flight.
//!
//! Both sides of every comparison run in the same run, alternating.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actor::ActorSender;
use manager::Addr;
use msg_header::Bytes;
use serde::Serialize;
use server::{EchoBytes, EchoedBytes};

use crate::bare;
use crate::child::{ChildProc, Mode};
use crate::median;
use crate::report::{GUARD, Remote};

/// The size of the streamed messages.
pub const LARGE: usize = 16 << 20;
/// The size of the message whose memory is measured: the largest a link
/// carries by default (64 MiB), less room for its JSON and blob table.
pub const HUGE: usize = (64 << 20) - 4096;

/// One transport's large stream: ours against its baseline, per round.
#[derive(Clone, Debug, Serialize)]
pub struct LargeRow {
    /// `tcp`, `unix` or `shm`.
    pub transport: &'static str,
    /// Ours, GB/s (median over rounds).
    pub ours_gb_per_sec: f64,
    /// What it is compared with.
    pub baseline: &'static str,
    /// The baseline, GB/s (median over rounds).
    pub baseline_gb_per_sec: f64,
    /// The median over rounds of ours / the baseline.
    pub ratio: f64,
}

/// The large path's figures.
#[derive(Clone, Debug, Serialize)]
pub struct LargeReport {
    /// The size of each streamed message.
    pub message_bytes: usize,
    /// The streams.
    pub rows: Vec<LargeRow>,
    /// One thread copying the message's bytes from one buffer into another
    /// (both allocated once), GB/s (median over rounds): what a path that
    /// copies them once, as sending a `Bytes` into shared memory must, can
    /// reach at most.
    pub copy_gb_per_sec: f64,
    /// The median over rounds of that copy's rate over ours on a Unix
    /// socket (the shm row's baseline) measured just before.
    pub copy_ratio: f64,
    /// Small round trips over the Unix link alone: p50 and p99, ns.
    pub rtt_idle_ns: (u64, u64),
    /// The same while 16 MiB messages stream on that link: p50 and p99, ns.
    pub rtt_busy_ns: (u64, u64),
    /// Busy p99 over idle p99 (median over rounds).
    pub rtt_p99_ratio: f64,
    /// The floor of the same on this machine: bare round trips (one
    /// thread a side, polling as ours do) on a Unix socket of their own,
    /// alone: p50 and p99, ns.
    pub bare_rtt_idle_ns: (u64, u64),
    /// Those bare round trips while a bare stream of 16 MiB messages runs
    /// between the same two processes on another socket: p50 and p99, ns.
    pub bare_rtt_busy_ns: (u64, u64),
    /// Bare busy p99 over bare idle p99 (median over rounds).
    pub bare_rtt_p99_ratio: f64,
    /// The sender's resident memory at its peak, above what it held before
    /// the message existed, per 64 MiB message in flight (one at a time).
    pub sender_rss_per_message: f64,
    /// The receiver's (the child's) likewise.
    pub receiver_rss_per_message: f64,
}

/// Runs the large path: `rounds` of each stream for `sample` each.
pub fn run(
    child: &(std::path::PathBuf, Vec<String>),
    rounds: usize,
    sample: Duration,
) -> Result<LargeReport, String> {
    let (program, args) = child;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dir = std::env::temp_dir();
    let sock = |tag: &str| Addr::Unix(dir.join(format!("ipchnl-large-{}-{tag}.sock", std::process::id())));
    let tcp = Addr::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let shm = Addr::Shm(format!("large-{}", std::process::id()));
    let bare = ChildProc::start(program, &args, Mode::Bare, &[tcp.clone(), sock("bare")])?;
    let data = Bytes::from(vec![0x5a; LARGE]);
    // Each transport on a link of its own, to a child of its own, alone:
    // another link's polling (shared memory is polled) takes no CPU from it.
    let mut per: [Vec<(f64, f64)>; 3] = Default::default();
    let mut unix_rates = Vec::new();
    let mut copies = Vec::new();
    for (i, addr) in [tcp, sock("ours"), shm].into_iter().enumerate() {
        let ours = ChildProc::start(program, &args, Mode::OursLowLatency, &[addr])?;
        let link = Remote::connect("large", &ours.addrs[0], true)?;
        let sink = link.manager().find_by_name("bytes-sink").ok_or("no bytes-sink")?;
        stream(&sink, &data, Instant::now())?;
        for round in 0..rounds {
            let bare_stream = || {
                bare::large_stream(&bare.addrs[i], Instant::now() + sample, LARGE).map_err(|e| e.to_string())
            };
            // Ours first in even rounds, the bare socket first in odd ones.
            let early = if i < 2 && round % 2 == 1 { Some(bare_stream()?) } else { None };
            let rate = stream(&sink, &data, Instant::now() + sample)?;
            let base = match (i, early) {
                // Shared memory against ours over a Unix socket, measured
                // just before.
                (2, _) => unix_rates.get(round).copied().unwrap_or(f64::NAN),
                (_, Some(base)) => base,
                (_, None) => bare_stream()?,
            };
            if i == 1 {
                unix_rates.push(rate);
            }
            if i == 2 {
                copies.push((copy_rate(&data, Instant::now() + sample), base));
            }
            per[i].push((rate, base));
        }
    }
    let rows = per
        .iter()
        .zip(["tcp", "unix", "shm"])
        .map(|(p, transport)| LargeRow {
            transport,
            ours_gb_per_sec: median(&p.iter().map(|r| r.0 / 1e9).collect::<Vec<_>>()),
            baseline: if transport == "shm" {
                "ours over a Unix socket"
            } else {
                "a bare socket: a length, then the bytes"
            },
            baseline_gb_per_sec: median(&p.iter().map(|r| r.1 / 1e9).collect::<Vec<_>>()),
            ratio: median(&p.iter().map(|r| r.0 / r.1.max(1.0)).collect::<Vec<_>>()),
        })
        .collect();

    // Round trips on a Unix link, alone and while a stream runs on it.
    let ours = ChildProc::start(program, &args, Mode::OursLowLatency, &[sock("ours-rtt")])?;
    let unix = Remote::connect("large-rtt", &ours.addrs[0], true)?;
    let sink = unix.manager().find_by_name("bytes-sink").ok_or("no bytes-sink")?;
    stream(&sink, &data, Instant::now())?;
    // The bare round trips wait as ours do: both sides poll for the
    // low-latency spin before they sleep (a bare server that blocks at once
    // would pay a wake-up per round trip that ours does not).
    drop(bare);
    let bare = ChildProc::start(program, &args, Mode::BareSpinning, &[sock("bare-rtt")])?;
    let mut bare_echo = bare::SocketEcho::connect(&bare.addrs[0], crate::child::low_latency_spin())
        .map_err(|e| e.to_string())?;
    let (mut ours_rtt, mut bare_rtt) = (Beside::default(), Beside::default());
    for _ in 0..rounds {
        let (sink, data) = (sink.clone(), data.clone());
        ours_rtt.round(
            || unix.rtt(Instant::now() + sample, u64::MAX),
            move |until| stream(&sink, &data, until).map(drop),
        )?;
        let to = bare.addrs[0].clone();
        bare_rtt.round(
            || bare_echo.run(Instant::now() + sample, u64::MAX).map_err(|e| e.to_string()),
            move |until| bare::large_stream(&to, until, LARGE).map(drop).map_err(|e| e.to_string()),
        )?;
    }

    // Memory per 64 MiB message in flight, one at a time over the Unix link.
    drop(data);
    let (sender, receiver) = memory_per_message(&sink, ours.pid())?;
    Ok(LargeReport {
        message_bytes: LARGE,
        rows,
        copy_gb_per_sec: median(&copies.iter().map(|c| c.0 / 1e9).collect::<Vec<_>>()),
        copy_ratio: median(&copies.iter().map(|c| c.0 / c.1.max(1.0)).collect::<Vec<_>>()),
        rtt_idle_ns: quantiles(&ours_rtt.idle),
        rtt_busy_ns: quantiles(&ours_rtt.busy),
        rtt_p99_ratio: median(&ours_rtt.ratios),
        bare_rtt_idle_ns: quantiles(&bare_rtt.idle),
        bare_rtt_busy_ns: quantiles(&bare_rtt.busy),
        bare_rtt_p99_ratio: median(&bare_rtt.ratios),
        sender_rss_per_message: sender,
        receiver_rss_per_message: receiver,
    })
}

/// Round trips alone and beside a stream, over rounds.
struct Beside {
    idle: hdrhistogram::Histogram<u64>,
    busy: hdrhistogram::Histogram<u64>,
    /// Busy p99 over idle p99, per round.
    ratios: Vec<f64>,
}

impl Default for Beside {
    fn default() -> Self {
        Self { idle: crate::histogram(), busy: crate::histogram(), ratios: Vec::new() }
    }
}

impl Beside {
    /// One round: `rtt` alone, then again while a thread runs `stream`
    /// (given when to stop, 50 ms at a time) until it is done.
    fn round(
        &mut self,
        mut rtt: impl FnMut() -> Result<hdrhistogram::Histogram<u64>, String>,
        stream: impl Fn(Instant) -> Result<(), String> + Send + 'static,
    ) -> Result<(), String> {
        let alone = rtt()?;
        let stop = Arc::new(AtomicBool::new(false));
        let streaming = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    stream(Instant::now() + Duration::from_millis(50))?;
                }
                Ok::<(), String>(())
            })
        };
        // Once the stream is under way.
        std::thread::sleep(Duration::from_millis(20));
        let during = rtt();
        stop.store(true, Ordering::Relaxed);
        streaming.join().map_err(|_| "the stream panicked".to_string())??;
        let during = during?;
        self.ratios.push(during.value_at_quantile(0.99) as f64 / alone.value_at_quantile(0.99).max(1) as f64);
        let _ = self.idle.add(&alone);
        let _ = self.busy.add(&during);
        Ok(())
    }
}

fn quantiles(h: &hdrhistogram::Histogram<u64>) -> (u64, u64) {
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
}

/// Sends `data` to `sink` until `until` (once at least), its replies to an
/// inbox; waits for them all; bytes per second.
pub fn stream(sink: &ActorSender, data: &Bytes, until: Instant) -> Result<f64, String> {
    let (me, replies) = ActorSender::inbox("large");
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        sink.send_from(EchoBytes::new(sent, data.clone()), &me).map_err(|e| e.to_string())?;
        sent += 1;
        if Instant::now() >= until {
            break;
        }
    }
    for _ in 0..sent {
        let reply = replies.recv_timeout(GUARD).map_err(|_| "a large message went unanswered".to_string())?;
        if reply.msg.downcast::<EchoedBytes>().is_err() {
            return Err("an answer that is not EchoedBytes".into());
        }
    }
    Ok((sent * data.len() as u64) as f64 / start.elapsed().as_secs_f64())
}

/// Copies `data` into a buffer of its size until `until` (once at least);
/// bytes per second.
fn copy_rate(data: &[u8], until: Instant) -> f64 {
    let mut to = vec![0u8; data.len()];
    let start = Instant::now();
    let mut copied = 0u64;
    loop {
        to.copy_from_slice(data);
        std::hint::black_box(&mut to);
        copied += data.len() as u64;
        if Instant::now() >= until {
            break;
        }
    }
    copied as f64 / start.elapsed().as_secs_f64()
}

/// Peak resident memory above the start, per 64 MiB message, of this
/// process and of the child `pid`: a message made, asked one at a time,
/// three times.
fn memory_per_message(sink: &ActorSender, pid: u32) -> Result<(f64, f64), String> {
    let before = (rss(std::process::id()), rss(pid));
    let stop = Arc::new(AtomicBool::new(false));
    let peaks = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    let sampler = {
        let (stop, peaks) = (stop.clone(), peaks.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peaks[0].fetch_max(rss(std::process::id()), Ordering::Relaxed);
                peaks[1].fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut result = Ok(());
    for tag in 0..3 {
        let data = Bytes::from(vec![0xa5; HUGE]);
        if let Err(e) = sink.ask::<EchoBytes>(EchoBytes::new(tag, data), GUARD) {
            result = Err(e.to_string());
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    result?;
    let per = |peak: u64, base: u64| peak.saturating_sub(base) as f64 / HUGE as f64;
    Ok((per(peaks[0].load(Ordering::Relaxed), before.0), per(peaks[1].load(Ordering::Relaxed), before.1)))
}

/// A process's resident memory in bytes (`VmRSS`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
