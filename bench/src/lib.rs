//! The measurements of `ipchnl bench` and of the cargo benchmarks: the
//! paths a message takes, their bare baselines, the second process, and
//! alternating rounds, percentiles, ratios and the machine they ran on.
//!
//! The benchmarks compare a subject with a baseline measured in the same
//! run, alternating them (A B A B ...) so that a noisy neighbour hurts both
//! alike, and report the median over rounds of the per-round ratio with
//! its min–max.
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

pub mod actors;
pub mod bare;
pub mod bare_shm;
pub mod child;
pub mod flood;
pub mod large;
#[cfg(feature = "nats")]
pub mod nats;
pub mod plot;
pub mod report;
pub mod settle;

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// A histogram of 1 ns to 1 h, three significant figures (values past
/// the bound are recorded as the bound).
#[allow(clippy::expect_used)] // invariant: 1 <= 1 h in ns, and 3 significant figures, are valid
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds and precision")
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `median (min–max)` of per-round ratios.
pub fn summary(ratios: &[f64]) -> String {
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2}x ({:.2}-{:.2})", median(ratios), min, max)
}

/// The machine: CPU model, CPUs this process may use, load average.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let mut out = String::new();
    let _ = write!(out, "{model}, {cpus} CPUs allowed, load average {}", load.join(" "));
    out
}

/// Pins the calling thread (and the threads it starts afterwards) to CPU
/// `cpu`, if this machine has it; whether it did.
pub fn pin_to_cpu(cpu: usize) -> bool {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    cpu < std::thread::available_parallelism().map_or(1, |n| n.get())
        && rustix::thread::sched_setaffinity(None, &set).is_ok()
}

/// How many alternating rounds to run: `IPCHNL_BENCH_ROUNDS`, at least 5.
pub fn rounds() -> usize {
    std::env::var("IPCHNL_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(7).max(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(summary(&[1.0, 2.0, 3.0]), "2.00x (1.00-3.00)");
    }
}
