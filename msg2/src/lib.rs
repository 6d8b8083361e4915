//! [`Msg2`]: a sample message whose JSON is shaped exactly like
//! `msg1::Msg1`'s, so only its id tells them apart.
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    /// The twin of `msg1::Msg1` under another name.
    #[derive(Clone, PartialEq)]
    pub struct Msg2("msg2::Msg2") {
        /// A number.
        pub v: u64,
        /// A map from names to numbers.
        pub hash_map: HashMap<String, u64>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_header::{Msg, MsgType};

    #[test]
    fn round_trips() {
        let msg = Msg2::new(2, HashMap::from([("k".to_string(), 9)]));
        let back = Msg2::from_json(&msg.to_json().unwrap()).unwrap();
        assert_eq!(back, msg);
        assert_eq!(back.header().msg_id(), Msg2::msg_id());
    }
}
