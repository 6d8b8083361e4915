//! Executors: threads that host many actors each.
//!
//! An executor waits at one point, a `mio` poll, woken by its mailbox's
//! waker (written only while it sleeps). When woken it drains its mailbox,
//! calling handlers inline. Before it sleeps it polls the mailbox (and
//! its links) for a few microseconds, yielding the CPU as it goes, so a
//! reply that comes back quickly does not cost a wake-up.
//!
//! What an executor's own thread queues for itself (a handler's send to a
//! neighbour, a frame read for one of its actors) goes into a queue of the
//! thread instead of the mailbox: no atomic operations, no allocation per
//! few messages, no wake-up. The executor runs that queue before the
//! mailbox, so each sender's messages keep their order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use actor::{Actor, ActorSender, Context, Envelope, Hold, System, TerminationReason};
use crossbeam_channel::{Receiver, Sender};
use mio::{Events, Poll, Token, Waker};
use msg_header::{ActorId, UnhandledReason};
use tracing::{debug, error, warn};

use crate::cell::{ActorCell, ActorCommand};
use crate::dead_letter::DeadLetterReason;
use crate::link::{LinkCommand, ToHandle};
use crate::net::{Host, Net, NetCommand};
use crate::peer::PeerCommand;
use crate::sync::{ExecutorId, Lifecycle, Mailbox};

/// The manager, as its executors see it: what links need of it, the
/// directory as actors see it, and the end of an actor.
pub(crate) trait Node: Host + System {
    fn lifecycle(&self) -> &Lifecycle;

    /// A local actor has ended: it leaves the directory, here and on the
    /// linked nodes.
    fn remove_local(&self, id: ActorId);
}

const WAKER: Token = Token(0);

/// Busy checks of the mailbox between two yields while an executor polls.
/// Measured on a 2-vCPU VM (`cargo bench -p bench --bench cross_thread`):
/// yielding on every check made the cross-thread echo 1.22-1.25x a bare
/// crossbeam ping-pong, 128 checks per yield 1.10-1.13x.
const SPINS_PER_YIELD: u32 = 128;

/// Busy checks of the mailbox between two socket polls while polling.
/// Few: each check waits a `pause` (about 40 ns on these Xeons), and a
/// frame is noticed only at the next read of the links.
const SPINS_WITH_SOCKETS: u32 = 2;

/// While spinning with few links, poll for readiness every this many turns.
const POLL_EVERY: u32 = 32;

/// While spinning with links on more than one CPU, yield every this many
/// turns (see `spin_for_work`). With 16 checks a turn, a poll every 8
/// turns and a yield every 4, a turn took about a microsecond and the
/// round trips of `ipchnl bench` were 1.23-1.28x bare polling sockets
/// (unix, low-latency); with these three, 1.06-1.16x (Intel Xeon, 2 vCPUs,
/// four runs each; a change of either alone did not do it).
const TURNS_PER_YIELD: u32 = 32;

/// As [`POLL_EVERY`] and [`TURNS_PER_YIELD`] for an executor with polled
/// links (shared memory): reading them takes no system call.
const POLLED_POLL_EVERY: u32 = 64;
const POLLED_TURNS_PER_YIELD: u32 = 64;

/// A yield that comes back later than this gave the CPU to another task
/// that had work to do: the CPU is shared, at any priority (a yield lets
/// even a `SCHED_IDLE` task run, for up to a scheduler slice, where a
/// wake-up from sleep would preempt it at once). A yield to an idle
/// sibling executor comes back within a few microseconds.
const YIELD_STOLEN: Duration = Duration::from_millis(1);

/// After a yield was stolen, the executor sleeps at once when idle, without
/// polling, for this long: the CPU is busy anyway (no idle wake-up to
/// save), and a wake-up from sleep takes the CPU back at once where a
/// yield would wait a slice. Short, so that a one-off steal (a sibling's
/// long turn) costs little; against a task that keeps the CPU busy, one
/// slice lost per period is far below a percent of round trips.
const NO_SPIN_AFTER_STEAL: Duration = Duration::from_millis(20);

