//! `ActorSender`: the address an actor is sent to.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use msg_header::NackReason;
use msg_header::{ActorId, Asked, BoxMsg, IntoBoxMsg, MsgId, MsgType, NodeId};
use protocol::ProtocolId;

use crate::channel::{Answer, AskRoute, ChannelRoute};
use crate::{Actor, ActorAddr, AskError, Hold, SendError, SystemError, Terminated};

/// A message on its way to an actor, with the address to reply to.
#[derive(Debug)]
pub struct Envelope {
    /// The message; its header is already stamped.
    pub msg: BoxMsg,
    /// Where replies go: the sending actor, an `ask` waiting for its answer,
    /// or nobody.
    pub reply_to: Option<ActorSender>,
}

impl Envelope {
    /// An envelope of `msg`, replies going to `reply_to`.
    pub fn new(msg: BoxMsg, reply_to: Option<ActorSender>) -> Self {
        Self { msg, reply_to }
    }
}

/// How long a send may wait for room in a bounded mailbox or window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Not at all: a full mailbox is `Err(Full)`.
    No,
    /// Until the deadline, then `Err(Timeout)`.
    Until(Instant),
    /// As long as it takes.
    Forever,
}

/// What is behind an [`ActorSender`]: a channel, an executor's mailbox, a
/// link to another process.
///
/// Implemented by the `manager` crate for its mailboxes and links; this
/// crate has one for plain channels ([`ActorSender::channel`]).
pub trait Route: Any + Send + Sync {
    /// The destination actor.
    fn actor_id(&self) -> ActorId;

    /// The destination actor's name.
    fn actor_name(&self) -> &str;

    /// Whether the destination accepts messages with this id.
    fn accepts(&self, msg_id: MsgId) -> bool;

    /// Whether the destination speaks this protocol.
    fn speaks(&self, protocol: ProtocolId) -> bool;

    /// Whether the destination is in another process, so that only
    /// messages with a wire form can reach it.
    fn is_remote(&self) -> bool {
        false
    }

    /// The node the destination lives on; [`NodeId::ZERO`] when it has none
    /// (an actor driven by hand).
    fn node_id(&self) -> NodeId {
        NodeId::ZERO
    }

    /// Puts an envelope, already checked and stamped, on its way. Must not
    /// wait longer than `wait` says. Every error hands the message back.
    fn deliver(&self, env: Envelope, wait: Wait) -> Result<(), SendError>;

    /// As [`deliver`](Self::deliver), for a message read from a link: a
    /// route that queues it keeps `hold` until the message is handled, so
    /// that the link reads no more than its bound while messages wait.
    /// By default the hold is given back at once (the route keeps nothing
    /// of the link's waiting: an `ask`'s answer, an inbox).
    fn deliver_held(&self, env: Envelope, wait: Wait, hold: Hold) -> Result<(), SendError> {
        drop(hold);
        self.deliver(env, wait)
    }

    /// Whether [`deliver_held`](Self::deliver_held) keeps its hold until
    /// the message is handled because the message waits on another thread;
    /// when not, the caller's hold need count no memory (it still returns
    /// an unhandled message to its sender).
    fn keeps_hold(&self) -> bool {
        false
    }

    /// Sends [`Terminated`] to `watcher` when the destination ends; at
    /// once if it already has.
    fn watch(&self, _watcher: ActorSender) -> Result<(), SystemError> {
        Err(SystemError::Unsupported("watch"))
    }

    /// Forgets the watch of the watcher with this id (its link went down):
    /// it is told nothing more.
    fn unwatch(&self, _watcher: ActorId) {}

    /// Whether a message for the destination read from a link is
    /// acknowledged only once handled (its [`Hold`] says when).
    fn acks_when_handled(&self) -> bool {
        false
    }

    /// The destination asked to stop after its current handler: refuse
    /// sends from now on. By default, nothing changes.
    fn refuse_sends(&self) {}

    /// Stops the destination after the messages already queued for it.
    fn stop(&self) -> Result<(), SystemError> {
        Err(SystemError::Unsupported("stop"))
    }

