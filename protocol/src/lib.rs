//! A [`Protocol`]: a named set of messages, with how to decode each one
//! that can cross processes.
//!
//! A protocol's id is the hash of its name, like a message's. Actors say
//! which protocols they speak (a `ProtocolSet`); routers use that to refuse
//! messages an actor does not speak and to decode frames by message id.
//!
//! # Examples
//!
//! ```
//! # mod ipchnl { pub mod echo { pub use echo_req::EchoReq; } pub use msg_header::Msg; pub use msg_header::MsgType; pub use msg_header::WireMsg; pub use protocol::MsgInfo; pub use protocol::Protocol; pub use protocol::ProtocolId; }
//! use ipchnl::echo::EchoReq;
//! use ipchnl::{Msg, MsgType, WireMsg};
//! use ipchnl::{MsgInfo, Protocol, ProtocolId};
//!
//! let p = Protocol::new("my_protocol", [MsgInfo::wire::<EchoReq>()]);
//! assert_eq!(p.id(), ProtocolId::of_name("my_protocol"));
//! assert!(p.contains(EchoReq::msg_id()));
//!
//! let req = EchoReq::new(1, 2);
//! let mut body = Vec::new();
//! req.encode_body(&mut body)?;
//! let decoded = p.decode(*req.header(), &body)?;
//! assert_eq!(*decoded.downcast::<EchoReq>()?, req);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use msg_header::{BoxMsg, DecodeFn, DecodeMsg, HashId, IdKind, MsgError, MsgHeader, MsgId, MsgType};

/// The kind of [`ProtocolId`].
#[derive(Debug)]
pub enum ProtocolKind {}

impl IdKind for ProtocolKind {
    const KIND: &'static str = "ProtocolId";
}

/// Identifies a protocol: the first 16 bytes of SHA-256 of its name.
pub type ProtocolId = HashId<ProtocolKind>;

/// One message of a protocol: its id, its name and, for a message that can
/// cross processes, how to decode it.
#[derive(Clone, Copy, Debug)]
pub struct MsgInfo {
    id: MsgId,
    name: &'static str,
    decode: Option<DecodeFn>,
}

impl MsgInfo {
    /// A message that can cross processes (declared with `msg_serde_macro!`).
    pub fn wire<T: DecodeMsg>() -> Self {
        Self { id: T::msg_id(), name: T::NAME, decode: Some(msg_header::decode_boxed::<T>) }
    }

    /// A local-only message (declared with `msg_local_macro!`).
    pub fn local<T: MsgType>() -> Self {
        Self { id: T::msg_id(), name: T::NAME, decode: None }
    }

    /// The message id.
    pub fn id(&self) -> MsgId {
        self.id
    }

    /// The wire name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the message can cross processes.
    pub fn is_wire(&self) -> bool {
        self.decode.is_some()
    }

    /// Decodes a body of this message.
    pub fn decode(&self, header: MsgHeader, body: &[u8]) -> Result<BoxMsg, DecodeError> {
        let decode = self.decode.ok_or(DecodeError::LocalOnly { name: self.name })?;
        decode(header, body).map_err(DecodeError::Msg)
    }
}

/// A message could not be decoded by a protocol or protocol set.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No message of the protocol has this id.
    #[error("unknown message id {0}")]
    UnknownMsg(MsgId),
    /// The message is local-only: it has no wire form.
    #[error("message {name} is local-only and has no wire form")]
    LocalOnly {
        /// The message's name.
        name: &'static str,
    },
    /// The body does not decode.
    #[error("undecodable message body")]
    Msg(#[source] MsgError),
}

/// A named set of messages, with a direction: what a server of the
/// protocol takes (its requests, and any message without a reply), and
/// what it answers with (its replies). An actor that serves the protocol
/// takes the first; one that uses it (asks a server) takes the second.
#[derive(Debug)]
pub struct Protocol {
    name: &'static str,
    id: ProtocolId,
    messages: Vec<MsgInfo>,
    /// The ids of the messages a server answers with (sorted): not taken
    /// by a server, only by its clients.
    replies: Vec<MsgId>,
}

