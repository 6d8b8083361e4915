//! The handshake state machine, fed arbitrary messages, or tampered with in transit.
//! The property and its invariants: `connection::fuzzing::handshake`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| connection::fuzzing::handshake(data));
