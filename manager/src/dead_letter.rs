//! Messages that could not be delivered after their send succeeded.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use actor::SendError;
use connection::NackReason;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use msg_header::{ActorId, BoxMsg, UnhandledReason};
use tracing::debug;

use crate::stats::Tally;
use crate::throttle::{Throttle, warn_throttled};

/// Why a message became a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The destination stopped (or panicked) after the message was sent,
    /// before it was handled.
    ActorStopped,
    /// Sent on a link that went down before the peer acknowledged it: it
    /// may or may not have been delivered.
    Unacknowledged,
    /// The peer refused it with a NACK (`None`: a reason this version does
    /// not know).
    Nacked(Option<NackReason>),
    /// Sent from a handler while its link's window was full, it was owed
    /// (kept to send when the peer acknowledged), and the link went down
    /// first: it was never sent.
    NotSent,
    /// The destination's manager shut down before the message was handled:
    /// [`Manager::shutdown_now`](crate::Manager::shutdown_now), or a message
    /// that reached an executor after it exited.
    Shutdown,
    /// Its actor has no handler for it (the default arm of
    /// [`dispatch!`](actor::dispatch!), or
    /// [`Context::unhandled`](actor::Context::unhandled)).
    Unhandled,
    /// Sent where no wait was allowed (a handler's send or reply, a
    /// `Terminated` to a watcher), it met a full mailbox.
    MailboxFull,
    /// A reply to a message that had no reply address (a plain send).
    NoReplyTo,
    /// Its destination does not take it (not of its protocols, local-only
    /// toward another process, or too large to encode).
    Undeliverable,
}

impl DeadLetterReason {
    /// Why a send that could not wait failed, as a dead letter's reason:
    /// the destination ended (`ActorStopped`), was full, had no reply
    /// address, or does not take the message.
    pub fn of_send_error(e: &SendError) -> Self {
        match e {
            SendError::Full(_) | SendError::Timeout(_) => Self::MailboxFull,
            SendError::Disconnected(_) => Self::ActorStopped,
            SendError::NoReplyTo(_) => Self::NoReplyTo,
            _ => Self::Undeliverable,
        }
    }
}

impl DeadLetterReason {
    /// A short name for counters, e.g. `nacked_mailbox_full`.
    pub fn key(&self) -> String {
        match self {
            Self::ActorStopped => "actor_stopped".into(),
            Self::Shutdown => "shutdown".into(),
            Self::Unhandled => "unhandled".into(),
            Self::MailboxFull => "mailbox_full".into(),
            Self::NoReplyTo => "no_reply_to".into(),
            Self::Undeliverable => "undeliverable".into(),
            Self::Unacknowledged => "unacknowledged".into(),
            Self::NotSent => "not_sent".into(),
            Self::Nacked(Some(r)) => format!("nacked_{r}"),
            Self::Nacked(None) => "nacked".into(),
        }
    }
}

impl From<UnhandledReason> for DeadLetterReason {
    fn from(reason: UnhandledReason) -> Self {
        match reason {
            UnhandledReason::ActorStopped => Self::ActorStopped,
            UnhandledReason::Shutdown => Self::Shutdown,
        }
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ActorStopped => "actor stopped",
            Self::Shutdown => "manager shut down",
            Self::Unhandled => "its actor has no handler for it",
            Self::MailboxFull => "its destination's mailbox was full",
            Self::NoReplyTo => "a reply to a message with no reply address",
            Self::Undeliverable => "its destination does not take it",
            Self::Unacknowledged => "unacknowledged when its link went down",
            Self::NotSent => "owed to a full window when its link went down",
            Self::Nacked(Some(r)) => return write!(f, "refused by the peer: {r}"),
            Self::Nacked(None) => "refused by the peer",
        })
    }
}

/// A message that was sent but never handled, reported to the sender's
/// manager.
#[derive(Debug)]
pub struct DeadLetter {
    /// The message, as it was sent.
    pub msg: BoxMsg,
    /// The actor it was sent to.
    pub dst: ActorId,
    /// Why it was not handled.
    pub reason: DeadLetterReason,
}

/// Where a manager's dead letters go: counted, logged, and kept for a
/// reader up to a capacity.
pub(crate) struct DeadLetters {
    tx: Sender<DeadLetter>,
    rx: Receiver<DeadLetter>,
    count: AtomicU64,
    unkept: AtomicU64,
    pub(crate) by_reason: Tally,
    /// The warning of a dead letter not kept, once an interval at most.
    throttle: Throttle,
}

impl DeadLetters {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        Self {
            tx,
            rx,
            count: AtomicU64::new(0),
            unkept: AtomicU64::new(0),
            by_reason: Tally::default(),
            throttle: Throttle::default(),
        }
    }

    pub(crate) fn report(&self, letter: DeadLetter) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.by_reason.add(&letter.reason.key());
        debug!(msg = letter.msg.name(), dst = %letter.dst, reason = %letter.reason, "dead letter");
        if let Err(TrySendError::Full(letter) | TrySendError::Disconnected(letter)) = self.tx.try_send(letter)
        {
            self.unkept.fetch_add(1, Ordering::Relaxed);
            warn_throttled!(self.throttle, "dead_letter_not_kept", msg = letter.msg.name(), dst = %letter.dst, reason = %letter.reason,
                "dead letter not kept: no one reads them and the queue is full");
        }
    }

    pub(crate) fn report_msg(&self, msg: BoxMsg, dst: ActorId, reason: DeadLetterReason) {
        self.report(DeadLetter { msg, dst, reason });
    }

    /// A send that could not wait failed: its message, with why.
    pub(crate) fn report_send_error(&self, e: SendError) {
        let reason = DeadLetterReason::of_send_error(&e);
        let msg = e.into_inner();
        let dst = msg.header().dst_id();
        self.report(DeadLetter { msg, dst, reason });
    }

    pub(crate) fn receiver(&self) -> Receiver<DeadLetter> {
        self.rx.clone()
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn unkept(&self) -> u64 {
        self.unkept.load(Ordering::Relaxed)
    }
}
