//! [`EchoStart`]: tells an echo client to run `ping_count` round trips.
//!
//! ```
//! # mod ipchnl { pub mod echo { pub use echo_start::EchoStart; } }
//! use ipchnl::echo::EchoStart;
//! assert_eq!(EchoStart::from_json(&EchoStart::new(3).to_json()?)?.ping_count, 3);
//! # Ok::<(), msg_header::MsgError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    /// Starts an echo run; the client answers with `EchoComplete` when done.
    #[derive(Clone, PartialEq)]
    pub struct EchoStart("echo_start::EchoStart") -> echo_complete::EchoComplete {
        /// How many round trips to make.
        pub ping_count: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_header::{Msg, MsgType};

    #[test]
    fn new_fills_header_and_fields() {
        let m = EchoStart::new(5);
        assert_eq!(m.header().msg_id(), EchoStart::msg_id());
        assert_eq!(m.ping_count, 5);
    }
}
