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
    /// A message acknowledged earlier that its destination did not handle,
    /// returned to its sender with a reason.
    Dead = 8,
    /// A piece of a message larger than a frame; a MSG flagged
    /// [`LAST_PART`](crate::LAST_PART) ends it.
    Part = 9,
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
            8 => Self::Dead,
            9 => Self::Part,
            other => return Err(FrameError::UnknownKind(other)),
        })
    }
}

/// A frame's header, its length aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// What the frame is.
    pub kind: FrameKind,
    /// The reason code of a NACK or a DEAD; a message's first PART, or
    /// the MSG ending one sent in parts, sets bit 0; 0 otherwise.
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
    let len = u32::try_from(total - 4).map_err(|_| FrameError::TooLarge { len: total as u64, max })?;
    let start = out.len();
    out.resize(start + FRAME_HEADER_LEN, 0);
    header.write(len, &mut out[start..]);
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
    let len = u32::try_from(total - 4).ok().filter(|_| total <= max);
    let Some(len) = len else {
        out.truncate(start);
        return Err(FrameError::TooLarge { len: total as u64, max });
    };
    header.write(len, &mut out[start..]);
    Ok(())
}

/// As [`encode_msg_frame`], for a message that may be larger than a frame
/// (up to `max_encoded` bytes, header included). When it fits in
/// `max_frame`, `out` gets its whole frame and no blobs come back. When it
/// does not, `out` gets its header (whose length counts the whole) and
/// its body up to the bytes of its blobs, and the blobs come back, to
/// follow it: a link sends it in parts straight from them
/// ([`Session::send_large`](crate::Session::send_large)). On error `out`
/// is left as it was.
pub fn encode_msg_split(
    header: &FrameHeader,
    msg: &dyn WireMsg,
    max_frame: usize,
    max_encoded: usize,
    out: &mut Vec<u8>,
) -> Result<Vec<msg_header::Bytes>, FrameError> {
    let start = out.len();
    out.resize(start + FRAME_HEADER_LEN, 0);
    let blobs = match msg.encode_body_split(out) {
        Ok(blobs) => blobs,
        Err(e) => {
            out.truncate(start);
            return Err(FrameError::Body(e));
        }
    };
    let total = out.len() - start + blobs.iter().map(|b| b.len()).sum::<usize>();
    let len = u32::try_from(total - 4).ok().filter(|_| total <= max_encoded);
    let Some(len) = len else {
        out.truncate(start);
        return Err(FrameError::TooLarge { len: total as u64, max: max_encoded });
    };
    header.write(len, &mut out[start..]);
    if total > max_frame {
        return Ok(blobs);
    }
    for b in &blobs {
        out.extend_from_slice(b);
    }
    Ok(Vec::new())
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
        let total = self.frame_len(buf)?;
        let Some(whole) = total.and_then(|total| buf.get(..total)) else {
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
        Ok(Some((Frame { header, body: &whole[FRAME_HEADER_LEN..] }, whole.len())))
    }

    /// The header of the first frame in `buf` and the frame's whole length,
    /// header included, as soon as `buf` holds the header (its body may
    /// still be on the way); `None` before that. Checked as
    /// [`decode`](Self::decode) checks it.
    pub fn decode_header(&self, buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        let Some(total) = self.frame_len(buf)? else { return Ok(None) };
        let Some(head) = buf.first_chunk::<FRAME_HEADER_LEN>() else { return Ok(None) };
        Ok(Some((FrameHeader::read(head)?, total)))
    }

    /// The length of the frame `buf` begins with, header included, once
    /// its first four bytes are there.
    fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(len) = buf.first_chunk::<4>() else { return Ok(None) };
        let len = u32::from_be_bytes(*len);
        if (len as usize) < FRAME_HEADER_LEN - 4 {
            return Err(FrameError::TooShort(len));
        }
        let total = u64::from(len) + 4;
        if total > self.max as u64 {
            return Err(FrameError::TooLarge { len: total, max: self.max });
        }
        Ok(Some(total as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_req::EchoReq;
    use msg_header::{MsgType, NackReason};

    fn header() -> FrameHeader {
        FrameHeader {
            kind: FrameKind::Msg,
            flags: 0,
            msg_id: EchoReq::msg_id(),
            dst: ActorId::from_u128(0xa0a0_a0a0_a0a0_a0a0_0000_0000_0000_0001),
            src: ActorId::from_u128(0xb0b0_b0b0_b0b0_b0b0_0000_0000_0000_0002),
            seq: 7,
            ack: 5,
            corr: 3,
        }
    }

    fn encode(header: &FrameHeader, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(header, body, DEFAULT_MAX_FRAME, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trip() {
        let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        for (header, body) in [
            (header(), &b"{\"counter\":1}"[..]),
            (
                FrameHeader { flags: NackReason::MailboxFull as u8, ..FrameHeader::new(FrameKind::Nack) },
                b"full",
            ),
            (FrameHeader::new(FrameKind::Heartbeat), b""),
        ] {
            let wire = encode(&header, body);
            assert_eq!(wire.len(), FRAME_HEADER_LEN + body.len());
            assert_eq!(&wire[..4], &((76 + body.len()) as u32).to_be_bytes());
            let (frame, used) = decoder.decode(&wire).unwrap().unwrap();
            assert_eq!((frame.header, frame.body, used), (header, body, wire.len()));
        }
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let wire = encode(&header(), b"xy");
        assert_eq!(&wire[0..8], &[0, 0, 0, 78, 1, 0, 0, 0]);
        assert_eq!(&wire[8..24], EchoReq::msg_id().as_bytes());
        assert_eq!(&wire[24..40], &header().dst.to_bytes());
        assert_eq!(&wire[40..56], &header().src.to_bytes());
        assert_eq!(&wire[56..64], &7u64.to_be_bytes());
        assert_eq!(&wire[64..72], &5u64.to_be_bytes());
        assert_eq!(&wire[72..80], &3u64.to_be_bytes());
        assert_eq!(&wire[80..], b"xy");
    }

    #[test]
    fn reserved_bytes_are_ignored() {
        let mut wire = encode(&header(), b"");
        wire[6..8].copy_from_slice(&[0xff, 0xff]);
        let (frame, _) = FrameDecoder::new(DEFAULT_MAX_FRAME).decode(&wire).unwrap().unwrap();
        assert_eq!(frame.header, header());
    }

    #[test]
    fn partial_input_needs_more() {
        let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let wire = encode(&header(), b"body");
        for end in 0..wire.len() {
            assert!(decoder.decode(&wire[..end]).unwrap().is_none(), "{end} bytes");
        }
        // A second frame behind the first is left alone.
        let two = [wire.clone(), wire.clone()].concat();
        let (_, used) = decoder.decode(&two).unwrap().unwrap();
        assert_eq!(used, wire.len());
    }

    #[test]
    fn too_large_is_refused_from_the_length_alone() {
        let decoder = FrameDecoder::new(1000);
        // 4 bytes: no more is there to allocate from, so the check comes first.
        for len in [997u32, 1 << 20, u32::MAX] {
            match decoder.decode(&len.to_be_bytes()) {
                Err(FrameError::TooLarge { len: got, max: 1000 }) => assert_eq!(got, u64::from(len) + 4),
                other => panic!("length {len}: {other:?}"),
            }
        }
        // The largest allowed frame is not refused.
        assert!(decoder.decode(&996u32.to_be_bytes()).unwrap().is_none());
        let max = FrameDecoder::new(DEFAULT_MAX_FRAME);
        assert!(matches!(max.decode(&u32::MAX.to_be_bytes()), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn too_large_is_refused_by_the_encoder() {
        let mut out = vec![9];
        let err = encode_frame(&header(), &[0; 21], 100, &mut out).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 101, max: 100 }));
        assert_eq!(out, [9]);
        encode_frame(&header(), &[0; 20], 100, &mut out).unwrap();
        assert_eq!(out.len(), 101);
    }

    #[test]
    fn too_short_is_refused() {
        let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        for len in [0u32, 1, 75] {
            assert!(matches!(decoder.decode(&len.to_be_bytes()), Err(FrameError::TooShort(l)) if l == len));
        }
        assert!(decoder.decode(&76u32.to_be_bytes()).unwrap().is_none());
    }

    #[test]
    fn unknown_kind_is_refused() {
        let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        for kind in [0, 10, 0xff] {
            let mut wire = encode(&header(), b"{}");
            wire[4] = kind;
            assert!(matches!(decoder.decode(&wire), Err(FrameError::UnknownKind(k)) if k == kind));
            // Already with 5 bytes, before the rest of the frame comes.
            assert!(matches!(decoder.decode(&wire[..5]), Err(FrameError::UnknownKind(k)) if k == kind));
            // With 4, the kind is not there yet.
            assert!(decoder.decode(&wire[..4]).unwrap().is_none());
        }
    }

    #[test]
    fn encode_msg_frame_writes_the_json_body() {
        let req = EchoReq::new(1, 1000);
        let mut out = vec![0xee];
        encode_msg_frame(&header(), &req, DEFAULT_MAX_FRAME, &mut out).unwrap();
        let body = br#"{"counter":1,"req_timestamp_ns":1000}"#;
        assert_eq!(out[0], 0xee);
        assert_eq!(&out[1..], encode(&header(), body));
        let (frame, _) = FrameDecoder::new(DEFAULT_MAX_FRAME).decode(&out[1..]).unwrap().unwrap();
        assert_eq!(frame.body, body);
    }

    #[test]
    fn encode_msg_frame_leaves_out_untouched_when_too_large() {
        let req = EchoReq::new(u64::MAX, u64::MAX);
        let mut out = b"before".to_vec();
        let err = encode_msg_frame(&header(), &req, FRAME_HEADER_LEN + 10, &mut out).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 90, .. }), "{err:?}");
        assert_eq!(out, b"before");
    }

    #[test]
    fn patch_seq_ack_rewrites_only_those_fields() {
        let mut wire = encode(&header(), b"{}");
        patch_seq_ack(&mut wire, 42, 41);
        let (frame, _) = FrameDecoder::new(DEFAULT_MAX_FRAME).decode(&wire).unwrap().unwrap();
        assert_eq!(frame.header, FrameHeader { seq: 42, ack: 41, ..header() });
        assert_eq!(frame.body, b"{}");

        // Too short to hold a header: left as it is.
        let mut short = wire[..79].to_vec();
        patch_seq_ack(&mut short, 1, 1);
        assert_eq!(short, wire[..79]);
    }
}
