//! `msg_serde_macro!` declares a message that can cross processes.
//!
//! The macro writes a struct with a [`MsgHeader`](msg_header::MsgHeader)
//! and the given fields, a constructor `new(fields..)`, `to_json` and
//! `from_json` (the full form, header included), and the
//! [`Msg`](msg_header::Msg), [`MsgType`](msg_header::MsgType),
//! [`WireMsg`](msg_header::WireMsg) and [`DecodeMsg`](msg_header::DecodeMsg)
//! impls. The id is the hash of the wire name, computed once.
//!
//! `Debug`, `Serialize` and `Deserialize` are derived for you; attributes and
//! doc comments on the struct and its fields are passed through (so
//! `#[serde(default)]` on a field added later works). The declaring crate
//! needs a dependency on `serde` (serde's derive cannot be routed through
//! this crate) and nothing else. A field may not be called `header`.
//!
//! # Examples
//!
//! ```
//! # mod ipchnl { pub use msg_serde_macro::msg_serde_macro; pub use msg_header::Msg; pub use msg_header::MsgError; pub use msg_header::MsgId; pub use msg_header::MsgType; }
//! use ipchnl::msg_serde_macro;
//! use ipchnl::{Msg, MsgError, MsgId, MsgType};
//!
//! msg_serde_macro! {
//!     /// Asks for the temperature.
//!     #[derive(Clone, PartialEq)]
//!     pub struct GetTemp("weather::GetTemp") {
//!         /// The city.
//!         pub city: String,
//!         #[serde(default)]
//!         pub unit: Option<char>,
//!     }
//! }
//!
//! let msg = GetTemp::new("Oslo".into(), None);
//! assert_eq!(msg.header().msg_id(), MsgId::of_name("weather::GetTemp"));
//! assert_eq!(GetTemp::msg_id(), msg.header().msg_id());
//!
//! let json = msg.to_json()?;
//! assert_eq!(GetTemp::from_json(&json)?, msg);
//! # Ok::<(), MsgError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

