//! JSON bodies of every message type shipped, and of the control frames.
//! The property and its invariants: `ipchnl::fuzzing::bodies`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ipchnl::fuzzing::bodies(data));
