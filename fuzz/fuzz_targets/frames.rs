//! The frame decoder, fed a byte stream cut into reads at arbitrary points.
//! The property and its invariants: `connection::fuzzing::frames`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| connection::fuzzing::frames(data));
