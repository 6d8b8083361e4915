//! [`Msg1`]: a sample message with a map field.
//!
//! Its JSON has the same shape as `msg2::Msg2`'s; only the id tells them
//! apart, which is what decoding checks first.
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    /// A sample message with a number and a map.
    #[derive(Clone, PartialEq)]
    pub struct Msg1("msg1::Msg1") {
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
    fn test_msg1_to_from_serde_json_buf() {
        let msg = Msg1::new(42, HashMap::new());
        let buf = msg.to_json().unwrap();
        let back = Msg1::from_json(&buf).unwrap();
        assert_eq!(back.header().msg_id(), Msg1::msg_id());
        assert_eq!(back, msg);
    }

    #[test]
    fn test_hash_map_to_from_serde_json_buf() {
        let map: HashMap<String, u64> = [("one", 1), ("two", 2), ("many", u64::MAX)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let msg = Msg1::new(1, map.clone());
        let back = Msg1::from_json(&msg.to_json().unwrap()).unwrap();
        assert_eq!(back.hash_map, map);
        assert_eq!(back.hash_map["many"], u64::MAX);

        // The map is an ordinary JSON object in the body.
        let full: serde_json::Value = serde_json::from_slice(&msg.to_json().unwrap()).unwrap();
        assert_eq!(full["body"]["hash_map"]["two"], 2);
        assert_eq!(full["header"]["msg_id"], Msg1::msg_id().to_string());
    }
}
