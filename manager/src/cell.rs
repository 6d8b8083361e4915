//! `ActorCell`: a local actor as seen by its senders. It is the `Route`
//! behind every local `ActorSender`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use actor::{
    Actor, ActorSender, Envelope, Hold, Route, SendError, SystemError, Terminated, TerminationReason, Wait,
};
use msg_header::{ActorId, MsgId, MsgType, NodeId};
use protocol::ProtocolId;
use protocol_set::ProtocolSet;
use tracing::debug;

use crate::capacity::Capacity;
use crate::config::ActorOptions;
use crate::sync::{Lifecycle, Mailbox, lock};

/// What an executor is asked to do for its actors.
pub(crate) enum ActorCommand {
    /// Hand a message to the actor in `slot`, if it is still generation
    /// `generation`; `hold` (a message from a link) is kept until then.
    Deliver { slot: u32, generation: u32, counted: bool, env: Envelope, hold: Option<Hold> },
    /// Start hosting an actor.
    Spawn { actor: Box<dyn Actor>, cell: Arc<ActorCell> },
    /// Stop the actor in `slot`.
    Stop { slot: u32, generation: u32, reason: TerminationReason },
}

/// The token by which the manager with this lifecycle knows its own
/// actors ([`Route::host`]).
pub(crate) fn host_token(lifecycle: &Arc<Lifecycle>) -> usize {
    Arc::as_ptr(lifecycle) as usize
}

/// Where a local actor lives and what its senders must know.
pub(crate) struct ActorCell {
    pub(crate) id: ActorId,
    pub(crate) name: String,
    pub(crate) set: &'static ProtocolSet,
    pub(crate) executor: Arc<dyn Mailbox<ActorCommand>>,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
    node: NodeId,
    lifecycle: Arc<Lifecycle>,
    alive: AtomicBool,
    reason: OnceLock<TerminationReason>,
    /// `None` once the actor has ended.
    watchers: Mutex<Option<Vec<ActorSender>>>,
    bound: Option<Capacity>,
    /// Messages from links are acknowledged once handled.
    receipts: bool,
}

impl ActorCell {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: ActorId,
        name: String,
        set: &'static ProtocolSet,
        executor: Arc<dyn Mailbox<ActorCommand>>,
        (slot, generation): (u32, u32),
        node: NodeId,
        lifecycle: Arc<Lifecycle>,
        options: ActorOptions,
    ) -> Self {
        Self {
            id,
            name,
            set,
            executor,
            slot,
            generation,
            node,
            lifecycle,
            alive: AtomicBool::new(true),
            reason: OnceLock::new(),
            watchers: Mutex::new(Some(Vec::new())),
            bound: options.capacity.map(Capacity::new),
            receipts: options.receipts,
        }
    }

    /// Whether the actor takes messages (it has not ended).
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Whether its mailbox has a capacity (the messages it takes are counted).
    pub(crate) fn is_bounded(&self) -> bool {
        self.bound.is_some()
    }

    /// A message for this actor was taken out of the executor's mailbox.
    pub(crate) fn release(&self) {
        if let Some(b) = &self.bound {
            b.release(1);
        }
    }

    /// The actor ended: refuse further sends, wake blocked senders, tell
    /// the watchers.
    pub(crate) fn close(&self, reason: TerminationReason) {
        self.alive.store(false, Ordering::Release);
        let _ = self.reason.set(reason);
        if let Some(b) = &self.bound {
            b.wake_all();
        }
        let watchers = lock(&self.watchers).take().unwrap_or_default();
        for w in watchers {
            self.notify(&w, reason);
        }
    }

    fn notify(&self, watcher: &ActorSender, reason: TerminationReason) {
        if let Err(e) = watcher.try_send(Terminated::new(self.id, self.name.clone(), reason)) {
            debug!(actor = %self.name, watcher = ?watcher, error = %e, "Terminated not delivered");
        }
    }
}

impl ActorCell {
    /// Queues `env` for the executor, `hold` kept until it is handled.
    fn enqueue(&self, env: Envelope, wait: Wait, hold: Option<Hold>) -> Result<(), SendError> {
        // During shutdown, only handlers (which are draining) may still send.
        if !self.alive.load(Ordering::Acquire)
            || !(self.lifecycle.is_running() || actor::on_executor_thread())
        {
            return Err(SendError::Disconnected(env.msg));
        }
        // `Terminated` is a system message: it never counts against the capacity.
        let counted = match &self.bound {
            Some(b) if env.msg.msg_id() != Terminated::msg_id() => {
                if let Err(refusal) = b.take(wait, &self.alive) {
                    return Err(refusal.into_error(env.msg));
                }
                true
            }
            _ => false,
        };
        self.executor.push(ActorCommand::Deliver {
            slot: self.slot,
            generation: self.generation,
            counted,
            env,
            hold,
        });
        Ok(())
    }
}

impl Route for ActorCell {
    fn actor_id(&self) -> ActorId {
        self.id
    }

    fn actor_name(&self) -> &str {
        &self.name
    }

    fn accepts(&self, msg_id: MsgId) -> bool {
        self.set.accepts(msg_id)
    }

    fn speaks(&self, protocol: ProtocolId) -> bool {
        self.set.speaks(protocol)
    }

    fn node_id(&self) -> NodeId {
        self.node
    }

    fn deliver(&self, env: Envelope, wait: Wait) -> Result<(), SendError> {
        self.enqueue(env, wait, None)
    }

    fn deliver_held(&self, env: Envelope, wait: Wait, hold: Hold) -> Result<(), SendError> {
        self.enqueue(env, wait, Some(hold))
    }

    /// A message for an actor of the calling executor (a link's own) is
    /// handled before that link reads again: it needs no hold.
    fn acks_when_handled(&self) -> bool {
        self.receipts
    }

    fn refuse_sends(&self) {
        self.alive.store(false, Ordering::Release);
    }

    fn keeps_hold(&self) -> bool {
        !self.executor.is_current()
    }

    fn watch(&self, watcher: ActorSender) -> Result<(), SystemError> {
        let mut watchers = lock(&self.watchers);
        match watchers.as_mut() {
            Some(list) => list.push(watcher),
            None => {
                drop(watchers);
                let reason = self.reason.get().copied().unwrap_or(TerminationReason::Stopped);
                self.notify(&watcher, reason);
            }
        }
        Ok(())
    }

    fn unwatch(&self, watcher: ActorId) {
        if let Some(list) = lock(&self.watchers).as_mut() {
            list.retain(|w| w.id() != watcher);
        }
    }

    fn when_room(&self, note: Envelope, to: ActorSender) -> Result<(), SendError> {
        match &self.bound {
            Some(b) => b.when_room(to, note.msg),
            None => to.forward(note.msg, None, 0, Wait::No),
        }
    }

    /// The manager's lifecycle, by address: one per manager.
    fn host(&self) -> usize {
        host_token(&self.lifecycle)
    }

    fn stop(&self) -> Result<(), SystemError> {
        if !self.alive.load(Ordering::Acquire) {
            return Ok(());
        }
        self.executor.push(ActorCommand::Stop {
            slot: self.slot,
            generation: self.generation,
            reason: TerminationReason::Stopped,
        });
        Ok(())
    }
}
