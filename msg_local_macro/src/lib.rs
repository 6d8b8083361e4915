//! `msg_local_macro!` declares a local-only message.
//!
//! A local message never leaves its process, so its fields may be anything
//! `Send`: a crossbeam `Sender` to answer on, a buffer, a handle. It has no
//! wire encoding; aiming one at an actor in another process is refused with
//! a typed error (`NotSerializable`) and nothing is sent.
//!
//! The macro writes a struct with a [`MsgHeader`](msg_header::MsgHeader)
//! and the given fields, a constructor `new(fields..)`, and the
//! [`Msg`](msg_header::Msg) and [`MsgType`](msg_header::MsgType) impls.
//! `Debug` is derived for you; attributes and doc comments are passed
//! through. A field may not be called `header`.
//!
//! # Examples
//!
//! ```
//! # mod ipchnl { pub use msg_header::Msg; pub use msg_header::MsgId; pub use msg_local_macro::msg_local_macro; }
//! use crossbeam_channel::{Sender, unbounded};
//! use ipchnl::{Msg, MsgId};
//! use ipchnl::msg_local_macro;
//!
//! msg_local_macro! {
//!     /// Asks for a count, answered on `reply`.
//!     pub struct GetCount("counter::GetCount") {
//!         pub reply: Sender<u64>,
//!     }
//! }
//!
//! let (tx, rx) = unbounded();
//! let msg = GetCount::new(tx);
//! assert_eq!(msg.header().msg_id(), MsgId::of_name("counter::GetCount"));
//! assert!(msg.as_wire().is_none());
//! msg.reply.send(42).unwrap();
//! assert_eq!(rx.recv(), Ok(42));
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used, clippy::expect_used)]

/// Declares a local-only message. See the [crate docs](crate).
///
/// ```text
/// msg_local_macro! {
///     [#[attributes] and /// docs]
///     [pub] struct Name("crate::Name") {
///         [#[attributes] and /// docs] [pub] field: Type,
///         ...
///     }
/// }
/// ```
#[macro_export]
macro_rules! msg_local_macro {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident ( $wire:literal ) {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $crate::__msg_local_macro! {
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
        $crate::__msg_local_macro! {
            @expand [$(#[$meta])*] [$vis] $name $wire
            [$( [$(#[$fmeta])*] [$fvis] $field [$fty] )*]
        }

        impl $crate::__private::Request for $name {
            type Reply = $reply;
        }
    };
    ( $(#[$meta:meta])* $vis:vis struct $name:ident ( $wire:literal ) $($rest:tt)* ) => {
        $crate::__msg_local_macro! { @error_fields $name }
    };
    ( $(#[$meta:meta])* $vis:vis struct $name:ident ( $($wire:tt)* ) $($rest:tt)* ) => {
        $crate::__msg_local_macro! { @error_wire_literal $name }
    };
    ( $(#[$meta:meta])* $vis:vis struct $name:ident $($rest:tt)* ) => {
        $crate::__msg_local_macro! { @error_no_wire_name $name }
    };
    ( $($other:tt)* ) => {
        $crate::__msg_local_macro! { @error_syntax }
    };
}

/// The code-generating half of [`msg_local_macro!`]; not an API.
#[doc(hidden)]
#[macro_export]
macro_rules! __msg_local_macro {
    (
        @expand [$($meta:tt)*] [$vis:vis] $name:ident $wire:literal
        [$( [$($fmeta:tt)*] [$fvis:vis] $field:ident [$fty:ty] )*]
    ) => {
        $($meta)*
        #[derive($crate::__private::Debug)]
        $vis struct $name {
            header: $crate::__private::MsgHeader,
            $( $($fmeta)* $fvis $field: $fty, )*
        }

        $crate::__private::__msg_impl!(local $vis $name $wire [$($field: $fty),*]);
    };
    (@error_fields $name:ident) => {
        ::core::compile_error!(::core::concat!(
            "msg_local_macro!: the fields of `", ::core::stringify!($name),
            "` must be `{ [pub] name: Type, ... }`",
        ));
    };
    (@error_wire_literal $name:ident) => {
        ::core::compile_error!(::core::concat!(
            "msg_local_macro!: the name of `", ::core::stringify!($name),
            "` must be a string literal, e.g. `struct ", ::core::stringify!($name),
            "(\"my_crate::", ::core::stringify!($name), "\")`",
        ));
    };
    (@error_no_wire_name $name:ident) => {
        ::core::compile_error!(::core::concat!(
            "msg_local_macro!: `", ::core::stringify!($name),
            "` has no name; write `struct ", ::core::stringify!($name),
            "(\"my_crate::", ::core::stringify!($name), "\") { .. }`",
        ));
    };
    (@error_syntax) => {
        ::core::compile_error!(
            "msg_local_macro!: expected `[pub] struct Name(\"crate::Name\") { field: Type, ... }`"
        );
    };
}

#[doc(hidden)]
pub mod __private {
    pub use msg_header::{__msg_impl, MsgHeader, Request};
    pub use std::fmt::Debug;
}

#[cfg(test)]
mod tests {
    use crossbeam_channel::{Sender, unbounded};
    use msg_header::{BoxMsg, Msg, MsgId, MsgType};

    msg_local_macro! {
        /// Carries a sender to answer on.
        struct WithSender("msg_local_macro::tests::WithSender") {
            /// Where to answer.
            reply: Sender<u64>,
            value: u64,
        }
    }

    msg_local_macro!(struct NoFields("msg_local_macro::tests::NoFields") {});

    #[test]
    fn test_with_fields_including_a_sender() {
        let (reply_tx, reply_rx) = unbounded();
        let msg = WithSender::new(reply_tx, 21);
        assert_eq!(msg.header().msg_id(), MsgId::of_name("msg_local_macro::tests::WithSender"));

        // Send it through a channel as a BoxMsg, as an actor would receive it.
        let (tx, rx) = unbounded::<BoxMsg>();
        tx.send(Box::new(msg)).unwrap();
        let got = rx.recv().unwrap();
        assert!(got.as_wire().is_none(), "a local message has no wire form");
        let got = got.downcast::<WithSender>().unwrap();
        got.reply.send(got.value * 2).unwrap();
        assert_eq!(reply_rx.recv().unwrap(), 42);
    }

    #[test]
    fn no_fields() {
        let m = NoFields::new();
        assert_eq!(m.header().msg_id(), NoFields::msg_id());
        assert_eq!(m.name(), "msg_local_macro::tests::NoFields");
    }
}
