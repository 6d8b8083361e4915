//! Executors: threads that host many actors each.
//!
//! An executor waits at one point, a `mio` poll, woken by its mailbox's
//! waker (written only while it sleeps). When woken it drains its mailbox,
//! calling handlers inline. Before it sleeps it polls the mailbox for a
//! few microseconds, yielding the CPU on each turn, so a reply that comes
//! back quickly does not cost a wake-up.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use actor::{Actor, ActorSender, Context, Envelope, TerminationReason};
use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Poll, Token, Waker};
use tracing::{debug, error, warn};

use crate::cell::ActorCell;
use crate::dead_letter::DeadLetterReason;
use crate::manager::Shared;

const WAKER: Token = Token(0);

/// Busy checks of the mailbox between two yields while an executor polls.
/// Measured on a 2-vCPU VM (`cargo bench -p bench --bench cross_thread`):
/// yielding on every check made the cross-thread echo 1.22-1.25x a bare
/// crossbeam ping-pong, 128 checks per yield 1.10-1.13x.
const SPINS_PER_YIELD: u32 = 128;

/// What an executor is asked to do.
pub(crate) enum Command {
    /// Hand a message to the actor in `slot`, if it is still generation `generation`.
    Deliver { slot: u32, generation: u32, counted: bool, env: Envelope },
    /// Start hosting an actor.
    Spawn { actor: Box<dyn Actor>, cell: Arc<ActorCell> },
    /// Stop the actor in `slot`.
    Stop { slot: u32, generation: u32, reason: TerminationReason },
    /// Handle what is queued (unless the manager is aborting), stop every
    /// actor, exit.
    Shutdown,
}

/// Slot numbers of an executor, reused with a new generation.
#[derive(Default)]
struct SlotAlloc {
    free: Vec<u32>,
    gens: Vec<u32>,
}

impl SlotAlloc {
    fn alloc(&mut self) -> (u32, u32) {
        match self.free.pop() {
            Some(slot) => (slot, self.gens[slot as usize]),
            None => {
                self.gens.push(0);
                ((self.gens.len() - 1) as u32, 0)
            }
        }
    }

    fn free(&mut self, slot: u32) {
        let generation = &mut self.gens[slot as usize];
        *generation = generation.wrapping_add(1);
        self.free.push(slot);
    }
}

/// The shared half of an executor: its mailbox and how to wake it.
pub(crate) struct ExecutorHandle {
    pub(crate) index: usize,
    tx: Sender<Command>,
    /// Kept here so the mailbox never disconnects: what is left in it when
    /// the thread has exited is drained into dead letters by the manager.
    rx: Receiver<Command>,
    waker: Waker,
    sleeping: AtomicBool,
    slots: Mutex<SlotAlloc>,
    thread: OnceLock<ThreadId>,
}

impl ExecutorHandle {
    /// Queues a command and wakes the executor if it sleeps.
    pub(crate) fn push(&self, cmd: Command) {
        if self.tx.send(cmd).is_err() {
            // `self.rx` keeps the channel open for as long as `self` lives.
            error!(executor = self.index, "executor mailbox closed; command lost");
        }
        // Pairs with the fence in `Executor::sleep`: either we see it
        // sleeping, or it sees our command.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::Relaxed) {
            if let Err(e) = self.waker.wake() {
                error!(executor = self.index, error = %e, "cannot wake executor");
            }
        }
    }

    pub(crate) fn alloc_slot(&self) -> (u32, u32) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).alloc()
    }

    fn free_slot(&self, slot: u32) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).free(slot);
    }

    /// Whether the calling thread is this executor's.
    pub(crate) fn is_current(&self) -> bool {
        self.thread.get() == Some(&thread::current().id())
    }

    /// Commands left behind after the thread exited.
    pub(crate) fn drain(&self) -> impl Iterator<Item = Command> + '_ {
        self.rx.try_iter()
    }
}

/// An actor hosted by an executor.
struct Slot {
    actor: Box<dyn Actor>,
    cell: Arc<ActorCell>,
    me: ActorSender,
}

/// The thread half of an executor.
pub(crate) struct Executor {
    handle: Arc<ExecutorHandle>,
    shared: Arc<Shared>,
    poll: Poll,
    slots: Vec<Option<Slot>>,
    spin: Duration,
    /// Busy checks of the mailbox between yields: none when this thread
    /// may run on one CPU only, where spinning would only delay the sender.
    spins_per_turn: u32,
}

