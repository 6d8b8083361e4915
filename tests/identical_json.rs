//! Two messages with the same JSON shape are told apart by their id.

use std::collections::HashMap;

use ipchnl::MsgError;
use ipchnl::samples::{Msg1, Msg2};
use ipchnl::{MsgType, peek_msg_id};

#[test]
fn test_identical_json() {
    let map = HashMap::from([("a".to_string(), 1)]);
    let buf1 = Msg1::new(5, map.clone()).to_json().unwrap();
    let buf2 = Msg2::new(5, map).to_json().unwrap();

    // Identical but for the id.
    let strip =
        |b: &[u8]| String::from_utf8(b.to_vec()).unwrap().split_once("\"dst_id\"").unwrap().1.to_owned();
    assert_eq!(strip(&buf1), strip(&buf2));
    assert_ne!(buf1, buf2);

    match Msg1::from_json(&buf2) {
        Err(MsgError::WrongMsgId { expected, found }) => {
            assert_eq!(expected, Msg1::msg_id());
            assert_eq!(found, Msg2::msg_id());
        }
        other => panic!("a Msg2 buffer must not decode as Msg1: {other:?}"),
    }
    assert!(matches!(Msg2::from_json(&buf1), Err(MsgError::WrongMsgId { .. })));
    assert_eq!(peek_msg_id(&buf2).unwrap(), Msg2::msg_id());
    assert_eq!(Msg2::from_json(&buf2).unwrap().v, 5);
}
