//! Messages larger than a frame (`docs/WIRE.md` §3, "Large messages"):
//! sent as PART frames and a last MSG, one message at a time each way on a
//! link, with other frames between their pieces.
//!
//! [`Outgoing`] cuts a message into its pieces as the output drains;
//! [`Assembly`] puts one together, checking each piece against the rules.
//! The [`Session`](crate::Session) drives both.

use std::time::Instant;

use msg_header::Bytes;

use crate::output::Output;
use crate::{FRAME_HEADER_LEN, FrameHeader, FrameKind, ProtocolError, patch_seq_ack};

/// The flag of a message's first PART (whose body begins with the length
/// of the whole message's body).
pub const FIRST_PART: u8 = 0x01;
/// The flag of the MSG that ends a message sent in parts.
pub const LAST_PART: u8 = 0x01;
/// Bytes of a message's body one PART carries at most (fewer if the
/// largest frame is smaller): small enough that a frame queued behind one
/// waits little.
pub const PART_BODY: usize = 64 << 10;
/// The length of the whole body, at the start of a first PART's body.
const TOTAL_LEN: usize = 8;

/// A message being sent in parts: its encoding as one (oversized) MSG
/// frame, as a head (the header and the body up to its blobs' bytes) and
/// the blobs that follow it; how much of its body has gone; and what the
/// caller keeps for it.
pub(crate) struct Outgoing<T> {
    head: Vec<u8>,
    blobs: Vec<Bytes>,
    /// Body bytes sent.
    sent: usize,
    /// Where the next byte is: a segment (0: the head's body, then the
    /// blobs) and an offset in it.
    at: (usize, usize),
    pub(crate) msg: T,
}

/// What [`Outgoing::next_piece`] wrote.
pub(crate) enum Piece {
    /// A PART: more follows.
    Part,
    /// The last MSG, with this sequence number.
    Last,
}

impl<T> Outgoing<T> {
    /// `head` and `blobs` as `encode_msg_split` gives them (or a whole
    /// oversized frame and no blobs).
    pub(crate) fn new(head: Vec<u8>, blobs: Vec<Bytes>, msg: T) -> Self {
        Self { head, blobs, sent: 0, at: (0, 0), msg }
    }

    fn segment(&self, i: usize) -> Option<&[u8]> {
        match i {
            0 => Some(self.head.get(FRAME_HEADER_LEN..).unwrap_or_default()),
            i => self.blobs.get(i - 1).map(|b| &b[..]),
        }
    }

    fn total(&self) -> usize {
        self.head.len().saturating_sub(FRAME_HEADER_LEN) + self.blobs.iter().map(|b| b.len()).sum::<usize>()
    }

    /// Appends the body's next `n` bytes to `out`: the blobs' from where
    /// they lie if `share`.
    fn copy_next(&mut self, out: &mut Output, mut n: usize, share: bool) {
        while n > 0 {
            let (i, off) = self.at;
            let Some(seg) = self.segment(i) else { return };
            let take = (seg.len() - off).min(n);
            let end = seg.len();
            match i.checked_sub(1).and_then(|b| self.blobs.get(b)) {
                Some(blob) => out.push_blob(blob, off..off + take, share),
                None => out.tail().extend_from_slice(&seg[off..off + take]),
            }
            n -= take;
            self.sent += take;
            self.at = if off + take == end { (i + 1, 0) } else { (i, off + take) };
        }
    }

    /// Appends the next piece, at most `part` body bytes, to `out`: a PART,
    /// or (when what is left fits) the last MSG, numbered `seq`. `ack` is
    /// the acknowledgement every frame carries. The blobs' bytes go from
    /// where they lie if `share`.
    pub(crate) fn next_piece(
        &mut self,
        out: &mut Output,
        part: usize,
        ack: u64,
        seq: u64,
        share: bool,
    ) -> Piece {
        let total = self.total();
        let first = self.sent == 0;
        let room = if first { part - TOTAL_LEN } else { part };
        let take = (total - self.sent).min(room);
        let last = self.sent + take == total && !first;
        let (kind, flags, seq) = match (first, last) {
            (_, true) => (FrameKind::Msg, LAST_PART, seq),
            (true, _) => (FrameKind::Part, FIRST_PART, 0),
            (false, false) => (FrameKind::Part, 0, 0),
        };
        let head = out.tail();
        let start = head.len();
        head.extend_from_slice(&self.head[..FRAME_HEADER_LEN]);
        let len = FRAME_HEADER_LEN - 4 + take + if first { TOTAL_LEN } else { 0 };
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        head[start..start + 4].copy_from_slice(&len.to_be_bytes());
        head[start + 4] = kind as u8;
        head[start + 5] = flags;
        patch_seq_ack(&mut head[start..], seq, ack);
        if first {
            head.extend_from_slice(&(total as u64).to_be_bytes());
        }
        self.copy_next(out, take, share);
        if last { Piece::Last } else { Piece::Part }
    }
}

