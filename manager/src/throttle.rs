//! Warnings that cannot be used as an amplifier: each kind is logged at
//! most once per interval, with the count of those left out since, so a
//! peer that provokes a warning a thousand times a second costs the log
//! one line every ten seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

/// The interval between two warnings of a kind.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// When each kind of warning was last logged, and how many were left out since.
pub(crate) struct Throttle {
    interval: Duration,
    kinds: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(LOG_INTERVAL)
    }
}

impl Throttle {
    pub(crate) fn new(interval: Duration) -> Self {
        Self { interval, kinds: Mutex::default() }
    }

    /// Whether a warning of `kind` is logged now (at `now`): `Some(n)`,
    /// `n` of its kind having been left out since the last, or `None`
    /// (it is left out, and counted).
    pub(crate) fn allow(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut kinds = lock(&self.kinds);
        match kinds.get_mut(kind) {
            Some((last, left_out)) if now.duration_since(*last) < self.interval => {
                *left_out += 1;
                None
            }
            Some((last, left_out)) => {
                *last = now;
                Some(std::mem::take(left_out))
            }
            None => {
                kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

/// Logs a warning of a kind through a [`Throttle`]: `warn_throttled!(throttle,
/// "kind", fields.., "message")`; the line carries `left_out`, the count of
/// that kind left out since the last.
macro_rules! warn_throttled {
    ($throttle:expr, $kind:expr, $($arg:tt)+) => {
        if let Some(left_out) = $throttle.allow($kind, std::time::Instant::now()) {
            tracing::warn!(left_out, $($arg)+);
        }
    };
}
pub(crate) use warn_throttled;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_logged_once_an_interval_with_what_was_left_out() {
        let t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.allow("nack", t0), Some(0));
        for i in 1..=5 {
            assert_eq!(t.allow("nack", t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(t.allow("other", t0), Some(0), "kinds apart");
        assert_eq!(t.allow("nack", t0 + Duration::from_secs(10)), Some(5));
        assert_eq!(t.allow("nack", t0 + Duration::from_secs(11)), None);
    }
}
