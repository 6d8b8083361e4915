//! The properties that `cargo fuzz` checks on the wire, as plain
//! functions of bytes (the `fuzzing` feature; not an API, and free to
//! change).
//!
//! Each function takes any bytes at all and must not panic on any of them,
//! except where an `assert!` states an invariant of the wire and finds it
//! broken: that is a bug in this crate, never in its input. They are
//! called by the libFuzzer targets in the repository's `fuzz/fuzz_targets/`
//! (`fuzz/run.sh` runs them on nightly), and by its `tests/fuzz_corpus.rs`
//! on stable, with every file of the committed corpus
//! `fuzz/corpus/<target>/` and every crash kept in
//! `fuzz/regressions/<target>/`.
//!
//! * [`frames`]: the frame decoder, fed a byte stream cut into reads of
//!   any size.
//! * [`handshake`]: one handshake fed anything, or a real client and server
//!   with their messages tampered with on the way.
//! * [`session`]: a link session (a server, its handshake done by a real
//!   HELLO) fed any frames in reads of any size, with its limits small.
//!
//! [`seeds`] gives the hand-made inputs the corpus started from. The
//! bodies of messages are fuzzed where every message type is known
//! (`testkit`'s `fuzzing` feature).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)] // asserting is the point

use std::hash::{DefaultHasher, Hasher};

use msg_header::{ActorId, MsgId, NodeId, UnhandledReason};
use protocol::ProtocolId;

use crate::{
    AUTH, CloseReason, DEAD, DirEntry, DirectoryUpdate, ENCRYPT, Event, FRAME_HEADER_LEN, FrameDecoder,
    FrameHeader, FrameKind, Handshake, HandshakeConfig, HandshakeError, Incarnation, LinkLimits, MAGIC,
    NackReason, Role, Secret, Session, encode_frame,
};

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/// The frame-size limits [`frames`] picks from with the low 3 bits of its
/// first byte: one below a header (the decoder raises it to a header),
/// exactly a header, one byte of body, and a few larger.
const FRAME_MAXES: [usize; 8] = [0, FRAME_HEADER_LEN, FRAME_HEADER_LEN + 1, 100, 128, 256, 1024, 4096];

/// What a stream decoded into.
#[derive(Debug, Default, PartialEq, Eq)]
struct Decoded {
    /// Each frame's header and its bytes on the wire, header included.
    frames: Vec<(FrameHeader, Vec<u8>)>,
    /// The error that broke the stream, as its `Debug` text.
    error: Option<String>,
    /// Without an error: the bytes of an incomplete last frame.
    rest: Vec<u8>,
}

/// The frame decoder, reading a byte stream the way a socket reader does.
///
/// Input: one byte whose low 3 bits pick the maximum frame size (0, which
/// the decoder raises to a header, 80, 81, 100, 128, 256, 1024 or 4096)
/// and whose high 5 bits are a count `n`; then `n` bytes
/// giving the sizes of successive reads (`1 + byte`, cycling; with none,
/// one read takes everything); then the stream.
///
/// Each read is appended to a buffer, the whole frames at its start are
/// decoded and drained, and the first error ends the stream (a legal
/// outcome). Invariants:
///
/// * the frames, the error and the leftover bytes are exactly those of
///   decoding the whole stream at once: where the reads end changes
///   nothing;
/// * a decoded frame takes its header and body, no more, and no more than
///   the maximum;
/// * re-encoding a decoded frame with [`encode_frame`] gives back its bytes
///   (reserved bytes zeroed) and decodes to the same frame.
pub fn frames(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let max = FRAME_MAXES[usize::from(first & 7)];
    let (sizes, stream) = rest.split_at(usize::from(first >> 3).min(rest.len()));
    let decoder = FrameDecoder::new(max);
    assert!(decoder.max() >= max.max(FRAME_HEADER_LEN), "the decoder's maximum is at least a header");

    let whole = decode_whole(&decoder, stream);
    let chunked = decode_chunked(&decoder, stream, sizes);
    assert_eq!(whole, chunked, "reading in pieces decodes the same as reading at once");
    for (header, wire) in &whole.frames {
        check_reencode(&decoder, header, wire);
    }
}

/// Checks what one successful decode returned, from a buffer `buf`.
fn check_decoded(decoder: &FrameDecoder, buf: &[u8], header: &FrameHeader, body: &[u8], used: usize) {
    assert_eq!(used, FRAME_HEADER_LEN + body.len(), "a frame is its header and its body");
    assert!(used <= buf.len() && used <= decoder.max(), "a frame fits the buffer and the maximum");
    assert_eq!(&buf[FRAME_HEADER_LEN..used], body, "the body is the bytes after the header");
    assert_eq!(buf[4], header.kind as u8, "the kind is byte 4");
}

