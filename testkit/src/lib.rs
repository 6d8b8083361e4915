//! Actors and messages for exercising links between processes, hosted by
//! `ipchnl serve --test-actors` and driven from the integration tests.
//!
//! * `relay`: on [`Relay`], resolves the address it carries and sends an
//!   `EchoReq` there, with the relay's sender as the reply address: the
//!   answer goes straight back to whoever asked. Shows an address handed
//!   from one process to another and resolved.
//! * `napper`: a mailbox of one; on [`Nap`] it sleeps, so that messages
//!   arriving meanwhile find its mailbox full. Answers `EchoReq`s.
//! * `sink`: counts [`Seq`]s and, if given a file, appends `PID N` (its
//!   process and the number) to it with one unbuffered write as it handles
//!   each.
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use actor::{Actor, ActorAddr, Context, Wait, dispatch};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use echo_requestee_protocol::echo_requestee_protocol;
use manager::{ActorOptions, Manager, ManagerError};
use msg_header::{BoxMsg, now_ns};
use msg_serde_macro::msg_serde_macro;
use protocol::protocol;
use protocol_set::{ProtocolSet, protocol_set};
use tracing::warn;

msg_serde_macro! {
    /// Asks the relay to send `EchoReq { counter }` to the actor at `to`,
    /// with the asker as the reply address: the asker gets the `EchoReply`.
    #[derive(Clone, PartialEq)]
    pub struct Relay("testkit::Relay") -> EchoReply {
        /// Where to send the request.
        pub to: ActorAddr,
        /// The request's counter.
        pub counter: u64,
    }
}

msg_serde_macro! {
    /// Makes the napper sleep `ms` milliseconds.
    #[derive(Clone, PartialEq)]
    pub struct Nap("testkit::Nap") {
        /// How long.
        pub ms: u64,
    }
}

msg_serde_macro! {
    /// One numbered message of a stream, for the sink.
    #[derive(Clone, PartialEq)]
    pub struct Seq("testkit::Seq") {
        /// Its number.
        pub n: u64,
    }
}

msg_serde_macro! {
    /// A numbered message with padding, for volume: the sink treats it as
    /// a [`Seq`].
    #[derive(Clone, PartialEq)]
    pub struct Bulk("testkit::Bulk") {
        /// Its number.
        pub n: u64,
        /// Bytes of nothing in particular.
        pub pad: String,
    }
}

protocol! {
    /// The protocol of the test actors: `Relay`, `Nap`, `Seq`, `Bulk`.
    pub fn testkit_protocol = "testkit_protocol" [Relay, Nap, Seq, Bulk]
}

protocol_set! {
    /// What the test actors speak.
    fn testkit_set = "testkit::Actors" [testkit_protocol(), echo_requestee_protocol()]
}

/// One of the test actors: each handles every message of the test
/// protocol; which one it is, the name it was added under says.
#[derive(Default)]
pub struct TestActor {
    sink_log: Option<File>,
    handled: u64,
}

impl TestActor {
    fn relay(&mut self, ctx: &mut Context<'_>, relay: &Relay) {
        let to = match ctx.resolve(relay.to) {
            Ok(to) => to,
            Err(e) => return warn!(error = %e, "relay: address not resolved"),
        };
        let req: BoxMsg = Box::new(EchoReq::new(relay.counter, now_ns()));
        if let Err(e) = to.forward(req, ctx.sender().cloned(), 0, Wait::No) {
            warn!(error = %e, "relay: request not sent");
        }
    }

    fn sink(&mut self, n: u64) {
        self.handled += 1;
        if let Some(log) = &mut self.sink_log {
            // One write per message, unbuffered: what is in the file was handled.
            if let Err(e) = log.write_all(format!("{} {n}\n", std::process::id()).as_bytes()) {
                warn!(error = %e, "sink: log write failed");
            }
        }
    }
}

impl Actor for TestActor {
    fn protocol_set(&self) -> &'static ProtocolSet {
        testkit_set()
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        dispatch!(msg, ctx, {
            relay: Relay => self.relay(ctx, &relay),
            nap: Nap => std::thread::sleep(Duration::from_millis(nap.ms)),
            seq: Seq => self.sink(seq.n),
            bulk: Bulk => self.sink(bulk.n),
            req: EchoReq => ctx.answer_to(&req, EchoReply::new(req.counter, req.req_timestamp_ns, now_ns())),
            reply: EchoReply => ctx.unhandled(Box::new(reply)),
        })
    }
}

/// Adds `relay`, `napper` (a mailbox of one, on the last executor) and
/// `sink` (logging to `sink_log` if given; acknowledging what it handled,
/// not what reached its mailbox, with `sink_receipts`) to `manager`.
pub fn add_test_actors(
    manager: &Manager,
    sink_log: Option<&Path>,
    sink_receipts: bool,
) -> Result<(), ManagerError> {
    manager.add("relay", TestActor::default())?;
    let last = manager.executor_count() - 1;
    manager.add_with("napper", TestActor::default(), ActorOptions::default().executor(last).capacity(1))?;
    let mut sink = TestActor::default();
    if let Some(path) = sink_log {
        sink.sink_log = Some(open_sink_log(path)?);
    }
    manager.add_with("sink", sink, ActorOptions::default().receipts(sink_receipts))?;
    Ok(())
}

/// What ends a line that a killed sink left unfinished.
///
/// A write that straddles a page boundary can be cut short by `SIGKILL`;
/// the next sink to open the log ends that line with this, so that its own
/// lines start clean and a reader can tell the torn one from a record.
pub const TORN: &str = " torn\n";

/// Opens the sink's log for appending, ending a line left unfinished by a
/// killed predecessor with [`TORN`].
fn open_sink_log(path: &Path) -> std::io::Result<File> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::options().create(true).read(true).append(true).open(path)?;
    let mut last = [0u8; 1];
    if file.seek(SeekFrom::End(-1)).is_ok() && file.read_exact(&mut last).is_ok() && last[0] != b'\n' {
        file.write_all(TORN.as_bytes())?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_left_unfinished_by_a_killed_sink_is_ended_as_torn() {
        let path = std::env::temp_dir().join(format!("ipchnl-sink-log-{}", std::process::id()));
        std::fs::write(&path, "1 1\n1 2\n1 3").unwrap();
        let mut log = open_sink_log(&path).unwrap();
        log.write_all(b"2 4\n").unwrap();
        drop(log);
        // A finished log is left as it is.
        open_sink_log(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(text, format!("1 1\n1 2\n1 3{TORN}2 4\n"));
    }
}