    /// Which host runs the destination, as an opaque token that host
    /// compares with its own (a manager: its address); 0 for none (a
    /// remote actor, an inbox). It lets a host tell its own actors, ended
    /// ones included, from others' without looking into the route.
    fn host(&self) -> usize {
        0
    }

    /// Sends `note.msg` to `to` once the destination has room (see
    /// [`ActorSender::when_room`]); at once when it has room now or is not
    /// bounded.
    fn when_room(&self, note: Envelope, to: ActorSender) -> Result<(), SendError> {
        to.forward(note.msg, None, 0, Wait::No)
    }

    /// Told, as the reply address of a message, that the message's remote
    /// node refused it with a NACK (`None`: a reason this version does not
    /// know). An `ask` waiting on this address fails at once with
    /// [`AskError::Nacked`]; other addresses ignore it (the refusal is a
    /// dead letter of the sender's manager either way).
    fn refused(&self, _reason: Option<NackReason>) {}
}

thread_local! {
    static ON_EXECUTOR: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread runs actor handlers, so that no send from it may
/// wait for room and no `ask` may block.
pub fn on_executor_thread() -> bool {
    ON_EXECUTOR.with(Cell::get)
}

/// Marks this thread, for the rest of its life, as one that runs actor
/// handlers (see [`on_executor_thread`]). Executors call it when they start.
pub fn mark_executor_thread() {
    ON_EXECUTOR.with(|c| c.set(true));
}

/// Marks the current thread as running a handler until dropped.
pub(crate) struct ExecutorThreadGuard(bool);

impl ExecutorThreadGuard {
    pub(crate) fn enter() -> Self {
        Self(ON_EXECUTOR.with(|c| c.replace(true)))
    }
}

impl Drop for ExecutorThreadGuard {
    fn drop(&mut self) {
        ON_EXECUTOR.with(|c| c.set(self.0));
    }
}

/// The address of an actor, local or remote; cheap to clone.
///
/// Every send checks that the destination accepts the message
/// (`Err(NotAccepted)` otherwise; every actor accepts [`Terminated`]) and that a remote destination gets only
/// messages with a wire form (`Err(NotSerializable)`), then stamps the
/// header with the destination, the source and the correlation id. Every
/// error hands the message back.
///
/// On an executor thread (inside a handler) no send waits: `send` and
/// `send_timeout` behave as `try_send`, since waiting there could stall the
/// very executor that must drain the full mailbox.
#[derive(Clone)]
pub struct ActorSender {
    route: Arc<dyn Route>,
}

impl ActorSender {
    /// An address backed by `route`.
    pub fn from_route(route: Arc<dyn Route>) -> Self {
        Self { route }
    }

    /// A channel address for `actor`, called `name` (with an id of its
    /// own), to drive it by hand with [`dispatch`](fn@crate::dispatch):
    /// bounded to `capacity` messages, or unbounded with `None`.
    pub fn channel(name: &str, actor: &dyn Actor, capacity: Option<usize>) -> (Self, Receiver<Envelope>) {
        ChannelRoute::address(ActorId::new(), name, Some(actor.protocol_set()), capacity)
    }

    /// An address for code outside any actor to receive on: it accepts
    /// every message. Replies to sends made with [`send_from`](Self::send_from)
    /// arrive on the receiver.
    pub fn inbox(name: &str) -> (Self, Receiver<Envelope>) {
        ChannelRoute::address(ActorId::new(), name, None, None)
    }

    /// The destination actor's id.
    pub fn id(&self) -> ActorId {
        self.route.actor_id()
    }

    /// The destination actor's name.
    pub fn name(&self) -> &str {
        self.route.actor_name()
    }

    /// The node the destination lives on.
    pub fn node_id(&self) -> NodeId {
        self.route.node_id()
    }

    /// The address of the destination, to put in a message: another
    /// process resolves it with `ctx.resolve(addr)`.
    pub fn addr(&self) -> ActorAddr {
        ActorAddr { node_id: self.node_id(), actor_id: self.id() }
    }

    /// Whether the destination is in another process.
    pub fn is_remote(&self) -> bool {
        self.route.is_remote()
    }

    /// Whether the destination accepts messages with this id.
    pub fn accepts(&self, msg_id: MsgId) -> bool {
        self.route.accepts(msg_id)
    }

    /// Whether the destination speaks this protocol.
    pub fn speaks(&self, protocol: ProtocolId) -> bool {
        self.route.speaks(protocol)
    }

    /// What is behind the address, e.g. to downcast to a known route type.
    pub fn route(&self) -> &dyn Route {
        &*self.route
    }

    /// Sends [`Terminated`] to `watcher` when this actor ends; at once if
    /// it already has.
    pub fn watch(&self, watcher: &ActorSender) -> Result<(), SystemError> {
        self.route.watch(watcher.clone())
    }

    /// Stops this actor after the messages already queued for it; its
    /// watchers are told `Stopped`.
    pub fn stop(&self) -> Result<(), SystemError> {
        self.route.stop()
    }

    /// Sends `note` to `notify` once this destination has room again: a
    /// bounded mailbox with a free place, or a link whose window has one.
    /// At once if it has room now. This is how a handler, which must not
    /// wait, goes on after `Err(Full)`.
    pub fn when_room(&self, notify: &ActorSender, note: impl IntoBoxMsg) -> Result<(), SendError> {
        let env = Envelope::new(note.into_box_msg(), None);
        self.route.when_room(env, notify.clone())
    }

    /// Sends without waiting: a full mailbox is `Err(Full(msg))` at once.
    pub fn try_send(&self, msg: impl IntoBoxMsg) -> Result<(), SendError> {
        self.forward(msg.into_box_msg(), None, 0, Wait::No)
    }

    /// Sends, waiting for room in a bounded mailbox as long as it takes
    /// (not on an executor thread, where a full mailbox is `Err(Full)`).
    pub fn send(&self, msg: impl IntoBoxMsg) -> Result<(), SendError> {
        self.forward(msg.into_box_msg(), None, 0, Wait::Forever)
    }

    /// Sends, waiting up to `timeout` for room (not on an executor thread,
    /// where a full mailbox is `Err(Full)`); then `Err(Timeout(msg))`.
    pub fn send_timeout(&self, msg: impl IntoBoxMsg, timeout: Duration) -> Result<(), SendError> {
        self.forward(msg.into_box_msg(), None, 0, deadline(timeout))
    }

    /// Sends with `from` as the address replies go to, waiting for room
    /// like [`send`](Self::send).
    pub fn send_from(&self, msg: impl IntoBoxMsg, from: &ActorSender) -> Result<(), SendError> {
        self.forward(msg.into_box_msg(), Some(from.clone()), 0, Wait::Forever)
    }

    /// Sends `msg` and waits up to `timeout` for the reply: a request
    /// declared with its reply type (`-> Reply` in `msg_serde_macro!`) gets
    /// that type back, or `Err(WrongReply)` with what came instead; a
    /// [`BoxMsg`] (a request whose type is known at run time only, or a
    /// message that declares no reply) gets the reply as it came.
    ///
    /// ```
    /// # mod ipchnl { pub use actor::ActorSender; pub use msg_header::IntoBoxMsg; pub mod echo { pub use echo_reply::EchoReply; pub use echo_req::EchoReq; } }
    /// use std::time::Duration;
    /// use ipchnl::ActorSender;
    /// use ipchnl::echo::EchoReply;
    /// use ipchnl::echo::EchoReq;
    /// use ipchnl::IntoBoxMsg;
    ///
    /// let (server, requests) = ActorSender::inbox("server");
    /// std::thread::spawn(move || {
    ///     for env in requests.iter() {
    ///         let req = env.msg.downcast::<EchoReq>().unwrap();
    ///         let to = env.reply_to.unwrap();
    ///         let corr = msg_header::Msg::header(&*req).corr_id();
    ///         to.forward(EchoReply::new(req.counter, 0, 0).into_box_msg(), None, corr, actor::Wait::No).unwrap();
    ///     }
    /// });
    /// let typed: EchoReply = server.ask(EchoReq::new(7, 0), Duration::from_secs(60)).unwrap();
    /// assert_eq!(typed.counter, 7);
    /// let untyped = server.ask(EchoReq::new(8, 0).into_box_msg(), Duration::from_secs(60)).unwrap();
    /// assert_eq!(untyped.downcast::<EchoReply>().unwrap().counter, 8);
    /// ```
    ///
    /// Refused with `Err(InHandler)` on an executor thread: waiting there
    /// would stall the executor that may have to run the answering actor.
    /// `Err(Disconnected)` when the request was dropped unanswered (the actor
    /// handled it without replying, stopped, or its link went down);
    /// `Err(Nacked(reason))` when the destination's node refused it. Both
    /// come at once, not at the timeout.
    ///
    /// A reply from another process whose type no actor of this process
    /// declares arrives undecoded (a `RawMsg`): take it with
    /// [`downcast`](msg_header::Msg#method.downcast), which decodes it;
    /// `downcast_ref` only sees what is already decoded.
    pub fn ask<A: Asked>(&self, msg: A, timeout: Duration) -> Result<A::Answer, AskError> {
        let msg = msg.into_request();
        if on_executor_thread() {
            return Err(AskError::InHandler(msg));
        }
        let deadline = Instant::now() + timeout;
        let (reply_to, rx) = AskRoute::address(self.name());
        self.forward(msg, Some(reply_to), 0, Wait::Until(deadline)).map_err(AskError::Send)?;
        match rx.recv_deadline(deadline) {
            Ok(Answer::Reply(env)) => A::answer(env.msg).map_err(AskError::WrongReply),
            Ok(Answer::Refused(reason)) => Err(AskError::Nacked(reason)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(AskError::Timeout),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(AskError::Disconnected),
        }
    }

    /// The one send path, for routers: checks, stamps the header with the
    /// destination, `reply_to`'s id and `corr_id`, and delivers, waiting as
    /// `wait` says (never on an executor thread). The other send calls are
    /// this with fixed arguments.
    pub fn forward(
        &self,
        msg: BoxMsg,
        reply_to: Option<ActorSender>,
        corr_id: u64,
        wait: Wait,
    ) -> Result<(), SendError> {
        // A `Terminated` with no reply address comes from the actor that ended.
        let src = match &reply_to {
            Some(r) => r.id(),
            None if msg.msg_id() == <Terminated as MsgType>::msg_id() => {
                msg.downcast_ref::<Terminated>().map_or(ActorId::NONE, |t| t.actor)
            }
            None => ActorId::NONE,
        };
        self.post_from(msg, src, reply_to, corr_id, wait)
    }

    /// Sends `reply`, from `src` and answering `corr_id`, with no reply
    /// address; never waits (see [`Context::reply`](crate::Context::reply)).
    pub(crate) fn post_answer(&self, reply: BoxMsg, src: ActorId, corr_id: u64) -> Result<(), SendError> {
        self.post_from(reply, src, None, corr_id, Wait::No)
    }

    fn post_from(
        &self,
        mut msg: BoxMsg,
        src: ActorId,
        reply_to: Option<ActorSender>,
        corr_id: u64,
        wait: Wait,
    ) -> Result<(), SendError> {
        let id = msg.msg_id();
        if !self.route.accepts(id) && id != <Terminated as MsgType>::msg_id() {
            return Err(SendError::NotAccepted(msg));
        }
        if self.route.is_remote() && msg.as_wire().is_none() {
            return Err(SendError::NotSerializable(msg));
        }
        let header = msg.header_mut();
        header.set_dst_id(self.route.actor_id());
        header.set_src_id(src);
        header.set_corr_id(corr_id);
        let wait = if on_executor_thread() { Wait::No } else { wait };
        self.route.deliver(Envelope::new(msg, reply_to), wait)
    }
}

/// The deadline `timeout` from now; a timeout too long to represent waits
/// forever.
pub(crate) fn deadline(timeout: Duration) -> Wait {
    Instant::now().checked_add(timeout).map_or(Wait::Forever, Wait::Until)
}

impl fmt::Debug for ActorSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorSender({}#{}", self.name(), self.id())?;
        if self.is_remote() {
            f.write_str(", remote")?;
        }
        f.write_str(")")
    }
}

/// Two addresses are equal when they name the same actor.
impl PartialEq for ActorSender {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for ActorSender {}

impl Hash for ActorSender {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}
