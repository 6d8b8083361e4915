//! What a handler can do.

use msg_header::{BoxMsg, IntoBoxMsg, MsgType, Request};
use protocol::ProtocolId;

use crate::{ActorSender, SendError, System, SystemError, Wait};

/// A handler's view of the world: who sent the message being handled,
/// where to reply, how to send to and find other actors, how to stop.
pub struct Context<'a> {
    me: &'a ActorSender,
    system: &'a dyn System,
    reply_to: Option<ActorSender>,
    corr_id: u64,
    stop: bool,
}

impl<'a> Context<'a> {
    /// A context outside any message, for the `started` and `stopped` hooks.
    pub fn new(me: &'a ActorSender, system: &'a dyn System) -> Self {
        Self { me, system, reply_to: None, corr_id: 0, stop: false }
    }

    /// A context for handling a message that came with `reply_to` and
    /// correlation id `corr_id`.
    pub fn for_message(
        me: &'a ActorSender,
        system: &'a dyn System,
        reply_to: Option<ActorSender>,
        corr_id: u64,
    ) -> Self {
        Self { me, system, reply_to, corr_id, stop: false }
    }

    /// This actor's own address.
    pub fn me(&self) -> &ActorSender {
        self.me
    }

    /// The address replies to the message being handled go to, if any.
    pub fn sender(&self) -> Option<&ActorSender> {
        self.reply_to.as_ref()
    }

    /// Replies to the sender of the message being handled; the reply
    /// carries the request's correlation id and this actor's id as its
    /// source (`header().src_id()`), but no reply address: a reply is an
    /// answer, and whoever wants to go on talking sends to the address it
    /// already has. Never waits: a full mailbox is `Err(Full)`, no reply
    /// address is `Err(NoReplyTo)`.
    pub fn reply(&mut self, msg: impl IntoBoxMsg) -> Result<(), SendError> {
        let msg = msg.into_box_msg();
        match &self.reply_to {
            Some(to) => to.post_answer(msg, self.me.id(), self.corr_id),
            None => Err(SendError::NoReplyTo(msg)),
        }
    }

    /// Sends to `to` with this actor as the reply address. Never waits: a
    /// full mailbox is `Err(Full)`.
    pub fn send(&mut self, to: &ActorSender, msg: impl IntoBoxMsg) -> Result<(), SendError> {
        to.forward(msg.into_box_msg(), Some(self.me.clone()), 0, Wait::No)
    }

    /// Every actor that speaks `protocol`, in the directory's order.
    pub fn find_by_protocol(&self, protocol: ProtocolId) -> Vec<ActorSender> {
        self.system.find_by_protocol(protocol)
    }

    /// The actor called `name`, if there is one.
    pub fn find_by_name(&self, name: &str) -> Option<ActorSender> {
        self.system.find_by_name(name)
    }

    /// Sends [`Terminated`](crate::Terminated) to this actor when `target`
    /// ends (at once if it already has).
    pub fn watch(&self, target: &ActorSender) -> Result<(), SystemError> {
        target.watch(self.me)
    }

    /// The actor at `addr` (received in a message), in this process or in
    /// any linked one; a typed error when its node is not reachable. An
    /// address carries no protocols: sends to a remote one are checked by
    /// its node, which refuses what the actor does not accept with a NACK
    /// (a dead letter here).
    pub fn resolve(&self, addr: crate::ActorAddr) -> Result<ActorSender, SystemError> {
        self.system.resolve(addr)
    }

    /// What the actor runs in: its manager, or a fixed directory.
    pub fn system(&self) -> &'a dyn System {
        self.system
    }

    /// This actor does not handle `msg`: it becomes a dead letter (reason
    /// `Unhandled`) of the actor's manager, never silence.
    pub fn unhandled(&mut self, msg: BoxMsg) {
        self.system.unhandled(self.me, msg);
    }

    /// The default arm of [`dispatch!`](crate::dispatch!): as
    /// [`unhandled`](Self::unhandled); a message of the actor's own protocol
    /// set (which it says it takes) means an arm is missing, and is logged
    /// as the error it is, never a panic in the middle of traffic (an
    /// actor served through `service!` cannot miss one: it does not
    /// compile). Not an API.
    #[doc(hidden)]
    pub fn no_arm(&mut self, msg: BoxMsg) {
        let id = msg.msg_id();
        if id != crate::Terminated::msg_id() && self.me.route().accepts(id) {
            tracing::error!(
                actor = self.me.name(),
                msg = msg.name(),
                "no arm for a message of the actor's own protocol set: a dead letter (unhandled)"
            );
        }
        self.unhandled(msg);
    }

    /// A send or reply of this handler failed (`error` holds the message):
    /// it becomes a dead letter of the actor's manager, with why (the
    /// destination ended, its mailbox was full, there was no reply
    /// address...), never silence.
    pub fn undelivered(&mut self, error: SendError) {
        self.system.undelivered(self.me, error);
    }

    /// Replies as [`reply`](Self::reply) does; a reply that cannot go is
    /// reported as [`undelivered`](Self::undelivered) says.
    pub fn answer(&mut self, msg: impl IntoBoxMsg) {
        if let Err(e) = self.reply(msg) {
            self.undelivered(e);
        }
    }

    /// Answers `request` (the message being handled) with `reply`, of the
    /// type its declaration names: any other type does not compile. A reply
    /// that cannot go is reported as [`undelivered`](Self::undelivered) says.
    ///
    /// ```compile_fail
    /// # use actor::Context;
    /// # use echo_req::EchoReq;
    /// # use echo_start::EchoStart;
    /// fn handle(ctx: &mut Context<'_>, req: EchoReq) {
    ///     ctx.answer_to(&req, EchoStart::new(1)); // an EchoReq is answered with an EchoReply
    /// }
    /// ```
    pub fn answer_to<R: Request>(&mut self, _request: &R, reply: R::Reply)
    where
        R::Reply: IntoBoxMsg,
    {
        self.answer(reply);
    }

    /// Asks to stop this actor once the current handler returns.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn stop_requested(&self) -> bool {
        self.stop
    }
}
