//! `ipchnl bench`: the feasibility report, and its hidden child process.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bench::child::{self, Mode};
use bench::report::{self, Options, PathResult};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ipchnl::Addr;

use super::{Failure, Outcome};

/// Options of `ipchnl bench`.
#[derive(Args, Default)]
pub(crate) struct BenchArgs {
    /// At most N round trips per sample (samples are bounded by time).
    #[arg(long, value_name = "N", default_value_t = u64::MAX, hide_default_value = true)]
    count: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// A short run (about 10 seconds) with fewer, shorter samples.
    #[arg(long)]
    quick: bool,
    /// How long one sample runs, in milliseconds (default 400, quick 100).
    #[arg(long, hide = true)]
    sample_ms: Option<u64>,
    /// Also measure a `nats` path through this NATS server
    /// (nats://HOST:PORT; needs the `nats` feature), against a bare
    /// async-nats request/reply.
    #[arg(long, value_name = "ADDR")]
    nats: Option<String>,
    /// Also draw the round-trip latency distributions (percentile curves
    /// of each path beside its baseline) to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
    /// Wait at most this many seconds for the machine to settle before
    /// measuring (default 60, quick 15; 0: do not wait).
    #[arg(long, hide = true, value_name = "S")]
    settle_s: Option<u64>,
    /// Only the low-latency option (executors poll 100 µs before they
    /// sleep), against bare sockets that poll as long: the cross-thread
    /// manager uses it too, and the default-mode tcp and unix paths are
    /// left out. (Without it the report has both.)
    #[arg(long)]
    low_latency: bool,
    /// Only these paths (names as the table prints them, `large` for the
    /// large-message rows), comma-separated: for working on one of them.
    #[arg(long, hide = true, value_name = "NAMES", value_delimiter = ',')]
    only: Option<Vec<String>>,
}

/// Options of the hidden `ipchnl bench-child`.
#[derive(Args)]
pub(crate) struct ChildArgs {
    /// What to serve: ours, ours-low-latency or bare.
    #[arg(long)]
    mode: String,
    /// Where to listen.
    addrs: Vec<String>,
}