/// Declares a message that can cross processes: a struct with a
/// `MsgHeader` and the given fields, a constructor `new(fields..)`,
/// `to_json` and `from_json`, and the `Msg`, `MsgType`, `WireMsg` and
/// `DecodeMsg` impls; its id is the hash of its wire name, computed once.
/// A message declared `-> Reply` is a request: `ask` returns its reply,
/// typed. The declaring crate needs a dependency on `serde` and nothing
/// else.
///
/// ```
/// # mod ipchnl { pub use msg_serde_macro::msg_serde_macro; pub use msg_header::*; }
/// use ipchnl::{MsgError, MsgId, MsgType, msg_serde_macro};
///
/// msg_serde_macro! {
///     /// Asks for the temperature of a city; answered with a `Temp`.
///     #[derive(Clone, PartialEq)]
///     pub struct GetTemp("weather::GetTemp") -> Temp {
///         /// The city.
///         pub city: String,
///     }
/// }
/// msg_serde_macro! {
///     /// A temperature.
///     pub struct Temp("weather::Temp") { pub celsius: f64 }
/// }
///
/// let msg = GetTemp::new("Oslo".into());
/// assert_eq!(GetTemp::msg_id(), MsgId::of_name("weather::GetTemp"));
/// assert_eq!(GetTemp::from_json(&msg.to_json()?)?, msg);
/// # Ok::<(), MsgError>(())
/// ```
///
/// The grammar:
///
/// ```text
/// msg_serde_macro! {
///     [#[attributes] and /// docs]
///     [pub] struct Name("wire::Name") [-> ReplyType] {
///         [#[attributes] and /// docs] [pub] field: Type,
///         ...
///     }
/// }
/// ```
///
/// With `-> ReplyType`, the message is a request answered with a
/// `ReplyType` ([`Request`](msg_header::Request)): `ask` returns that
/// type.
///
/// The wire name must be a string literal: it is hashed into the message's
/// id, so two processes agree on the id by agreeing on the name. Every field
/// must be `Serialize + Deserialize`; a message holding a channel `Sender`
/// is local-only and is declared with `msg_local_macro!`.
#[macro_export]
macro_rules! msg_serde_macro {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident ( $wire:literal ) {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $crate::__msg_serde_macro! {
            @expand [$(#[$meta])*] [$vis] $name $wire
            [$( [$(#[$fmeta])*] [$fvis] $field [$fty] )*]
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident ( $wire:literal ) -> $reply:ty {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $crate::__msg_serde_macro! {
            @expand [$(#[$meta])*] [$vis] $name $wire
            [$( [$(#[$fmeta])*] [$fvis] $field [$fty] )*]
        }

        impl $crate::__private::Request for $name {
            type Reply = $reply;
        }
    };
    ( $(#[$meta:meta])* $vis:vis struct $name:ident ( $wire:literal ) $($rest:tt)* ) => {
        $crate::__msg_serde_macro! { @error_fields $name }
    };
    ( $(#[$meta:meta])* $vis:vis struct $name:ident ( $($wire:tt)* ) $($rest:tt)* ) => {
        $crate::__msg_serde_macro! { @error_wire_literal $name }
    };
    ( $(#[$meta:meta])* $vis:vis struct $name:ident $($rest:tt)* ) => {
        $crate::__msg_serde_macro! { @error_no_wire_name $name }
    };
    ( $($other:tt)* ) => {
        $crate::__msg_serde_macro! { @error_syntax }
    };
}

/// The code-generating half of [`msg_serde_macro!`]; not an API.
#[doc(hidden)]
#[macro_export]
macro_rules! __msg_serde_macro {
    (
        @expand [$($meta:tt)*] [$vis:vis] $name:ident $wire:literal
        [$( [$($fmeta:tt)*] [$fvis:vis] $field:ident [$fty:ty] )*]
    ) => {
        // First, so that its readable error comes before serde's.
        const _: () = {
            #[allow(dead_code)]
            fn assert_fields_cross_processes() {
                $( $crate::__private::assert_wire_field::<$fty>(); )*
            }
        };

        // The derive first: serde's container attributes among `$meta`
        // are helpers of this derive and must come after it.
        #[derive(
            $crate::__private::Debug,
            $crate::__private::Serialize,
            $crate::__private::Deserialize,
        )]
        $($meta)*
        $vis struct $name {
            #[serde(skip)]
            header: $crate::__private::MsgHeader,
            $( $($fmeta)* $fvis $field: $fty, )*
        }

        $crate::__private::__msg_impl!(wire $vis $name $wire [$($field: $fty),*]);

        impl $name {
            /// The message in its full JSON form, header included.
            #[allow(dead_code)]
            $vis fn to_json(&self) -> $crate::__private::Result<
                $crate::__private::Vec<u8>,
                $crate::__private::MsgError,
            > {
                $crate::__private::to_json(self)
            }

            /// Rebuilds the message from its full JSON form; the buffer of
            /// another message is `Err(MsgError::WrongMsgId)`.
            #[allow(dead_code)]
            $vis fn from_json(buf: &[u8]) -> $crate::__private::Result<Self, $crate::__private::MsgError> {
                $crate::__private::from_json(buf)
            }
        }

        impl $crate::__private::WireMsg for $name {
            fn encode_body(
                &self,
                out: &mut $crate::__private::Vec<u8>,
            ) -> $crate::__private::Result<(), $crate::__private::MsgError> {
                $crate::__private::encode_body(self, out)
            }

            fn encode_body_split(
                &self,
                out: &mut $crate::__private::Vec<u8>,
            ) -> $crate::__private::Result<$crate::__private::Vec<$crate::__private::Bytes>, $crate::__private::MsgError> {
                $crate::__private::encode_body_split(self, out)
            }
        }

        impl $crate::__private::DecodeMsg for $name {
            fn decode_body(
                header: $crate::__private::MsgHeader,
                body: &[u8],
            ) -> $crate::__private::Result<Self, $crate::__private::MsgError> {
                $crate::__private::decode_body(header, body)
            }
        }

    };
    (@error_fields $name:ident) => {
        ::core::compile_error!(::core::concat!(
            "msg_serde_macro!: the fields of `", ::core::stringify!($name),
            "` must be `{ [pub] name: Type, ... }`",
        ));
    };
    (@error_wire_literal $name:ident) => {
        ::core::compile_error!(::core::concat!(
            "msg_serde_macro!: the wire name of `", ::core::stringify!($name),
            "` must be a string literal, e.g. `struct ", ::core::stringify!($name),
            "(\"my_crate::", ::core::stringify!($name), "\")`",
        ));
    };
    (@error_no_wire_name $name:ident) => {
        ::core::compile_error!(::core::concat!(
            "msg_serde_macro!: `", ::core::stringify!($name),
            "` has no wire name; write `struct ", ::core::stringify!($name),
            "(\"my_crate::", ::core::stringify!($name), "\") { .. }`",
        ));
    };
    (@error_syntax) => {
        ::core::compile_error!(
            "msg_serde_macro!: expected `[pub] struct Name(\"wire::Name\") { field: Type, ... }`"
        );
    };
}

#[doc(hidden)]
pub mod __private {
    pub use msg_header::__msg_impl;
    pub use msg_header::{
        Bytes, DecodeMsg, MsgError, MsgHeader, Request, WireMsg, decode_body, encode_body, encode_body_split,
        from_json, to_json,
    };
    pub use serde::{Deserialize, Serialize};
    pub use std::fmt::Debug;
    pub use std::result::Result;
    pub use std::vec::Vec;

    /// Implemented by every type a wire message's field may have.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot cross processes, so it cannot be a field of a `msg_serde_macro!` message",
        label = "not `Serialize + Deserialize`",
        note = "a message holding a channel `Sender` is local-only: declare it with `msg_local_macro!`"
    )]
    pub trait WireField {}

    impl<T: Serialize + serde::de::DeserializeOwned> WireField for T {}

    /// Fails to compile, with the message above, unless `T` can cross processes.
    pub const fn assert_wire_field<T: WireField>() {}
}

#[cfg(test)]
mod tests {
    use msg_header::{BoxMsg, MsgError, MsgId, MsgType};

    msg_serde_macro! {
        /// A message with fields.
        #[derive(Clone, PartialEq)]
        struct MsgA("msg_serde_macro::tests::MsgA") {
            /// A number.
            a: u64,
            s: String,
            v: Vec<i32>,
        }
    }

    msg_serde_macro!(
        #[derive(PartialEq)]
        struct Empty("msg_serde_macro::tests::Empty") {}
    );

    msg_serde_macro! {
        struct Trailing("msg_serde_macro::tests::Trailing") { x: u8, }
    }

    msg_serde_macro! {
        /// Serde's container attributes reach the derive.
        #[serde(rename_all = "camelCase")]
        #[derive(PartialEq)]
        struct Renamed("msg_serde_macro::tests::Renamed") {
            req_count: u32,
            #[serde(default)]
            added_later: bool,
        }
    }

    #[test]
    fn struct_and_field_attributes_reach_serde() {
        let msg = Renamed::new(2, true);
        let mut body = Vec::new();
        msg_header::WireMsg::encode_body(&msg, &mut body).unwrap();
        assert_eq!(body, br#"{"reqCount":2,"addedLater":true}"#);
        // An old sender's body, without the added field, still decodes.
        let old: BoxMsg = msg_header::decode_boxed::<Renamed>(msg.header, br#"{"reqCount":5}"#).unwrap();
        let old = old.downcast::<Renamed>().unwrap();
        assert_eq!((old.req_count, old.added_later), (5, false));
        assert_eq!(Renamed::from_json(&msg.to_json().unwrap()).unwrap(), msg);
    }

    #[test]
    fn test_msg_a_to_from_serde_json_buf() {
        let msg = MsgA::new(3, "three".to_string(), vec![-1, 2]);
        assert_eq!(msg.header.msg_id(), MsgId::of_name("msg_serde_macro::tests::MsgA"));
        let buf = msg.to_json().unwrap();
        let back = MsgA::from_json(&buf).unwrap();
        assert_eq!(back, msg);
        assert_eq!(back.header, msg.header);

        // The boxed form decodes too, and its body is fields only.
        let mut body = Vec::new();
        msg_header::WireMsg::encode_body(&msg, &mut body).unwrap();
        assert_eq!(body, br#"{"a":3,"s":"three","v":[-1,2]}"#);
        let boxed: BoxMsg = msg_header::decode_boxed::<MsgA>(msg.header, &body).unwrap();
        assert_eq!(*boxed.downcast::<MsgA>().unwrap(), msg);
    }

    #[test]
    fn a_raw_message_downcasts_into_its_type() {
        let msg = MsgA::new(5, "five".to_string(), vec![5]);
        let mut body = Vec::new();
        msg_header::WireMsg::encode_body(&msg, &mut body).unwrap();
        let raw: BoxMsg = Box::new(msg_header::RawMsg::new(msg.header, body));
        assert!(!raw.is::<MsgA>());
        // Of another type: refused, handed back undecoded.
        let raw = raw.downcast::<Empty>().unwrap_err().into_inner();
        assert_eq!(*raw.downcast::<MsgA>().unwrap(), msg);
    }

    #[test]
    fn test_with_fields() {
        let empty = Empty::new();
        let buf = empty.to_json().unwrap();
        assert_eq!(Empty::from_json(&buf).unwrap(), empty);
        let t = Trailing::new(7);
        assert_eq!(Trailing::from_json(&t.to_json().unwrap()).unwrap().x, 7);

        // Every other message's buffer is refused by id, before its body.
        match MsgA::from_json(&buf) {
            Err(MsgError::WrongMsgId { expected, found }) => {
                assert_eq!(expected, MsgA::msg_id());
                assert_eq!(found, Empty::msg_id());
            }
            other => panic!("expected WrongMsgId, got {other:?}"),
        }
        assert!(matches!(Empty::from_json(b"{}"), Err(MsgError::Json(_))));
    }
}
