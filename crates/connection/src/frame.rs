//! Frames: an 80-byte header, then a body. See `docs/WIRE.md` §3.

use msg_header::{ActorId, MsgError, MsgId, WireMsg};

/// Bytes of a frame's header, its 4-byte length included.
pub const FRAME_HEADER_LEN: usize = 80;

/// The default maximum size of a frame, header included: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// What a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// A message for an actor.
    Msg = 1,
    /// An acknowledgement only.
    Ack = 2,
    /// A refused message, with a reason.
    Nack = 3,
    /// A sign of life on an idle link.
    Heartbeat = 4,
    /// The sender's actors, in full or as changes.
    Directory = 5,
    /// A request to be told when an actor ends.
    Watch = 6,
    /// The orderly end of a link.
    Close = 7,
}

impl TryFrom<u8> for FrameKind {
    type Error = FrameError;

    fn try_from(v: u8) -> Result<Self, FrameError> {
        Ok(match v {
            1 => Self::Msg,
            2 => Self::Ack,
            3 => Self::Nack,
            4 => Self::Heartbeat,
            5 => Self::Directory,
            6 => Self::Watch,
            7 => Self::Close,
            other => return Err(FrameError::UnknownKind(other)),
        })
    }
}

/// Why a well-framed message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NackReason {
    /// The destination does not accept this message id.
    UnknownMsg = 1,
    /// The body does not decode as that message.
    BadBody = 2,
    /// No actor with this destination id.
    UnknownDst = 3,
    /// The destination's mailbox is full.
    MailboxFull = 4,
    /// The destination stopped.
    DstStopped = 5,
}

impl NackReason {
    /// The reason of a NACK's `flags`; `None` for a code this version does not know.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::UnknownMsg,
            2 => Self::BadBody,
            3 => Self::UnknownDst,
            4 => Self::MailboxFull,
            5 => Self::DstStopped,
            _ => return None,
        })
    }

    /// The name used in documents and logs, e.g. `mailbox_full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownMsg => "unknown_msg",
            Self::BadBody => "bad_body",
            Self::UnknownDst => "unknown_dst",
            Self::MailboxFull => "mailbox_full",
            Self::DstStopped => "dst_stopped",
        }
    }
}

impl std::fmt::Display for NackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frame's header, its length aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// What the frame is.
    pub kind: FrameKind,
    /// The reason code of a NACK; 0 otherwise.
    pub flags: u8,
    /// The message type (MSG, NACK).
    pub msg_id: MsgId,
    /// The destination actor.
    pub dst: ActorId,
    /// The source actor, or where replies go.
    pub src: ActorId,
    /// This frame's sequence number (MSG only).
    pub seq: u64,
    /// Cumulative acknowledgement.
    pub ack: u64,
    /// Correlation id (MSG), or the refused `seq` (NACK).
    pub corr: u64,
}

impl FrameHeader {
    /// A header of `kind` with every other field zero.
    pub const fn new(kind: FrameKind) -> Self {
        Self {
            kind,
            flags: 0,
            msg_id: MsgId::ZERO,
            dst: ActorId::NONE,
            src: ActorId::NONE,
            seq: 0,
            ack: 0,
            corr: 0,
        }
    }

    fn write(&self, len: u32, out: &mut [u8]) {
        out[0..4].copy_from_slice(&len.to_be_bytes());
        out[4] = self.kind as u8;
        out[5] = self.flags;
        out[6..8].fill(0);
        out[8..24].copy_from_slice(self.msg_id.as_bytes());
        out[24..40].copy_from_slice(&self.dst.to_bytes());
        out[40..56].copy_from_slice(&self.src.to_bytes());
        out[56..64].copy_from_slice(&self.seq.to_be_bytes());
        out[64..72].copy_from_slice(&self.ack.to_be_bytes());
        out[72..80].copy_from_slice(&self.corr.to_be_bytes());
    }

    /// Reads a header from the first [`FRAME_HEADER_LEN`] bytes of `b`.
    fn read(b: &[u8; FRAME_HEADER_LEN]) -> Result<Self, FrameError> {
        let id16 = |at: usize| -> [u8; 16] {
            let mut x = [0; 16];
            x.copy_from_slice(&b[at..at + 16]);
            x
        };
        let u64_at = |at: usize| -> u64 {
            let mut x = [0; 8];
            x.copy_from_slice(&b[at..at + 8]);
            u64::from_be_bytes(x)
        };
        Ok(Self {
            kind: FrameKind::try_from(b[4])?,
            flags: b[5],
            msg_id: MsgId::from_bytes(id16(8)),
            dst: ActorId::from_bytes(id16(24)),
            src: ActorId::from_bytes(id16(40)),
            seq: u64_at(56),
            ack: u64_at(64),
            corr: u64_at(72),
        })
    }
}