impl Protocol {
    /// A protocol of these messages; a message listed twice is kept once.
    /// Hashes the name: build each protocol once and keep it in a `static`.
    pub fn new(name: &'static str, messages: impl IntoIterator<Item = MsgInfo>) -> Self {
        let mut kept: Vec<MsgInfo> = Vec::new();
        for m in messages {
            if !kept.iter().any(|k| k.id == m.id) {
                kept.push(m);
            }
        }
        Self { name, id: ProtocolId::of_name(name), messages: kept, replies: Vec::new() }
    }

    /// A protocol whose server takes `taken` and answers with `replies`
    /// (a message in both is taken). Hashes the name: build each protocol
    /// once and keep it in a `static`.
    pub fn with_replies(
        name: &'static str,
        taken: impl IntoIterator<Item = MsgInfo>,
        replies: impl IntoIterator<Item = MsgInfo>,
    ) -> Self {
        let taken: Vec<MsgInfo> = taken.into_iter().collect();
        let replies: Vec<MsgInfo> =
            replies.into_iter().filter(|r| !taken.iter().any(|t| t.id == r.id)).collect();
        let mut p = Self::new(name, taken.into_iter().chain(replies.iter().copied()));
        p.replies = replies.iter().map(|m| m.id).collect();
        p.replies.sort_unstable();
        p.replies.dedup();
        p
    }

    /// Whether a server of this protocol takes the message `id`: a
    /// request, or a message without a reply; not a reply.
    pub fn server_takes(&self, id: MsgId) -> bool {
        self.contains(id) && !self.is_reply(id)
    }

    /// Whether `id` is one of the messages a server answers with.
    pub fn is_reply(&self, id: MsgId) -> bool {
        self.replies.binary_search(&id).is_ok()
    }

    /// The messages a server of this protocol takes.
    pub fn taken(&self) -> impl Iterator<Item = &MsgInfo> + '_ {
        self.messages.iter().filter(|m| !self.is_reply(m.id))
    }

    /// The messages a server answers with (what its clients take).
    pub fn replies(&self) -> impl Iterator<Item = &MsgInfo> + '_ {
        self.messages.iter().filter(|m| self.is_reply(m.id))
    }

    /// The name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The id, the hash of the name.
    pub fn id(&self) -> ProtocolId {
        self.id
    }

    /// The messages, in the order given.
    pub fn messages(&self) -> &[MsgInfo] {
        &self.messages
    }

    /// The ids of the messages, in the order given.
    pub fn msg_ids(&self) -> impl Iterator<Item = MsgId> + '_ {
        self.messages.iter().map(|m| m.id)
    }

    /// The message with this id.
    pub fn msg(&self, id: MsgId) -> Option<&MsgInfo> {
        self.messages.iter().find(|m| m.id == id)
    }

    /// Whether the protocol has a message with this id.
    pub fn contains(&self, id: MsgId) -> bool {
        self.msg(id).is_some()
    }

    /// Decodes the body of a message of this protocol, chosen by
    /// `header.msg_id()`.
    pub fn decode(&self, header: MsgHeader, body: &[u8]) -> Result<BoxMsg, DecodeError> {
        self.msg(header.msg_id()).ok_or(DecodeError::UnknownMsg(header.msg_id()))?.decode(header, body)
    }
}

