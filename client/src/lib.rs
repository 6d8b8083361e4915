//! [`Client`], the echo requester.
//!
//! On `EchoStart { ping_count }` it sends `EchoReq`s to its partner one at
//! a time, checks each `EchoReply` (counters in order), then sends
//! `EchoComplete` to whoever started it: how many were sent and received,
//! and the round-trip percentiles it measured. Its partner is
//! given at construction or, by default, found by protocol: the first
//! actor that speaks `echo_requestee_protocol`, local or remote.
//!
//! # Examples
//!
//! ```
//! # mod ipchnl { pub use actor::Actor; pub use actor::ActorSender; pub use actor::StaticDirectory; pub use actor::dispatch; pub mod echo { pub use client::Client; pub use echo_complete::EchoComplete; pub use echo_start::EchoStart; } }
//! use ipchnl::{Actor, ActorSender, StaticDirectory, dispatch};
//! use ipchnl::echo::Client;
//! use ipchnl::echo::EchoComplete;
//! use ipchnl::echo::EchoStart;
//!
//! // With no server to be found, the run completes at once with nothing sent.
//! let mut client = Client::new();
//! let (addr, rx) = ActorSender::channel("client", &client, None);
//! let (me, my_rx) = ActorSender::inbox("controller");
//! addr.send_from(EchoStart::new(3), &me)?;
//! dispatch(&mut client, &addr, &StaticDirectory::default(), rx.recv()?);
//! let done = my_rx.recv()?.msg.downcast::<EchoComplete>()?;
//! assert_eq!((done.sent, done.received), (0, 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use std::fmt;

use actor::{Actor, ActorSender, Context, Terminated, dispatch};
use echo_complete::EchoComplete;
use echo_reply::EchoReply;
use echo_req::EchoReq;
use echo_requestee_protocol::echo_requestee_protocol;
use echo_requester_protocol::echo_requester_protocol;
use echo_start::EchoStart;
use echo_start_complete_protocol::echo_start_complete_protocol;
use hdrhistogram::Histogram;
use msg_header::{BoxMsg, now_ns};
use protocol_set::{ProtocolSet, protocol_set};
use tracing::{debug, trace, warn};

protocol_set! {
    /// The protocols a [`Client`] speaks: `echo_requester_protocol` and
    /// `echo_start_complete_protocol`.
    pub fn client_protocol_set = "client::Client" [echo_requester_protocol(), echo_start_complete_protocol()]
}

/// Where a [`Client`] is in its run. Its `Debug` shows the histogram of
/// round trips as its sample count only (its contents are tens of
/// thousands of counters).
pub enum ClientState {
    /// Waiting for an `EchoStart`.
    Idle,
    /// A run is under way.
    Running {
        /// Whom to send `EchoComplete` to.
        controller: Option<ActorSender>,
        /// The server.
        partner: ActorSender,
        /// How many round trips were asked for.
        ping_count: u64,
        /// Requests sent so far; the last one's counter.
        sent: u64,
        /// Replies received in order so far.
        received: u64,
        /// When the run started ([`now_ns`]).
        started_ns: u64,
        /// Round trips measured so far, in nanoseconds.
        rtts: Box<Histogram<u64>>,
    },
}

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Idle => f.write_str("Idle"),
            Self::Running { controller, partner, ping_count, sent, received, started_ns, rtts } => f
                .debug_struct("Running")
                .field("controller", controller)
                .field("partner", partner)
                .field("ping_count", ping_count)
                .field("sent", sent)
                .field("received", received)
                .field("started_ns", started_ns)
                .field("rtts", &format_args!("{} samples", rtts.len()))
                .finish(),
        }
    }
}

/// The echo requester actor.
#[derive(Debug)]
pub struct Client {
    partner: Option<ActorSender>,
    state: ClientState,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client that finds its partner by protocol when a run starts.
    pub fn new() -> Self {
        Self { partner: None, state: ClientState::Idle }
    }

    /// A client that always runs against `partner`.
    pub fn with_partner(partner: ActorSender) -> Self {
        Self { partner: Some(partner), ..Self::new() }
    }

    /// The current state.
    pub fn state(&self) -> &ClientState {
        &self.state
    }

