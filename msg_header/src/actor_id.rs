//! Per-instance actor ids.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ParseIdError;
use crate::hash_id::{Hex16Visitor, Hex32, parse_hex16};

/// The high half of every id this process makes: random, so two processes
/// (or two runs of one) practically never share it.
static PROCESS_PREFIX: LazyLock<u64> = LazyLock::new(|| {
    getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness (practically impossible on Linux): fall back on
        // what still differs between processes.
        let pid = u64::from(std::process::id());
        crate::now_ns().rotate_left(17) ^ pid.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }) | 1 // never zero, so no id equals `ActorId::NONE`
});

/// The low half: a counter, so ids of one process never repeat.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Identifies one actor instance, unique across processes.
///
/// The high 64 bits are random per process, the low 64 bits count up. The
/// text form is 32 hex digits.
///
/// ```
/// # mod ipchnl { pub use msg_header::ActorId; }
/// use ipchnl::ActorId;
/// let (a, b) = (ActorId::new(), ActorId::new());
/// assert_ne!(a, b);
/// assert!(!a.is_none());
/// assert_eq!(a, a.to_string().parse()?);
/// # Ok::<(), msg_header::ParseIdError>(())
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(u128);

impl ActorId {
    /// "No actor": the source of a message sent from outside any actor.
    pub const NONE: Self = Self(0);

    /// A fresh id, never returned before by any process (with overwhelming
    /// probability).
    #[allow(clippy::new_without_default)] // `Default` is `NONE`, not a fresh id
    pub fn new() -> Self {
        let low = NEXT.fetch_add(1, Ordering::Relaxed);
        Self((u128::from(*PROCESS_PREFIX) << 64) | u128::from(low))
    }

    /// Rebuilds an id from its numeric form.
    pub const fn from_u128(v: u128) -> Self {
        Self(v)
    }

    /// The numeric form.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Rebuilds an id from its 16-byte big-endian form (as in a frame).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_be_bytes(bytes))
    }

    /// The 16-byte big-endian form (as in a frame).
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// Whether this is [`ActorId::NONE`].
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Hex32::new(&self.to_bytes()).as_str())
    }
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorId({self})")
    }
}

impl FromStr for ActorId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex16(s).map(Self::from_bytes)
    }
}

impl Serialize for ActorId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Hex32::new(&self.to_bytes()).as_str())
    }
}

impl<'de> Deserialize<'de> for ActorId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(Hex16Visitor("ActorId")).map(Self::from_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..1000).map(|_| ActorId::new()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<ActorId> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn bytes_and_json_round_trip() {
        let id = ActorId::new();
        assert_eq!(ActorId::from_bytes(id.to_bytes()), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json.len(), 34);
        assert_eq!(serde_json::from_str::<ActorId>(&json).unwrap(), id);
    }
}
