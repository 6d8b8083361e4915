//! The wire between two managers, specified byte for byte in `docs/WIRE.md`.
//!
//! Everything here is free of I/O: bytes go in, frames, events and bytes
//! come out, and randomness (handshake nonces) is given by the caller. The
//! manager's sockets are a thin layer around it, and tests run it in
//! memory.
//!
//! * [`Handshake`]: the client or server side of the opening exchange,
//!   with optional mutual HMAC-SHA256 authentication.
//! * [`FrameHeader`], [`encode_frame`], [`FrameDecoder`]: length-prefixed
//!   frames with a hard maximum size, checked before any allocation.
//! * [`DirectoryUpdate`], [`CloseBody`]: the JSON bodies of control frames.
//! * [`NoiseHandshake`], [`Secure`]: encrypted links, a Noise handshake
//!   keyed by the shared secret and AEAD records that carry the frames
//!   (not yet offered by the manager's links).
//!
//! # Examples
//!
//! ```
//! use connection::{FrameDecoder, FrameHeader, FrameKind, encode_frame, DEFAULT_MAX_FRAME};
//!
//! let header = FrameHeader { seq: 1, ..FrameHeader::new(FrameKind::Msg) };
//! let mut wire = Vec::new();
//! encode_frame(&header, b"{}", DEFAULT_MAX_FRAME, &mut wire)?;
//!
//! let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
//! // Half a frame is not an error: it needs more bytes.
//! assert!(decoder.decode(&wire[..10])?.is_none());
//! let (frame, used) = decoder.decode(&wire)?.expect("a whole frame");
//! assert_eq!((frame.header, frame.body, used), (header, &b"{}"[..], wire.len()));
//! # Ok::<(), connection::FrameError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

pub mod blocking;
mod bodies;
mod frame;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod limits;
mod output;
mod parts;
mod secure;
mod session;

pub use bodies::{CloseBody, DirEntry, DirectoryUpdate};
pub use frame::{
    DEFAULT_MAX_FRAME, FRAME_HEADER_LEN, Frame, FrameDecoder, FrameError, FrameHeader, FrameKind,
    encode_frame, encode_msg_frame, encode_msg_split, patch_seq_ack,
};
pub use handshake::{
    AUTH, DEAD, ENCRYPT, ENCRYPT_REQUIRED, Handshake, HandshakeConfig, HandshakeError, Incarnation, MAGIC,
    NODE_KEYS, PeerHello, Role, Secret, VERSION_MAX, VERSION_MIN, client_nonce, starts_hello,
};
#[doc(hidden)]
pub use limits::show as limits_show;
pub use limits::{LimitRow, LinkLimits, show_bytes, show_count, show_duration};
/// Why a NACK refused a message (defined beside the message header, so
/// that actors and their errors can name it without the wire).
pub use msg_header::NackReason;
pub use parts::{FIRST_PART, LAST_PART, PART_BODY};
pub use secure::{
    MAX_PLAIN, MAX_RECORD, NOISE_PATTERN, NOISE_PATTERN_KEYS, NodeKeys, NoiseHandshake, RECORD_HEADER_LEN,
    Secure, SecureCounters, SecureError, TAG_LEN,
};
pub use session::{
    BudgetKind, CloseReason, Event, LimitKind, NACK_CODES, PeerCloseReason, ProtocolError, READ_BUFFER_BASE,
    Session, SessionCounters,
};
