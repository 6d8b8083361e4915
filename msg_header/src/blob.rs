//! [`Bytes`]: binary fields that travel beside a message's JSON, not in it.
//!
//! A message body with blobs (`docs/WIRE.md` §3, "Bodies with blobs"):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | `00` (a JSON body begins with `{`) |
//! | 1 | 4 | `J`, the length of the JSON, big-endian |
//! | 5 | `J` | the fields as JSON; the `k`-th [`Bytes`] written is the number `k` |
//! | 5 + `J` | 4 | `N`, the number of blobs, big-endian |
//! | 9 + `J` | 8 × `N` | each blob's length, big-endian |
//! | … | | the blobs, back to back, to the end of the body |
//!
//! [`encode_body`](crate::encode_body) writes that layout when the message
//! has a [`Bytes`] field, and the plain JSON body otherwise;
//! [`decode_body`](crate::decode_body) reads both. Which form a [`Bytes`]
//! takes is settled by a scope on the thread: inside one, it is a blob
//! reference; outside (a message's full JSON, `serde_json` called directly),
//! a JSON array of numbers, as a `Vec<u8>` would be.

use std::cell::RefCell;
use std::fmt;
use std::ops::Deref;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::MsgError;

/// Bytes that cross processes as raw bytes after the message's JSON, not as
/// a JSON array of numbers (a third of the size, and a copy rather than a
/// parse). Clones share the bytes, so sending a message inside a process
/// moves them without a copy.
///
/// ```
/// use msg_header::Bytes;
/// let image = Bytes::from(vec![137, 80, 78, 71]);
/// let shared = image.clone(); // no copy
/// assert_eq!(&shared[..], &[137, 80, 78, 71]);
/// assert_eq!(image.len(), 4);
/// // Outside a message body it is JSON like a `Vec<u8>`.
/// assert_eq!(serde_json::to_string(&image)?, "[137,80,78,71]");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(bytes::Bytes);

impl Bytes {
    /// No bytes.
    pub const fn new() -> Self {
        Self(bytes::Bytes::new())
    }

    /// Bytes of a `'static` slice, not copied.
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        Self(bytes::Bytes::from_static(bytes))
    }

    /// A copy of `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        Self(bytes::Bytes::copy_from_slice(bytes))
    }

    /// The shared buffer, as the `bytes` crate's type.
    pub fn into_inner(self) -> bytes::Bytes {
        self.0
    }

    /// The bytes as a vector: without a copy if no clone shares them.
    pub fn into_vec(self) -> Vec<u8> {
        self.0.into()
    }
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v.into())
    }
}

impl From<bytes::Bytes> for Bytes {
    fn from(b: bytes::Bytes) -> Self {
        Self(b)
    }
}

impl From<&'static [u8]> for Bytes {
    fn from(b: &'static [u8]) -> Self {
        Self::from_static(b)
    }
}

impl From<Bytes> for bytes::Bytes {
    fn from(b: Bytes) -> Self {
        b.0
    }
}

impl fmt::Debug for Bytes {
    /// Up to 32 bytes as `bytes` shows them; longer ones by their length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= 32 {
            fmt::Debug::fmt(&self.0, f)
        } else {
            write!(f, "Bytes({} bytes)", self.0.len())
        }
    }
}

/// What the thread is encoding or decoding.
enum Scope {
    /// The blobs of the body being written, in order.
    Encoding(Vec<bytes::Bytes>),
    /// The blobs of the body being read.
    Decoding(Vec<bytes::Bytes>),
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
    /// A buffer the body being decoded lies in ([`with_shared_body`]).
    static SHARED: RefCell<Option<bytes::Bytes>> = const { RefCell::new(None) };
}