pub(crate) fn run(args: &BenchArgs) -> Outcome {
    let interrupted = Arc::new(AtomicBool::new(false));
    // A Ctrl-C stops the report between samples; the children, which
    // ignore it, are then stopped in order and clean up after themselves.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, interrupted.clone()).map_err(|e| Failure::run(e.to_string()))?;
    }
    let nats = args.nats.as_deref().map(super::parse_addr).transpose()?;
    if nats.as_ref().is_some_and(|a| !matches!(a, Addr::Nats(_))) {
        return Err(Failure::usage("--nats takes a nats://HOST:PORT address"));
    }
    let program = std::env::current_exe().map_err(|e| Failure::run(format!("cannot find myself: {e}")))?;
    let (rounds, sample) =
        if args.quick { (3, Duration::from_millis(100)) } else { (5, Duration::from_millis(400)) };
    let sample = args.sample_ms.map_or(sample, Duration::from_millis);
    let opts = Options {
        rounds,
        sample,
        max: args.count.max(1),
        child: (program, vec!["bench-child".into()]),
        interrupted: interrupted.clone(),
        nats,
        low_latency: args.low_latency,
        only: args.only.clone(),
    };
    // A build that just ended, or a hypervisor taking back the CPU it
    // lent, skews every figure for a while: wait for the machine to calm
    // down, and say so loudly if it does not.
    let wait = Duration::from_secs(args.settle_s.unwrap_or(if args.quick { 15 } else { 60 }));
    let settled = wait.is_zero()
        || bench::settle::wait_until_calm(wait, |busy, steal| {
            if !args.json {
                eprint!(
                    "\rwaiting for the machine to settle: {:>3.0}% busy, {:>3.0}% stolen ",
                    busy * 100.0,
                    steal * 100.0
                );
            }
            !interrupted.load(std::sync::atomic::Ordering::Relaxed)
        });
    if !args.json {
        eprint!("\r{:60}\r", "");
    }
    let machine = bench::machine();
    let unsettled = format!(
        "WARNING: the machine did not settle within {} s ({machine}): every figure may be skewed; run again when it is idle",
        wait.as_secs()
    );
    if !args.json {
        println!("ipchnl {}: {machine}", env!("CARGO_PKG_VERSION"));
        if !settled {
            println!("{unsettled}");
        }
    }
    let progress = ProgressBar::new(report::samples(rounds, opts.nats.is_some(), opts.low_latency));
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg:12} [{bar:30}] {pos}/{len} samples")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let results = report::run(&opts, |path| {
        progress.set_message(path.to_owned());
        progress.inc(1);
    });
    let results = results.map_err(|e| match e.as_str() {
        "interrupted" => Failure { message: "interrupted".into(), code: 130 },
        _ => Failure::run(format!("bench failed: {e}")),
    })?;
    progress.set_message("large");
    let large = if opts.wants("large") {
        Some(
            bench::large::run(&opts.child, rounds, sample.max(Duration::from_millis(200)))
                .map_err(|e| Failure::run(format!("bench failed: large: {e}")))?,
        )
    } else {
        None
    };
    progress.finish_and_clear();
    if let Some(file) = &args.plot {
        bench::plot::svg(&results, file).map_err(Failure::run)?;
    }
    let verdict = report::verdict(&results);
    if args.json {
        let out = Report {
            paths: &results,
            large: large.as_ref(),
            comparisons: report::comparisons(&results),
            machine: &machine,
            settled,
            verdict: &verdict,
        };
        let line = serde_json::to_string(&out).map_err(|e| Failure::run(e.to_string()))?;
        println!("{line}");
    } else {
        print_table(&results, rounds, sample);
        if let Some(large) = &large {
            print_large(large);
        }
        if !settled {
            println!("\n{unsettled}");
        }
        println!("\n{verdict}");
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Report<'a> {
    paths: &'a [PathResult],
    /// Messages of 16 MiB: streams, round trips beside them, memory.
    large: Option<&'a bench::large::LargeReport>,
    comparisons: Vec<report::Comparison>,
    machine: &'a str,
    /// Whether the machine was calm before the first sample.
    settled: bool,
    /// The answer in one line.
    verdict: &'a str,
}

fn print_large(large: &bench::large::LargeReport) {
    println!(
        "\nlarge: messages of {} MiB one way (a blob, sent in parts), low-latency mode",
        large.message_bytes >> 20
    );
    println!("{:<6} {:>10} {:>10} {:>7}  baseline", "path", "ours GB/s", "base GB/s", "ratio");
    for r in &large.rows {
        println!(
            "{:<6} {:>10.2} {:>10.2} {:>6.2}x  {}",
            r.transport, r.ours_gb_per_sec, r.baseline_gb_per_sec, r.ratio, r.baseline
        );
    }
    println!(
        "one copy of the bytes in memory, one thread: {:.2} GB/s, {:.2}x ours over unix (the most a path that copies them once reaches)",
        large.copy_gb_per_sec, large.copy_ratio
    );
    let line = |what: &str, idle: (u64, u64), busy: (u64, u64), beside: &str, ratio: f64| {
        let us = |ns: u64| ns as f64 / 1000.0;
        println!(
            "{what}: p50/p99 {:.1}/{:.1} µs alone, {:.1}/{:.1} µs {beside} (p99 {ratio:.2}x)",
            us(idle.0),
            us(idle.1),
            us(busy.0),
            us(busy.1)
        );
    };
    line(
        "round trips on the unix link",
        large.rtt_idle_ns,
        large.rtt_busy_ns,
        "beside the stream",
        large.rtt_p99_ratio,
    );
    line(
        "bare round trips on a socket of their own",
        large.bare_rtt_idle_ns,
        large.bare_rtt_busy_ns,
        "beside a bare stream on another",
        large.bare_rtt_p99_ratio,
    );
    // What a stream beside them costs our round trips beyond what it costs
    // bare ones on this machine (both CPUs busy with it).
    let beside = large.rtt_busy_ns.1 as f64 / large.bare_rtt_busy_ns.1.max(1) as f64;
    println!("beside a stream, our round trips' p99 is {beside:.2}x the bare ones'");
    println!(
        "memory per 64 MiB message in flight, peak above the start: sender {:.2}x, receiver {:.2}x its size",
        large.sender_rss_per_message, large.receiver_rss_per_message
    );
}