/// Decodes `stream` from one buffer holding all of it.
fn decode_whole(decoder: &FrameDecoder, stream: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    let mut at = 0;
    loop {
        let buf = &stream[at..];
        match decoder.decode(buf) {
            Ok(Some((frame, used))) => {
                check_decoded(decoder, buf, &frame.header, frame.body, used);
                out.frames.push((frame.header, buf[..used].to_vec()));
                at += used;
            }
            Ok(None) => {
                out.rest = buf.to_vec();
                return out;
            }
            Err(e) => {
                out.error = Some(format!("{e:?}"));
                return out;
            }
        }
    }
}

/// Decodes `stream` arriving in reads of the sizes `sizes` gives.
fn decode_chunked(decoder: &FrameDecoder, stream: &[u8], sizes: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    let mut buf = Vec::new();
    let mut at = 0;
    let mut reads = 0;
    while at < stream.len() {
        let size = match sizes {
            [] => stream.len(),
            _ => 1 + usize::from(sizes[reads % sizes.len()]),
        };
        reads += 1;
        let end = at.saturating_add(size).min(stream.len());
        buf.extend_from_slice(&stream[at..end]);
        at = end;
        loop {
            match decoder.decode(&buf) {
                Ok(Some((frame, used))) => {
                    check_decoded(decoder, &buf, &frame.header, frame.body, used);
                    out.frames.push((frame.header, buf[..used].to_vec()));
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(format!("{e:?}"));
                    return out;
                }
            }
        }
    }
    out.rest = buf;
    out
}