/// A decoded frame; its body borrows from the decoder's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The header.
    pub header: FrameHeader,
    /// The body.
    pub body: &'a [u8],
}

/// A frame could not be encoded or decoded. Decoding errors are framing
/// errors: the stream cannot be trusted any further and the link closes.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame would be (or claims to be) larger than the maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The frame's size, header included.
        len: u64,
        /// The maximum.
        max: usize,
    },
    /// The length field is smaller than a header.
    #[error("frame length {0} is shorter than a header")]
    TooShort(u32),
    /// The kind byte is not one this version knows.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// A message body could not be encoded.
    #[error("message body could not be encoded")]
    Body(#[source] MsgError),
}

/// Appends a frame of `header` and `body` to `out`.
pub fn encode_frame(
    header: &FrameHeader,
    body: &[u8],
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let total = FRAME_HEADER_LEN + body.len();
    if total > max {
        return Err(FrameError::TooLarge { len: total as u64, max });
    }
    let start = out.len();
    out.resize(start + FRAME_HEADER_LEN, 0);
    header.write((total - 4) as u32, &mut out[start..]);
    out.extend_from_slice(body);
    Ok(())
}

/// Appends a MSG frame of `header` whose body is `msg`'s fields as JSON,
/// encoded straight into `out`. On error `out` is left as it was.
pub fn encode_msg_frame(
    header: &FrameHeader,
    msg: &dyn WireMsg,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let start = out.len();
    out.resize(start + FRAME_HEADER_LEN, 0);
    if let Err(e) = msg.encode_body(out) {
        out.truncate(start);
        return Err(FrameError::Body(e));
    }
    let total = out.len() - start;
    if total > max {
        out.truncate(start);
        return Err(FrameError::TooLarge { len: total as u64, max });
    }
    header.write((total - 4) as u32, &mut out[start..]);
    Ok(())
}

/// Overwrites the `seq` and `ack` of the encoded frame at the start of
/// `frame`: they are known only when the frame is written to its link.
///
/// `frame` must start with a whole header (as written by the encoders).
pub fn patch_seq_ack(frame: &mut [u8], seq: u64, ack: u64) {
    if frame.len() >= FRAME_HEADER_LEN {
        frame[56..64].copy_from_slice(&seq.to_be_bytes());
        frame[64..72].copy_from_slice(&ack.to_be_bytes());
    }
}

/// Cuts frames out of a byte stream, refusing any larger than a maximum
/// before allocating anything for it.
#[derive(Clone, Copy, Debug)]
pub struct FrameDecoder {
    max: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames over `max` bytes, header included.
    pub fn new(max: usize) -> Self {
        Self { max: max.max(FRAME_HEADER_LEN) }
    }

    /// The maximum frame size.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The first frame in `buf` and the bytes it took, or `None` if `buf`
    /// does not hold a whole frame yet (read more and call again). An
    /// error means the stream is broken: close the link.
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Option<(Frame<'a>, usize)>, FrameError> {
        let Some(len) = buf.get(0..4) else { return Ok(None) };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        if (len as usize) < FRAME_HEADER_LEN - 4 {
            return Err(FrameError::TooShort(len));
        }
        let total = u64::from(len) + 4;
        if total > self.max as u64 {
            return Err(FrameError::TooLarge { len: total, max: self.max });
        }
        let total = total as usize;
        let Some(whole) = buf.get(..total) else {
            // Still check the kind early, so garbage is refused without
            // waiting for bytes that may never come.
            if let Some(&kind) = buf.get(4) {
                FrameKind::try_from(kind)?;
            }
            return Ok(None);
        };
        let mut head = [0; FRAME_HEADER_LEN];
        head.copy_from_slice(&whole[..FRAME_HEADER_LEN]);
        let header = FrameHeader::read(&head)?;
        Ok(Some((Frame { header, body: &whole[FRAME_HEADER_LEN..] }, total)))
    }
}
