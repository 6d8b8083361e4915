//! Send and ask errors. Every one that concerns a message hands it back.

use std::fmt;

use msg_header::NackReason;
use msg_header::{BoxMsg, Msg};

/// A send failed; the message is handed back.
#[derive(thiserror::Error)]
pub enum SendError {
    /// The destination's mailbox (or a link's window) is full.
    #[error("mailbox full, {} not sent", .0.name())]
    Full(BoxMsg),
    /// No room came before the deadline of `send_timeout`.
    #[error("timed out waiting for room, {} not sent", .0.name())]
    Timeout(BoxMsg),
    /// The destination cannot be reached: it stopped, or its link is down.
    #[error("destination unreachable, {} not sent", .0.name())]
    Disconnected(BoxMsg),
    /// A local-only message was aimed at an actor in another process.
    #[error("{} is local-only and cannot be sent to another process", .0.name())]
    NotSerializable(BoxMsg),
    /// The destination does not speak a protocol with this message.
    #[error("destination does not accept {}", .0.name())]
    NotAccepted(BoxMsg),
    /// `reply` was called for a message that came with no reply address.
    #[error("no reply address, {} not sent", .0.name())]
    NoReplyTo(BoxMsg),
    /// The message could not be encoded for the wire: a field refused to
    /// serialize.
    #[error("{} could not be encoded for the wire", .0.name())]
    Encode(BoxMsg),
    /// Encoded, the message is larger than the largest a link carries
    /// (`LinkLimits::max_message`, 64 MiB by default): nothing of it was sent.
    #[error("{} is larger than the largest message a link carries, not sent", .0.name())]
    TooLarge(BoxMsg),
}

impl SendError {
    /// The message, handed back.
    pub fn into_inner(self) -> BoxMsg {
        match self {
            Self::Full(m)
            | Self::Timeout(m)
            | Self::Disconnected(m)
            | Self::NotSerializable(m)
            | Self::NotAccepted(m)
            | Self::NoReplyTo(m)
            | Self::Encode(m)
            | Self::TooLarge(m) => m,
        }
    }

    /// The message that was not sent.
    pub fn msg(&self) -> &dyn Msg {
        match self {
            Self::Full(m)
            | Self::Timeout(m)
            | Self::Disconnected(m)
            | Self::NotSerializable(m)
            | Self::NotAccepted(m)
            | Self::NoReplyTo(m)
            | Self::Encode(m)
            | Self::TooLarge(m) => m.as_ref(),
        }
    }

    fn variant(&self) -> &'static str {
        match self {
            Self::Full(_) => "Full",
            Self::Timeout(_) => "Timeout",
            Self::Disconnected(_) => "Disconnected",
            Self::NotSerializable(_) => "NotSerializable",
            Self::NotAccepted(_) => "NotAccepted",
            Self::NoReplyTo(_) => "NoReplyTo",
            Self::Encode(_) => "Encode",
            Self::TooLarge(_) => "TooLarge",
        }
    }
}

impl fmt::Debug for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.variant(), self.msg().name())
    }
}

/// An `ask` got no answer.
#[derive(thiserror::Error)]
pub enum AskError {
    /// The request could not be sent.
    #[error("request not sent")]
    Send(#[source] SendError),
    /// No answer came in time.
    #[error("no reply in time")]
    Timeout,
    /// The request was dropped unanswered: handled without a reply, or its
    /// actor stopped, or its link went down.
    #[error("request dropped without a reply")]
    Disconnected,
    /// The node of a remote destination refused the request with a NACK
    /// (`None`: a reason this version does not know). The request is also
    /// a dead letter of the sender's manager.
    #[error("request refused by the remote node: {}", .0.map_or("unknown reason", NackReason::as_str))]
    Nacked(Option<NackReason>),
    /// `ask` was called on an executor thread, where blocking could stall
    /// the very executor that must answer; the message is handed back.
    #[error("ask refused inside a handler, {} not sent", .0.name())]
    InHandler(BoxMsg),
    /// The reply is of another type than the request names (the answering
    /// actor, or its node, disagrees with the request's declaration); the
    /// reply is handed back.
    #[error("the reply is a {}, not the type the request names", .0.name())]
    WrongReply(BoxMsg),
}

impl fmt::Debug for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send(e) => write!(f, "Send({e:?})"),
            Self::Timeout => f.write_str("Timeout"),
            Self::Disconnected => f.write_str("Disconnected"),
            Self::Nacked(r) => write!(f, "Nacked({r:?})"),
            Self::InHandler(m) => write!(f, "InHandler({})", m.name()),
            Self::WrongReply(m) => write!(f, "WrongReply({})", m.name()),
        }
    }
}
