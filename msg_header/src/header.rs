//! The header every message carries.

use serde::{Deserialize, Serialize};

use crate::{ActorId, MsgId};

/// What routing needs to know about a message.
///
/// The message macros put one in every message and fill `msg_id`; a send
/// stamps `dst_id` and `src_id`; `corr_id` pairs a reply with its request
/// (0 when there is none).
///
/// ```
/// # mod ipchnl { pub use msg_header::ActorId; pub use msg_header::MsgHeader; pub use msg_header::MsgId; }
/// use ipchnl::{ActorId, MsgHeader, MsgId};
/// let id = MsgId::of_name("x");
/// let mut h = MsgHeader::new(id);
/// let dst = ActorId::new();
/// h.set_dst_id(dst);
/// assert_eq!((h.msg_id(), h.dst_id(), h.src_id()), (id, dst, ActorId::NONE));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MsgHeader {
    msg_id: MsgId,
    #[serde(default)]
    dst_id: ActorId,
    #[serde(default)]
    src_id: ActorId,
    #[serde(default)]
    corr_id: u64,
}

impl MsgHeader {
    /// A header for a message of type `msg_id`, not addressed yet.
    pub const fn new(msg_id: MsgId) -> Self {
        Self { msg_id, dst_id: ActorId::NONE, src_id: ActorId::NONE, corr_id: 0 }
    }

    /// A header with every field given, as read from a frame.
    pub const fn with_ids(msg_id: MsgId, dst_id: ActorId, src_id: ActorId, corr_id: u64) -> Self {
        Self { msg_id, dst_id, src_id, corr_id }
    }

    /// The message type.
    pub const fn msg_id(&self) -> MsgId {
        self.msg_id
    }

    /// The actor the message is addressed to.
    pub const fn dst_id(&self) -> ActorId {
        self.dst_id
    }

    /// The actor that sent it, [`ActorId::NONE`] from outside any actor.
    pub const fn src_id(&self) -> ActorId {
        self.src_id
    }

    /// Pairs a reply with its request; 0 for none.
    pub const fn corr_id(&self) -> u64 {
        self.corr_id
    }

    /// Sets the destination.
    pub fn set_dst_id(&mut self, id: ActorId) {
        self.dst_id = id;
    }

    /// Sets the source.
    pub fn set_src_id(&mut self, id: ActorId) {
        self.src_id = id;
    }

    /// Sets the correlation id.
    pub fn set_corr_id(&mut self, id: u64) {
        self.corr_id = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_id() {
        let msg_id = MsgId::of_name("a::B");
        let (dst, src) = (ActorId::new(), ActorId::new());
        let mut h = MsgHeader::new(msg_id);
        h.set_dst_id(dst);
        h.set_src_id(src);
        h.set_corr_id(7);
        assert_eq!(h.msg_id(), msg_id);
        assert_eq!(h.dst_id(), dst);
        assert_eq!(h.src_id(), src);
        assert_eq!(h.corr_id(), 7);
        assert_eq!(h, MsgHeader::with_ids(msg_id, dst, src, 7));
        let json = serde_json::to_vec(&h).unwrap();
        assert_eq!(serde_json::from_slice::<MsgHeader>(&json).unwrap(), h);
    }

    #[test]
    fn test_msg_id_utf8_len() {
        for name in ["", "a", "echo_req::EchoReq", &"long".repeat(100)] {
            let text = MsgId::of_name(name).to_string();
            assert_eq!(text.len(), MsgId::TEXT_LEN);
            assert!(text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }
}
