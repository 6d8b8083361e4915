//! A [`ProtocolSet`]: the protocols an actor speaks.
//!
//! It answers what a router asks on every message: does this actor accept
//! this message id, and how is a frame of it decoded?
//!
//! # Examples
//!
//! ```
//! # mod ipchnl { pub mod echo { pub use echo_req::EchoReq; pub use echo_requestee_protocol::echo_requestee_protocol; } pub use msg_header::MsgType; pub use protocol_set::ProtocolSet; }
//! use ipchnl::echo::EchoReq;
//! use ipchnl::echo::echo_requestee_protocol;
//! use ipchnl::MsgType;
//! use ipchnl::ProtocolSet;
//!
//! let set = ProtocolSet::new("my_server", [echo_requestee_protocol()]);
//! assert!(set.accepts(EchoReq::msg_id()));
//! assert!(set.speaks(echo_requestee_protocol().id()));
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

use msg_header::{BoxMsg, HashId, IdKind, MsgHeader, MsgId};
use protocol::{DecodeError, MsgInfo, Protocol, ProtocolId};

/// The kind of [`ProtocolSetId`].
#[derive(Debug)]
pub enum ProtocolSetKind {}

impl IdKind for ProtocolSetKind {
    const KIND: &'static str = "ProtocolSetId";
}

/// Identifies a protocol set: the first 16 bytes of SHA-256 of its name.
pub type ProtocolSetId = HashId<ProtocolSetKind>;

/// The protocols an actor speaks: those it serves (it takes what their
/// servers take, and [`find_by_protocol`](ProtocolSet::speaks) finds it by
/// them) and those it uses (it asks their servers, and takes their
/// replies).
#[derive(Debug)]
pub struct ProtocolSet {
    name: &'static str,
    id: ProtocolSetId,
    protocols: Vec<&'static Protocol>,
    /// The protocols it uses, as a client.
    used: Vec<&'static Protocol>,
    /// Every message the actor takes, sorted by id for lookups.
    by_msg: Vec<MsgInfo>,
}

impl ProtocolSet {
    /// A set of these protocols. Hashes the name: build each set once and
    /// keep it in a `static`.
    pub fn new(name: &'static str, protocols: impl IntoIterator<Item = &'static Protocol>) -> Self {
        Self::with_uses(name, protocols, [])
    }

    /// A set that serves `served` and uses `used` (asks their servers,
    /// and takes their replies). Hashes the name: build each set once.
    pub fn with_uses(
        name: &'static str,
        served: impl IntoIterator<Item = &'static Protocol>,
        used: impl IntoIterator<Item = &'static Protocol>,
    ) -> Self {
        let unique = |ps: &mut Vec<&'static Protocol>, p: &'static Protocol| {
            if !ps.iter().any(|k| k.id() == p.id()) {
                ps.push(p);
            }
        };
        let mut kept = Vec::new();
        for p in served {
            unique(&mut kept, p);
        }
        let mut uses = Vec::new();
        for p in used {
            unique(&mut uses, p);
        }
        let mut by_msg: Vec<MsgInfo> = kept
            .iter()
            .flat_map(|p| p.taken().copied())
            .chain(uses.iter().flat_map(|p| p.replies().copied()))
            .collect();
        by_msg.sort_by_key(MsgInfo::id);
        by_msg.dedup_by_key(|m| m.id());
        Self { name, id: ProtocolSetId::of_name(name), protocols: kept, used: uses, by_msg }
    }

    /// The name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The id, the hash of the name.
    pub fn id(&self) -> ProtocolSetId {
        self.id
    }

    /// The protocols it serves, in the order given.
    pub fn protocols(&self) -> &[&'static Protocol] {
        &self.protocols
    }

    /// The protocols it uses, as a client, in the order given.
    pub fn used(&self) -> &[&'static Protocol] {
        &self.used
    }

    /// Every protocol it serves or uses: how to decode what it may be sent.
    pub fn all_protocols(&self) -> impl Iterator<Item = &'static Protocol> + '_ {
        self.protocols.iter().chain(&self.used).copied()
    }

    /// The protocol with this id.
    pub fn protocol(&self, id: ProtocolId) -> Option<&'static Protocol> {
        self.protocols.iter().copied().find(|p| p.id() == id)
    }

    /// Whether the set serves the protocol with this id (a client of it
    /// does not speak it in this sense: lookups by protocol find servers).
    pub fn speaks(&self, id: ProtocolId) -> bool {
        self.protocol(id).is_some()
    }

    /// The message with this id, from whichever protocol has it.
    pub fn msg(&self, id: MsgId) -> Option<&MsgInfo> {
        self.by_msg.binary_search_by_key(&id, MsgInfo::id).ok().map(|i| &self.by_msg[i])
    }

    /// Whether an actor speaking this set accepts messages with this id.
    #[inline]
    pub fn accepts(&self, id: MsgId) -> bool {
        self.msg(id).is_some()
    }

    /// Every message id of the set, sorted.
    pub fn msg_ids(&self) -> impl Iterator<Item = MsgId> + '_ {
        self.by_msg.iter().map(MsgInfo::id)
    }

    /// Decodes the body of a message this set accepts, chosen by
    /// `header.msg_id()`.
    pub fn decode(&self, header: MsgHeader, body: &[u8]) -> Result<BoxMsg, DecodeError> {
        self.msg(header.msg_id()).ok_or(DecodeError::UnknownMsg(header.msg_id()))?.decode(header, body)
    }
}