/// Declares a function returning a protocol, built once: its name (whose
/// hash is its id) and its messages, in order. `Request -> Reply` says
/// that a server takes `Request` and answers with `Reply`; a message
/// listed alone is taken by a server (a request that needs no answer, or,
/// in a protocol without arrows, any of its messages). A message that may
/// never leave its process is marked `local`; the others are wire
/// messages. Paths of messages in `->` pairs are written `a::B`.
///
/// ```
/// # mod ipchnl { pub mod echo { pub use echo_reply::EchoReply; pub use echo_req::EchoReq; } pub use msg_header::MsgType; pub use protocol::ProtocolId; pub use protocol::protocol; }
/// use ipchnl::echo::EchoReply;
/// use ipchnl::echo::EchoReq;
/// use ipchnl::MsgType;
/// use ipchnl::{ProtocolId, protocol};
///
/// msg_local_macro::msg_local_macro! {
///     /// A note that stays in its process.
///     struct Note("doc::Note") {}
/// }
///
/// protocol! {
///     /// What an echo server is asked and answers.
///     pub fn echo = "my_echo" [EchoReq -> EchoReply, local Note]
/// }
///
/// assert_eq!(echo().id(), ProtocolId::of_name("my_echo"));
/// assert_eq!(echo().msg_ids().collect::<Vec<_>>(), [EchoReq::msg_id(), Note::msg_id(), EchoReply::msg_id()]);
/// assert!(echo().server_takes(EchoReq::msg_id()) && !echo().server_takes(EchoReply::msg_id()));
/// assert!(echo().is_reply(EchoReply::msg_id()));
/// assert!(!echo().msg(Note::msg_id()).unwrap().is_wire());
/// assert!(std::ptr::eq(echo(), echo()), "built once");
/// ```
#[macro_export]
macro_rules! protocol {
    ($(#[$meta:meta])* $vis:vis fn $fn_name:ident = $name:literal [ $($msgs:tt)* ] $(;)?) => {
        $(#[$meta])*
        $vis fn $fn_name() -> &'static $crate::Protocol {
            static PROTOCOL: ::std::sync::LazyLock<$crate::Protocol> = ::std::sync::LazyLock::new(|| {
                let (taken, replies) = $crate::__protocol_msgs!([] [] $($msgs)*);
                $crate::Protocol::with_replies($name, taken, replies)
            });
            &PROTOCOL
        }
    };
    ($($other:tt)*) => {
        ::std::compile_error!(
            "expected `protocol! { pub fn NAME = \"wire_name\" [Request -> Reply, OtherMsg, local LocalMsg] }`"
        );
    };
}

/// The list-building half of [`protocol!`]: what a server takes, and what
/// it answers with; not an API.
#[doc(hidden)]
#[macro_export]
macro_rules! __protocol_msgs {
    ([$($taken:expr,)*] [$($replies:expr,)*] $(,)?) => { ([$($taken,)*], [$($replies,)*]) };
    ([$($taken:expr,)*] [$($replies:expr,)*] local $msg:ty $(, $($rest:tt)*)?) => {
        $crate::__protocol_msgs!([$($taken,)* $crate::MsgInfo::local::<$msg>(),] [$($replies,)*] $($($rest)*)?)
    };
    ([$($taken:expr,)*] [$($replies:expr,)*] $($req:ident)::+ -> $($rep:ident)::+ $(, $($rest:tt)*)?) => {
        $crate::__protocol_msgs!(
            [$($taken,)* $crate::MsgInfo::wire::<$($req)::+>(),]
            [$($replies,)* $crate::MsgInfo::wire::<$($rep)::+>(),]
            $($($rest)*)?
        )
    };
    ([$($taken:expr,)*] [$($replies:expr,)*] $msg:ty $(, $($rest:tt)*)?) => {
        $crate::__protocol_msgs!([$($taken,)* $crate::MsgInfo::wire::<$msg>(),] [$($replies,)*] $($($rest)*)?)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_reply::EchoReply;
    use echo_req::EchoReq;
    use msg_header::{Msg, WireMsg};
    use msg1::Msg1;

    #[test]
    fn test_protocol() {
        let p = Protocol::new(
            "p",
            [MsgInfo::wire::<EchoReq>(), MsgInfo::wire::<EchoReply>(), MsgInfo::wire::<EchoReq>()],
        );
        assert_eq!(p.name(), "p");
        assert_eq!(p.id(), ProtocolId::of_name("p"));
        assert_eq!(p.msg_ids().collect::<Vec<_>>(), [EchoReq::msg_id(), EchoReply::msg_id()]);
        assert_eq!(p.msg(EchoReply::msg_id()).map(MsgInfo::name), Some("echo_reply::EchoReply"));
        assert!(p.contains(EchoReq::msg_id()));
        assert!(!p.contains(Msg1::msg_id()));

        let reply = EchoReply::new(1, 2, 3);
        let mut body = Vec::new();
        reply.encode_body(&mut body).unwrap();
        let decoded = p.decode(*reply.header(), &body).unwrap();
        assert_eq!(*decoded.downcast::<EchoReply>().unwrap(), reply);

        let unknown = MsgHeader::new(Msg1::msg_id());
        assert!(matches!(p.decode(unknown, &body), Err(DecodeError::UnknownMsg(id)) if id == Msg1::msg_id()));
        assert!(matches!(p.decode(*reply.header(), b"{"), Err(DecodeError::Msg(MsgError::Json(_)))));
    }
}
