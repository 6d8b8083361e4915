//! Typed services: a protocol as a type, the actors that serve it, and
//! references the compiler checks.
//!
//! [`service!`](crate::service!) declares a protocol as a type (`Calc`)
//! from its requests, each a message declared with its reply
//! (`struct Add(..) -> Sum`). An actor serves it by handling each request
//! ([`Handler`]); serving it without a handler for one of them does not
//! compile. A [`Ref<Calc>`](Ref) to such an actor, here or in another
//! process, takes only `Calc`'s requests, and its `ask` returns the reply
//! the request declares:
//!
//! ```
//! # mod ipchnl { pub use actor::ActorSender; pub use actor::Context; pub use actor::Handler; pub use actor::Ref; pub use actor::StaticDirectory; pub use actor::service; pub use msg_header::IntoBoxMsg; }
//! use std::time::Duration;
//! use ipchnl::{ActorSender, Context, Handler, Ref, StaticDirectory, service};
//! use ipchnl::IntoBoxMsg;
//!
//! msg_serde_macro::msg_serde_macro! {
//!     /// Adds two numbers; answered with their sum.
//!     pub struct Add("doc::Add") -> Sum { a: i64, b: i64 }
//! }
//! msg_serde_macro! {
//!     /// A sum.
//!     pub struct Sum("doc::Sum") { sum: i64 }
//! }
//! # use msg_serde_macro::msg_serde_macro;
//! service! {
//!     /// What an adder serves.
//!     pub Calc = "doc_calc" [Add]
//! }
//!
//! struct Adder;
//! impl Handler<Add> for Adder {
//!     fn handle(&mut self, _: &mut Context<'_>, add: Add) -> Sum {
//!         Sum::new(add.a + add.b)
//!     }
//! }
//!
//! // Served by hand here (a manager does this with `serve`).
//! let (me, mailbox) = ActorSender::channel("adder", &actor::Served::<Calc, _>::new(Adder), None);
//! let calc: Ref<Calc> = Ref::new(me.clone()).expect("it serves Calc");
//! let mut adder = actor::Served::<Calc, _>::new(Adder);
//! std::thread::spawn(move || {
//!     let dir = StaticDirectory::default();
//!     for env in mailbox.iter() {
//!         actor::dispatch(&mut adder, &me, &dir, env);
//!     }
//! });
//! let sum: Sum = calc.ask(Add::new(2, 3), Duration::from_secs(60)).unwrap();
//! assert_eq!(sum.sum, 5);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use msg_header::{BoxMsg, IntoBoxMsg, Msg, Request};
use protocol::Protocol;
use protocol_set::ProtocolSet;

use crate::{Actor, ActorSender, AskError, Context, SendError};

/// Handles the request `M` and answers it with its declared reply.
///
/// An actor that serves a [`Service`] implements it for each of the
/// service's requests; the compiler refuses to serve the service with an
/// actor that lacks one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not handle `{M}`, which the service it is to serve takes",
    label = "no `impl Handler<{M}> for {Self}`",
    note = "add `impl Handler<{M}> for {Self} {{ fn handle(&mut self, ctx: &mut Context<'_>, msg: {M}) -> .. }}`"
)]
pub trait Handler<M: Request>: Send + 'static {
    /// Handles `msg`; what it returns is the reply to its sender (a
    /// request sent without a reply address, with `send`, gets none).
    fn handle(&mut self, ctx: &mut Context<'_>, msg: M) -> M::Reply;
}

/// A protocol as a type, declared with [`service!`](crate::service!): the
/// requests its server takes, each with its reply.
pub trait Service: Send + Sync + 'static {
    /// The protocol: what a server takes and what it answers with (its
    /// id is the hash of its name, as for any protocol).
    fn protocol() -> &'static Protocol;

    /// What a server of this service alone speaks.
    fn protocol_set() -> &'static ProtocolSet;
}

