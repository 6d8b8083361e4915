//! [`EchoComplete`]: an echo client's report that its run is done.
//!
//! ```
//! # mod ipchnl { pub mod echo { pub use echo_complete::EchoComplete; } }
//! use ipchnl::echo::EchoComplete;
//! let done = EchoComplete::new(10, 10, 900, 1500, 2000, 12_000);
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
        /// Median round trip, in nanoseconds (0 when none was measured).
        #[serde(default)]
        pub rtt_p50_ns: u64,
        /// 99th-percentile round trip, in nanoseconds.
        #[serde(default)]
        pub rtt_p99_ns: u64,
        /// Longest round trip, in nanoseconds.
        #[serde(default)]
        pub rtt_max_ns: u64,
        /// From the first request to the last reply, in nanoseconds.
        #[serde(default)]
        pub elapsed_ns: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_header::{Msg, MsgType};

    #[test]
    fn new_fills_header_and_fields() {
        let m = EchoComplete::new(3, 2, 10, 20, 30, 40);
        assert_eq!(m.header().msg_id(), EchoComplete::msg_id());
        assert_eq!((m.sent, m.received), (3, 2));
        assert_eq!((m.rtt_p50_ns, m.rtt_p99_ns, m.rtt_max_ns, m.elapsed_ns), (10, 20, 30, 40));
    }

    /// A reader of the first version (counts only) still decodes: the
    /// timing fields were added with `#[serde(default)]`.
    #[test]
    fn the_first_version_still_decodes() {
        let v1 = format!(
            r#"{{"header":{{"msg_id":"{}"}},"body":{{"sent":5,"received":5}}}}"#,
            EchoComplete::msg_id()
        );
        let m = EchoComplete::from_json(v1.as_bytes()).unwrap();
        assert_eq!((m.sent, m.received, m.rtt_p50_ns, m.elapsed_ns), (5, 5, 0, 0));
    }
}
