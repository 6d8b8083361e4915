//! JSON bodies of every message type shipped, and of the control frames.
//! The property and its invariants: `testkit::fuzzing::bodies`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| testkit::fuzzing::bodies(data));
