//! `Terminated`: what a watcher is told when the actor it watches ends.

use msg_serde_macro::msg_serde_macro;
use serde::{Deserialize, Serialize};

/// Why an actor ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminationReason {
    /// It stopped: `ctx.stop()` or its manager was asked to stop it.
    Stopped,
    /// Its handler panicked.
    Panicked,
    /// Its manager shut down.
    Shutdown,
    /// The link to its process went down; it may still be running.
    LinkDown,
}

msg_serde_macro! {
    /// Sent to each watcher of an actor when the actor ends. Every actor
    /// accepts it, whatever protocols it speaks.
    #[derive(Clone, PartialEq)]
    pub struct Terminated("actor::Terminated") {
        /// The actor that ended.
        pub actor: msg_header::ActorId,
        /// Its name.
        pub name: String,
        /// Why.
        pub reason: TerminationReason,
    }
}
