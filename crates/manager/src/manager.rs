//! The manager: executors, the directory, dead letters, shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use actor::{Actor, ActorSender, Envelope, System};
use crossbeam_channel::Receiver;
use msg_header::ActorId;
use protocol::ProtocolId;
use tracing::{debug, warn};

use crate::cell::{ActorCell, Lifecycle};
use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetters};
use crate::directory::Directory;
use crate::executor::{Command, Executor, ExecutorHandle};
use crate::{ActorOptions, ManagerConfig, ManagerError};

/// What the executors and the manager share.
pub(crate) struct Shared {
    pub(crate) lifecycle: Arc<Lifecycle>,
    directory: RwLock<Directory>,
    pub(crate) dead_letters: DeadLetters,
}

impl Shared {
    fn dir(&self) -> RwLockReadGuard<'_, Directory> {
        // The directory's invariants hold between its method calls, so a
        // panic elsewhere cannot leave it broken.
        self.directory.read().unwrap_or_else(|e| e.into_inner())
    }

    fn dir_mut(&self) -> RwLockWriteGuard<'_, Directory> {
        self.directory.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn dead_letter(&self, env: Envelope, reason: DeadLetterReason) {
        let dst = env.msg.header().dst_id();
        self.dead_letters.report(DeadLetter { msg: env.msg, dst, reason });
    }

    pub(crate) fn remove_from_directory(&self, id: ActorId) {
        self.dir_mut().remove(id);
    }
}

/// The directory, as actors see it through their [`Context`](actor::Context).
impl System for Shared {
    fn find_by_protocol(&self, protocol: ProtocolId) -> Vec<ActorSender> {
        self.dir().find_by_protocol(protocol)
    }

    fn find_by_name(&self, name: &str) -> Option<ActorSender> {
        self.dir().find_by_name(name)
    }
}

/// Runs actors on executor threads and knows them all.
///
/// * **Executors.** [`ManagerConfig::executors`] threads, each hosting many
///   actors; an actor runs on the executor [`ActorOptions::executor`]
///   names, or on the next one in turn.
/// * **Directory.** Every actor by id, by name (unique per manager) and by
///   protocol. [`find_by_protocol`](Self::find_by_protocol) answers in the
///   order the actors were added.
/// * **Dead letters.** A message whose send succeeded but that was never
///   handled (its actor stopped first, or the manager shut down) is
///   reported here with a reason: see [`dead_letters`](Self::dead_letters).
/// * **Shutdown.** [`shutdown`](Self::shutdown), or dropping the manager,
///   refuses new sends from outside, lets each actor finish what is queued,
///   runs the stopped hooks, tells watchers `Shutdown` and joins every
///   thread.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use echo_reply::EchoReply;
/// use echo_req::EchoReq;
/// use manager::{Manager, ManagerConfig};
/// use server::Server;
///
/// let manager = Manager::new(ManagerConfig::default())?;
/// let server = manager.add(Server::new("server"))?;
/// let reply = server.ask(EchoReq::new(1, 0), Duration::from_secs(10))?;
/// assert_eq!(reply.downcast::<EchoReply>()?.counter, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Manager {
    shared: Arc<Shared>,
    lifecycle: Arc<Lifecycle>,
    executors: Vec<Arc<ExecutorHandle>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_executor: AtomicUsize,
    config: ManagerConfig,
}

impl Manager {
    /// Starts a manager and its executor threads.
    pub fn new(config: ManagerConfig) -> Result<Self, ManagerError> {
        let lifecycle = Arc::new(Lifecycle::new());
        let shared = Arc::new(Shared {
            lifecycle: lifecycle.clone(),
            directory: RwLock::default(),
            dead_letters: DeadLetters::new(config.dead_letter_capacity),
        });
        let mut executors = Vec::new();
        let mut threads = Vec::new();
        let start_threads = |executors: &mut Vec<_>, threads: &mut Vec<_>| -> Result<(), ManagerError> {
            for index in 0..config.executors.max(1) {
                let (executor, handle) = Executor::new(index, config.spin, shared.clone())?;
                let thread = std::thread::Builder::new()
                    .name(format!("{}-exec-{index}", config.name))
                    .spawn(move || executor.run())?;
                executors.push(handle);
                threads.push(thread);
            }
            Ok(())
        };
        let started = start_threads(&mut executors, &mut threads);
        let manager = Self {
            shared,
            lifecycle,
            executors,
            threads: Mutex::new(threads),
            next_executor: AtomicUsize::new(0),
            config,
        };
        // On failure, dropping the manager stops the threads already started.
        started.map(|()| manager)
    }

    /// Adds an actor on the next executor in turn, with an unbounded mailbox.
    pub fn add(&self, actor: impl Actor) -> Result<ActorSender, ManagerError> {
        self.add_with(actor, ActorOptions::default())
    }