/// The service's server takes the request `M` (implemented by
/// [`service!`](crate::service!) for each of its requests).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not take `{M}`",
    label = "not one of `{Self}`'s requests",
    note = "a `Ref<{Self}>` sends only what `service! {{ .. {Self} = .. [..] }}` lists"
)]
pub trait Takes<M: Request>: Service {}

/// The actor `A` serves this service: it handles every one of its
/// requests (implemented by [`service!`](crate::service!) for every such
/// actor).
#[diagnostic::on_unimplemented(
    message = "`{A}` does not serve `{Self}`: it lacks a handler for one of its requests",
    label = "`{A}` cannot serve `{Self}`",
    note = "implement `Handler<Request>` for `{A}` for each request `{Self}` lists"
)]
pub trait ServedBy<A>: Service {
    /// Hands `msg` to the actor's handler of its type, and sends the
    /// handler's reply back; a message of no request of the service is
    /// this actor's dead letter (`Unhandled`).
    fn dispatch(actor: &mut A, ctx: &mut Context<'_>, msg: BoxMsg);
}

/// An actor serving the service `S` through its [`Handler`]s: what a
/// manager runs for `serve`.
pub struct Served<S, A> {
    actor: A,
    service: PhantomData<fn() -> S>,
}

impl<S: ServedBy<A>, A: Send + 'static> Served<S, A> {
    /// `actor`, serving `S`.
    pub fn new(actor: A) -> Self {
        Self { actor, service: PhantomData }
    }
}

impl<S: ServedBy<A>, A: Send + 'static> Actor for Served<S, A> {
    fn protocol_set(&self) -> &'static ProtocolSet {
        S::protocol_set()
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        S::dispatch(&mut self.actor, ctx, msg);
    }
}

/// A reference to an actor that serves the service `S`, here or in
/// another process: it sends only `S`'s requests, and its
/// [`ask`](Self::ask) returns the reply each declares. The untyped
/// [`ActorSender`] behind it is [`untyped`](Self::untyped).
pub struct Ref<S> {
    sender: ActorSender,
    service: PhantomData<fn() -> S>,
}

impl<S: Service> Ref<S> {
    /// A typed reference to `sender`, if it serves `S` (its actor speaks
    /// `S`'s protocol as a server).
    pub fn new(sender: ActorSender) -> Option<Self> {
        sender.speaks(S::protocol().id()).then_some(Self { sender, service: PhantomData })
    }

    /// The untyped address.
    pub fn untyped(&self) -> &ActorSender {
        &self.sender
    }

    /// Sends `msg`, waiting for room (as [`ActorSender::send`]); its reply,
    /// if any, goes nowhere.
    pub fn send<M>(&self, msg: M) -> Result<(), SendError>
    where
        S: Takes<M>,
        M: Request + IntoBoxMsg,
    {
        self.sender.send(msg)
    }

    /// Sends `msg` if there is room now (as [`ActorSender::try_send`]).
    pub fn try_send<M>(&self, msg: M) -> Result<(), SendError>
    where
        S: Takes<M>,
        M: Request + IntoBoxMsg,
    {
        self.sender.try_send(msg)
    }

    /// Sends `msg` from the actor handling `ctx`: the reply comes to it,
    /// as a message.
    pub fn send_from<M>(&self, ctx: &mut Context<'_>, msg: M) -> Result<(), SendError>
    where
        S: Takes<M>,
        M: Request + IntoBoxMsg,
    {
        ctx.send(&self.sender, msg)
    }

    /// Asks with `msg` and waits up to `timeout` for its reply, of the type
    /// `msg` declares (as [`ActorSender::ask`]; from outside any actor).
    pub fn ask<M>(&self, msg: M, timeout: Duration) -> Result<M::Reply, AskError>
    where
        S: Takes<M>,
        M: Request + Msg,
    {
        self.sender.ask(msg, timeout)
    }
}

impl<S> Clone for Ref<S> {
    fn clone(&self) -> Self {
        Self { sender: self.sender.clone(), service: PhantomData }
    }
}

impl<S> PartialEq for Ref<S> {
    fn eq(&self, other: &Self) -> bool {
        self.sender == other.sender
    }
}

impl<S> Eq for Ref<S> {}

impl<S> fmt::Debug for Ref<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ref<{}>({:?})", std::any::type_name::<S>(), self.sender)
    }
}

