//! `dispatch!`: one arm per message type, chosen by id.

/// Hands a message to the arm of its type, by value, inside
/// [`Actor::handle`](crate::Actor::handle); anything else goes to
/// [`Context::unhandled`](crate::Context::unhandled): a dead letter with
/// reason `Unhandled`, never silence. A message of the actor's own
/// protocol set that reaches that default is logged as an error too: its
/// arm is missing (a service's [`Handler`](crate::Handler)s cannot miss
/// one: that does not compile).
///
/// The arm is chosen by comparing the message's id with each arm's type's
/// id, then the message is downcast once. Each arm binds the message
/// (moved out of its box) to its name and evaluates to `()`.
///
/// ```
/// # mod ipchnl { pub use actor::Actor; pub use actor::ActorSender; pub use actor::Context; pub use actor::StaticDirectory; pub use actor::dispatch; pub use msg_header::BoxMsg; pub use msg_header::IntoBoxMsg; pub use protocol_set::ProtocolSet; pub use protocol_set::protocol_set; pub mod echo { pub use echo_reply::EchoReply; pub use echo_req::EchoReq; } }
/// use std::collections::HashMap;
/// use ipchnl::{Actor, ActorSender, Context, StaticDirectory, dispatch};
/// use ipchnl::echo::EchoReply;
/// use ipchnl::echo::EchoReq;
/// use ipchnl::{BoxMsg, IntoBoxMsg};
/// use ipchnl::{ProtocolSet, protocol_set};
///
/// protocol_set! {
///     fn echo_set = "doc::Echo" [echo_requestee_protocol::echo_requestee_protocol()]
/// }
///
/// /// Answers each request, counting them.
/// struct Echo(u64);
///
/// impl Actor for Echo {
///     fn protocol_set(&self) -> &'static ProtocolSet { echo_set() }
///     fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
///         dispatch!(msg, ctx, {
///             req: EchoReq => {
///                 self.0 += 1;
///                 // A reply that cannot go is reported, with why.
///                 ctx.answer_to(&req, EchoReply::new(req.counter, req.req_timestamp_ns, 0));
///             },
///             // An answer is of the set too: this actor takes it and does nothing.
///             _reply: EchoReply => {},
///         })
///     }
/// }
///
/// let mut echo = Echo(0);
/// let (me, _) = ActorSender::inbox("echo");
/// let (asker, answers) = ActorSender::inbox("asker");
/// let dir = StaticDirectory::default();
/// let mut ctx = Context::for_message(&me, &dir, Some(asker), 0);
/// echo.handle(&mut ctx, EchoReq::new(7, 0).into_box_msg());
/// assert_eq!(echo.0, 1);
/// let answer = answers.try_recv().unwrap().msg.downcast::<EchoReply>().unwrap();
/// assert_eq!(answer.counter, 7);
/// ```
#[macro_export]
macro_rules! dispatch {
    ($msg:expr, $ctx:expr, { $($bind:tt : $ty:ty => $body:expr),+ $(,)? }) => {{
        let __msg: $crate::__private::BoxMsg = $msg;
        let __id = __msg.msg_id();
        $crate::__dispatch_arms!(__msg, __id, $ctx; $($bind : $ty => $body),+)
    }};
    ($($other:tt)*) => {
        ::std::compile_error!(
            "expected `dispatch!(msg, ctx, { name: Type => expression, other: OtherType => expression })`"
        );
    };
}

/// The arms of [`dispatch!`], one `if` each; not an API.
#[doc(hidden)]
#[macro_export]
macro_rules! __dispatch_arms {
    ($msg:ident, $id:ident, $ctx:expr; $bind:tt : $ty:ty => $body:expr $(, $rbind:tt : $rty:ty => $rbody:expr)*) => {
        if $id == <$ty as $crate::__private::MsgType>::msg_id() {
            match $msg.downcast::<$ty>() {
                Ok(__boxed) => {
                    let $bind: $ty = *__boxed;
                    $body
                }
                // The id said this type: only a message of another type
                // claiming its id comes here.
                Err(__other) => $ctx.unhandled(__other.into_inner()),
            }
        } else {
            $crate::__dispatch_arms!($msg, $id, $ctx; $($rbind : $rty => $rbody),*)
        }
    };
    ($msg:ident, $id:ident, $ctx:expr;) => {
        $ctx.no_arm($msg)
    };
}
