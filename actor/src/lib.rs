//! Actors and their addresses.
//!
//! * [`Actor`]: a state machine that handles one message at a time.
//! * [`Context`]: what a handler can do: reply to the sender, send to
//!   others, look actors up, stop.
//! * [`ActorSender`]: the address an actor is sent to. The same calls
//!   (`try_send`, `send`, `send_timeout`, `ask`) work whatever is behind it:
//!   a channel, an executor's mailbox or a link to another process, each a
//!   [`Route`].
//!
//! Without a manager, an actor can be driven by hand: give it a channel
//! address with [`ActorSender::channel`] and call [`dispatch()`] on what
//! arrives. The `manager` crate runs actors on executor threads.
//!
//! # Examples
//!
//! ```
//! # mod ipchnl { pub use actor::Actor; pub use actor::ActorSender; pub use actor::Context; pub use actor::StaticDirectory; pub use actor::dispatch; pub use msg_header::BoxMsg; pub use protocol_set::ProtocolSet; pub use protocol_set::protocol_set; pub mod echo { pub use echo_reply::EchoReply; pub use echo_req::EchoReq; } }
//! use ipchnl::{Actor, ActorSender, Context, StaticDirectory, dispatch};
//! use ipchnl::echo::EchoReply;
//! use ipchnl::echo::EchoReq;
//! use ipchnl::BoxMsg;
//! use ipchnl::{ProtocolSet, protocol_set};
//!
//! protocol_set! {
//!     fn echo_set = "echo" [echo_requestee_protocol::echo_requestee_protocol()]
//! }
//!
//! struct Echo;
//! impl Actor for Echo {
//!     fn protocol_set(&self) -> &'static ProtocolSet {
//!         echo_set()
//!     }
//!     fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
//!         dispatch!(msg, ctx, {
//!             req: EchoReq => ctx.answer_to(&req, EchoReply::new(req.counter, req.req_timestamp_ns, 0)),
//!             _reply: EchoReply => {},
//!         })
//!     }
//! }
//!
//! let mut echo = Echo;
//! let (echo_addr, echo_rx) = ActorSender::channel("echo", &echo, None);
//! let (me, my_rx) = ActorSender::inbox("me");
//!
//! echo_addr.send_from(EchoReq::new(7, 0), &me)?;
//! dispatch(&mut echo, &echo_addr, &StaticDirectory::default(), echo_rx.recv()?);
//! let reply = my_rx.recv()?.msg.downcast::<EchoReply>()?;
//! assert_eq!(reply.counter, 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

mod actor;
mod channel;
mod context;
mod dispatch;
mod error;
mod hold;
mod sender;
mod system;
mod terminated;
mod typed;

pub use actor::{Actor, dispatch};
pub use context::Context;
pub use error::{AskError, SendError};
pub use hold::{Hold, HoldPool, LocalPool};
pub use sender::{ActorSender, Envelope, Route, Wait, mark_executor_thread, on_executor_thread};
pub use system::{ActorAddr, StaticDirectory, System, SystemError};
pub use terminated::{Terminated, TerminationReason};
pub use typed::{Handler, Ref, Served, ServedBy, Service, Takes};

/// What the macros of this crate name; not an API.
#[doc(hidden)]
pub mod __private {
    pub use msg_header::{BoxMsg, MsgType, Request};
    pub use protocol::{MsgInfo, Protocol};
    pub use protocol_set::ProtocolSet;
}

#[cfg(test)]
mod tests;
