use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Picture {
    name: String,
    pixels: Bytes,
    thumbnail: Option<Bytes>,
}

fn picture() -> Picture {
    Picture {
        name: "p".into(),
        pixels: Bytes::from(vec![1, 2, 3]),
        thumbnail: Some(Bytes::from_static(b"xy")),
    }
}

fn encoded<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = b"frame header".to_vec();
    encode(&mut out, |out| Ok(serde_json::to_writer(out, msg)?)).expect("encodes");
    out.split_off(b"frame header".len())
}

fn decoded<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, MsgError> {
    decode_blobs(body, |json| Ok(serde_json::from_slice(json)?))
}

#[test]
fn bytes_fields_travel_after_the_json_as_the_module_lays_out() {
    let body = encoded(&picture());
    let json = br#"{"name":"p","pixels":0,"thumbnail":1}"#;
    let mut expected = vec![0];
    expected.extend_from_slice(&(json.len() as u32).to_be_bytes());
    expected.extend_from_slice(json);
    expected.extend_from_slice(&2u32.to_be_bytes());
    expected.extend_from_slice(&3u64.to_be_bytes());
    expected.extend_from_slice(&2u64.to_be_bytes());
    expected.extend_from_slice(&[1, 2, 3, b'x', b'y']);
    assert_eq!(body, expected);
    assert_eq!(decoded::<Picture>(&body).expect("decodes"), picture());
}

#[test]
fn a_body_without_bytes_is_plain_json() {
    let no_blobs = Picture { thumbnail: None, ..picture() };
    #[derive(Serialize)]
    struct Plain {
        n: u32,
    }
    assert_eq!(encoded(&Plain { n: 1 }), br#"{"n":1}"#);
    // Outside a scope a `Bytes` is an array; a plain body's array decodes.
    let json = serde_json::to_vec(&no_blobs).expect("json");
    assert_eq!(json, br#"{"name":"p","pixels":[1,2,3],"thumbnail":null}"#);
    assert_eq!(decoded::<Picture>(&json).expect("decodes"), no_blobs);
}

#[test]
fn a_blob_reference_needs_its_blob() {
    // A number in a plain body, or past the blobs, is no blob.
    let plain = br#"{"name":"p","pixels":0,"thumbnail":null}"#;
    assert!(matches!(decoded::<Picture>(plain), Err(MsgError::Json(_))));
    let mut body = encoded(&picture());
    let k = body.iter().position(|&b| b == b'1').expect("the second reference");
    body[k] = b'7';
    assert!(matches!(decoded::<Picture>(&body), Err(MsgError::Json(_))));
}

#[test]
fn bodies_that_do_not_hold_together_are_refused() {
    let good = encoded(&picture());
    let json_len = u32::from_be_bytes([good[1], good[2], good[3], good[4]]) as usize;
    let count_at = 5 + json_len;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("the marker alone", vec![0]),
        ("cut in the JSON length", good[..3].to_vec()),
        ("cut in the JSON", good[..10].to_vec()),
        ("cut in the count", good[..count_at + 2].to_vec()),
        ("cut in the blobs", good[..good.len() - 1].to_vec()),
        ("a byte too many", [good.as_slice(), &[0]].concat()),
    ];
    let mut huge_count = good.clone();
    huge_count[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    cases.push(("more lengths than bytes", huge_count));
    let mut huge_len = good.clone();
    huge_len[count_at + 4..count_at + 12].copy_from_slice(&u64::MAX.to_be_bytes());
    cases.push(("a blob past the end", huge_len));
    let mut huge_json = good.clone();
    huge_json[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
    cases.push(("JSON past the end", huge_json));
    for (what, body) in cases {
        assert!(matches!(decoded::<Picture>(&body), Err(MsgError::Blobs(_))), "{what}");
    }
}

#[test]
fn scopes_nest_and_end_with_their_call() {
    // An encoding inside an encoding has blobs of its own; afterwards the
    // thread is outside any scope again.
    #[derive(Serialize)]
    struct Outer {
        inner: Vec<u8>,
        data: Bytes,
    }
    let inner = encoded(&picture());
    let body = encoded(&Outer { inner: inner.clone(), data: Bytes::from_static(b"z") });
    assert_eq!(body.last(), Some(&b'z'));
    assert_eq!(serde_json::to_string(&Bytes::from_static(b"a")).expect("json"), "[97]");
    assert!(decoded::<Picture>(&inner).is_ok());
}

#[test]
fn clones_and_vectors_share_or_move_without_copying() {
    let v = vec![5u8; 1 << 16];
    let at = v.as_ptr();
    let b = Bytes::from(v);
    let c = b.clone();
    assert_eq!((b.as_ptr(), c.as_ptr()), (at, at));
    drop(c);
    let back = b.into_vec();
    assert_eq!(back.as_ptr(), at, "the only owner gets its vector back");
    assert_eq!(format!("{:?}", Bytes::from(vec![0; 40])), "Bytes(40 bytes)");
    assert_eq!(format!("{:?}", Bytes::from_static(b"ab")), "b\"ab\"");
}

proptest! {
    #[test]
    fn any_body_decodes_or_is_refused_without_a_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decoded::<Picture>(&body);
    }

    #[test]
    fn what_is_encoded_decodes_the_same(
        name in ".{0,8}",
        pixels in proptest::collection::vec(any::<u8>(), 0..300),
        thumbnail in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
    ) {
        let p = Picture { name, pixels: pixels.into(), thumbnail: thumbnail.map(Bytes::from) };
        prop_assert_eq!(decoded::<Picture>(&encoded(&p)).expect("decodes"), p);
    }
}