/// Re-encodes a decoded frame and decodes it again.
fn check_reencode(decoder: &FrameDecoder, header: &FrameHeader, wire: &[u8]) {
    let body = &wire[FRAME_HEADER_LEN..];
    let mut again = vec![0xee];
    let encoded = encode_frame(header, body, decoder.max(), &mut again);
    assert!(encoded.is_ok(), "a decoded frame encodes again: {encoded:?}");
    assert_eq!(again[0], 0xee, "encoding appends");
    let again = &again[1..];
    let mut expected = wire.to_vec();
    expected[6..8].fill(0);
    assert_eq!(again, expected, "re-encoding gives the same bytes, reserved bytes zeroed");
    match decoder.decode(again) {
        Ok(Some((frame, used))) => {
            assert_eq!((frame.header, frame.body, used), (*header, body, again.len()), "decodes back");
        }
        other => panic!("a re-encoded frame does not decode: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------

/// The shared secret of `docs/WIRE.md` §5.
const SECRET: &[u8] = b"s3cret";
/// A secret that is not [`SECRET`].
const OTHER_SECRET: &[u8] = b"not the s3cret";
/// HELLO, and HELLO_ACK without a MAC.
const HELLO_LEN: usize = 76;
/// HELLO_ACK with its MAC.
const HELLO_ACK_AUTH_LEN: usize = 108;
/// AUTH.
const AUTH_LEN: usize = 40;
/// The type of a HELLO.
const TYPE_HELLO: u8 = 1;
/// The type of a HELLO_ACK.
const TYPE_HELLO_ACK: u8 = 2;
/// The type of an AUTH.
const TYPE_AUTH: u8 = 3;

/// The version ranges a one-sided [`handshake`] picks its own from.
const VERSION_RANGES: [(u8, u8); 4] = [(1, 1), (0, 255), (2, 5), (1, 0)];

/// What one side of a handshake is, as `docs/WIRE.md` §5 has it: the
/// client `alpha` (incarnation `11`s, nonce `aa`s), the server `beta`
/// (`22`s, `bb`s).
#[derive(Clone, Copy, Debug)]
struct Identity {
    role: Role,
    name: &'static str,
    incarnation: [u8; 16],
    nonce: [u8; 32],
}

/// The client of `docs/WIRE.md` §5.
const ALPHA: Identity =
    Identity { role: Role::Client, name: "alpha", incarnation: [0x11; 16], nonce: [0xaa; 32] };
/// The server of `docs/WIRE.md` §5.
const BETA: Identity =
    Identity { role: Role::Server, name: "beta", incarnation: [0x22; 16], nonce: [0xbb; 32] };

/// The client's first Noise message of an encrypted link, as a record.
const NOISE_FIRST_LEN: usize = 2 + 48;

/// One side of a handshake, and what it has read and sent, checked at
/// every step.
struct Side {
    hs: Handshake,
    id: Identity,
    node_id: NodeId,
    secret: Option<&'static [u8]>,
    versions: (u8, u8),
    /// The error of the read that failed, once one has.
    error: Option<HandshakeError>,
    /// The bytes `read` said it took.
    consumed: Vec<u8>,
    /// The bytes `take_output` gave.
    sent: Vec<u8>,
    /// How many messages it has sent.
    messages: usize,
}

impl Side {
    fn new(id: Identity, secret: Option<&'static [u8]>, versions: (u8, u8)) -> Self {
        let node_id = NodeId::of_name(id.name);
        let mut config = HandshakeConfig::new(node_id, Incarnation(id.incarnation));
        config.secret = secret.and_then(Secret::new);
        (config.version_min, config.version_max) = versions;
        let hs = Handshake::new(id.role, config, id.nonce);
        let mut side = Self {
            hs,
            id,
            node_id,
            secret,
            versions,
            error: None,
            consumed: Vec::new(),
            sent: Vec::new(),
            messages: 0,
        };
        assert_eq!(side.hs.role(), id.role);
        let hello = side.output();
        // A client speaks first; a server waits.
        assert_eq!(hello.is_empty(), id.role == Role::Server, "only a client has a HELLO at once");
        side.check_state();
        side
    }

    /// The messages this side sends, in order: their lengths and types.
    fn expected_messages(&self) -> &'static [(usize, u8)] {
        match (self.id.role, self.secret.is_some()) {
            (Role::Client, false) => &[(HELLO_LEN, TYPE_HELLO)],
            (Role::Client, true) => &[(HELLO_LEN, TYPE_HELLO), (AUTH_LEN, TYPE_AUTH)],
            (Role::Server, false) => &[(HELLO_LEN, TYPE_HELLO_ACK)],
            (Role::Server, true) => &[(HELLO_ACK_AUTH_LEN, TYPE_HELLO_ACK)],
        }
    }

    /// Gives `input` to the handshake, checks what it did, and returns
    /// what it has to send.
    fn read(&mut self, input: &[u8]) -> Vec<u8> {
        let was_done = self.hs.is_done();
        let result = self.hs.read(input);
        if let Some(first) = &self.error {
            assert_eq!(result.as_ref(), Err(first), "a failed handshake stays failed with the same error");
        }
        match result {
            Ok(used) => {
                assert!(used <= input.len(), "read took {used} of {} bytes", input.len());
                if used < input.len() {
                    assert!(self.hs.is_done(), "only a finished handshake leaves bytes (for frames)");
                }
                if was_done {
                    assert_eq!(used, 0, "a finished handshake takes nothing");
                }
                self.consumed.extend_from_slice(&input[..used]);
            }
            Err(e) => {
                assert!(!was_done, "a finished handshake does not fail: {e:?}");
                self.error.get_or_insert(e);
            }
        }
        let out = self.output();
        self.check_state();
        out
    }

    /// Takes the output and checks that it is the next message this side
    /// may send, with its own fields.
    fn output(&mut self) -> Vec<u8> {
        let out = self.hs.take_output();
        if out.is_empty() {
            return out;
        }
        assert!(self.error.is_none(), "a failed handshake sends nothing more");
        let expected = self.expected_messages();
        assert!(self.messages < expected.len(), "{:?} sent one message too many", self.id.role);
        let (len, kind) = expected[self.messages];
        // A peer that requires encryption: the client's first Noise
        // message (a record of 48 bytes) follows its AUTH at once.
        let noise = kind == TYPE_AUTH && out.len() == len + NOISE_FIRST_LEN;
        let len = if noise { len + NOISE_FIRST_LEN } else { len };
        assert_eq!((out.len(), out[..4] == MAGIC, out[4]), (len, true, kind), "message {}", self.messages);
        let capabilities = DEAD | if self.secret.is_some() { AUTH | ENCRYPT } else { 0 };
        match kind {
            TYPE_AUTH => {
                assert_eq!(&out[5..8], &[0; 3], "AUTH's reserved bytes are zero");
                if noise {
                    assert_eq!(&out[AUTH_LEN..AUTH_LEN + 2], &[0, 48], "the Noise message's record length");
                    assert!(!self.hs.is_done(), "an encrypted link is done after the Noise handshake");
                } else {
                    assert!(self.hs.is_done(), "a client sends AUTH once it is done");
                }
            }
            _ => {
                let version_ok = match kind {
                    TYPE_HELLO => (out[5], out[6]) == self.versions,
                    _ => (self.versions.0..=self.versions.1).contains(&out[5]) && out[6] == 0,
                };
                assert!(version_ok, "versions {:?} of {:?}", &out[5..7], self.versions);
                assert_eq!(out[7], 0, "reserved byte");
                assert_eq!(&out[8..12], &capabilities.to_be_bytes(), "capabilities");
                assert_eq!(&out[12..44], &self.id.nonce, "own nonce");
                assert_eq!(&out[44..60], self.node_id.as_bytes(), "own node id");
                assert_eq!(&out[60..76], &self.id.incarnation, "own incarnation");
            }
        }
        self.messages += 1;
        self.sent.extend_from_slice(&out);
        out
    }

    /// Checks what the handshake says of itself.
    fn check_state(&self) {
        let done = self.hs.is_done();
        assert_eq!(self.hs.peer().is_some(), done, "a peer is known exactly when done");
        if self.error.is_some() {
            assert!(!done, "a failed handshake is not done");
        }
        let Some(peer) = self.hs.peer() else { return };
        assert_eq!(
            self.messages,
            self.expected_messages().len(),
            "done, {:?} has sent all it sends",
            self.id.role
        );
        assert_ne!(peer.node_id, self.node_id, "a link to this node itself is refused");
        assert_eq!(peer.authenticated, self.secret.is_some(), "authenticated exactly with a secret");
        assert_eq!(
            peer.capabilities & AUTH != 0,
            self.secret.is_some(),
            "the peer offered AUTH iff we have a secret"
        );
        assert!(
            (self.versions.0..=self.versions.1).contains(&peer.version),
            "version {} not ours",
            peer.version
        );
    }
}

/// The handshake state machine, fed anything.
///
/// The high bit of the first byte picks the mode.
///
/// **One side** (high bit clear): the rest of the first byte picks the
/// role (bit 0: server), a secret (bit 1: `s3cret`) and this side's
/// version range (bits 2-3); the side is `alpha` or `beta` of
/// `docs/WIRE.md` §5, so the dumps there complete it. The rest of the
/// input is reads: a length byte, then that many bytes. Invariants, after
/// every read:
///
/// * `read` never takes more than it is given, and takes less only once
///   done (the rest are frames); once done it takes nothing;
/// * after an error every read returns the same error, nothing more is
///   sent, and `is_done()` is false;
/// * `peer()` is `Some` exactly when `is_done()`, and then the peer is
///   another node, authenticated exactly when there is a secret;
/// * the output is, in order, the messages this role sends (HELLO and
///   AUTH, or HELLO_ACK), each whole, with the magic, its own fields, and
///   zero reserved bytes; done, a side has sent all of them.
///
/// **In transit** (high bit set): a real client and server, with bit 0
/// giving the client `s3cret`, bit 1 the server a secret and bit 2 making
/// the server's another one. Their nonces come from a hash of the input.
/// The rest of the input tampers with each delivery (unchanged, split in
/// two, a byte flipped, truncated, dropped, bytes appended, doubled, or
/// replaced); once it runs out, deliveries are left alone. Invariants,
/// besides the one-sided ones:
///
/// * a side with a secret finishes only if the other has the same secret
///   and everything the MACs cover arrived unaltered: it took exactly what
///   was sent, and learnt the other's real node id and incarnation; the
///   server finishing means the client has too;
/// * with nothing tampered with, both finish if their secrets agree and
///   neither does if not.
pub fn handshake(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    if first & 0x80 == 0 {
        handshake_one_side(first, rest);
    } else {
        handshake_in_transit(first, data, rest);
    }
}

fn handshake_one_side(first: u8, mut rest: &[u8]) {
    let id = if first & 1 == 0 { ALPHA } else { BETA };
    let secret = (first & 2 != 0).then_some(SECRET);
    let versions = VERSION_RANGES[usize::from((first >> 2) & 3)];
    let mut side = Side::new(id, secret, versions);
    while let Some((&len, tail)) = rest.split_first() {
        let (piece, tail) = tail.split_at(usize::from(len).min(tail.len()));
        side.read(piece);
        rest = tail;
    }
}

/// Reads the bytes that drive the tampering; once they run out, every
/// delivery is left alone.
struct Tamper<'a>(std::slice::Iter<'a, u8>);

impl Tamper<'_> {
    fn byte(&mut self) -> Option<u8> {
        self.0.next().copied()
    }

    /// Up to `n` bytes.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        self.0.by_ref().take(n).copied().collect()
    }

    /// What arrives of `msg`, read by read.
    fn deliver(&mut self, msg: &[u8]) -> Vec<Vec<u8>> {
        let Some(op) = self.byte() else { return vec![msg.to_vec()] };
        let arg = usize::from(self.byte().unwrap_or(0));
        match op % 8 {
            // Split in two reads.
            1 => {
                let (a, b) = msg.split_at(arg.min(msg.len()));
                vec![a.to_vec(), b.to_vec()]
            }
            // One byte flipped.
            2 if !msg.is_empty() => {
                let mut m = msg.to_vec();
                m[arg % msg.len()] ^= self.byte().unwrap_or(0) | 1;
                vec![m]
            }
            // Truncated.
            3 => vec![msg[..arg.min(msg.len())].to_vec()],
            // Dropped.
            4 => vec![],
            // Bytes appended.
            5 => vec![[msg, &self.bytes(arg % 64)].concat()],
            // Doubled.
            6 => vec![msg.to_vec(), msg.to_vec()],
            // Replaced.
            7 => vec![self.bytes(arg)],
            _ => vec![msg.to_vec()],
        }
    }
}

