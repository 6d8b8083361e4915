//! The JSON forms of a message.
//!
//! * The *body* is the message's fields only: what a frame carries after
//!   its binary header.
//! * The *full* form adds the header: `{"header":{..},"body":{..}}`, the
//!   header first so its id can be read without decoding the body.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{Msg, MsgError, MsgHeader, MsgId, MsgType};

/// Appends `msg`'s fields as JSON to `out`; with its [`Bytes`](crate::Bytes)
/// fields after the JSON if it has any (a body with blobs, see
/// `docs/WIRE.md` §3).
pub fn encode_body<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<(), MsgError> {
    crate::blob::encode(out, |out| Ok(serde_json::to_writer(out, msg)?))
}

/// As [`encode_body`], but a body with blobs stops before their bytes:
/// the blobs are returned, to follow what `out` got (see
/// [`WireMsg::encode_body_split`](crate::WireMsg::encode_body_split)).
pub fn encode_body_split<T: Serialize>(msg: &T, out: &mut Vec<u8>) -> Result<Vec<crate::Bytes>, MsgError> {
    crate::blob::encode_split(out, |out| Ok(serde_json::to_writer(out, msg)?))
}

/// Rebuilds a `T` from its header and body (JSON, or a body with blobs).
///
/// A header of another message type is `Err(WrongMsgId)`, checked before
/// the body is read.
pub fn decode_body<T: MsgType + DeserializeOwned>(header: MsgHeader, body: &[u8]) -> Result<T, MsgError> {
    let expected = T::msg_id();
    if header.msg_id() != expected {
        return Err(MsgError::WrongMsgId { expected, found: header.msg_id() });
    }
    let mut msg: T = crate::blob::decode_blobs(body, |json| Ok(serde_json::from_slice(json)?))?;
    *msg.header_mut() = header;
    Ok(msg)
}

/// The full JSON form of `msg`, header included.
pub fn to_json<T: Msg + Serialize>(msg: &T) -> Result<Vec<u8>, MsgError> {
    #[derive(Serialize)]
    struct Full<'a, T> {
        header: &'a MsgHeader,
        body: &'a T,
    }
    Ok(serde_json::to_vec(&Full { header: msg.header(), body: msg })?)
}

/// Rebuilds a `T` from its full JSON form.
///
/// The header's id is checked before the body is decoded: the buffer of
/// another message is `Err(WrongMsgId)` even when its fields would fit `T`.
pub fn from_json<T: MsgType + DeserializeOwned>(buf: &[u8]) -> Result<T, MsgError> {
    #[derive(Deserialize)]
    struct Full<'a> {
        header: MsgHeader,
        #[serde(borrow)]
        body: &'a RawValue,
    }
    let full: Full<'_> = serde_json::from_slice(buf)?;
    decode_body(full.header, full.body.get().as_bytes())
}

/// Reads the message id out of a full JSON buffer without decoding the body.
///
/// ```
/// let buf = br#"{"header":{"msg_id":"49772469a3a94e48fb73da57469c677d"},"body":{}}"#;
/// let id = msg_header::peek_msg_id(buf)?;
/// assert_eq!(id, msg_header::MsgId::of_name("echo_req::EchoReq"));
/// # Ok::<(), msg_header::MsgError>(())
/// ```
pub fn peek_msg_id(buf: &[u8]) -> Result<MsgId, MsgError> {
    // The header as `from_json` reads it (in any form serde takes), so
    // that the two agree on what a message is.
    #[derive(Deserialize)]
    struct Peek {
        header: MsgHeader,
    }
    let peek: Peek = serde_json::from_slice(buf)?;
    Ok(peek.header.msg_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_get_id_utf8_str() {
        let id = MsgId::of_name("some::Msg");
        // A body no message type could decode: peeking must not look at it.
        let buf = format!(
            r#"{{"header":{{"msg_id":"{id}","dst_id":"{z}","src_id":"{z}","corr_id":0}},"body":{{"x":[1,{{"y":null}}]}}}}"#,
            z = "0".repeat(32)
        );
        assert_eq!(peek_msg_id(buf.as_bytes()).unwrap(), id);

        for bad in [
            &b"not json"[..],
            br#"{"body":{}}"#,
            br#"{"header":{"msg_id":"123"},"body":{}}"#,
            br#"{"header":{"msg_id":[1,2,3]},"body":{}}"#,
            br#"{"header":{"msg_id":"zz000000000000000000000000000000"},"body":{}}"#,
        ] {
            assert!(matches!(peek_msg_id(bad), Err(MsgError::Json(_))), "{}", String::from_utf8_lossy(bad));
        }
    }
}