/// Runs `decode` with `buffer` as what the bodies it decodes lie in: their
/// blobs are then slices of it, shared, not copies. (A link's message that
/// came in parts is decoded so: its 64 MiB are not copied again.)
///
/// ```
/// use msg_header::{Bytes, MsgError, with_shared_body};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Picture { pixels: Bytes }
/// let mut body = Vec::new();
/// msg_header::encode_body(&Picture { pixels: Bytes::from(vec![7; 1000]) }, &mut body)?;
/// let buffer = bytes::Bytes::from(body);
/// let picture: Picture = with_shared_body(&buffer, || {
///     msg_header::decode_blobs(&buffer, |json| Ok(serde_json::from_slice(json)?))
/// })?;
/// assert!(buffer.as_ptr_range().contains(&picture.pixels.as_ptr()), "a slice of the buffer");
/// # Ok::<(), MsgError>(())
/// ```
pub fn with_shared_body<R>(buffer: &bytes::Bytes, decode: impl FnOnce() -> R) -> R {
    let outer = SHARED.with(|s| s.borrow_mut().replace(buffer.clone()));
    struct Back(Option<bytes::Bytes>);
    impl Drop for Back {
        fn drop(&mut self) {
            let outer = self.0.take();
            SHARED.with(|s| *s.borrow_mut() = outer);
        }
    }
    let _back = Back(outer);
    decode()
}

/// `data` as a slice of the shared buffer it lies in, or a copy.
fn share_or_copy(data: &[u8]) -> bytes::Bytes {
    let within = |buf: &bytes::Bytes| {
        let (b, d) = (buf.as_ptr() as usize, data.as_ptr() as usize);
        d >= b && d + data.len() <= b + buf.len()
    };
    SHARED.with(|s| match s.borrow().as_ref() {
        Some(buf) if !data.is_empty() && within(buf) => buf.slice_ref(data),
        _ => bytes::Bytes::copy_from_slice(data),
    })
}

/// Puts back the scope that was there before, however the closure ended.
struct Restore(Option<Scope>);

impl Drop for Restore {
    fn drop(&mut self) {
        let outer = self.0.take();
        SCOPE.with(|s| *s.borrow_mut() = outer);
    }
}

/// Runs `f` with `scope` as the thread's; returns what `f` returned and
/// the scope as `f` left it.
fn scoped<R>(scope: Scope, f: impl FnOnce() -> R) -> (R, Option<Scope>) {
    let outer = SCOPE.with(|s| s.borrow_mut().replace(scope));
    let restore = Restore(outer);
    let r = f();
    let inner = SCOPE.with(|s| s.borrow_mut().take());
    drop(restore);
    (r, inner)
}

/// The first byte of a body with blobs.
const MARK: u8 = 0;
/// The marker and the JSON's length.
const HEAD: usize = 5;

/// Writes a body with `write_json`: plain JSON if it wrote no [`Bytes`],
/// else the layout with blobs (see the module).
pub(crate) fn encode(
    out: &mut Vec<u8>,
    write_json: impl FnOnce(&mut Vec<u8>) -> Result<(), MsgError>,
) -> Result<(), MsgError> {
    let blobs = encode_split(out, write_json)?;
    let total: usize = blobs.iter().map(|b| b.len()).sum();
    out.reserve(total);
    for b in &blobs {
        out.extend_from_slice(b);
    }
    Ok(())
}

/// As [`encode`], but the blobs' bytes are not written: what `out` gets is
/// the body up to them (its JSON and the blobs' lengths), and the blobs
/// are returned, in order, to follow it (a large message is sent from
/// them, not from a copy). No blobs: a plain JSON body.
pub(crate) fn encode_split(
    out: &mut Vec<u8>,
    write_json: impl FnOnce(&mut Vec<u8>) -> Result<(), MsgError>,
) -> Result<Vec<Bytes>, MsgError> {
    let start = out.len();
    let (written, scope) = scoped(Scope::Encoding(Vec::new()), || write_json(out));
    written?;
    let Some(Scope::Encoding(blobs)) = scope else { return Ok(Vec::new()) };
    if blobs.is_empty() {
        return Ok(Vec::new());
    }
    let json_len = u32::try_from(out.len() - start).map_err(|_| MsgError::Blobs("JSON over 4 GiB"))?;
    let count = u32::try_from(blobs.len()).map_err(|_| MsgError::Blobs("over 2^32 blobs"))?;
    let mut head = [MARK; HEAD];
    head[1..].copy_from_slice(&json_len.to_be_bytes());
    out.splice(start..start, head);
    out.reserve(4 + 8 * blobs.len());
    out.extend_from_slice(&count.to_be_bytes());
    for b in &blobs {
        out.extend_from_slice(&(b.len() as u64).to_be_bytes());
    }
    Ok(blobs.into_iter().map(Bytes).collect())
}