impl Executor {
    /// Creates an executor; run it with [`run`](Self::run) on its own thread.
    pub(crate) fn new(
        index: usize,
        spin: Duration,
        shared: Arc<Shared>,
    ) -> std::io::Result<(Self, Arc<ExecutorHandle>)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = Arc::new(ExecutorHandle {
            index,
            tx,
            rx,
            waker,
            sleeping: AtomicBool::new(false),
            slots: Mutex::default(),
            thread: OnceLock::new(),
        });
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        let spins_per_turn = if cpus > 1 { SPINS_PER_YIELD } else { 0 };
        Ok((Self { handle: handle.clone(), shared, poll, slots: Vec::new(), spin, spins_per_turn }, handle))
    }

    pub(crate) fn run(mut self) {
        actor::mark_executor_thread();
        let _ = self.handle.thread.set(thread::current().id());
        let mut events = Events::with_capacity(64);
        loop {
            while let Ok(cmd) = self.handle.rx.try_recv() {
                if let Command::Shutdown = cmd {
                    return self.shutdown();
                }
                self.execute(cmd);
            }
            if !self.spin_for_work() {
                self.sleep(&mut events);
            }
        }
    }

    /// Polls the mailbox until `spin` has passed, yielding the CPU on each
    /// turn; whether work came.
    fn spin_for_work(&self) -> bool {
        if self.spin.is_zero() {
            return false;
        }
        let deadline = Instant::now() + self.spin;
        loop {
            for _ in 0..self.spins_per_turn {
                if !self.handle.rx.is_empty() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if !self.handle.rx.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::yield_now();
        }
    }

    fn sleep(&mut self, events: &mut Events) {
        self.handle.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.handle.rx.is_empty() {
            if let Err(e) = self.poll.poll(events, None) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    error!(executor = self.handle.index, error = %e, "poll failed");
                }
            }
        }
        self.handle.sleeping.store(false, Ordering::Relaxed);
    }

    fn execute(&mut self, cmd: Command) {
        match cmd {
            Command::Deliver { slot, generation, counted, env } => {
                self.deliver(slot, generation, counted, env)
            }
            Command::Spawn { actor, cell } => self.spawn(actor, cell),
            Command::Stop { slot, generation, reason } => {
                if self.is_live(slot, generation) {
                    self.stop_slot(slot, reason);
                }
            }
            Command::Shutdown => {}
        }
    }

    fn is_live(&self, slot: u32, generation: u32) -> bool {
        matches!(self.slots.get(slot as usize), Some(Some(s)) if s.cell.generation == generation)
    }

    fn deliver(&mut self, slot: u32, generation: u32, counted: bool, env: Envelope) {
        if self.shared.lifecycle.is_aborting() {
            return self.shared.dead_letter(env, DeadLetterReason::Shutdown);
        }
        if !self.is_live(slot, generation) {
            return self.shared.dead_letter(env, DeadLetterReason::ActorStopped);
        }
        let Some(Some(s)) = self.slots.get_mut(slot as usize) else { return };
        if counted {
            s.cell.release();
        }
        let shared = &*self.shared;
        let outcome = catch_unwind(AssertUnwindSafe(|| actor::dispatch(&mut *s.actor, &s.me, shared, env)));
        self.after_handler(slot, outcome);
    }

    /// Stops the actor in `slot` if its handler asked to or panicked.
    fn after_handler(&mut self, slot: u32, outcome: std::thread::Result<bool>) {
        match outcome {
            Ok(false) => {}
            Ok(true) => self.stop_slot(slot, TerminationReason::Stopped),
            Err(panic) => {
                error!(
                    executor = self.handle.index,
                    slot,
                    panic = panic_message(&*panic),
                    "actor panicked; stopped"
                );
                self.stop_slot(slot, TerminationReason::Panicked);
            }
        }
    }

    fn spawn(&mut self, mut actor: Box<dyn Actor>, cell: Arc<ActorCell>) {
        let slot = cell.slot as usize;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        let me = ActorSender::from_route(cell.clone());
        debug!(executor = self.handle.index, actor = %cell.name, "actor started");
        let shared = &*self.shared;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut ctx = Context::new(&me, shared);
            actor.started(&mut ctx);
            ctx.stop_requested()
        }));
        self.slots[slot] = Some(Slot { actor, cell, me });
        self.after_handler(slot as u32, outcome);
    }

    /// Ends the actor in `slot`: refuses further sends, runs its stopped
    /// hook (not after a panic: its state may be broken), removes it from
    /// the directory, tells its watchers, frees the slot.
    fn stop_slot(&mut self, slot: u32, reason: TerminationReason) {
        let Some(Some(mut s)) = self.slots.get_mut(slot as usize).map(Option::take) else { return };
        s.cell.close(reason);
        if reason != TerminationReason::Panicked {
            let shared = &*self.shared;
            let hook = catch_unwind(AssertUnwindSafe(|| s.actor.stopped(&mut Context::new(&s.me, shared))));
            if let Err(panic) = hook {
                warn!(actor = %s.cell.name, panic = panic_message(&*panic), "stopped hook panicked");
            }
        }
        self.shared.remove_from_directory(s.cell.id);
        self.handle.free_slot(slot);
        debug!(executor = self.handle.index, actor = %s.cell.name, ?reason, "actor stopped");
    }

    /// Handles (or, when aborting, reports) what is queued, then stops
    /// every actor.
    fn shutdown(mut self) {
        while let Ok(cmd) = self.handle.rx.try_recv() {
            self.execute(cmd);
        }
        for slot in 0..self.slots.len() {
            self.stop_slot(slot as u32, TerminationReason::Shutdown);
        }
        debug!(executor = self.handle.index, "executor exits");
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}