/// Declares a function returning a protocol set, built once: its name
/// (whose hash is its id) and its protocols (expressions of type
/// `&'static Protocol`, such as the functions [`protocol::protocol!`]
/// declares): those it serves, and, marked `uses`, those it asks (it
/// takes their replies, and is not found by them).
///
/// ```
/// # mod ipchnl { pub mod echo { pub use echo_reply::EchoReply; pub use echo_req::EchoReq; } pub use msg_header::MsgType; pub use protocol::protocol; pub use protocol_set::ProtocolSetId; pub use protocol_set::protocol_set; }
/// use ipchnl::echo::EchoReply;
/// use ipchnl::echo::EchoReq;
/// use ipchnl::MsgType;
/// use ipchnl::protocol;
/// use ipchnl::{ProtocolSetId, protocol_set};
///
/// protocol! {
///     /// A server takes `EchoReq` and answers `EchoReply`.
///     pub fn echo = "doc_echo" [EchoReq -> EchoReply]
/// }
/// protocol_set! {
///     /// What my server speaks.
///     pub fn my_server = "my_server" [echo()]
/// }
/// protocol_set! {
///     /// What its client speaks: it asks, and takes the replies.
///     pub fn my_client = "my_client" [uses echo()]
/// }
///
/// assert_eq!(my_server().id(), ProtocolSetId::of_name("my_server"));
/// assert!(my_server().accepts(EchoReq::msg_id()) && !my_server().accepts(EchoReply::msg_id()));
/// assert!(my_client().accepts(EchoReply::msg_id()) && !my_client().accepts(EchoReq::msg_id()));
/// assert!(my_server().speaks(echo().id()));
/// assert!(!my_client().speaks(echo().id()), "a client is not found as a server");
/// ```
#[macro_export]
macro_rules! protocol_set {
    ($(#[$meta:meta])* $vis:vis fn $fn_name:ident = $name:literal [ $($protocols:tt)* ] $(;)?) => {
        $(#[$meta])*
        $vis fn $fn_name() -> &'static $crate::ProtocolSet {
            static SET: ::std::sync::LazyLock<$crate::ProtocolSet> = ::std::sync::LazyLock::new(|| {
                let (served, used) = $crate::__protocol_set_lists!([] [] $($protocols)*);
                $crate::ProtocolSet::with_uses($name, served, used)
            });
            &SET
        }
    };
    ($($other:tt)*) => {
        ::std::compile_error!(
            "expected `protocol_set! { pub fn NAME = \"wire_name\" [a_protocol(), uses another_protocol()] }`"
        );
    };
}

/// The list-building half of [`protocol_set!`]: served and used; not an API.
#[doc(hidden)]
#[macro_export]
macro_rules! __protocol_set_lists {
    ([$($served:expr,)*] [$($used:expr,)*] $(,)?) => {
        (
            ::std::vec![$($served),*] as ::std::vec::Vec<&'static $crate::__private::Protocol>,
            ::std::vec![$($used),*] as ::std::vec::Vec<&'static $crate::__private::Protocol>,
        )
    };
    ([$($served:expr,)*] [$($used:expr,)*] uses $p:expr $(, $($rest:tt)*)?) => {
        $crate::__protocol_set_lists!([$($served,)*] [$($used,)* $p,] $($($rest)*)?)
    };
    ([$($served:expr,)*] [$($used:expr,)*] $p:expr $(, $($rest:tt)*)?) => {
        $crate::__protocol_set_lists!([$($served,)* $p,] [$($used,)*] $($($rest)*)?)
    };
}

/// What the macros' expansions name; not an API.
#[doc(hidden)]
pub mod __private {
    pub use protocol::Protocol;
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_req::EchoReq;
    use echo_requestee_protocol::echo_requestee_protocol;
    use echo_start::EchoStart;
    use echo_start_complete_protocol::echo_start_complete_protocol;
    use msg_header::{Msg, MsgType, WireMsg};
    use msg1::Msg1;

    #[test]
    fn test_protocol() {
        let set = ProtocolSet::new(
            "set",
            [echo_requestee_protocol(), echo_start_complete_protocol(), echo_requestee_protocol()],
        );
        assert_eq!(set.id(), ProtocolSetId::of_name("set"));
        assert_eq!(set.protocols().len(), 2);

        // By protocol id.
        let p = set.protocol(echo_start_complete_protocol().id()).unwrap();
        assert_eq!(p.name(), "echo_start_complete_protocol");
        assert!(set.speaks(echo_requestee_protocol().id()));
        assert!(!set.speaks(ProtocolId::of_name("other")));

        // By message id.
        assert!(set.accepts(EchoReq::msg_id()));
        assert!(set.accepts(EchoStart::msg_id()));
        assert!(!set.accepts(Msg1::msg_id()));
        assert_eq!(set.msg(EchoStart::msg_id()).unwrap().name(), "echo_start::EchoStart");
        assert_eq!(set.msg_ids().count(), 4);

        let start = EchoStart::new(9);
        let mut body = Vec::new();
        start.encode_body(&mut body).unwrap();
        let back = set.decode(*start.header(), &body).unwrap();
        assert_eq!(back.downcast::<EchoStart>().unwrap().ping_count, 9);
        let foreign = MsgHeader::new(Msg1::msg_id());
        assert!(matches!(set.decode(foreign, b"{}"), Err(DecodeError::UnknownMsg(_))));
    }
}
