//! The handshake state machine, fed arbitrary messages, or tampered with in transit.
//! The property and its invariants: `ipchnl::fuzzing::handshake`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipchnl::fuzzing::handshake(data));