/// The nice value of the handshake executor's thread (see
/// `ManagerConfig::handshake_executor`).
const HANDSHAKE_NICE: i32 = 19;

/// Commands handled before the sockets are looked at again.
const BATCH: usize = 256;

/// While commands keep coming, the sockets are looked at at least this
/// often, however small the batches.
const IO_EVERY: Duration = Duration::from_micros(100);

/// How long closing links may take to flush at shutdown.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

thread_local! {
    /// The commands an executor's thread gave itself, oldest first.
    static OWN: RefCell<VecDeque<Command>> = const { RefCell::new(VecDeque::new()) };
}

fn own_push(cmd: Command) {
    OWN.with(|q| q.borrow_mut().push_back(cmd));
}

fn own_pop() -> Option<Command> {
    OWN.with(|q| q.borrow_mut().pop_front())
}

fn own_is_empty() -> bool {
    OWN.with(|q| q.borrow().is_empty())
}

/// How many commands this thread has given itself and not yet run.
pub(crate) fn own_len() -> usize {
    OWN.with(|q| q.borrow().len())
}

/// What an executor is asked to do: for an actor, for a peer's link, for
/// its sockets, or for the manager.
pub(crate) enum Command {
    Actor(ActorCommand),
    Peer(PeerCommand),
    Net(NetCommand),
    /// Handle what is queued (unless the manager is aborting), stop every
    /// actor, say so on `done`; keep serving links.
    StopActors {
        done: Sender<()>,
    },
    /// Close every link in order and exit.
    Exit,
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
    id: ExecutorId,
    tx: Sender<Command>,
    /// Kept here so the mailbox never disconnects: what is left in it when
    /// the thread has exited is drained into dead letters by the manager.
    rx: Receiver<Command>,
    waker: Waker,
    sleeping: AtomicBool,
    slots: Mutex<SlotAlloc>,
}

impl ExecutorHandle {
    /// Queues a command and wakes the executor if it sleeps. On the
    /// executor's own thread, queues it in the thread's own queue.
    pub(crate) fn push(&self, cmd: Command) {
        if self.id.is_current() {
            return own_push(cmd);
        }
        if self.tx.send(cmd).is_err() {
            // `self.rx` keeps the channel open for as long as `self` lives.
            error!(executor = self.index, "executor mailbox closed; command lost");
        }
        // Pairs with the fence in `Executor::sleep`: either we see it
        // sleeping, or it sees our command.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed)
            && self.sleeping.swap(false, Ordering::Relaxed)
            && let Err(e) = self.waker.wake()
        {
            error!(executor = self.index, error = %e, "cannot wake executor");
        }
    }

    pub(crate) fn alloc_slot(&self) -> (u32, u32) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).alloc()
    }

    fn free_slot(&self, slot: u32) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).free(slot);
    }

    /// Whether `slot` of `generation` was given out and not freed since
    /// (freeing a slot moves it to the next generation).
    fn is_allocated(&self, slot: u32, generation: u32) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.gens.get(slot as usize) == Some(&generation)
    }

    /// Whether the calling thread is this executor's.
    pub(crate) fn is_current(&self) -> bool {
        self.id.is_current()
    }

    /// Commands left behind after the thread exited.
    pub(crate) fn drain(&self) -> impl Iterator<Item = Command> + '_ {
        self.rx.try_iter()
    }
}

impl Mailbox<ActorCommand> for ExecutorHandle {
    fn push(&self, cmd: ActorCommand) {
        ExecutorHandle::push(self, Command::Actor(cmd));
    }

    fn is_current(&self) -> bool {
        self.id.is_current()
    }

    fn backlog(&self) -> usize {
        if self.id.is_current() { own_len() } else { 0 }
    }
}

impl Mailbox<PeerCommand> for ExecutorHandle {
    fn push(&self, cmd: PeerCommand) {
        ExecutorHandle::push(self, Command::Peer(cmd));
    }

    fn is_current(&self) -> bool {
        self.id.is_current()
    }

    fn backlog(&self) -> usize {
        if self.id.is_current() { own_len() } else { 0 }
    }
}