fn print_table(results: &[PathResult], rounds: usize, sample: Duration) {
    println!(
        "{rounds} alternating rounds of {} ms per sample; round trips in ns, streams in messages/s\n",
        sample.as_millis()
    );
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} | {:>11} {:>11} {:>6} {:>7} {:>7}",
        "path",
        "rtt p50",
        "p99",
        "bare p50",
        "bare p99",
        "ratio",
        "cpu/rt",
        "bare",
        "stream",
        "bare",
        "ratio",
        "cpu/msg",
        "bare"
    );
    for r in results {
        println!(
            "{:<16} {:>9} {:>9} {:>9} {:>9} {:>7.2}x {:>8.0} {:>8.0} | {:>11.0} {:>11.0} {:>5.2}x {:>7.0} {:>7.0}",
            r.name,
            r.rtt_ns.p50,
            r.rtt_ns.p99,
            r.baseline_rtt_ns.p50,
            r.baseline_rtt_ns.p99,
            r.ratio_p50,
            r.cpu_ns_per_rtt,
            r.baseline_cpu_ns_per_rtt,
            r.msgs_per_sec,
            r.baseline_msgs_per_sec,
            r.ratio_stream,
            r.cpu_ns_per_msg,
            r.baseline_cpu_ns_per_msg,
        );
    }
    println!(
        "\nratio: median over rounds of the per-round ratio, ipchnl / bare (round trip p50s, stream rates);\n\
         a round-trip ratio under 1.00x is faster than the baseline, a stream ratio under 1.00x slower."
    );
    println!(
        "cpu/rt, cpu/msg: CPU time in ns (user and system, every thread of this process and of the\n\
         processes it started) per round trip or streamed message, median over rounds: what\n\
         polling costs beside what it saves."
    );
    let handed: Vec<_> = results.iter().filter_map(|r| Some((r, r.hand_rolled.as_ref()?))).collect();
    if !handed.is_empty() {
        println!(
            "\nStreams against the hand-rolled pair (a socket reader decoding the same JSON and sending\n\
             each message through a crossbeam channel to a handler thread):\n"
        );
        println!(
            "{:<16} {:>11} {:>11} {:>6} {:>7} {:>7} {:>6}",
            "path", "stream", "hand", "ratio", "cpu/msg", "hand", "ratio"
        );
        for (r, h) in handed {
            println!(
                "{:<16} {:>11.0} {:>11.0} {:>5.2}x {:>7.0} {:>7.0} {:>5.2}x",
                r.name,
                r.msgs_per_sec,
                h.msgs_per_sec,
                h.ratio_stream,
                r.cpu_ns_per_msg,
                h.cpu_ns_per_msg,
                h.ratio_cpu_per_msg
            );
        }
    }
    let between = report::comparisons(results);
    if !between.is_empty() {
        println!("\nBetween paths:");
        for c in &between {
            println!("  {:>6.2}x  {}", c.ratio, c.what);
        }
    }
    println!("\nWhat each path measures (ours; bare):");
    for r in results {
        println!("  {:<16} {}\n  {:<16} bare: {}", r.name, r.ours, "", r.baseline);
    }
}

pub(crate) fn run_child(args: &ChildArgs) -> Outcome {
    let mode =
        Mode::parse(&args.mode).ok_or_else(|| Failure::usage(format!("unknown mode {:?}", args.mode)))?;
    let addrs: Vec<Addr> = args.addrs.iter().map(|a| super::parse_addr(a)).collect::<Result<_, _>>()?;
    child::run(mode, &addrs).map_err(Failure::run)
}
