//! The JSON bodies of every message type the workspace ships, and of the
//! control frames, as a property that `cargo fuzz` checks (the `fuzzing`
//! feature; not an API). It lives here because this crate is the one that
//! sees every message type, its own included. The wire's own properties
//! (frames, handshake) are `connection::fuzzing`.
//!
//! [`bodies`] takes any bytes at all and must not panic on any of them,
//! except where an `assert!` states an invariant and finds it broken: that
//! is a bug in the library, never in its input. It is called by the
//! libFuzzer target `fuzz/fuzz_targets/bodies.rs` and by
//! `tests/fuzz_corpus.rs` on stable, with the committed corpus.
#![allow(clippy::unwrap_used, clippy::expect_used)] // asserting is the point

use std::collections::HashMap;
use std::fmt::Debug;

use actor::{ActorAddr, Terminated, TerminationReason};
use connection::fuzzing::{Seed, beta_directory};
use connection::{CloseBody, DirectoryUpdate};
use echo_complete::EchoComplete;
use echo_reply::EchoReply;
use echo_req::EchoReq;
use echo_start::EchoStart;
use msg_header::{
    ActorId, BoxMsg, DecodeMsg, MsgError, MsgHeader, MsgId, MsgType, NodeId, RawMsg, WireMsg, decode_body,
    encode_body, from_json, peek_msg_id, to_json,
};
use msg1::Msg1;
use msg2::Msg2;
use protocol::{DecodeError, MsgInfo};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Bulk, Nap, Relay, Seq};

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

/// How many kinds of body [`bodies`] picks from.
const BODY_KINDS: u8 = 13;

/// A JSON body, of the kind the first byte picks (modulo 13): `EchoReq`,
/// `EchoReply`, `EchoStart`, `EchoComplete`, `Msg1`, `Msg2`, `Terminated`,
/// testkit's `Relay`, `Nap` and `Seq`, the control bodies
/// `DirectoryUpdate` and `CloseBody`, then testkit's `Bulk` (every message
/// the crate ships, and both control bodies). The rest is the JSON.
/// [`peek_msg_id`] is given the whole input too.
///
/// For a message type `T`, invariants:
///
/// * a header with another message's id is refused before the body is
///   read;
/// * [`decode_body`], the protocol decoder ([`MsgInfo::decode`], what a
///   link uses) and [`downcast`](msg_header::Msg#method.downcast) of a [`RawMsg`] all
///   agree on whether the body decodes and on the message;
/// * a decoded message keeps its header, and [`encode_body`] then
///   [`decode_body`] gives it back;
/// * if the rest decodes as `T`'s full form ([`from_json`]), its id is
///   `T`'s, [`peek_msg_id`] reads that id from it, and [`to_json`] then
///   [`from_json`] gives the message back.
///
/// A control body that decodes encodes and decodes back to itself.
pub fn bodies(data: &[u8]) {
    // Never panics, whatever it is given; its answer is checked below on
    // buffers known to be messages.
    let _ = peek_msg_id(data);
    let Some((&first, json)) = data.split_first() else { return };
    match first % BODY_KINDS {
        0 => message::<EchoReq>(json),
        1 => message::<EchoReply>(json),
        2 => message::<EchoStart>(json),
        3 => message::<EchoComplete>(json),
        4 => message::<Msg1>(json),
        5 => message::<Msg2>(json),
        6 => message::<Terminated>(json),
        7 => message::<Relay>(json),
        8 => message::<Nap>(json),
        9 => message::<Seq>(json),
        10 => control::<DirectoryUpdate>(json),
        11 => control::<CloseBody>(json),
        _ => message::<Bulk>(json),
    }
}

/// The header [`bodies`] decodes `T`'s bodies with.
fn header_of<T: MsgType>() -> MsgHeader {
    MsgHeader::with_ids(
        T::msg_id(),
        ActorId::from_u128(0xa0a0_a0a0_a0a0_a0a0_0000_0000_0000_0001),
        ActorId::from_u128(0xb0b0_b0b0_b0b0_b0b0_0000_0000_0000_0002),
        7,
    )
}

