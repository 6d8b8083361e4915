//! Message identity for `ipchnl`.
//!
//! * [`MsgId`]: the first 16 bytes of SHA-256 of a message's *wire name*.
//!   Two processes built separately agree on an id because they agree on
//!   the name; there is no registry to keep in sync.
//! * [`ActorId`]: a per-instance id, unique across processes.
//! * [`MsgHeader`]: what routing needs to know about a message.
//! * [`Msg`] / [`BoxMsg`]: the object-safe message trait. Its header is read
//!   with a trait call and the concrete type comes back with a checked
//!   [`downcast`](Msg#method.downcast).
//!
//! Messages are declared with `msg_serde_macro!` (may cross processes) or
//! `msg_local_macro!` (local only); this crate holds what both share.
//!
//! # Examples
//!
//! ```
//! # mod ipchnl { pub use msg_header::MsgId; }
//! use ipchnl::MsgId;
//!
//! // The id is a hash of the name, so anyone can compute it:
//! // `printf %s echo_req::EchoReq | sha256sum | cut -c1-32`
//! let id = MsgId::of_name("echo_req::EchoReq");
//! assert_eq!(id.to_string().len(), MsgId::TEXT_LEN);
//! assert_eq!(id, id.to_string().parse()?);
//! # Ok::<(), msg_header::ParseIdError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

mod actor_id;
mod blob;
mod clock;
mod error;
mod hash_id;
mod header;
mod json;
mod macros;
mod msg;
mod nack;
mod request;

pub use actor_id::ActorId;
pub use blob::{Bytes, decode_blobs, with_shared_body};
pub use clock::now_ns;
pub use error::{DowncastError, MsgError, ParseIdError};
pub use hash_id::{HashId, IdKind, MsgId, MsgKind, NodeId, NodeKind};
pub use header::MsgHeader;
pub use json::{decode_body, encode_body, encode_body_split, from_json, peek_msg_id, to_json};
#[doc(hidden)]
pub use macros::__private;
pub use msg::{BoxMsg, DecodeFn, DecodeMsg, IntoBoxMsg, Msg, MsgType, RawMsg, WireMsg, decode_boxed};
pub use nack::{NackReason, UnhandledReason};
pub use request::{Asked, Request};