/// A message coming in parts: the header its pieces share, the length
/// its first part announced, the body so far.
pub(crate) struct Assembly {
    header: FrameHeader,
    total: usize,
    pub(crate) body: Vec<u8>,
    /// When its last piece came.
    pub(crate) at: Instant,
}

/// What a piece asks of the session before it is taken.
pub(crate) struct Need {
    /// How many bytes the body under way holds more once it is taken.
    pub(crate) bytes: usize,
}

impl Assembly {
    /// The bytes the body under way holds: its buffer is made for the
    /// whole announced length at once (never moved as it grows, and what
    /// is not yet written is not resident), and charged as it fills.
    pub(crate) fn held(&self) -> usize {
        self.body.len()
    }

    /// Checks the piece of `header` and `body` against `under_way` (the
    /// message being put together, if any) and the largest message; what
    /// taking it needs.
    pub(crate) fn check(
        under_way: Option<&Self>,
        header: &FrameHeader,
        body: &[u8],
        max_message: usize,
    ) -> Result<Need, ProtocolError> {
        let first = header.kind == FrameKind::Part && header.flags & FIRST_PART != 0;
        match under_way {
            None if !first => Err(ProtocolError::BadPart("a part with no first part before it")),
            None => {
                let total = total_of(body)?;
                if total > max_message {
                    return Err(ProtocolError::MessageTooLarge { len: total, max: max_message });
                }
                let bytes = body.len() - TOTAL_LEN;
                if bytes > total {
                    return Err(ProtocolError::BadPart("a part past the announced length"));
                }
                Ok(Need { bytes })
            }
            Some(a) => a.check_later(header, body.len()),
        }
    }

    /// Checks a later piece (not a first part) of `header` whose body is
    /// `len` bytes against this message: what taking it needs.
    pub(crate) fn check_later(&self, header: &FrameHeader, len: usize) -> Result<Need, ProtocolError> {
        if header.kind == FrameKind::Part && header.flags & FIRST_PART != 0 {
            return Err(ProtocolError::BadPart("a first part while another message is under way"));
        }
        let same = |h: &FrameHeader| (h.msg_id, h.dst, h.src, h.corr);
        if same(header) != same(&self.header) {
            return Err(ProtocolError::BadPart("a part of another message"));
        }
        let after = self.body.len() + len;
        let last = header.kind == FrameKind::Msg;
        if after > self.total || (last && after != self.total) {
            return Err(ProtocolError::BadPart("parts that do not add up to the announced length"));
        }
        Ok(Need { bytes: len })
    }

    /// Starts a message with its first part (checked by [`check`](Self::check)).
    pub(crate) fn start(header: &FrameHeader, body: &[u8], now: Instant) -> Self {
        // `check` read the length: it is there.
        let total = total_of(body).unwrap_or(0);
        let data = &body[TOTAL_LEN.min(body.len())..];
        let mut v = Vec::with_capacity(total);
        v.extend_from_slice(data);
        Self { header: *header, total, body: v, at: now }
    }

    /// Adds a later piece (checked by [`check`](Self::check)).
    pub(crate) fn push(&mut self, body: &[u8], now: Instant) {
        self.body.extend_from_slice(body);
        self.at = now;
    }
}

fn total_of(body: &[u8]) -> Result<usize, ProtocolError> {
    let Some(len) = body.first_chunk::<TOTAL_LEN>() else {
        return Err(ProtocolError::BadPart("a first part without the message's length"));
    };
    usize::try_from(u64::from_be_bytes(*len))
        .map_err(|_| ProtocolError::BadPart("a length past this machine's"))
}
