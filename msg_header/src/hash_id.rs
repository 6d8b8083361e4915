//! Ids that are hashes of names: message, protocol and protocol-set ids.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::ParseIdError;

/// What kind of thing a [`HashId`] names; keeps message ids and protocol ids
/// apart in the type system.
pub trait IdKind: 'static {
    /// Shown by `Debug`, e.g. `MsgId`.
    const KIND: &'static str;
}

/// The kind of [`MsgId`].
#[derive(Debug)]
pub enum MsgKind {}

impl IdKind for MsgKind {
    const KIND: &'static str = "MsgId";
}

/// Identifies a message type: the first 16 bytes of SHA-256 of its wire name.
pub type MsgId = HashId<MsgKind>;

/// The kind of [`NodeId`].
#[derive(Debug)]
pub enum NodeKind {}

impl IdKind for NodeKind {
    const KIND: &'static str = "NodeId";
}

/// Identifies a node (a manager): the first 16 bytes of SHA-256 of its
/// node name.
pub type NodeId = HashId<NodeKind>;

/// A 16-byte id derived from a name by SHA-256.
///
/// Its text form (`Display`, `FromStr`, JSON) is 32 lower-case hex digits,
/// the same as `printf %s NAME | sha256sum | cut -c1-32`.
pub struct HashId<K: IdKind> {
    bytes: [u8; 16],
    kind: PhantomData<fn() -> K>,
}

impl<K: IdKind> HashId<K> {
    /// Length of the binary form, in bytes.
    pub const LEN: usize = 16;
    /// Length of the text form, in hex digits.
    pub const TEXT_LEN: usize = 32;
    /// The all-zero id, which no name hashes to in practice; marks "no id".
    pub const ZERO: Self = Self::from_bytes([0; 16]);

    /// Hashes `name`. This costs a SHA-256 (about 70 ns): compute an id once
    /// per type and keep it, as the message macros do.
    ///
    /// ```
    /// # mod ipchnl { pub use msg_header::MsgId; }
    /// use ipchnl::MsgId;
    /// assert_eq!(
    ///     MsgId::of_name("echo_req::EchoReq").to_string(),
    ///     "49772469a3a94e48fb73da57469c677d"
    /// );
    /// ```
    pub fn of_name(name: &str) -> Self {
        let digest = Sha256::digest(name.as_bytes());
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self::from_bytes(bytes)
    }

    /// Wraps raw bytes, as read from a frame header.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self { bytes, kind: PhantomData }
    }

    /// The raw bytes, as written into a frame header.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    fn write_hex(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Hex32::new(&self.bytes).as_str())
    }
}

/// The 32-hex-digit text of a 16-byte id, on the stack.
pub(crate) struct Hex32([u8; 32]);

impl Hex32 {
    pub(crate) fn new(bytes: &[u8; 16]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0; 32];
        for (i, b) in bytes.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(b >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
        }
        Self(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII hex digits were written: always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<K: IdKind> Clone for HashId<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: IdKind> Copy for HashId<K> {}

impl<K: IdKind> PartialEq for HashId<K> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<K: IdKind> Eq for HashId<K> {}

impl<K: IdKind> PartialOrd for HashId<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: IdKind> Ord for HashId<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl<K: IdKind> Hash for HashId<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl<K: IdKind> Default for HashId<K> {
    fn default() -> Self {
        Self::ZERO
    }
}

impl<K: IdKind> fmt::Display for HashId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_hex(f)
    }
}

impl<K: IdKind> fmt::Debug for HashId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", K::KIND)?;
        self.write_hex(f)?;
        f.write_str(")")
    }
}

impl<K: IdKind> FromStr for HashId<K> {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex16(s).map(Self::from_bytes)
    }
}

/// Parses exactly 32 hex digits into 16 bytes.
pub(crate) fn parse_hex16(s: &str) -> Result<[u8; 16], ParseIdError> {
    if s.len() != 32 {
        return Err(ParseIdError::Length(s.len()));
    }
    let mut bytes = [0; 16];
    hex::decode_to_slice(s, &mut bytes).map_err(|_| ParseIdError::NotHex)?;
    Ok(bytes)
}

impl<K: IdKind> Serialize for HashId<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(Hex32::new(&self.bytes).as_str())
        } else {
            serializer.serialize_bytes(&self.bytes)
        }
    }
}

impl<'de, K: IdKind> Deserialize<'de> for HashId<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(Hex16Visitor(K::KIND)).map(Self::from_bytes)
    }
}

/// Reads the 32-hex-digit text form of a 16-byte id.
pub(crate) struct Hex16Visitor(pub(crate) &'static str);

impl Visitor<'_> for Hex16Visitor {
    type Value = [u8; 16];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} as 32 hex digits", self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_hex16(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_is_fixed_length() {
        let id = MsgId::of_name("x");
        let text = id.to_string();
        assert_eq!(text.len(), MsgId::TEXT_LEN);
        assert_eq!(text.parse::<MsgId>().unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("MsgId({text})"));
    }

    #[test]
    fn bad_text_is_a_typed_error() {
        assert_eq!("abc".parse::<MsgId>(), Err(ParseIdError::Length(3)));
        let not_hex = "zz".repeat(16);
        assert_eq!(not_hex.parse::<MsgId>(), Err(ParseIdError::NotHex));
    }

    #[test]
    fn json_form_is_a_hex_string() {
        let id = MsgId::of_name("x");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<MsgId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<MsgId>("[1,2,3]").is_err());
        assert!(serde_json::from_str::<MsgId>("\"00\"").is_err());
    }
}