/// Reads a body with `read_json` (which parses the JSON it is given): a
/// plain JSON body as it is, a body with blobs by handing `read_json` its
/// JSON with the blobs in scope, for the [`Bytes`] fields to take (copied
/// once, out of `body`, into one shared buffer; or, within
/// [`with_shared_body`], sliced out of it).
pub fn decode_blobs<T>(
    body: &[u8],
    read_json: impl FnOnce(&[u8]) -> Result<T, MsgError>,
) -> Result<T, MsgError> {
    if body.first() != Some(&MARK) {
        return scoped(Scope::Decoding(Vec::new()), || read_json(body)).0;
    }
    let (json, blobs) = split(body)?;
    scoped(Scope::Decoding(blobs), || read_json(json)).0
}

/// The JSON and the blobs of a body with blobs, every length checked
/// against what the body holds before anything is allocated.
fn split(body: &[u8]) -> Result<(&[u8], Vec<bytes::Bytes>), MsgError> {
    let mut rest = body.get(1..).ok_or(MsgError::Blobs("empty body"))?;
    let json_len = take_u32(&mut rest)? as usize;
    if rest.len() < json_len {
        return Err(MsgError::Blobs("the JSON's length passes the body"));
    }
    let (json, mut rest) = rest.split_at(json_len);
    let count = take_u32(&mut rest)? as usize;
    if count > rest.len() / 8 {
        return Err(MsgError::Blobs("more blob lengths than the body holds"));
    }
    let (lengths, data) = rest.split_at(count * 8);
    let mut ends = Vec::with_capacity(count);
    let mut end = 0usize;
    for len in lengths.chunks_exact(8) {
        let mut b = [0; 8];
        b.copy_from_slice(len);
        end = usize::try_from(u64::from_be_bytes(b))
            .ok()
            .and_then(|len| end.checked_add(len))
            .filter(|&e| e <= data.len())
            .ok_or(MsgError::Blobs("the blobs pass the body"))?;
        ends.push(end);
    }
    if end != data.len() {
        return Err(MsgError::Blobs("bytes after the last blob"));
    }
    let shared = share_or_copy(data);
    let mut start = 0;
    let blobs = ends
        .into_iter()
        .map(|end| {
            let blob = shared.slice(start..end);
            start = end;
            blob
        })
        .collect();
    Ok((json, blobs))
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, MsgError> {
    let Some((head, tail)) = rest.split_first_chunk::<4>() else {
        return Err(MsgError::Blobs("cut short"));
    };
    *rest = tail;
    Ok(u32::from_be_bytes(*head))
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let index = SCOPE.with(|s| match s.borrow_mut().as_mut() {
            Some(Scope::Encoding(blobs)) => {
                blobs.push(self.0.clone());
                Some(blobs.len() - 1)
            }
            _ => None,
        });
        match index {
            Some(k) => serializer.serialize_u64(k as u64),
            None => serializer.serialize_bytes(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    /// A blob reference inside a body with blobs; else an array of numbers
    /// (or bytes, from a format that has them). Needs a self-describing
    /// format, as JSON is.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BytesVisitor)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a blob number or an array of bytes")
    }

    fn visit_u64<E: de::Error>(self, k: u64) -> Result<Bytes, E> {
        let blob = SCOPE.with(|s| match s.borrow().as_ref() {
            Some(Scope::Decoding(blobs)) => usize::try_from(k).ok().and_then(|k| blobs.get(k).cloned()),
            _ => None,
        });
        blob.map(Bytes).ok_or_else(|| E::custom(format_args!("no blob {k} in this body")))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        // The hint comes from the input: trusted only so far.
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(Bytes::from(v))
    }
}

#[cfg(test)]
mod tests;
