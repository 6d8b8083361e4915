//! Before measuring: wait for the machine to settle (a build that just
//! ended, or a hypervisor that takes back the CPU it lent it, skews every
//! figure for a while), and say so when it does not.

use std::time::{Duration, Instant};

/// CPU time of the whole machine, in clock ticks: busy (user, nice,
/// system, irq, softirq), idle (idle, iowait) and stolen by the hypervisor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// Ticks spent running something.
    pub busy: u64,
    /// Ticks spent idle.
    pub idle: u64,
    /// Ticks the hypervisor gave another guest.
    pub steal: u64,
}

/// The first (`cpu `) line of `/proc/stat`.
pub fn parse_cpu_line(stat: &str) -> Option<CpuTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    Some(CpuTicks { busy: at(0) + at(1) + at(2) + at(5) + at(6), idle: at(3) + at(4), steal: at(7) })
}

/// How busy the machine was between two readings: the busy and stolen
/// fractions of all its CPU time.
pub fn busy_between(a: CpuTicks, b: CpuTicks) -> (f64, f64) {
    let busy = b.busy.saturating_sub(a.busy) as f64;
    let steal = b.steal.saturating_sub(a.steal) as f64;
    let total = busy + steal + b.idle.saturating_sub(a.idle) as f64;
    if total == 0.0 { (0.0, 0.0) } else { (busy / total, steal / total) }
}

/// The machine is calm enough to measure: under a fifth of its CPU busy,
/// and under a twentieth stolen.
pub fn is_calm(busy: f64, steal: f64) -> bool {
    busy < 0.2 && steal < 0.05
}

/// Waits, up to `at_most`, until the machine has been calm for a second;
/// `tick` hears each second's busy and stolen fractions, and says whether
/// to go on waiting (`false`: stop now, as if settled). Whether it settled.
pub fn wait_until_calm(at_most: Duration, mut tick: impl FnMut(f64, f64) -> bool) -> bool {
    let read = || std::fs::read_to_string("/proc/stat").ok().as_deref().and_then(parse_cpu_line);
    let deadline = Instant::now() + at_most;
    let Some(mut before) = read() else { return true };
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let Some(now) = read() else { return true };
        let (busy, steal) = busy_between(before, now);
        if !tick(busy, steal) || is_calm(busy, steal) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        before = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machines_cpu_time_is_read_from_its_first_line() {
        let stat = "cpu  100 5 50 1000 20 1 2 30 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_cpu_line(stat), Some(CpuTicks { busy: 158, idle: 1020, steal: 30 }));
        assert_eq!(parse_cpu_line("intr 1 2"), None);
        let a = CpuTicks { busy: 100, idle: 100, steal: 0 };
        let b = CpuTicks { busy: 150, idle: 140, steal: 10 };
        assert_eq!(busy_between(a, b), (0.5, 0.1));
        assert!(!is_calm(0.5, 0.1) && is_calm(0.1, 0.0));
        assert!(std::fs::read_to_string("/proc/stat").ok().as_deref().and_then(parse_cpu_line).is_some());
    }
}
