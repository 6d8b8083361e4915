//! A link session fed any frames in reads of any size, its limits small.
//! The property and its invariants: `connection::fuzzing::session`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| connection::fuzzing::session(data));
