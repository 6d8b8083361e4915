//! Properties of the frame codec and the handshake, over random inputs.

use connection::{
    DEFAULT_MAX_FRAME, FrameDecoder, FrameHeader, FrameKind, Handshake, HandshakeConfig, HandshakeError,
    Incarnation, Role, Secret, encode_frame,
};
use msg_header::{ActorId, MsgId, NodeId};
use proptest::collection::vec;
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = FrameKind> {
    (1u8..=7).prop_map(|k| FrameKind::try_from(k).unwrap())
}

prop_compose! {
    fn header()(
        kind in kind(),
        flags in any::<u8>(),
        msg_id in any::<[u8; 16]>(),
        dst in any::<u128>(),
        src in any::<u128>(),
        seq in any::<u64>(),
        ack in any::<u64>(),
        corr in any::<u64>(),
    ) -> FrameHeader {
        FrameHeader {
            kind,
            flags,
            msg_id: MsgId::from_bytes(msg_id),
            dst: ActorId::from_u128(dst),
            src: ActorId::from_u128(src),
            seq,
            ack,
            corr,
        }
    }
}

fn frame() -> impl Strategy<Value = (FrameHeader, Vec<u8>)> {
    (header(), vec(any::<u8>(), 0..4096))
}

/// Decodes every frame in `chunks` fed one after the other into a growing
/// buffer, draining what each frame took.
fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<(FrameHeader, Vec<u8>)>, usize) {
    let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some((frame, used)) = decoder.decode(&buf).unwrap() {
            frames.push((frame.header, frame.body.to_vec()));
            buf.drain(..used);
        }
    }
    (frames, buf.len())
}

proptest! {
    #[test]
    fn frames_round_trip((header, body) in frame()) {
        let mut wire = Vec::new();
        encode_frame(&header, &body, DEFAULT_MAX_FRAME, &mut wire).unwrap();
        let (frame, used) = FrameDecoder::new(DEFAULT_MAX_FRAME).decode(&wire).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(frame.header, header);
        prop_assert_eq!(frame.body, &body[..]);
    }

    #[test]
    fn any_split_decodes_the_same_frames(
        frames in vec(frame(), 1..6),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for (header, body) in &frames {
            encode_frame(header, body, DEFAULT_MAX_FRAME, &mut wire).unwrap();
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.extend([0, wire.len()]);
        cuts.sort_unstable();
        let chunks = cuts.windows(2).map(|w| &wire[w[0]..w[1]]);
        let (decoded, left) = decode_chunks(chunks);
        prop_assert_eq!(left, 0);
        prop_assert_eq!(decoded, frames);
    }
}

/// One side's configuration and nonce.
#[derive(Clone, Debug)]
struct Side {
    node_id: [u8; 16],
    incarnation: [u8; 16],
    nonce: [u8; 32],
}

fn side() -> impl Strategy<Value = Side> {
    (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<[u8; 32]>()).prop_map(|(node_id, incarnation, nonce)| Side {
        node_id,
        incarnation,
        nonce,
    })
}

fn start(role: Role, side: &Side, secret: Option<&[u8]>) -> Handshake {
    let mut config = HandshakeConfig::new(NodeId::from_bytes(side.node_id), Incarnation(side.incarnation));
    if let Some(secret) = secret {
        config = config.with_secret(Secret::new(secret).unwrap());
    }
    Handshake::new(role, config, side.nonce)
}

/// Sends `bytes` to `to` in pieces of `chunk` bytes, each of which must be
/// taken whole.
fn feed(to: &mut Handshake, bytes: &[u8], chunk: usize) -> Result<(), HandshakeError> {
    for piece in bytes.chunks(chunk) {
        assert_eq!(to.read(piece)?, piece.len());
    }
    Ok(())
}

/// Shuttles bytes both ways in pieces of `chunk` bytes until both sides are
/// done, or one fails.
fn drive(client: &mut Handshake, server: &mut Handshake, chunk: usize) -> Result<(), HandshakeError> {
    for _ in 0..4 {
        feed(server, &client.take_output(), chunk)?;
        feed(client, &server.take_output(), chunk)?;
        if client.is_done() && server.is_done() {
            return Ok(());
        }
    }
    panic!("the handshake stalled");
}

fn pair() -> impl Strategy<Value = (Side, Side)> {
    (side(), side()).prop_filter("distinct nodes", |(c, s)| c.node_id != s.node_id)
}

fn secret() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 1..64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn handshakes_succeed_between_valid_configurations(
        (c, s) in pair(),
        secret in prop::option::of(secret()),
        chunk in 1usize..120,
    ) {
        let mut client = start(Role::Client, &c, secret.as_deref());
        let mut server = start(Role::Server, &s, secret.as_deref());
        drive(&mut client, &mut server, chunk).unwrap();

        let (at_client, at_server) = (client.peer().unwrap(), server.peer().unwrap());
        prop_assert_eq!(at_client.node_id, NodeId::from_bytes(s.node_id));
        prop_assert_eq!(at_client.incarnation, Incarnation(s.incarnation));
        prop_assert_eq!(at_server.node_id, NodeId::from_bytes(c.node_id));
        prop_assert_eq!(at_server.incarnation, Incarnation(c.incarnation));
        prop_assert_eq!((at_client.version, at_server.version), (1, 1));
        prop_assert_eq!(at_client.authenticated, secret.is_some());
        prop_assert_eq!(at_server.authenticated, secret.is_some());
    }

    #[test]
    fn handshakes_fail_between_mismatched_secrets(
        (c, s) in pair(),
        secrets in prop_oneof![
            (secret(), secret()).prop_filter("different", |(a, b)| a != b).prop_map(|(a, b)| (Some(a), Some(b))),
            secret().prop_map(|a| (Some(a), None)),
            secret().prop_map(|b| (None, Some(b))),
        ],
        chunk in 1usize..120,
    ) {
        let mut client = start(Role::Client, &c, secrets.0.as_deref());
        let mut server = start(Role::Server, &s, secrets.1.as_deref());
        let expected = match secrets {
            (Some(_), Some(_)) => HandshakeError::BadMac,
            (Some(_), None) => HandshakeError::NoSecret,
            _ => HandshakeError::AuthRequired,
        };
        prop_assert_eq!(drive(&mut client, &mut server, chunk), Err(expected));
        prop_assert!(!server.is_done());
        prop_assert!(client.peer().is_none() && server.peer().is_none());
    }
}
