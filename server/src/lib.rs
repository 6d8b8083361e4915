//! [`Server`], the echo requestee: answers every `EchoReq` with an
//! `EchoReply` carrying the request's counter and timestamp and its own.
//!
//! # Examples
//!
//! ```
//! # mod ipchnl { pub use actor::ActorSender; pub use actor::StaticDirectory; pub use actor::dispatch; pub mod echo { pub use echo_reply::EchoReply; pub use echo_req::EchoReq; pub use server::Server; } }
//! use ipchnl::{ActorSender, StaticDirectory, dispatch};
//! use ipchnl::echo::EchoReply;
//! use ipchnl::echo::EchoReq;
//! use ipchnl::echo::Server;
//!
//! let mut server = Server::new();
//! let (addr, rx) = ActorSender::channel("server", &server, None);
//! let (me, my_rx) = ActorSender::inbox("me");
//! addr.send_from(EchoReq::new(1, 100), &me)?;
//! dispatch(&mut server, &addr, &StaticDirectory::default(), rx.recv()?);
//! let reply = my_rx.recv()?.msg.downcast::<EchoReply>()?;
//! assert_eq!((reply.counter, reply.req_timestamp_ns), (1, 100));
//! assert!(reply.reply_timestamp_ns >= 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use actor::{Actor, Context, dispatch};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use echo_requestee_protocol::echo_requestee_protocol;
use msg_header::{BoxMsg, now_ns};
use protocol_set::{ProtocolSet, protocol_set};
use tracing::trace;

protocol_set! {
    /// The protocols a [`Server`] speaks: `echo_requestee_protocol`.
    pub fn server_protocol_set = "server::Server" [echo_requestee_protocol()]
}

/// The state of a [`Server`]: it has only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Answering requests; `replies` sent so far.
    Serving {
        /// Replies sent so far.
        replies: u64,
    },
}

/// The echo requestee actor.
#[derive(Debug)]
pub struct Server {
    state: ServerState,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// A server that has answered nothing yet.
    pub fn new() -> Self {
        Self { state: ServerState::Serving { replies: 0 } }
    }

    /// The current state.
    pub fn state(&self) -> ServerState {
        self.state
    }
}

impl Actor for Server {
    fn protocol_set(&self) -> &'static ProtocolSet {
        server_protocol_set()
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        trace!(server = ctx.me().name(), state = ?self.state, msg = msg.name(), "handle");
        let ServerState::Serving { replies } = &mut self.state;
        dispatch!(msg, ctx, {
            req: EchoReq => match ctx.reply(EchoReply::new(req.counter, req.req_timestamp_ns, now_ns())) {
                Ok(()) => *replies += 1,
                // A plain send (no one to answer) or an asker that is gone.
                Err(e) => ctx.undelivered(e),
            },
            // Of its protocol, but a server has no use for one.
            reply: EchoReply => ctx.unhandled(Box::new(reply)),
        })
    }
}

mod bytes_echo;
mod same_thread;

pub use bytes_echo::{BytesEcho, BytesEchoService, EchoBytes, EchoedBytes};
pub use same_thread::{EchoLoop, SameThreadError, SameThreadReport, same_thread_echo};

#[cfg(test)]
mod tests;
