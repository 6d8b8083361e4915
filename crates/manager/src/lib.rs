//! Runs actors on executor threads (coming with the manager issue).
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]
