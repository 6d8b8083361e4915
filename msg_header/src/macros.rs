//! Code both message macros generate, written once.

/// Generates the constructor and the [`Msg`](crate::Msg) and
/// [`MsgType`](crate::MsgType) impls of a declared message.
///
/// Used by `msg_serde_macro!` and `msg_local_macro!`; not an API.
#[doc(hidden)]
#[macro_export]
macro_rules! __msg_impl {
    (
        $kind:ident $vis:vis $name:ident $wire:literal
        [$($field:ident : $fty:ty),*]
    ) => {
        impl $name {
            /// Creates the message from its fields, with a fresh header.
            #[allow(clippy::too_many_arguments, dead_code)]
            $vis fn new($($field: $fty),*) -> Self {
                Self {
                    header: $crate::MsgHeader::new(<Self as $crate::MsgType>::msg_id()),
                    $($field),*
                }
            }
        }

        impl $crate::MsgType for $name {
            const NAME: &'static str = $wire;

            fn msg_id() -> $crate::MsgId {
                static ID: $crate::__private::LazyLock<$crate::MsgId> =
                    $crate::__private::LazyLock::new(|| $crate::MsgId::of_name($wire));
                *ID
            }

            $crate::__msg_impl!(@decode_raw $kind);
        }

        impl $crate::Msg for $name {
            fn header(&self) -> &$crate::MsgHeader {
                &self.header
            }

            fn header_mut(&mut self) -> &mut $crate::MsgHeader {
                &mut self.header
            }

            fn name(&self) -> &'static str {
                $wire
            }

            $crate::__msg_impl!(@as_wire $kind);
        }
    };
    (@as_wire wire) => {
        fn as_wire(&self) -> $crate::__private::Option<&dyn $crate::WireMsg> {
            $crate::__private::Option::Some(self)
        }
    };
    (@as_wire local) => {};
    (@decode_raw wire) => {
        fn decode_raw(
            header: $crate::MsgHeader,
            body: &[u8],
        ) -> $crate::__private::Option<$crate::__private::Result<Self, $crate::MsgError>> {
            $crate::__private::Option::Some(<Self as $crate::DecodeMsg>::decode_body(header, body))
        }
    };
    (@decode_raw local) => {};
}

#[doc(hidden)]
pub mod __private {
    pub use std::option::Option;
    pub use std::result::Result;
    pub use std::sync::LazyLock;
}
