//! [`EchoReq`]: the echo client's request, answered by an `EchoReply`.
//!
//! ```
//! # mod ipchnl { pub mod echo { pub use echo_req::EchoReq; } }
//! use ipchnl::echo::EchoReq;
//! let req = EchoReq::stamped(1);
//! let back = EchoReq::from_json(&req.to_json()?)?;
//! assert_eq!(back, req);
//! # Ok::<(), msg_header::MsgError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    /// A request to echo `counter` and `req_timestamp_ns` back.
    #[derive(Clone, PartialEq)]
    pub struct EchoReq("echo_req::EchoReq") -> echo_reply::EchoReply {
        /// The request's place in its run, from 1.
        pub counter: u64,
        /// When the request was made, by [`msg_header::now_ns`].
        pub req_timestamp_ns: u64,
    }
}

impl EchoReq {
    /// A request stamped with the current time.
    pub fn stamped(counter: u64) -> Self {
        Self::new(counter, msg_header::now_ns())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_header::{Msg, MsgId, MsgType};

    #[test]
    fn test_echo_req_new() {
        let req = EchoReq::new(7, 1234);
        assert_eq!(req.header().msg_id(), MsgId::of_name("echo_req::EchoReq"));
        assert_eq!(req.header().msg_id(), EchoReq::msg_id());
        assert_eq!((req.counter, req.req_timestamp_ns), (7, 1234));

        let before = msg_header::now_ns();
        let stamped = EchoReq::stamped(8);
        assert_eq!(stamped.counter, 8);
        assert!(stamped.req_timestamp_ns >= before);
        assert!(stamped.req_timestamp_ns <= msg_header::now_ns());
    }
}
