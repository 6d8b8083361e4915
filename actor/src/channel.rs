//! Routes over plain crossbeam channels: actors driven by hand, inboxes,
//! and the one-shot reply channel of an `ask`.

use std::sync::Arc;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use msg_header::{ActorId, MsgId, NackReason};
use protocol::ProtocolId;
use protocol_set::ProtocolSet;

use crate::{ActorSender, Envelope, Route, SendError, Wait};

/// Delivers into a crossbeam channel.
pub(crate) struct ChannelRoute {
    id: ActorId,
    name: String,
    /// `None` accepts every message (an inbox).
    set: Option<&'static ProtocolSet>,
    tx: Sender<Envelope>,
}

impl ChannelRoute {
    pub(crate) fn address(
        id: ActorId,
        name: &str,
        set: Option<&'static ProtocolSet>,
        capacity: Option<usize>,
    ) -> (ActorSender, Receiver<Envelope>) {
        let (tx, rx) = match capacity {
            Some(cap) => crossbeam_channel::bounded(cap),
            None => crossbeam_channel::unbounded(),
        };
        let route = Self { id, name: name.to_owned(), set, tx };
        (ActorSender::from_route(Arc::new(route)), rx)
    }
}

impl Route for ChannelRoute {
    fn actor_id(&self) -> ActorId {
        self.id
    }

    fn actor_name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, msg_id: MsgId) -> bool {
        self.set.is_none_or(|s| s.accepts(msg_id))
    }

    fn speaks(&self, protocol: ProtocolId) -> bool {
        self.set.is_some_and(|s| s.speaks(protocol))
    }

    fn deliver(&self, env: Envelope, wait: Wait) -> Result<(), SendError> {
        send_on(&self.tx, env, wait)
    }
}

/// Sends on a channel, waiting as `wait` says, mapping the outcome to a
/// [`SendError`] that hands the message back.
pub(crate) fn send_on(tx: &Sender<Envelope>, env: Envelope, wait: Wait) -> Result<(), SendError> {
    match wait {
        Wait::No => tx.try_send(env).map_err(|e| match e {
            TrySendError::Full(env) => SendError::Full(env.msg),
            TrySendError::Disconnected(env) => SendError::Disconnected(env.msg),
        }),
        Wait::Until(deadline) => tx.send_deadline(env, deadline).map_err(|e| match e {
            SendTimeoutError::Timeout(env) => SendError::Timeout(env.msg),
            SendTimeoutError::Disconnected(env) => SendError::Disconnected(env.msg),
        }),
        Wait::Forever => tx.send(env).map_err(|e| SendError::Disconnected(e.0.msg)),
    }
}

/// What an `ask` is answered with.
pub(crate) enum Answer {
    /// The reply.
    Reply(Envelope),
    /// The remote node refused the request (a NACK).
    Refused(Option<NackReason>),
}

/// Where the answer to one `ask` goes: a channel of one.
pub(crate) struct AskRoute {
    id: ActorId,
    name: String,
    tx: Sender<Answer>,
}

impl AskRoute {
    pub(crate) fn address(asked: &str) -> (ActorSender, Receiver<Answer>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let route = Self { id: ActorId::new(), name: format!("ask:{asked}"), tx };
        (ActorSender::from_route(Arc::new(route)), rx)
    }
}

impl Route for AskRoute {
    fn actor_id(&self) -> ActorId {
        self.id
    }

    fn actor_name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, _msg_id: MsgId) -> bool {
        true
    }

    fn speaks(&self, _protocol: ProtocolId) -> bool {
        false
    }

    fn deliver(&self, env: Envelope, _wait: Wait) -> Result<(), SendError> {
        // The first answer is the one; a second finds the slot taken.
        self.tx.try_send(Answer::Reply(env)).or_else(|e| {
            let full = e.is_full();
            match e.into_inner() {
                Answer::Reply(env) if full => Err(SendError::Full(env.msg)),
                Answer::Reply(env) => Err(SendError::Disconnected(env.msg)),
                // Not what was sent: nothing to hand back.
                Answer::Refused(_) => Ok(()),
            }
        })
    }

    fn refused(&self, reason: Option<NackReason>) {
        // Like a reply, only the first answer counts.
        let _ = self.tx.try_send(Answer::Refused(reason));
    }
}