/// Declares a service: a protocol as a type, named by a string whose hash
/// is its id, listing the requests its server takes; each request's reply
/// is the one its message declares (`struct Add("..") -> Sum { .. }`).
/// Gives the type (a unit struct) its [`Service`], a [`Takes`] for each
/// request, and [`ServedBy`] for every actor that has a [`Handler`] for
/// each of them.
///
/// ```
/// # mod ipchnl { pub use actor::Service; pub use actor::service; pub use msg_header::MsgType; }
/// use ipchnl::{Service, service};
/// use ipchnl::MsgType;
///
/// msg_serde_macro::msg_serde_macro! {
///     /// Asks for a temperature.
///     pub struct GetTemp("doc::GetTemp") -> Temp { city: String }
/// }
/// msg_serde_macro::msg_serde_macro! {
///     /// A temperature.
///     pub struct Temp("doc::Temp") { celsius: f64 }
/// }
///
/// service! {
///     /// What a weather station serves.
///     pub Weather = "doc_weather" [GetTemp]
/// }
///
/// let p = Weather::protocol();
/// assert!(p.server_takes(GetTemp::msg_id()) && p.is_reply(Temp::msg_id()));
/// assert!(Weather::protocol_set().accepts(GetTemp::msg_id()));
/// assert!(!Weather::protocol_set().accepts(Temp::msg_id()), "a server is not sent its replies");
/// ```
#[macro_export]
macro_rules! service {
    ($(#[$meta:meta])* $vis:vis $name:ident = $wire:literal [ $($req:ty),+ $(,)? ] $(;)?) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis struct $name;

        impl $crate::Service for $name {
            fn protocol() -> &'static $crate::__private::Protocol {
                static PROTOCOL: ::std::sync::LazyLock<$crate::__private::Protocol> =
                    ::std::sync::LazyLock::new(|| {
                        $crate::__private::Protocol::with_replies(
                            $wire,
                            [$($crate::__private::MsgInfo::wire::<$req>()),+],
                            [$($crate::__private::MsgInfo::wire::<<$req as $crate::__private::Request>::Reply>()),+],
                        )
                    });
                &PROTOCOL
            }

            fn protocol_set() -> &'static $crate::__private::ProtocolSet {
                static SET: ::std::sync::LazyLock<$crate::__private::ProtocolSet> =
                    ::std::sync::LazyLock::new(|| {
                        $crate::__private::ProtocolSet::new(
                            ::std::concat!("service::", $wire),
                            [<$name as $crate::Service>::protocol()],
                        )
                    });
                &SET
            }
        }

        $(impl $crate::Takes<$req> for $name {})+

        impl<A: Send + 'static $(+ $crate::Handler<$req>)+> $crate::ServedBy<A> for $name {
            fn dispatch(
                actor: &mut A,
                ctx: &mut $crate::Context<'_>,
                msg: $crate::__private::BoxMsg,
            ) {
                let id = msg.msg_id();
                $(
                    if id == <$req as $crate::__private::MsgType>::msg_id() {
                        match msg.downcast::<$req>() {
                            Ok(request) => {
                                let reply = <A as $crate::Handler<$req>>::handle(actor, ctx, *request);
                                if ctx.sender().is_some() {
                                    ctx.answer(reply);
                                }
                            }
                            // Only a message of another type claiming its id.
                            Err(other) => ctx.unhandled(other.into_inner()),
                        }
                        return;
                    }
                )+
                ctx.unhandled(msg);
            }
        }
    };
    ($($other:tt)*) => {
        ::std::compile_error!(
            "expected `service! { pub Name = \"wire_name\" [Request, OtherRequest] }` (each declared `-> Reply`)"
        );
    };
}