impl Mailbox<LinkCommand> for ExecutorHandle {
    fn push(&self, cmd: LinkCommand) {
        ExecutorHandle::push(self, Command::Net(NetCommand::Link(cmd)));
    }

    fn is_current(&self) -> bool {
        self.id.is_current()
    }

    fn backlog(&self) -> usize {
        if self.id.is_current() { own_len() } else { 0 }
    }
}

/// An actor hosted by an executor.
struct Slot {
    actor: Box<dyn Actor>,
    cell: Arc<ActorCell>,
    me: ActorSender,
}

/// The thread half of an executor.
pub(crate) struct Executor<N: Node> {
    handle: Arc<ExecutorHandle>,
    shared: Arc<N>,
    poll: Poll,
    events: Events,
    net: Net,
    slots: Vec<Option<Slot>>,
    spin: Duration,
    /// Busy checks of the mailbox between yields: none when this thread
    /// may run on one CPU only, where spinning would only delay the sender.
    spins_per_turn: u32,
    /// When the sockets were last polled.
    last_io: Instant,
    /// Until then, no polling before sleeping (a yield was stolen).
    no_spin_until: Option<Instant>,
}

impl<N: Node> Executor<N> {
    /// Creates an executor; run it with [`run`](Self::run) on its own thread.
    pub(crate) fn new(
        index: usize,
        spin: Duration,
        shared: Arc<N>,
    ) -> std::io::Result<(Self, Arc<ExecutorHandle>)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = Arc::new(ExecutorHandle {
            index,
            id: ExecutorId::next(),
            tx,
            rx,
            waker,
            sleeping: AtomicBool::new(false),
            slots: Mutex::default(),
        });
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        let spins_per_turn = if cpus > 1 { SPINS_PER_YIELD } else { 0 };
        let executor = Self {
            handle: handle.clone(),
            shared,
            poll,
            events: Events::with_capacity(256),
            net: Net::new(index, handle.clone()),
            slots: Vec::new(),
            spin,
            spins_per_turn,
            last_io: Instant::now(),
            no_spin_until: None,
        };
        Ok((executor, handle))
    }

    pub(crate) fn run(mut self) {
        actor::mark_executor_thread();
        self.handle.id.enter();
        if self.shared.config().tuning.handshake_executor == Some(self.handle.index) {
            // Handshakes wait for the links: on a CPU both want, a wake-up of
            // a link executor takes it from this one at once (Linux: the nice
            // value of this thread only).
            if let Err(e) = rustix::process::setpriority_process(None, HANDSHAKE_NICE) {
                debug!(executor = self.handle.index, error = %e, "handshake executor priority unchanged");
            }
        }
        let mut next_timer: Option<Instant> = None;
        loop {
            // Commands first, a batch at a time so sockets are not starved.
            let mut handled = 0;
            while handled < BATCH {
                match self.next_command() {
                    Some(Command::Exit) => return self.exit(),
                    Some(cmd) => {
                        self.execute(cmd);
                        self.net.drain_outbox(&*self.shared);
                    }
                    None => break,
                }
                handled += 1;
            }
            if self.net.has_ready() && own_is_empty() {
                // Links whose read budget ran out last turn, or that resumed:
                // read once what was read before is handled, so that reading
                // never outruns the handlers on this thread.
                self.net.read_ready(&*self.shared, self.poll.registry());
                self.run_burst();
                self.net.drain_outbox(&*self.shared);
            }
            if self.net.has_io() {
                // After a full batch, or once commands have kept coming for
                // a while, look at the sockets before the next; otherwise the
                // spin below looks at them first anyway. (A steady trickle of
                // commands in small batches once starved them for seconds:
                // handshakes timed out while timers still ran.) Links read
                // again without an event (their budget ran out) loop here
                // without the spin: the other sockets get their turn too.
                // Each turn that reads links without an event polls too,
                // so a busy link delays the others by one turn at most.
                let reading = self.net.has_ready();
                if handled == BATCH || reading || (handled > 0 && self.last_io.elapsed() >= IO_EVERY) {
                    self.poll_io(Some(Duration::ZERO));
                    self.run_burst();
                }
                self.net.flush(&*self.shared, self.poll.registry());
                let now = Instant::now();
                if next_timer.is_none_or(|t| t <= now) || self.net.timers_changed() {
                    next_timer = self.net.timers(&*self.shared, self.poll.registry(), now);
                }
            } else {
                next_timer = None;
            }
            if self.has_commands() || self.net.has_ready() {
                continue;
            }
            if !self.spin_for_work() {
                // Idle from here: what the links counted and hold is up to date.
                self.net.before_sleep(&*self.shared);
                if self.net.timers_changed() {
                    next_timer = self.net.timers(&*self.shared, self.poll.registry(), Instant::now());
                }
                self.sleep(next_timer);
            }
        }
    }

    /// The next command: the thread's own first, then the mailbox's.
    fn next_command(&self) -> Option<Command> {
        own_pop().or_else(|| self.handle.rx.try_recv().ok())
    }

    fn has_commands(&self) -> bool {
        !own_is_empty() || !self.handle.rx.is_empty()
    }

    /// Handles what the sockets have ready, waiting up to `timeout`;
    /// whether anything was. What links read for this executor's actors
    /// waits in the burst: the caller runs it (`run_burst`) next.
    fn poll_io(&mut self, timeout: Option<Duration>) -> bool {
        let polled = self.poll.poll(&mut self.events, timeout);
        self.last_io = Instant::now();
        if let Err(e) = polled {
            if e.kind() != std::io::ErrorKind::Interrupted {
                error!(executor = self.handle.index, error = %e, "poll failed");
            }
            return false;
        }
        let mut any = false;
        for event in self.events.iter() {
            if event.token() != WAKER {
                any = true;
                self.net.on_event(&*self.shared, self.poll.registry(), event);
            }
        }
        // Polled links (shared memory) have no events: they are looked at too.
        any |= self.net.poll_links(&*self.shared, self.poll.registry());
        // A link that went down told its watchers, perhaps over another link.
        self.net.drain_outbox(&*self.shared);
        any
    }

    /// Polls the mailbox (and sockets) until `spin` has passed, yielding
    /// the CPU on each turn; whether work came. With sockets to serve, each
    /// turn checks them too, and checks the mailbox fewer times, so that a
    /// frame is noticed within about a microsecond.
    fn spin_for_work(&mut self) -> bool {
        if self.spin.is_zero() {
            return false;
        }
        let now = Instant::now();
        if self.no_spin_until.is_some_and(|t| now < t) {
            return false;
        }
        let deadline = now + self.spin;
        let mut turn = 0u32;
        // When the last yield began (the clock read before it), to time it
        // with the read after it that the deadline needs anyway.
        let mut yielded_at: Option<Instant> = None;
        // Polled links (shared memory) are read without a system call: the
        // turns are short, and polls and yields come fewer turns apart.
        let (poll_every, turns_per_yield) = if self.net.has_polled() {
            (POLLED_POLL_EVERY, POLLED_TURNS_PER_YIELD)
        } else {
            (POLL_EVERY, TURNS_PER_YIELD)
        };
        loop {
            let io = self.net.has_io();
            if io {
                // Few links: read them, and poll (listeners, writability)
                // only now and then. Many: poll.
                turn = turn.wrapping_add(1);
                let read = if turn.is_multiple_of(poll_every) {
                    None
                } else {
                    self.net.read_links(&*self.shared, self.poll.registry())
                };
                let found = match read {
                    Some(found) => found | self.net.poll_links(&*self.shared, self.poll.registry()),
                    None => self.poll_io(Some(Duration::ZERO)),
                };
                self.run_burst();
                if found || !own_is_empty() {
                    self.net.drain_outbox(&*self.shared);
                    return true;
                }
            }
            let checks = if io { self.spins_per_turn.min(SPINS_WITH_SOCKETS) } else { self.spins_per_turn };
            for _ in 0..checks {
                if !self.handle.rx.is_empty() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if !self.handle.rx.is_empty() {
                return true;
            }
            let now = Instant::now();
            if yielded_at.take().is_some_and(|t| now - t >= YIELD_STOLEN) {
                // Sleep instead of polling for a while (a flood at idle
                // priority on this CPU once took other links' round trips
                // to 3.4 ms at p99 through the slices these yields gave it).
                self.no_spin_until = Some(now + NO_SPIN_AFTER_STEAL);
                return false;
            }
            if now >= deadline {
                return false;
            }
            // With sockets, on more than one CPU, a yield every few turns:
            // on these VMs a yield costs more than a read of the links (see
            // `TURNS_PER_YIELD`). On one CPU every turn yields, as without
            // sockets.
            let yield_now = !io || self.spins_per_turn == 0 || turn.is_multiple_of(turns_per_yield);
            if yield_now {
                yielded_at = Some(now);
                thread::yield_now();
            }
        }
    }

    /// Sleeps until a command, a socket or the next timer (`until`).
    fn sleep(&mut self, until: Option<Instant>) {
        self.handle.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !self.has_commands() {
            // Polled links (shared memory) are told too; one may have work after
            // all: then the sockets and links are looked at, not slept on.
            let timeout = if self.net.prepare_sleep(&*self.shared) {
                Some(Duration::ZERO)
            } else {
                until.map(|t| t.saturating_duration_since(Instant::now()))
            };
            self.poll_io(timeout);
        }
        self.handle.sleeping.store(false, Ordering::Relaxed);
        // Awake: what the handlers send on the way needs no wake-up.
        self.run_burst();
    }

    fn execute(&mut self, cmd: Command) {
        match cmd {
            Command::Actor(cmd) => self.execute_actor(cmd),
            Command::Peer(PeerCommand::Send { peer, msg, owed, .. })
                if self.shared.lifecycle().is_aborting() =>
            {
                peer.give_back(owed);
                let dst = msg.header().dst_id();
                self.shared.dead_letters().report_msg(msg, dst, DeadLetterReason::Shutdown);
            }
            Command::Peer(PeerCommand::SendLarge { peer, msg, .. })
                if self.shared.lifecycle().is_aborting() =>
            {
                peer.give_back_large();
                let dst = msg.header().dst_id();
                self.shared.dead_letters().report_msg(msg, dst, DeadLetterReason::Shutdown);
            }
            Command::Peer(cmd) => self.net.execute_peer(&*self.shared, cmd),
            Command::Net(cmd) => self.net.execute(&*self.shared, self.poll.registry(), cmd),
            Command::StopActors { done } => {
                self.stop_actors();
                let _ = done.send(());
            }
            Command::Exit => {}
        }
    }

    fn execute_actor(&mut self, cmd: ActorCommand) {
        match cmd {
            ActorCommand::Deliver { slot, generation, counted, env, hold } => {
                self.deliver(slot, generation, counted, env, hold);
            }
            ActorCommand::Spawn { actor, cell } => self.spawn(actor, cell),
            ActorCommand::Stop { slot, generation, reason } => {
                self.spawn_pending(slot, generation);
                if self.is_live(slot, generation) {
                    self.stop_slot(slot, reason);
                }
            }
        }
    }

    fn is_live(&self, slot: u32, generation: u32) -> bool {
        matches!(self.slots.get(slot as usize), Some(Some(s)) if s.cell.generation == generation)
    }

    /// Runs the mailbox up to the `Spawn` of `slot` if that is still in
    /// it: a command from the thread's own queue can overtake the `Spawn`
    /// of an actor that another thread added (and the handler then found).
    fn spawn_pending(&mut self, slot: u32, generation: u32) {
        if self.is_live(slot, generation) || !self.handle.is_allocated(slot, generation) {
            return;
        }
        while let Ok(cmd) = self.handle.rx.try_recv() {
            let spawns =
                matches!(&cmd, Command::Actor(ActorCommand::Spawn { cell, .. }) if cell.slot == slot);
            match cmd {
                // Cannot come while the manager still adds actors; keep it
                // for the run loop all the same.
                Command::Exit => return own_push(Command::Exit),
                cmd => self.execute(cmd),
            }
            if spawns {
                return;
            }
        }
    }

    /// Hands what the links just read for this executor's actors to their
    /// handlers, in the order read, before anything in the thread's own
    /// queue (see `link::Burst`). A handler's sends go to the links after
    /// each, as after a command.
    fn run_burst(&mut self) {
        // Delivering may run a command first (an actor's pending `Spawn`),
        // which may read a link: what that adds is a burst of its own,
        // after this one.
        while let Some(mut burst) = self.net.take_burst() {
            for ToHandle { slot, generation, env, hold } in burst.drain(..) {
                self.deliver(slot, generation, false, env, Some(hold));
                self.net.drain_outbox(&*self.shared);
            }
            self.net.give_back_burst(burst);
        }
    }

    /// Hands `env` to the actor in `slot`; `hold` (a message read from a
    /// link) is given back once it is handled, or returns the message to
    /// its sender if it cannot be.
    fn deliver(&mut self, slot: u32, generation: u32, counted: bool, env: Envelope, hold: Option<Hold>) {
        self.spawn_pending(slot, generation);
        let unhandled = if self.shared.lifecycle().is_aborting() {
            Some(UnhandledReason::Shutdown)
        } else if !self.is_live(slot, generation) {
            Some(UnhandledReason::ActorStopped)
        } else {
            None
        };
        if let Some(reason) = unhandled {
            if let Some(hold) = hold {
                hold.unhandled(&env.msg, reason);
            }
            let dst = dst_of(&env);
            return self.shared.dead_letters().report_msg(env.msg, dst, reason.into());
        }
        let Some(Some(s)) = self.slots.get_mut(slot as usize) else { return };
        if counted {
            s.cell.release();
        }
        let shared = &*self.shared;
        let outcome = catch_unwind(AssertUnwindSafe(|| actor::dispatch(&mut *s.actor, &s.me, shared, env)));
        // Its handler ran (a panic included): a receipt is due.
        if let Some(hold) = hold {
            hold.handled();
        }
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

    /// Ends the actor in `slot`: removes it from the directory, frees the
    /// slot, refuses further sends and tells its watchers, runs its
    /// stopped hook (not after a panic: its state may be broken).
    fn stop_slot(&mut self, slot: u32, reason: TerminationReason) {
        let Some(Some(mut s)) = self.slots.get_mut(slot as usize).map(Option::take) else { return };
        // Out of the directory first: a watcher told of the end no longer
        // finds the actor by name. The slot is free before anyone is told
        // (an actor spawned then may be given it: it starts on this thread, after
        // this); what is still sent to the old one misses by generation.
        self.shared.remove_local(s.cell.id);
        self.handle.free_slot(slot);
        s.cell.close(reason);
        if reason != TerminationReason::Panicked {
            let shared = &*self.shared;
            let hook = catch_unwind(AssertUnwindSafe(|| s.actor.stopped(&mut Context::new(&s.me, shared))));
            if let Err(panic) = hook {
                warn!(actor = %s.cell.name, panic = panic_message(&*panic), "stopped hook panicked");
            }
        }
        debug!(executor = self.handle.index, actor = %s.cell.name, ?reason, "actor stopped");
    }

    /// Handles (or, when aborting, reports) what is queued, then stops
    /// every actor. Links keep running, so remote watchers hear of it.
    fn stop_actors(&mut self) {
        while let Some(cmd) = self.next_command() {
            match cmd {
                Command::StopActors { done } => {
                    let _ = done.send(());
                }
                cmd => self.execute(cmd),
            }
        }
        for slot in 0..self.slots.len() {
            self.stop_slot(slot as u32, TerminationReason::Shutdown);
        }
        self.net.drain_outbox(&*self.shared);
    }

    /// Sends what is queued for the links, closes them in order, exits.
    fn exit(mut self) {
        while let Some(cmd) = self.next_command() {
            self.execute(cmd);
        }
        self.net.drain_outbox(&*self.shared);
        self.net.flush(&*self.shared, self.poll.registry());
        self.net.close_all(&*self.shared, self.poll.registry(), CLOSE_GRACE);
        debug!(executor = self.handle.index, "executor exits");
    }
}

fn dst_of(env: &Envelope) -> ActorId {
    env.msg.header().dst_id()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests;
