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
//! # Links to other processes
//!
//! [`Manager::listen`] and [`Manager::connect`] link managers over TCP or
//! Unix sockets (`docs/WIRE.md`). Once linked, each manager's directory
//! holds the other's actors, and their [`ActorSender`]s take the same
//! calls as local ones: the message is encoded into a frame on the calling
//! thread and written by the executor that owns the link.
//!
//! * **Links and executors.** Each link is owned by one executor, which
//!   reads and writes its socket in the same loop that runs actors (no
//!   reader or writer thread). Links go to executors in turn, or all to
//!   [`ManagerConfig::link_executor`]; [`PeerInfo::executor`] says which.
//!   An actor on that executor has its sends written without a hand-off.
//! * **Lookups.** [`find_by_protocol`](Manager::find_by_protocol) and
//!   [`find_by_name`](Manager::find_by_name) answer with this node's actors
//!   first, in the order added, then each linked node's, nodes in the order
//!   first linked. `NAME@NODE` names the actor `NAME` of node `NODE`.
//! * **Failures.** A link that goes down reports what it carried (see
//!   `docs/GUARANTEES.md`); a dialed link is dialed again with backoff.
//!
//! # Examples
//!
//! The echo through the manager: client and server on different
//! executors, the client finding the server by protocol.
//!
//! ```
//! # mod ipchnl { pub mod echo { pub use client::Client; pub use echo_start::EchoStart; pub use server::Server; } pub use manager::ActorOptions; pub use manager::Manager; pub use manager::ManagerConfig; }
//! use std::time::Duration;
//! use ipchnl::echo::Client;
//! use ipchnl::echo::EchoStart;
//! use ipchnl::{ActorOptions, Manager, ManagerConfig};
//! use ipchnl::echo::Server;
//!
//! let manager = Manager::new(ManagerConfig::default().executors(2))?;
//! manager.add_with("server", Server::new(), ActorOptions::default().executor(0))?;
//! let client = manager.add_with("client", Client::new(), ActorOptions::default().executor(1))?;
//! let done = client.ask(EchoStart::new(100), Duration::from_secs(30))?;
//! assert_eq!((done.sent, done.received), (100, 100));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Two managers linked in one process, for the example's sake:
//!
//! ```
//! # mod ipchnl { pub mod echo { pub use echo_reply::EchoReply; pub use echo_req::EchoReq; pub use server::Server; } pub use manager::Manager; pub use manager::ManagerConfig; }
//! use std::time::Duration;
//! use ipchnl::echo::EchoReply;
//! use ipchnl::echo::EchoReq;
//! use ipchnl::{Manager, ManagerConfig};
//! use ipchnl::echo::Server;
//!
//! let here = Manager::new(ManagerConfig::default().node_name("here"))?;
//! let there = Manager::new(ManagerConfig::default().node_name("there"))?;
//! there.add("server", Server::new())?;
//! let addr = there.listen(&"tcp://127.0.0.1:0".parse()?)?;
//! here.connect(&addr)?;
//! let server = here.find_by_name("server@there").expect("in the directory");
//! assert!(server.is_remote());
//! let reply = server.ask(EchoReq::new(7, 0), Duration::from_secs(10))?;
//! assert_eq!(reply.counter, 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`ActorSender`]: actor::ActorSender
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

mod addr;
mod admission;
mod budget;
mod capacity;
mod cell;
mod config;
mod dead_letter;
mod decoders;
mod directory;
mod error;
mod executor;
mod link;
mod manager;
mod net;
mod nodes;
mod owed;
mod peer;
mod port;
mod secret;
mod shared;
mod stats;
mod sync;
#[cfg(test)]
mod testing;
mod throttle;
mod transport;

pub use addr::{Addr, AddrError, NatsAddr};
pub use config::{
    ActorOptions, Encryption, Identity, ManagerConfig, NatsOptions, NodeLimits, Security, Tuning, UnixPeers,
};
pub use connection::{Incarnation, LimitRow, LinkLimits, NackReason, NodeKeys, Role, Secret};
pub use dead_letter::{DeadLetter, DeadLetterReason};
pub use error::ManagerError;
pub use manager::Manager;
pub use peer::PeerInfo;
pub use port::{ByteStream, LinkPort};
pub use secret::{MIN_SECRET_LEN, SecretError, read_secret, user_secret, user_secret_path, write_secret};
pub use stats::{Held, LinkStats, Stats};
#[doc(hidden)]
#[cfg(feature = "shm")]
pub use transport::shm::{ShmConn, private_node as private_shm_node};
