//! [`EchoComplete`]: an echo client's report that its run is done.
//!
//! ```
//! use echo_complete::EchoComplete;
//! let done = EchoComplete::new(10, 10);
//! assert_eq!(EchoComplete::from_json(&done.to_json()?)?, done);
//! # Ok::<(), msg_header::MsgError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    /// Sent by the echo client to whoever started it, once its run is done.
    #[derive(Clone, PartialEq)]
    pub struct EchoComplete("echo_complete::EchoComplete") {
        /// Requests sent.
        pub sent: u64,
        /// Replies received, in order.
        pub received: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_header::{Msg, MsgType};

    #[test]
    fn new_fills_header_and_fields() {
        let m = EchoComplete::new(3, 2);
        assert_eq!(m.header().msg_id(), EchoComplete::msg_id());
        assert_eq!((m.sent, m.received), (3, 2));
    }
}
