//! The protocol that starts an echo run (`EchoStart`) and reports it done (`EchoComplete`).
//!
//! ```
//! # mod ipchnl { pub use msg_header::MsgType; }
//! use ipchnl::MsgType;
//! let p = echo_start_complete_protocol::echo_start_complete_protocol();
//! assert_eq!(p.name(), "echo_start_complete_protocol");
//! assert!(p.contains(echo_start_complete_protocol::EchoStart::msg_id()));
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use protocol::protocol;

pub use echo_complete::EchoComplete;
pub use echo_start::EchoStart;

/// The protocol's name; its id is the hash of this.
pub const NAME: &str = "echo_start_complete_protocol";

protocol! {
    /// The protocol, built once (its name is [`NAME`]).
    pub fn echo_start_complete_protocol = "echo_start_complete_protocol" [EchoStart, EchoComplete]
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_header::MsgType;
    use protocol::ProtocolId;

    #[test]
    fn test_echo_start_complete_protocol() {
        let p = echo_start_complete_protocol();
        assert_eq!(p.name(), NAME);
        assert_eq!(p.id(), ProtocolId::of_name(NAME));
        assert_eq!(p.msg_ids().collect::<Vec<_>>(), [EchoStart::msg_id(), EchoComplete::msg_id(),]);
        assert!(p.messages().iter().all(|m| m.is_wire()));
    }
}
