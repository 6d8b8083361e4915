//! [`EchoReply`]: the echo server's answer to an `EchoReq`.
//!
//! ```
//! # mod ipchnl { pub mod echo { pub use echo_reply::EchoReply; } }
//! use ipchnl::echo::EchoReply;
//! let reply = EchoReply::new(1, 100, 200);
//! assert_eq!(EchoReply::from_json(&reply.to_json()?)?, reply);
//! # Ok::<(), msg_header::MsgError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    /// The answer to an `EchoReq`: its counter and timestamp, and when the
    /// server answered.
    #[derive(Clone, PartialEq)]
    pub struct EchoReply("echo_reply::EchoReply") {
        /// The request's counter.
        pub counter: u64,
        /// The request's timestamp.
        pub req_timestamp_ns: u64,
        /// When the server answered, by [`msg_header::now_ns`].
        pub reply_timestamp_ns: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_header::{Msg, MsgId, MsgType};

    #[test]
    fn test_echo_reply_new() {
        let reply = EchoReply::new(7, 100, 250);
        assert_eq!(reply.header().msg_id(), MsgId::of_name("echo_reply::EchoReply"));
        assert_eq!(reply.header().msg_id(), EchoReply::msg_id());
        assert_eq!((reply.counter, reply.req_timestamp_ns, reply.reply_timestamp_ns), (7, 100, 250));
    }
}