/// A nonce drawn from the whole input, so that no input can hold a MAC
/// made with it: a replayed message is a stale one.
fn nonce_of(data: &[u8], salt: u8) -> [u8; 32] {
    let mut nonce = [0; 32];
    for (i, chunk) in nonce.chunks_mut(8).enumerate() {
        let mut h = DefaultHasher::new();
        h.write_u8(salt);
        h.write_usize(i);
        h.write(data);
        chunk.copy_from_slice(&h.finish().to_be_bytes());
    }
    nonce
}

fn handshake_in_transit(first: u8, data: &[u8], rest: &[u8]) {
    let client_secret = (first & 1 != 0).then_some(SECRET);
    let server_secret = match (first & 2 != 0, first & 4 != 0) {
        (false, _) => None,
        (true, false) => Some(SECRET),
        (true, true) => Some(OTHER_SECRET),
    };
    let alpha = Identity { nonce: nonce_of(data, 1), ..ALPHA };
    let beta = Identity { nonce: nonce_of(data, 2), ..BETA };
    let mut client = Side::new(alpha, client_secret, (1, 1));
    let mut server = Side::new(beta, server_secret, (1, 1));
    let mut tamper = Tamper(rest.iter());
    let (mut to_server, mut to_client) = (client.sent.clone(), Vec::new());
    let (mut at_server, mut at_client) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        for piece in tamper.deliver(&std::mem::take(&mut to_server)) {
            at_server.extend_from_slice(&piece);
            to_client.extend(server.read(&piece));
        }
        for piece in tamper.deliver(&std::mem::take(&mut to_client)) {
            at_client.extend_from_slice(&piece);
            to_server.extend(client.read(&piece));
        }
    }

    let peer_is = |side: &Side, other: &Side| {
        side.hs
            .peer()
            .is_some_and(|p| p.node_id == other.node_id && p.incarnation == Incarnation(other.id.incarnation))
    };
    if client.secret.is_some() && client.hs.is_done() {
        assert_eq!(client.secret, server.secret, "a client finished without the server's secret");
        assert_eq!(client.consumed, server.sent, "a client finished on a HELLO_ACK the server did not send");
        assert!(server.consumed.starts_with(&client.sent[..HELLO_LEN]), "the server got another HELLO");
        assert!(peer_is(&client, &server), "the client learnt another server");
    }
    if server.secret.is_some() && server.hs.is_done() {
        assert_eq!(client.secret, server.secret, "a server finished without the client's secret");
        assert!(client.hs.is_done(), "a server finished before its client");
        assert_eq!(server.consumed, client.sent, "a server finished on messages the client did not send");
        assert_eq!(client.consumed, server.sent, "a server finished though the client got another HELLO_ACK");
        assert!(peer_is(&server, &client), "the server learnt another client");
    }
    if at_server == client.sent && at_client == server.sent {
        let agree = client.secret == server.secret;
        assert_eq!(client.hs.is_done(), agree, "untampered, the client finishes iff the secrets agree");
        assert_eq!(server.hs.is_done(), agree, "untampered, the server finishes iff the secrets agree");
        if agree {
            assert!(
                peer_is(&client, &server) && peer_is(&server, &client),
                "untampered, each learns the other"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------

/// The limits [`session`] runs with: small, so that input reaches them.
fn small_limits() -> LinkLimits {
    LinkLimits {
        max_frame: 4096,
        window: 8,
        max_inbound_bytes: 2048,
        max_write_buffer: 4096,
        ack_every: 4,
        max_watches: 4,
        max_remote_actors: 4,
        max_name_len: 16,
        max_actor_ids: 4,
        control_rate: 100,
        control_burst: 8,
        ..LinkLimits::default()
    }
}

/// A server session fed anything after a real client's HELLO.
///
/// Input: one byte whose low 6 bits say how the session's caller behaves
/// (bit 0: refuse every message; bit 1: hold inbound bytes as messages
/// come, so the receive bound is reached; bit 2: send a message of its own
/// before each read; bit 3: run the timers a second later on each read;
/// bit 4: return every message as unhandled; bit 5: acknowledge each
/// message only once handled, at the next read),
/// then reads: a length byte and that many bytes. The HELLO of client
/// `alpha` of `docs/WIRE.md` §5 comes first, so frames reach the session.
/// Invariants, after every read:
///
/// * events stop after [`Event::Closed`], which comes at most once, and a
///   closed session wants no more input and has no timer;
/// * every [`Event::Msg`] has the next sequence number, within the
///   receive window of the acknowledgements sent;
/// * the peer's actors and watches never exceed their caps;
/// * every message sent is acknowledged, refused or left unacknowledged,
///   exactly once;
/// * unless the session is closed, it wants input exactly when its output
///   and the inbound bytes held are under their caps.
pub fn session(data: &[u8]) {
    let Some((&first, mut rest)) = data.split_first() else { return };
    let config = small_limits();
    let mut now = std::time::Instant::now();
    let hs = HandshakeConfig::new(NodeId::of_name(BETA.name), Incarnation(BETA.incarnation));
    let mut s: Session<u64> = Session::new(Role::Server, hs, BETA.nonce, config.clone(), now);
    let hello = Side::new(ALPHA, None, (1, 1)).sent;
    s.handle_input(now, &hello);
    let (mut sent, mut returned, mut held) = (0u64, 0u64, 0usize);
    let mut last_seq = 0u64;
    let mut closed = false;
    let mut unhandled = Vec::new();
    let mut msg = Vec::new();
    let header = FrameHeader { dst: ActorId::from_u128(1), ..FrameHeader::new(FrameKind::Msg) };
    let _ = encode_frame(&header, b"{}", config.max_frame, &mut msg);
    loop {
        while let Some(event) = s.poll_event() {
            assert!(!closed, "an event after Closed");
            match event {
                Event::Msg { header, .. } => {
                    assert_eq!(header.seq, last_seq + 1, "messages come in sequence");
                    last_seq = header.seq;
                    if first & 1 != 0 {
                        s.refuse(&header, NackReason::UnknownDst, "fuzzing");
                    }
                    if first & 32 != 0 {
                        s.ack_when_handled(header.seq);
                        unhandled.push(header.seq);
                    }
                    if first & 16 != 0 {
                        s.return_unhandled(&header, UnhandledReason::ActorStopped, b"{}");
                    }
                    if first & 2 != 0 {
                        held += 100;
                        s.set_inbound_held(held);
                    }
                }
                Event::Acked(msgs) => returned += msgs.len() as u64,
                Event::Nacked { .. } => returned += 1,
                Event::Closed(_) => closed = true,
                Event::Up(_) | Event::Directory(_) | Event::Watch { .. } | Event::Unhandled { .. } => {}
            }
            assert!(s.remote_actors().len() <= config.max_remote_actors, "actors over the cap");
            assert!(s.peer_watches().len() <= config.max_watches, "watches over the cap");
        }
        if closed {
            assert!(!s.wants_read() && s.poll_timeout().is_none(), "a closed session is done");
        } else {
            let room = s.pending_output() < config.max_write_buffer
                && held < config.max_inbound_bytes
                && !s.is_throttled();
            assert_eq!(s.wants_read(), room, "wants input exactly under the caps");
            if s.is_throttled() {
                assert!(s.poll_timeout().is_some(), "a throttled session has a timer to resume");
            }
        }
        let Some((&len, tail)) = rest.split_first() else { break };
        let (piece, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        if first & 4 != 0 && s.is_up() && s.unacked_len() < 8 {
            s.send_msg(&msg, sent);
            sent += 1;
        }
        for seq in unhandled.drain(..) {
            s.handled(seq);
        }
        if first & 8 != 0 {
            now += std::time::Duration::from_secs(1);
            s.handle_timeout(now);
        }
        // Everything written is taken: the output cap is for peers that do not read.
        let n = s.pending_output();
        s.transmitted(now, n);
        s.handle_input(now, piece);
    }
    if !closed {
        s.close(CloseReason::Shutdown);
    }
    let left = s.take_unacked().count() as u64;
    assert_eq!(returned + left, sent, "every message sent is accounted for once");
}

// ---------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------

/// A seed: its target, its name and its bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// The hand-made inputs the corpus started from: a target, a name and the
/// input. The repository's `tests/fuzz_corpus.rs` writes them out (see
/// `fuzz/seed.sh`).
///
/// * `frames`: the MSG frame of `docs/WIRE.md` §5, a stream of one frame
///   of each kind read in odd pieces, and streams that break (an unknown
///   kind, a frame too large, a length shorter than a header).
/// * `handshake`: the exchange of `docs/WIRE.md` §5 (client `alpha`,
///   server `beta`, `s3cret`) for each side, whole and in pieces, without
///   the secret too; real exchanges in transit, tampered with and not.
pub fn seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    frame_seeds(&mut seeds);
    handshake_seeds(&mut seeds);
    session_seeds(&mut seeds);
    seeds
}

/// A full directory of node `beta` (shared with the body seeds): its echo server, speaking
/// `protocols`, and the actors in `remove` gone.
pub fn beta_directory(protocols: Vec<ProtocolId>, remove: Vec<ActorId>) -> DirectoryUpdate {
    DirectoryUpdate {
        node: Some("beta".into()),
        full: true,
        add: vec![DirEntry {
            id: ActorId::from_u128(1),
            name: "server".into(),
            protocols,
            msgs: vec![MsgId::of_name("echo_req::EchoReq"), MsgId::of_name("echo_reply::EchoReply")],
        }],
        remove,
    }
}

fn frame_seeds(seeds: &mut Vec<Seed>) {
    let msg = FrameHeader {
        kind: FrameKind::Msg,
        flags: 0,
        msg_id: MsgId::of_name("echo_req::EchoReq"),
        dst: ActorId::from_u128(0xa0a0_a0a0_a0a0_a0a0_0000_0000_0000_0001),
        src: ActorId::from_u128(0xb0b0_b0b0_b0b0_b0b0_0000_0000_0000_0002),
        seq: 1,
        ack: 0,
        corr: 0,
    };
    // The MSG frame of docs/WIRE.md §5: `EchoReq { counter: 1, req_timestamp_ns: 1000 }`.
    let mut wire_doc = Vec::new();
    // The maxima are far above these frames: encoding cannot fail.
    let _ = encode_frame(&msg, br#"{"counter":1,"req_timestamp_ns":1000}"#, 4096, &mut wire_doc);

    let mut stream = wire_doc.clone();
    let directory = beta_directory(vec![], vec![]);
    let control = [
        (FrameHeader { ack: 1, ..FrameHeader::new(FrameKind::Ack) }, Vec::new()),
        (
            FrameHeader {
                flags: NackReason::MailboxFull as u8,
                msg_id: MsgId::of_name("echo_req::EchoReq"),
                corr: 1,
                ..FrameHeader::new(FrameKind::Nack)
            },
            Vec::new(),
        ),
        (FrameHeader::new(FrameKind::Heartbeat), Vec::new()),
        (FrameHeader::new(FrameKind::Directory), serde_json::to_vec(&directory).unwrap_or_default()),
        (FrameHeader { dst: ActorId::from_u128(1), ..FrameHeader::new(FrameKind::Watch) }, Vec::new()),
        (
            FrameHeader {
                flags: UnhandledReason::ActorStopped as u8,
                msg_id: MsgId::of_name("echo_req::EchoReq"),
                corr: 1,
                ..FrameHeader::new(FrameKind::Dead)
            },
            br#"{"counter":1,"req_timestamp_ns":2}"#.to_vec(),
        ),
        (FrameHeader::new(FrameKind::Close), br#"{"reason":"shutdown"}"#.to_vec()),
    ];
    for (header, body) in &control {
        let _ = encode_frame(header, body, 4096, &mut stream);
    }

    // First byte: maximum index (low 3 bits), count of read sizes (high 5).
    let with =
        |max: u8, sizes: &[u8], stream: &[u8]| [&[max | ((sizes.len() as u8) << 3)], sizes, stream].concat();
    seeds.push(("frames", "wire-doc-msg".into(), with(7, &[], &wire_doc)));
    seeds.push(("frames", "wire-doc-msg-bytewise".into(), with(7, &[0], &wire_doc)));
    seeds.push(("frames", "all-kinds".into(), with(7, &[], &stream)));
    seeds.push(("frames", "all-kinds-in-pieces".into(), with(7, &[3, 78, 0, 200, 79], &stream)));
    seeds.push(("frames", "all-kinds-max-128".into(), with(4, &[10, 90], &stream)));
    let mut unknown = wire_doc.clone();
    unknown[4] = 8;
    seeds.push(("frames", "unknown-kind".into(), with(7, &[4], &[&wire_doc[..], &unknown].concat())));
    seeds.push(("frames", "too-large".into(), with(3, &[], &wire_doc)));
    seeds.push(("frames", "too-short".into(), with(7, &[], &[0, 0, 0, 75, 1])));
    seeds.push(("frames", "incomplete".into(), with(7, &[], &wire_doc[..100])));
}

fn handshake_seeds(seeds: &mut Vec<Seed>) {
    // The exchange of docs/WIRE.md §5, with and without the secret.
    for (secret, tag) in [(Some(SECRET), "auth"), (None, "plain")] {
        let mut client = Side::new(ALPHA, secret, (1, 1));
        let mut server = Side::new(BETA, secret, (1, 1));
        let hello = client.sent.clone();
        let hello_ack = server.read(&hello);
        let auth = client.read(&hello_ack);
        server.read(&auth);
        let flag = if secret.is_some() { 2 } else { 0 };
        let reads = |first: u8, msgs: &[&[u8]]| {
            let mut input = vec![first];
            for msg in msgs {
                input.push(msg.len() as u8);
                input.extend_from_slice(msg);
            }
            input
        };
        // One side: a length byte, then that many bytes, per read.
        seeds.push(("handshake", format!("client-{tag}"), reads(flag, &[&hello_ack])));
        seeds.push(("handshake", format!("server-{tag}"), reads(flag | 1, &[&hello, &auth])));
        let (a, b) = hello_ack.split_at(50);
        seeds.push(("handshake", format!("client-{tag}-pieces"), reads(flag, &[a, b, b"frames"])));
        let (a, b) = hello.split_at(5);
        seeds.push(("handshake", format!("server-{tag}-pieces"), reads(flag | 1, &[a, b, &auth, b"frames"])));
    }
    // In transit: bits 0 and 1 give the client and the server the secret,
    // bit 2 makes the server's another; then (op, arg) per delivery.
    for (first, name, tamper) in [
        (0x83, "transit-auth", &[][..]),
        (0x80, "transit-plain", &[]),
        (0x87, "transit-other-secret", &[]),
        (0x81, "transit-client-secret-only", &[]),
        (0x83, "transit-auth-split", &[1, 30, 1, 100, 1, 7]),
        (0x83, "transit-auth-flip", &[0, 0, 0, 0, 2, 9, 0x40]),
        (0x80, "transit-plain-flip-node", &[2, 50, 1]),
        (0x83, "transit-auth-doubled", &[6, 0]),
    ] {
        seeds.push(("handshake", name.into(), [&[first], tamper].concat()));
    }
}

fn session_seeds(seeds: &mut Vec<Seed>) {
    let msg = |seq: u64, ack: u64| {
        let header = FrameHeader { seq, ack, dst: ActorId::from_u128(1), ..FrameHeader::new(FrameKind::Msg) };
        let mut f = Vec::new();
        let _ = encode_frame(&header, b"{}", 4096, &mut f);
        f
    };
    let control = |header: FrameHeader, body: &[u8]| {
        let mut f = Vec::new();
        let _ = encode_frame(&header, body, 4096, &mut f);
        f
    };
    let directory = serde_json::to_vec(&beta_directory(vec![], vec![])).unwrap_or_default();
    let frames: Vec<Vec<u8>> = vec![
        control(FrameHeader::new(FrameKind::Directory), &directory),
        msg(1, 0),
        msg(2, 0),
        control(
            FrameHeader {
                dst: ActorId::from_u128(1),
                src: ActorId::from_u128(2),
                ..FrameHeader::new(FrameKind::Watch)
            },
            &[],
        ),
        control(FrameHeader::new(FrameKind::Heartbeat), &[]),
        msg(3, 1),
        control(FrameHeader::new(FrameKind::Close), br#"{"reason":"shutdown"}"#),
    ];
    // One read per frame (a length byte, then the bytes), in pieces of at most 255.
    let reads = |first: u8, frames: &[Vec<u8>]| {
        let mut input = vec![first];
        for f in frames {
            for piece in f.chunks(255) {
                input.push(piece.len() as u8);
                input.extend_from_slice(piece);
            }
        }
        input
    };
    for first in [0u8, 1, 2, 4, 8, 15] {
        seeds.push(("session", format!("frames-{first}"), reads(first, &frames)));
    }
    let overrun: Vec<Vec<u8>> = (1..=10).map(|seq| msg(seq, 0)).collect();
    seeds.push(("session", "window-overrun".into(), reads(0, &overrun)));
    seeds.push(("session", "out-of-sequence".into(), reads(0, &[msg(2, 0)])));
}
