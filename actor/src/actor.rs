//! The `Actor` trait and the one way a message reaches it.

use msg_header::BoxMsg;
use protocol_set::ProtocolSet;

use crate::sender::ExecutorThreadGuard;
use crate::{ActorSender, Context, Envelope, System};

/// A state machine that handles one message at a time.
///
/// `handle` runs on an executor thread shared with other actors: it must
/// not block. Sends from inside it never wait for room (a full mailbox is
/// `Err(Full)` at once) and `ask` is refused.
///
/// An actor holds only its own state: its manager gives it its name (at
/// `add`) and its id, and [`Context::me`] tells it its own address.
pub trait Actor: Send + 'static {
    /// The protocols the actor speaks; messages of any other protocol are
    /// refused at send time.
    fn protocol_set(&self) -> &'static ProtocolSet;

    /// Handles one message.
    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg);

    /// Called once before the first message.
    fn started(&mut self, _ctx: &mut Context<'_>) {}

    /// Called once after the last message.
    fn stopped(&mut self, _ctx: &mut Context<'_>) {}
}

/// Hands one envelope to `actor`, as an executor does: on a thread marked
/// as an executor thread, with a [`Context`] for the envelope's sender.
///
/// Returns `true` if the handler asked to stop ([`Context::stop`]).
pub fn dispatch(actor: &mut dyn Actor, me: &ActorSender, system: &dyn System, env: Envelope) -> bool {
    let _guard = ExecutorThreadGuard::enter();
    let mut ctx = Context::for_message(me, system, env.reply_to, env.msg.header().corr_id());
    actor.handle(&mut ctx, env.msg);
    let stop = ctx.stop_requested();
    if stop {
        // Before the reply address goes (an `ask` learns then that no
        // answer comes): whoever learns it and sends again is refused.
        me.route().refuse_sends();
    }
    stop
}
