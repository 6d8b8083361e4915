//! The clock that message timestamps use.

/// Nanoseconds of the system-wide monotonic clock (`CLOCK_MONOTONIC`).
///
/// Unlike `Instant`, its values are comparable between processes on one
/// machine, so a timestamp stamped by a server process can be set against
/// the client's; unlike the wall clock, it never steps backwards.
///
/// ```
/// let a = msg_header::now_ns();
/// let b = msg_header::now_ns();
/// assert!(b >= a);
/// ```
pub fn now_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // The monotonic clock counts from boot: both parts are non-negative and
    // u64 nanoseconds last 584 years.
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}
