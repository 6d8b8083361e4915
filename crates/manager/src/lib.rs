//! Runs actors: executors, the directory, routing, dead letters, watching
//! and orderly shutdown.
//!
//! A [`Manager`] owns a few executor threads, each hosting many actors.
//! [`Manager::add`] places an actor and returns its [`ActorSender`]; sends
//! to it go straight into its executor's mailbox (no lookup per message),
//! and the executor calls the actor's handler inline.
//!
//! * Mailboxes are unbounded by default, or bounded per actor
//!   ([`ActorOptions::capacity`]): a full actor never stalls its neighbours.
//! * What is detected at send time is the send's `Err`; what is detected
//!   later becomes a [`DeadLetter`] of the manager, with a reason.
//! * A panic in a handler stops that actor only; its watchers get
//!   `Terminated { reason: Panicked }`.
//!
//! # Examples
//!
//! The echo through the manager: client and server on different
//! executors, the client finding the server by protocol.
//!
//! ```
//! use std::time::Duration;
//! use client::Client;
//! use echo_complete::EchoComplete;
//! use echo_start::EchoStart;
//! use manager::{ActorOptions, Manager, ManagerConfig};
//! use server::Server;
//!
//! let manager = Manager::new(ManagerConfig::default().executors(2))?;
//! manager.add_with(Server::new("server"), ActorOptions::default().executor(0))?;
//! let client = manager.add_with(Client::new("client"), ActorOptions::default().executor(1))?;
//! let done = client.ask(EchoStart::new(100), Duration::from_secs(30))?;
//! let done = done.downcast::<EchoComplete>()?;
//! assert_eq!((done.sent, done.received), (100, 100));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`ActorSender`]: actor::ActorSender
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

mod addr;
mod capacity;
mod cell;
mod config;
mod dead_letter;
mod directory;
mod error;
mod executor;
mod listen;
mod manager;
mod net;
mod outbox;
mod peer;

pub use addr::{Addr, AddrError};
pub use config::{ActorOptions, ManagerConfig, UnixPeers};
pub use connection::{NackReason, Secret};
pub use dead_letter::{DeadLetter, DeadLetterReason};
pub use error::ManagerError;
pub use manager::{Manager, PeerInfo};
