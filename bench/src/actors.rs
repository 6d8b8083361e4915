//! Actors that measure: a pinger that records every round trip until a
//! deadline, a sink that counts, a streamer that floods a sink.

use actor::{Actor, ActorSender, Context, dispatch};
use crossbeam_channel::Sender;
use echo_reply::EchoReply;
use echo_req::EchoReq;
use echo_requestee_protocol::echo_requestee_protocol;
use hdrhistogram::Histogram;
use msg_header::{BoxMsg, now_ns};
use msg_local_macro::msg_local_macro;
use protocol::protocol;
use protocol_set::ProtocolSet;
use protocol_set::protocol_set;

use crate::histogram;

msg_local_macro! {
    /// Starts a pinger: round trips with `partner` until `until_ns` (by
    /// `now_ns`) or `max` of them; the round trips go to `done`.
    pub struct PingFor("bench::PingFor") {
        /// The echo server.
        pub partner: ActorSender,
        /// When to stop, by `now_ns`.
        pub until_ns: u64,
        /// At most this many round trips.
        pub max: u64,
        /// Where the round trips go.
        pub done: Sender<Histogram<u64>>,
    }
}

msg_local_macro! {
    /// Starts (or continues) a streamer: `EchoReq`s to `sink` until
    /// `until_ns`; then the number the sink counted goes to `done`.
    pub struct StreamFor("bench::StreamFor") {
        /// The sink.
        pub sink: ActorSender,
        /// When to stop, by `now_ns`.
        pub until_ns: u64,
        /// Where the count goes.
        pub done: Sender<u64>,
    }
}

protocol! {
    /// How the benchmark drives its actors: both messages stay in the process.
    fn bench_protocol = "bench_protocol" [local PingFor, local StreamFor]
}

protocol_set! {
    /// What the benchmark's actors speak.
    fn bench_set = "bench::Actors" [bench_protocol(), echo_requestee_protocol()]
}

/// Measures round trips with an echo server until a deadline.
#[derive(Default)]
pub struct Pinger {
    run: Option<(PingFor, Histogram<u64>)>,
}

impl Actor for Pinger {
    fn protocol_set(&self) -> &'static ProtocolSet {
        bench_set()
    }
    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        dispatch!(msg, ctx, {
            reply: EchoReply => {
                if let Some((_, h)) = &mut self.run {
                    h.saturating_record(now_ns().saturating_sub(reply.req_timestamp_ns));
                    let n = h.len();
                    self.ping(ctx, n);
                }
            },
            start: PingFor => {
                self.run = Some((start, histogram()));
                self.ping(ctx, 0);
            },
            // Of the bench's protocols, but not a pinger's to take.
            other: StreamFor => ctx.unhandled(Box::new(other)),
            req: EchoReq => ctx.unhandled(Box::new(req)),
        })
    }
}

impl Pinger {
    fn ping(&mut self, ctx: &mut Context<'_>, done_so_far: u64) {
        let Some((run, _)) = &self.run else { return };
        if done_so_far < run.max
            && now_ns() < run.until_ns
            && ctx.send(&run.partner, EchoReq::stamped(done_so_far + 1)).is_ok()
        {
            return;
        }
        if let Some((run, h)) = self.run.take() {
            // To the bench's own thread, which waits with a guard: one that
            // gave up has failed its run already, there is no one to tell.
            run.done.send(h).ok();
        }
    }
}

/// Counts the `EchoReq`s it gets; to an `EchoReq` of counter 0 it replies
/// with the count so far (in an `EchoReply`'s counter).
#[derive(Default)]
pub struct Sink {
    count: u64,
}

impl Actor for Sink {
    fn protocol_set(&self) -> &'static ProtocolSet {
        bench_set()
    }
    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        dispatch!(msg, ctx, {
            req: EchoReq => {
                if req.counter == 0 {
                    ctx.answer_to(&req, EchoReply::new(self.count, 0, 0));
                } else {
                    self.count += 1;
                }
            },
            // Of the bench's protocols, but not a sink's to take.
            reply: EchoReply => ctx.unhandled(Box::new(reply)),
            start: PingFor => ctx.unhandled(Box::new(start)),
            other: StreamFor => ctx.unhandled(Box::new(other)),
        })
    }
}