    fn start(&mut self, ctx: &mut Context<'_>, ping_count: u64) {
        let controller = ctx.sender().cloned();
        let partner = self
            .partner
            .clone()
            .or_else(|| ctx.find_by_protocol(echo_requestee_protocol().id()).into_iter().next());
        let Some(partner) = partner else {
            warn!(client = ctx.me().name(), "no actor speaks echo_requestee_protocol; run not started");
            return finish(ctx, controller, EchoComplete::new(0, 0, 0, 0, 0, 0));
        };
        debug!(client = ctx.me().name(), ?partner, ping_count, "run started");
        // If the partner ends (or its link goes down) mid-run, the run ends
        // with what it has instead of waiting for a reply that will not come.
        if let Err(e) = ctx.watch(&partner) {
            debug!(client = ctx.me().name(), error = %e, "partner not watched");
        }
        let rtts = Box::new(rtt_histogram());
        let started_ns = now_ns();
        self.state =
            ClientState::Running { controller, partner, ping_count, sent: 0, received: 0, started_ns, rtts };
        self.next(ctx);
    }

    /// Sends the next request, or completes the run.
    fn next(&mut self, ctx: &mut Context<'_>) {
        let ClientState::Running { partner, ping_count, sent, received, .. } = &mut self.state else {
            return;
        };
        if *received < *ping_count {
            match ctx.send(partner, EchoReq::stamped(*sent + 1)) {
                Ok(()) => {
                    *sent += 1;
                    return;
                }
                Err(e) => warn!(client = ctx.me().name(), error = %e, "request not sent; run ends"),
            }
        }
        self.complete(ctx);
    }

    fn complete(&mut self, ctx: &mut Context<'_>) {
        if let ClientState::Running { controller, sent, received, started_ns, rtts, .. } =
            std::mem::replace(&mut self.state, ClientState::Idle)
        {
            let elapsed_ns = now_ns().saturating_sub(started_ns);
            debug!(client = ctx.me().name(), sent, received, elapsed_ns, "run complete");
            let done = EchoComplete::new(
                sent,
                received,
                rtts.value_at_quantile(0.5),
                rtts.value_at_quantile(0.99),
                rtts.max(),
                elapsed_ns,
            );
            finish(ctx, controller, done);
        }
    }

    fn on_reply(&mut self, ctx: &mut Context<'_>, reply: &EchoReply) {
        let ClientState::Running { sent, received, rtts, .. } = &mut self.state else {
            return warn!(client = ctx.me().name(), counter = reply.counter, "reply while idle; ignored");
        };
        if reply.counter != *sent {
            warn!(
                client = ctx.me().name(),
                expected = *sent,
                got = reply.counter,
                "reply out of order; run ends"
            );
            return self.complete(ctx);
        }
        *received += 1;
        rtts.saturating_record(now_ns().saturating_sub(reply.req_timestamp_ns));
        self.next(ctx);
    }
}

/// A histogram of 1 ns to 1 h, three significant figures (values past
/// the bound are recorded as the bound).
#[allow(clippy::expect_used)] // invariant: 1 <= 1 h in ns, and 3 significant figures, are valid
fn rtt_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds and precision")
}

/// Tells the controller, if any, that the run is over.
fn finish(ctx: &mut Context<'_>, controller: Option<ActorSender>, done: EchoComplete) {
    if let Some(controller) = controller
        && let Err(e) = ctx.send(&controller, done)
    {
        warn!(error = %e, "EchoComplete not delivered");
    }
}

impl Actor for Client {
    fn protocol_set(&self) -> &'static ProtocolSet {
        client_protocol_set()
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        trace!(client = ctx.me().name(), state = ?self.state, msg = msg.name(), "handle");
        dispatch!(msg, ctx, {
            reply: EchoReply => self.on_reply(ctx, &reply),
            start: EchoStart => match self.state {
                ClientState::Idle => self.start(ctx, start.ping_count),
                // One run at a time: a second start is reported, not run.
                ClientState::Running { .. } => ctx.unhandled(Box::new(start)),
            },
            ended: Terminated => {
                if matches!(&self.state, ClientState::Running { partner, .. } if partner.id() == ended.actor) {
                    warn!(client = ctx.me().name(), reason = ?ended.reason, "partner ended mid-run; run ends");
                    self.complete(ctx);
                }
            },
            // Of its protocols, but a client has no use for these.
            req: EchoReq => ctx.unhandled(Box::new(req)),
            done: EchoComplete => ctx.unhandled(Box::new(done)),
        })
    }
}

#[cfg(test)]
mod tests;