fn message<T>(json: &[u8])
where
    T: DecodeMsg + Serialize + DeserializeOwned + PartialEq,
{
    let header = header_of::<T>();

    let other = MsgHeader::new(MsgId::of_name("fuzzing::NotThisMessage"));
    let wrong = decode_body::<T>(other, json);
    assert!(
        matches!(wrong, Err(MsgError::WrongMsgId { expected, found }) if expected == T::msg_id() && found == other.msg_id()),
        "another message's header is refused first: {wrong:?}"
    );

    let decoded = decode_body::<T>(header, json);
    let by_protocol = MsgInfo::wire::<T>().decode(header, json);
    let raw: BoxMsg = Box::new(RawMsg::new(header, json.to_vec()));
    let downcast = raw.downcast::<T>();
    match decoded {
        Ok(msg) => {
            assert_eq!(*msg.header(), header, "the header is the one given");
            match by_protocol {
                Ok(boxed) => {
                    assert_eq!(boxed.downcast_ref::<T>(), Some(&msg), "the protocol decodes the same")
                }
                Err(e) => panic!("decode_body decodes, the protocol does not: {e:?}"),
            }
            match downcast {
                Ok(boxed) => assert!(*boxed == msg, "a RawMsg downcasts to the same"),
                Err(e) => panic!("decode_body decodes, downcast of a RawMsg does not: {e:?}"),
            }
            let mut body = Vec::new();
            let encoded = encode_body(&msg, &mut body);
            assert!(encoded.is_ok(), "a decoded message encodes: {encoded:?}");
            let mut by_trait = Vec::new();
            let encoded = WireMsg::encode_body(&msg, &mut by_trait);
            assert!(encoded.is_ok() && by_trait == body, "WireMsg::encode_body is encode_body");
            match decode_body::<T>(header, &body) {
                Ok(back) => assert!(back == msg, "encode then decode gives {back:?}, not {msg:?}"),
                Err(e) => {
                    panic!("its own encoding does not decode: {e:?}: {}", String::from_utf8_lossy(&body))
                }
            }
        }
        Err(_) => {
            assert!(
                matches!(by_protocol, Err(DecodeError::Msg(_))),
                "the protocol decodes what decode_body does not"
            );
            assert!(downcast.is_err(), "a RawMsg downcasts though decode_body fails");
        }
    }

    if let Ok(msg) = from_json::<T>(json) {
        assert_eq!(msg.header().msg_id(), T::msg_id(), "from_json checks the id");
        let peeked = peek_msg_id(json);
        assert!(
            matches!(peeked, Ok(id) if id == T::msg_id()),
            "from_json decodes a {}, peek_msg_id says {peeked:?}",
            T::NAME
        );
        let full = match to_json(&msg) {
            Ok(full) => full,
            Err(e) => panic!("a decoded message encodes: {e:?}"),
        };
        assert!(matches!(peek_msg_id(&full), Ok(id) if id == T::msg_id()), "peek_msg_id reads to_json's id");
        match from_json::<T>(&full) {
            Ok(back) => assert!(back == msg, "to_json then from_json gives {back:?}, not {msg:?}"),
            Err(e) => panic!("its own full form does not decode: {e:?}: {}", String::from_utf8_lossy(&full)),
        }
    }
}

fn control<T: Serialize + DeserializeOwned + PartialEq + Debug>(json: &[u8]) {
    let Ok(body) = serde_json::from_slice::<T>(json) else { return };
    match serde_json::to_vec(&body) {
        Ok(again) => match serde_json::from_slice::<T>(&again) {
            Ok(back) => assert_eq!(back, body, "a control body decodes back to itself"),
            Err(e) => panic!("its own encoding does not decode: {e:?}"),
        },
        Err(e) => panic!("a decoded control body encodes: {e:?}"),
    }
}

/// The hand-made inputs the `bodies` corpus started from: each kind of
/// body as its encoder writes it, and each message in its full form (a
/// target, a name and the input, as `connection::fuzzing::seeds` gives).
pub fn seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    body_seeds(&mut seeds);
    seeds
}

fn body_seeds(seeds: &mut Vec<Seed>) {
    fn push<T: DecodeMsg + Serialize>(seeds: &mut Vec<Seed>, kind: u8, mut msg: T) {
        *msg.header_mut() = header_of::<T>();
        let name = T::NAME.replace("::", "-");
        let mut body = vec![kind];
        // These messages are plain data: encoding cannot fail.
        let _ = encode_body(&msg, &mut body);
        seeds.push(("bodies", format!("{name}-body"), body));
        let full = to_json(&msg).unwrap_or_default();
        seeds.push(("bodies", format!("{name}-full"), [&[kind], &full[..]].concat()));
    }
    let map = HashMap::from([("one".to_string(), 1), ("many".to_string(), u64::MAX)]);
    push(seeds, 0, EchoReq::new(1, 1000));
    push(seeds, 1, EchoReply::new(1, 1000, 2000));
    push(seeds, 2, EchoStart::new(10));
    push(seeds, 3, EchoComplete::new(10, 9, 1500, 9000, 12000, 1_000_000));
    push(seeds, 4, Msg1::new(42, map.clone()));
    push(seeds, 5, Msg2::new(7, map));
    push(seeds, 6, Terminated::new(ActorId::from_u128(1), "server".into(), TerminationReason::Panicked));
    let to = ActorAddr { node_id: NodeId::of_name("beta"), actor_id: ActorId::from_u128(1) };
    push(seeds, 7, Relay::new(to, 3));
    push(seeds, 8, Nap::new(5));
    push(seeds, 9, Seq::new(1));
    push(seeds, 12, Bulk::new(2, "padding".repeat(8)));

    let directory = beta_directory(
        vec![echo_requestee_protocol::echo_requestee_protocol().id()],
        vec![ActorId::from_u128(2)],
    );
    let directory = serde_json::to_vec(&directory).unwrap_or_default();
    seeds.push(("bodies", "directory".into(), [&[10], &directory[..]].concat()));
    seeds.push(("bodies", "directory-minimal".into(), [&[10], &b"{}"[..]].concat()));
    seeds.push(("bodies", "close".into(), [&[11], &br#"{"reason":"shutdown"}"#[..]].concat()));
}
