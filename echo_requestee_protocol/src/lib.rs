//! The protocol an echo requestee speaks: it receives `EchoReq`s and answers with `EchoReply`s.
//!
//! ```
//! # mod ipchnl { pub use msg_header::MsgType; }
//! use ipchnl::MsgType;
//! let p = echo_requestee_protocol::echo_requestee_protocol();
//! assert_eq!(p.name(), "echo_requestee_protocol");
//! assert!(p.contains(echo_requestee_protocol::EchoReq::msg_id()));
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use protocol::protocol;

pub use echo_reply::EchoReply;
pub use echo_req::EchoReq;

/// The protocol's name; its id is the hash of this.
pub const NAME: &str = "echo_requestee_protocol";

protocol! {
    /// The protocol, built once (its name is [`NAME`]).
    pub fn echo_requestee_protocol = "echo_requestee_protocol" [EchoReq, EchoReply]
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_header::MsgType;
    use protocol::ProtocolId;

    #[test]
    fn test_echo_requestee_protocol() {
        let p = echo_requestee_protocol();
        assert_eq!(p.name(), NAME);
        assert_eq!(p.id(), ProtocolId::of_name(NAME));
        assert_eq!(p.msg_ids().collect::<Vec<_>>(), [EchoReq::msg_id(), EchoReply::msg_id(),]);
        assert!(p.messages().iter().all(|m| m.is_wire()));
    }
}