    /// Adds an actor where and how `options` say. The actor is in the
    /// directory when this returns; its `started` hook runs on its
    /// executor before its first message.
    pub fn add_with(&self, actor: impl Actor, options: ActorOptions) -> Result<ActorSender, ManagerError> {
        if !self.lifecycle.is_running() {
            return Err(ManagerError::ShuttingDown);
        }
        let count = self.executors.len();
        let index = match options.executor {
            Some(index) if index >= count => return Err(ManagerError::NoSuchExecutor { index, count }),
            Some(index) => index,
            None => self.next_executor.fetch_add(1, Ordering::Relaxed) % count,
        };
        let executor = &self.executors[index];
        let set = actor.protocol_set();
        let (name, id) = (actor.name().to_owned(), actor.id());
        // Hold the directory while the actor is queued for its executor, so
        // nobody can find it (and send to it) before its executor knows it.
        let mut dir = self.shared.dir_mut();
        dir.check_free(&name, id)?;
        let cell = Arc::new(ActorCell::new(
            id,
            name,
            set,
            executor.clone(),
            executor.alloc_slot(),
            self.lifecycle.clone(),
            options.capacity,
        ));
        let sender = ActorSender::from_route(cell.clone());
        dir.insert(sender.clone(), set.protocols().iter().map(|p| p.id()))?;
        executor.push(Command::Spawn { actor: Box::new(actor), cell });
        debug!(actor = sender.name(), executor = index, "actor added");
        Ok(sender)
    }

    /// Every actor that speaks `protocol`, in the order they were added.
    pub fn find_by_protocol(&self, protocol: ProtocolId) -> Vec<ActorSender> {
        self.shared.find_by_protocol(protocol)
    }

    /// The actor called `name`, if any.
    pub fn find_by_name(&self, name: &str) -> Option<ActorSender> {
        self.shared.find_by_name(name)
    }

    /// The actor with this id, if any.
    pub fn find_by_id(&self, id: ActorId) -> Option<ActorSender> {
        self.shared.dir().find_by_id(id)
    }

    /// How many actors are running.
    pub fn actor_count(&self) -> usize {
        self.shared.dir().len()
    }

    /// How many executor threads there are.
    pub fn executor_count(&self) -> usize {
        self.executors.len()
    }

    /// The dead letters, as they come. All calls share one queue of
    /// [`ManagerConfig::dead_letter_capacity`]; past that, dead letters are
    /// counted and logged but not kept.
    pub fn dead_letters(&self) -> Receiver<DeadLetter> {
        self.shared.dead_letters.receiver()
    }

    /// Dead letters so far, kept or not.
    pub fn dead_letter_count(&self) -> u64 {
        self.shared.dead_letters.count()
    }

    /// Dead letters counted but not kept because the queue was full.
    pub fn dead_letters_unkept(&self) -> u64 {
        self.shared.dead_letters.unkept()
    }

    /// The configuration the manager runs with.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// Shuts down in order: refuses new sends from outside the executors,
    /// lets each actor finish what is queued, runs the stopped hooks (its
    /// watchers get `Terminated { reason: Shutdown }`), joins every thread
    /// and reports what is still queued as dead letters. Idempotent.
    pub fn shutdown(&self) {
        self.stop_all(true);
    }

    /// Shuts down without handling what is queued: every queued message
    /// becomes a dead letter with reason `Shutdown`. The stopped hooks still
    /// run and the threads are joined. Idempotent.
    pub fn shutdown_now(&self) {
        self.stop_all(false);
    }

    fn stop_all(&self, drain: bool) {
        if !self.lifecycle.begin_stop(drain) {
            return;
        }
        debug!(manager = %self.config.name, drain, "shutting down");
        for executor in &self.executors {
            executor.push(Command::Shutdown);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for (executor, thread) in self.executors.iter().zip(threads) {
            if executor.is_current() {
                warn!("manager shut down from its own executor; that thread is not joined");
                continue;
            }
            if thread.join().is_err() {
                warn!(executor = executor.index, "executor thread panicked");
            }
        }
        for executor in &self.executors {
            for cmd in executor.drain() {
                if let Command::Deliver { env, .. } = cmd {
                    self.shared.dead_letter(env, DeadLetterReason::Shutdown);
                }
            }
        }
    }
}

impl System for Manager {
    fn find_by_protocol(&self, protocol: ProtocolId) -> Vec<ActorSender> {
        self.shared.find_by_protocol(protocol)
    }

    fn find_by_name(&self, name: &str) -> Option<ActorSender> {
        self.shared.find_by_name(name)
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("name", &self.config.name)
            .field("executors", &self.executors.len())
            .field("actors", &self.actor_count())
            .finish()
    }
}
