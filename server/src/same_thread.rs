//! The seed's latency measurement: a client and a [`Server`] in one
//! thread, a request and its reply through our addresses and dispatch,
//! four clock readings per round trip.

use std::fmt;

use actor::{ActorSender, StaticDirectory, dispatch};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use msg_header::now_ns;

use crate::Server;

/// One round trip of [`same_thread_echo`]: the four clock readings, in
/// nanoseconds since an arbitrary start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EchoLoop {
    /// Before the request is sent.
    pub start: u64,
    /// The request's own timestamp (stamped as it is made).
    pub req: u64,
    /// The reply's timestamp (stamped by the server).
    pub reply: u64,
    /// After the reply is received.
    pub end: u64,
}

impl EchoLoop {
    /// From the start to the request's stamp.
    pub fn t0(&self) -> u64 {
        self.req.saturating_sub(self.start)
    }

    /// From the request's stamp to the reply's: sending, dispatch, handling.
    pub fn t1(&self) -> u64 {
        self.reply.saturating_sub(self.req)
    }

    /// From the reply's stamp to its receipt.
    pub fn t2(&self) -> u64 {
        self.end.saturating_sub(self.reply)
    }

    /// The whole round trip.
    pub fn rtt(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the readings are in order (start, request, reply, end).
    pub fn is_ordered(&self) -> bool {
        self.start <= self.req && self.req <= self.reply && self.reply <= self.end
    }
}

/// What [`same_thread_echo`] measured; its `Display` is the seed's report.
#[derive(Clone, Debug)]
pub struct SameThreadReport {
    /// Two successive differences of three successive clock readings: what
    /// one reading costs.
    pub clock_steps: [u64; 2],
    /// Every round trip, in order.
    pub loops: Vec<EchoLoop>,
    /// The server's `Debug`, after the run.
    pub server: String,
}

/// The number of last loops [`SameThreadReport`]'s `Display` averages, as
/// the seed did.
const AVERAGED: usize = 80;

impl fmt::Display for SameThreadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn one(f: &mut fmt::Formatter<'_>, title: &str, l: &EchoLoop) -> fmt::Result {
            writeln!(f, "\n{title}")?;
            writeln!(f, "  t0 = {:6}ns", l.t0())?;
            writeln!(f, "  t1 = {:6}ns", l.t1())?;
            writeln!(f, "  t2 = {:6}ns", l.t2())?;
            writeln!(f, " rtt = {:6}ns", l.rtt())
        }
        writeln!(f, "test_1: server={}", self.server)?;
        writeln!(f, "test_1:          second_now_ns - first_now_ns = {:6}ns", self.clock_steps[0])?;
        writeln!(f, "test_1:          third_now_ns - second_now_ns = {:6}ns", self.clock_steps[1])?;
        if let Some(first) = self.loops.first() {
            one(f, "First loop", first)?;
        }
        for (i, l) in self.loops.iter().enumerate().skip(self.loops.len().saturating_sub(5)) {
            one(f, &format!("Loop {}", i + 1), l)?;
        }
        let last = &self.loops[self.loops.len().saturating_sub(AVERAGED)..];
        let avg = |f: fn(&EchoLoop) -> u64| last.iter().map(f).sum::<u64>() / last.len().max(1) as u64;
        writeln!(f, "\nAverage times of the last {} loops", last.len())?;
        writeln!(f, "  t0 = {}ns", avg(EchoLoop::t0))?;
        writeln!(f, "  t1 = {}ns", avg(EchoLoop::t1))?;
        writeln!(f, "  t2 = {}ns", avg(EchoLoop::t2))?;
        write!(f, " rtt = {}ns", avg(EchoLoop::rtt))
    }
}

/// Why [`same_thread_echo`] could not measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SameThreadError {
    /// The request could not be sent (its text).
    Send(String),
    /// No request reached the server's mailbox, or no reply came back, in
    /// loop `n` (counting from 1).
    Missing(u64),
    /// The reply of loop `n` was not an `EchoReply` for that loop.
    WrongReply(u64),
}

impl fmt::Display for SameThreadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send(e) => write!(f, "cannot send the request: {e}"),
            Self::Missing(n) => write!(f, "loop {n}: a request or its reply is missing"),
            Self::WrongReply(n) => write!(f, "loop {n}: the reply is not this loop's EchoReply"),
        }
    }
}

impl std::error::Error for SameThreadError {}

/// Runs the seed's measurement: `loops` round trips of an `EchoReq` to a
/// fresh [`Server`] and its `EchoReply` back, all in the calling thread,
/// through an [`ActorSender`] and [`dispatch()`] as a manager's executor
/// would. The first loop is slow (cold caches); the seed averaged the last
/// 80 of 100.
///
/// # Errors
///
/// A [`SameThreadError`] if a request or reply goes astray (a bug).
///
/// # Examples
///
/// ```
/// let report = server::same_thread_echo(10)?;
/// assert_eq!(report.loops.len(), 10);
/// assert!(report.loops.iter().all(|l| l.is_ordered()));
/// assert!(report.to_string().contains("Average times of the last 10 loops"));
/// # Ok::<(), server::SameThreadError>(())
/// ```
pub fn same_thread_echo(loops: usize) -> Result<SameThreadReport, SameThreadError> {
    let mut server = Server::new();
    let (server_addr, server_rx) = ActorSender::channel("server", &server, None);
    let (me, my_rx) = ActorSender::inbox("test_1");
    let dir = StaticDirectory::new([server_addr.clone()]);

    let first_now_ns = now_ns();
    let second_now_ns = now_ns();
    let third_now_ns = now_ns();
    let clock_steps = [second_now_ns - first_now_ns, third_now_ns - second_now_ns];

    let mut out = vec![EchoLoop::default(); loops];
    for (counter, l) in (1..).zip(out.iter_mut()) {
        l.start = now_ns();
        server_addr
            .send_from(EchoReq::stamped(counter), &me)
            .map_err(|e| SameThreadError::Send(e.to_string()))?;
        let env = server_rx.try_recv().map_err(|_| SameThreadError::Missing(counter))?;
        dispatch(&mut server, &server_addr, &dir, env);
        let reply = my_rx.try_recv().map_err(|_| SameThreadError::Missing(counter))?;
        let reply = reply.msg.downcast::<EchoReply>().map_err(|_| SameThreadError::WrongReply(counter))?;
        l.end = now_ns();
        if reply.counter != counter {
            return Err(SameThreadError::WrongReply(counter));
        }
        l.req = reply.req_timestamp_ns;
        l.reply = reply.reply_timestamp_ns;
    }
    Ok(SameThreadReport { clock_steps, loops: out, server: format!("{server:?}") })
}
