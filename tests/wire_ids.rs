//! The wire contract: every id the workspace ships, pinned against hex
//! produced outside Rust by `printf %s NAME | sha256sum | cut -c1-32`.
//! A change of the id scheme (or of a name) must fail here, loudly.

use ipchnl::echo::*;
use ipchnl::samples::{Msg1, Msg2};
use ipchnl::{MsgId, MsgType, ProtocolId, ProtocolSetId, Terminated};
use testkit::{Bulk, Nap, Relay, Seq, testkit_protocol};

#[test]
fn message_ids_are_pinned() {
    let table: [(&str, MsgId, &str); 11] = [
        ("echo_req::EchoReq", EchoReq::msg_id(), "49772469a3a94e48fb73da57469c677d"),
        ("echo_reply::EchoReply", EchoReply::msg_id(), "470dd8b8571ebdc19c60a818c8b81ee5"),
        ("echo_start::EchoStart", EchoStart::msg_id(), "443267b39c1c43e0d87e32cbac0c8302"),
        ("echo_complete::EchoComplete", EchoComplete::msg_id(), "e458ddf98ab376b54528190bd58fc31e"),
        ("msg1::Msg1", Msg1::msg_id(), "02a13dd8b83540d6e063e5f37a266244"),
        ("msg2::Msg2", Msg2::msg_id(), "7fd856005c3710a6aafc081d8c361fb7"),
        // Sent by a node to the remote watchers of its actors (WIRE.md).
        ("actor::Terminated", Terminated::msg_id(), "5dea060c18e973965fb72ac17090c57b"),
        // The test actors of `ipchnl serve --test-actors`.
        ("testkit::Relay", Relay::msg_id(), "af262c951c024ab0ab6268b5751ffc07"),
        ("testkit::Nap", Nap::msg_id(), "e4a7a6532b5cb4c981e291d222c9ea27"),
        ("testkit::Seq", Seq::msg_id(), "d2d5df22ff909f9d6f898e7e46b0886d"),
        ("testkit::Bulk", Bulk::msg_id(), "ed82cd57d4a2c8aed2973ffa70d08037"),
    ];
    for (name, id, hex) in table {
        assert_eq!(id.to_string(), hex, "{name}");
        assert_eq!(MsgId::of_name(name), id, "{name}");
    }
}

#[test]
fn protocol_ids_are_pinned() {
    let table: [(ProtocolId, &str); 4] = [
        (echo_requester_protocol().id(), "093054a02e06cc4650ff924ec930f1d1"),
        (echo_requestee_protocol().id(), "29813686370428bc36a7b3f757124303"),
        (echo_start_complete_protocol().id(), "f8300764e79832ca4472d743dfea047b"),
        (testkit_protocol().id(), "b6ba69386b50ddf0532c6959152dad6e"),
    ];
    for (id, hex) in table {
        assert_eq!(id.to_string(), hex);
    }
    let sets: [(ProtocolSetId, &str); 2] = [
        (client_protocol_set().id(), "99aa4596d0449888ee4474adea07c70e"),
        (server_protocol_set().id(), "b2c2290bcee0641081d5b0fb84f8e864"),
    ];
    for (id, hex) in sets {
        assert_eq!(id.to_string(), hex);
    }
}

#[test]
fn ids_are_hex_strings_in_json() {
    let json = EchoReq::new(1, 2).to_json().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["header"]["msg_id"], "49772469a3a94e48fb73da57469c677d");
    assert!(v["header"]["dst_id"].is_string());
    assert_eq!(v["body"], serde_json::json!({"counter": 1, "req_timestamp_ns": 2}));
}