/// Floods a sink with `EchoReq`s until a deadline, from an actor: sends
/// until the mailbox or window is full, then has it say when there is room.
pub struct Streamer {
    sent: u64,
    asked: Ask,
    started_count: Option<u64>,
    done: Option<Sender<u64>>,
}

impl Default for Streamer {
    fn default() -> Self {
        Self::new()
    }
}

impl Streamer {
    /// A streamer that has streamed nothing yet.
    pub fn new() -> Self {
        Self { sent: 0, asked: Ask::Done, started_count: None, done: None }
    }
}

impl Actor for Streamer {
    fn protocol_set(&self) -> &'static ProtocolSet {
        bench_set()
    }
    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        dispatch!(msg, ctx, {
            reply: EchoReply => self.on_count(reply.counter),
            run: StreamFor => self.on_run(ctx, Box::new(run)),
            // Of the bench's protocols, but not a streamer's to take.
            start: PingFor => ctx.unhandled(Box::new(start)),
            req: EchoReq => ctx.unhandled(Box::new(req)),
        })
    }
}

impl Streamer {
    /// The sink's count: first the one before the stream, then after.
    fn on_count(&mut self, counter: u64) {
        match self.started_count.take() {
            None => self.started_count = Some(counter),
            Some(before) => {
                if let Some(done) = self.done.take() {
                    // As for the pinger: a bench that gave up has failed already.
                    done.send(counter - before).ok();
                }
            }
        }
    }

    /// Streams for `run` (again, after a wait for room).
    fn on_run(&mut self, ctx: &mut Context<'_>, run: Box<StreamFor>) {
        if self.done.is_none() {
            self.done = Some(run.done.clone());
            self.asked = Ask::Before;
        }
        // The counts asked of the sink before and after: frames keep their
        // order, so the second comes after every request sent. A full
        // window refuses them too: then they wait for room like the rest.
        if self.asked == Ask::Before && !self.ask_count(ctx, &run) {
            return self.wait_for_room(ctx, run);
        }
        if self.asked == Ask::After {
            if !self.ask_count(ctx, &run) {
                self.wait_for_room(ctx, run);
            }
            return;
        }
        if self.asked == Ask::Done {
            return; // a late note of a run whose counts are asked
        }
        loop {
            if now_ns() >= run.until_ns {
                self.asked = Ask::After;
                if !self.ask_count(ctx, &run) {
                    self.wait_for_room(ctx, run);
                }
                return;
            }
            // A few at a time between clock reads.
            for _ in 0..64 {
                if ctx.send(&run.sink, EchoReq::new(self.sent + 1, 0)).is_err() {
                    return self.wait_for_room(ctx, run);
                }
                self.sent += 1;
            }
        }
    }
}

impl Streamer {
    /// Asks the sink for its count; whether the request went.
    fn ask_count(&mut self, ctx: &mut Context<'_>, run: &StreamFor) -> bool {
        let sent = ctx.send(&run.sink, EchoReq::new(0, 0)).is_ok();
        if sent && self.asked == Ask::Before {
            self.asked = Ask::None;
        }
        if sent && self.asked == Ask::After {
            self.asked = Ask::Done;
        }
        sent
    }

    /// Goes on with `run` once the sink's mailbox or window has room.
    fn wait_for_room(&mut self, ctx: &mut Context<'_>, run: Box<StreamFor>) {
        let sink = run.sink.clone();
        let note: BoxMsg = run;
        // A sink that is gone takes no note: the run cannot go on, and the
        // bench's guard ends it; the note is reported.
        if let Err(e) = sink.when_room(ctx.me(), note) {
            ctx.undelivered(e);
        }
    }
}

/// Where a streamer is with the counts it asks of the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// Not yet asked the count before the stream.
    Before,
    /// Streaming.
    None,
    /// Not yet asked the count after the stream.
    After,
    /// Both asked; waiting for the answers.
    Done,
}

/// The sink of the `large` path: takes `EchoBytes` and answers each with
/// its tag alone, no bytes back.
#[derive(Debug, Default, Clone, Copy)]
pub struct BytesSink;

impl actor::Handler<server::EchoBytes> for BytesSink {
    fn handle(&mut self, _: &mut Context<'_>, req: server::EchoBytes) -> server::EchoedBytes {
        server::EchoedBytes::new(req.tag, msg_header::Bytes::new())
    }
}
