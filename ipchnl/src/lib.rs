//! `ipchnl`: typed actor messages over crossbeam channels inside a process
//! and over TCP or Unix sockets between processes, with one send API.
//!
//! This crate is the facade: one dependency that re-exports the whole
//! public API of the workspace's crates.
//!
//! # Examples
//!
//! ```
//! use ipchnl::{ActorSender, MsgType, StaticDirectory, dispatch};
//! use ipchnl::echo::{EchoReply, EchoReq, Server};
//!
//! let mut server = Server::new();
//! let (addr, rx) = ActorSender::channel("server", &server, None);
//! let (me, replies) = ActorSender::inbox("me");
//! addr.send_from(EchoReq::stamped(1), &me)?;
//! dispatch(&mut server, &addr, &StaticDirectory::default(), rx.recv()?);
//! let reply = replies.recv()?.msg;
//! assert_eq!(reply.msg_id(), EchoReply::msg_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

pub use actor::ActorAddr;
pub use actor::{
    Actor, ActorSender, AskError, Context, Envelope, Handler, Ref, Route, SendError, Served, ServedBy,
    Service, StaticDirectory, System, SystemError, Takes, Terminated, TerminationReason, Wait, dispatch,
    mark_executor_thread, on_executor_thread, service,
};
pub use manager::{
    ActorOptions, Addr, AddrError, ByteStream, DeadLetter, DeadLetterReason, Encryption, Identity, LimitRow,
    LinkLimits, LinkPort, LinkStats, MIN_SECRET_LEN, Manager, ManagerConfig, ManagerError, NackReason,
    NatsOptions, NodeKeys, NodeLimits, PeerInfo, Role, Secret, SecretError, Security, Stats, Tuning,
    UnixPeers, read_secret, user_secret, user_secret_path, write_secret,
};
pub use msg_header::{
    ActorId, Asked, BoxMsg, Bytes, DecodeFn, DecodeMsg, DowncastError, HashId, IdKind, IntoBoxMsg, Msg,
    MsgError, MsgHeader, MsgId, MsgType, NodeId, ParseIdError, RawMsg, Request, UnhandledReason, WireMsg,
    decode_body, encode_body, from_json, now_ns, peek_msg_id, to_json,
};
pub use msg_local_macro::msg_local_macro;
pub use msg_serde_macro::msg_serde_macro;
pub use protocol::{DecodeError, MsgInfo, Protocol, ProtocolId, protocol};
pub use protocol_set::{ProtocolSet, ProtocolSetId, protocol_set};

/// The echo sample: its messages, protocols and actors.
pub mod echo {
    pub use client::{Client, ClientState, client_protocol_set};
    pub use echo_complete::EchoComplete;
    pub use echo_reply::EchoReply;
    pub use echo_req::EchoReq;
    pub use echo_requestee_protocol::echo_requestee_protocol;
    pub use echo_requester_protocol::echo_requester_protocol;
    pub use echo_start::EchoStart;
    pub use echo_start_complete_protocol::echo_start_complete_protocol;
    pub use server::{
        BytesEcho, BytesEchoService, EchoBytes, EchoLoop, EchoedBytes, SameThreadError, SameThreadReport,
        Server, ServerState, same_thread_echo, server_protocol_set,
    };
}

/// The sample messages `Msg1` and `Msg2`, identical in shape but for their id.
pub mod samples {
    pub use msg1::Msg1;
    pub use msg2::Msg2;
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
