//! The manager: executors, the directory, dead letters, shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use actor::{Actor, ActorAddr, ActorSender, Ref, Served, ServedBy, Service, System, SystemError, Terminated};
use connection::{DirectoryUpdate, Incarnation};
use crossbeam_channel::Receiver;
use msg_header::{ActorId, NodeId};
use protocol::{MsgInfo, Protocol, ProtocolId};
use tracing::{debug, warn};

use crate::admission::Admission;
use crate::budget::Budgets;
use crate::cell::{ActorCell, ActorCommand, host_token};
use crate::dead_letter::{DeadLetter, DeadLetterReason, DeadLetters};
use crate::decoders::Decoders;
use crate::executor::{Command, Executor, ExecutorHandle};
use crate::net::{Host, NetCommand};
use crate::nodes::Nodes;
use crate::peer::{LinkMailboxes, PeerCommand, PeerInfo};
use crate::port::LinkPort;
use crate::shared::{Shared, dir_entry};
use crate::stats::Held;
use crate::stats::{Stats, Tally};
use crate::sync::{Lifecycle, Mailbox};
use crate::throttle::Throttle;
use crate::{ActorOptions, Addr, ManagerConfig, ManagerError};

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
/// # mod ipchnl { pub mod echo { pub use echo_reply::EchoReply; pub use echo_req::EchoReq; pub use server::Server; } pub use manager::Manager; pub use manager::ManagerConfig; }
/// use std::time::Duration;
/// use ipchnl::echo::EchoReply;
/// use ipchnl::echo::EchoReq;
/// use ipchnl::{Manager, ManagerConfig};
/// use ipchnl::echo::Server;
///
/// let manager = Manager::new(ManagerConfig::default())?;
/// let server = manager.add("server", Server::new())?;
/// let reply = server.ask(EchoReq::new(1, 0), Duration::from_secs(10))?;
/// assert_eq!(reply.counter, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Manager {
    shared: Arc<Shared>,
    lifecycle: Arc<Lifecycle>,
    executors: Arc<[Arc<ExecutorHandle>]>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_executor: AtomicUsize,
    /// The NATS bridge, once a `nats://` address was connected to.
    #[cfg(feature = "nats")]
    nats: Mutex<Option<crate::transport::nats::Bridge>>,
}

impl Manager {
    /// Starts a manager and its executor threads.
    pub fn new(config: ManagerConfig) -> Result<Self, ManagerError> {
        if let Some(secret) = &config.security.secret
            && secret.len() < crate::MIN_SECRET_LEN
        {
            return Err(ManagerError::WeakSecret(secret.len()));
        }
        let encrypts = config.security.encryption == crate::config::Encryption::Always
            || config.security.node_keys.is_some();
        if encrypts && config.security.secret.is_none() {
            return Err(ManagerError::EncryptionNeedsSecret);
        }
        let lifecycle = Arc::new(Lifecycle::new());
        let mut incarnation = [0; 16];
        getrandom::fill(&mut incarnation)
            .map_err(|e| ManagerError::Io(std::io::Error::other(e.to_string())))?;
        let shared = Arc::new(Shared {
            lifecycle: lifecycle.clone(),
            node_id: NodeId::of_name(&config.identity.node_name),
            incarnation: Incarnation(incarnation),
            nodes: Nodes::new(
                NodeId::of_name(&config.identity.node_name),
                config.identity.node_name.clone(),
                &config.link,
                config.limits.max_down_peers,
            ),
            dead_letters: DeadLetters::new(config.limits.dead_letter_capacity),
            executors: OnceLock::new(),
            next_link_executor: AtomicUsize::new(0),
            decoders: Decoders::default(),
            closes: Tally::default(),
            admission: Admission::new(&config.limits),
            throttle: Throttle::default(),
            budgets: Budgets::new(&config.limits, config.tuning.executors),
            config,
        });
        shared.decoders.register(&[MsgInfo::wire::<Terminated>()]);
        let mut executors = Vec::new();
        let mut threads = Vec::new();
        let mut runners = Vec::new();
        for index in 0..shared.config.tuning.executors.max(1) {
            let (executor, handle) = Executor::new(index, shared.config.tuning.spin, shared.clone())?;
            executors.push(handle);
            runners.push(executor);
        }
        let executors: Arc<[Arc<ExecutorHandle>]> = Arc::from(executors);
        let _ = shared.executors.set(executors.clone());
        let mailboxes: LinkMailboxes =
            executors.iter().map(|e| e.clone() as Arc<dyn Mailbox<PeerCommand>>).collect();
        shared.nodes.set_mailboxes(mailboxes);
        let manager = Self {
            shared,
            lifecycle,
            executors,
            threads: Mutex::new(Vec::new()),
            next_executor: AtomicUsize::new(0),
            #[cfg(feature = "nats")]
            nats: Mutex::new(None),
        };
        for (index, executor) in runners.into_iter().enumerate() {
            let thread = std::thread::Builder::new()
                .name(format!("{}-exec-{index}", manager.shared.config.identity.name))
                .spawn(move || executor.run());
            match thread {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Dropping the manager stops the threads already started.
                    *manager.threads.lock().unwrap_or_else(|e| e.into_inner()) = threads;
                    return Err(ManagerError::Io(e));
                }
            }
        }
        *manager.threads.lock().unwrap_or_else(|e| e.into_inner()) = threads;
        Ok(manager)
    }

    /// Adds an actor called `name` (unique in this manager) on the next
    /// executor in turn, with an unbounded mailbox. The manager gives it
    /// its id; its address (returned, and [`Context::me`](actor::Context::me)
    /// in its handlers) carries both.
    pub fn add(&self, name: impl Into<String>, actor: impl Actor) -> Result<ActorSender, ManagerError> {
        self.add_with(name, actor, ActorOptions::default())
    }

    /// Adds `actor` called `name` to serve the service `S`, and returns a
    /// typed reference to it: it takes only `S`'s requests, and its `ask`
    /// returns the reply each declares. An actor without a
    /// [`Handler`](actor::Handler) for one of `S`'s requests does not
    /// compile here.
    ///
    /// ```
    /// # mod ipchnl { pub use actor::Context; pub use actor::Handler; pub use actor::service; pub use manager::Manager; pub use manager::ManagerConfig; }
    /// use std::time::Duration;
    /// use ipchnl::{Context, Handler, service};
    /// use ipchnl::{Manager, ManagerConfig};
    /// # use msg_serde_macro::msg_serde_macro;
    ///
    /// msg_serde_macro! { struct Add("doc::Add") -> Sum { a: i64, b: i64 } }
    /// msg_serde_macro! { struct Sum("doc::Sum") { sum: i64 } }
    /// service! { Calc = "doc_calc" [Add] }
    ///
    /// struct Adder;
    /// impl Handler<Add> for Adder {
    ///     fn handle(&mut self, _: &mut Context<'_>, add: Add) -> Sum {
    ///         Sum::new(add.a + add.b)
    ///     }
    /// }
    ///
    /// let manager = Manager::new(ManagerConfig::default())?;
    /// let calc = manager.serve::<Calc, _>("adder", Adder)?;
    /// assert_eq!(calc.ask(Add::new(2, 3), Duration::from_secs(60))?.sum, 5);
    /// assert_eq!(manager.find::<Calc>("adder"), Some(calc));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serve<S, A>(&self, name: impl Into<String>, actor: A) -> Result<Ref<S>, ManagerError>
    where
        S: ServedBy<A>,
        A: Send + 'static,
    {
        let sender = self.add(name, Served::<S, A>::new(actor))?;
        // It speaks `S` as a server: its protocol set is `S`'s.
        Ref::new(sender).ok_or(ManagerError::ShuttingDown)
    }

    /// The actor called `name` (as [`find_by_name`](Self::find_by_name)
    /// finds it, here or on a linked node) as a typed reference, if it
    /// serves `S`. Replies of `S` from other processes decode here from
    /// now on.
    pub fn find<S: Service>(&self, name: &str) -> Option<Ref<S>> {
        self.register_protocol(S::protocol());
        Ref::new(self.find_by_name(name)?)
    }

    /// Every actor that serves `S` (as
    /// [`find_by_protocol`](Self::find_by_protocol) orders them), as typed
    /// references.
    pub fn find_all<S: Service>(&self) -> Vec<Ref<S>> {
        self.register_protocol(S::protocol());
        self.find_by_protocol(S::protocol().id()).into_iter().filter_map(Ref::new).collect()
    }

    /// Adds an actor called `name` where and how `options` say. The actor
    /// is in the directory when this returns; its `started` hook runs on
    /// its executor before its first message.
    pub fn add_with(
        &self,
        name: impl Into<String>,
        actor: impl Actor,
        options: ActorOptions,
    ) -> Result<ActorSender, ManagerError> {
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
        let (name, id) = (name.into(), ActorId::new());
        // Hold the directory while the actor is queued for its executor, so
        // nobody can find it (and send to it) before its executor knows it.
        let mut dir = self.shared.nodes.dir_mut();
        dir.check_free(&name, id)?;
        let cell = Arc::new(ActorCell::new(
            id,
            name,
            set,
            executor.clone() as Arc<dyn Mailbox<ActorCommand>>,
            executor.alloc_slot(),
            self.shared.node_id,
            self.lifecycle.clone(),
            options,
        ));
        let sender = ActorSender::from_route(cell.clone());
        let protocols: Vec<ProtocolId> = set.protocols().iter().map(|p| p.id()).collect();
        dir.insert_local(sender.clone(), cell.clone(), protocols.iter().copied())?;
        self.shared.nodes.local_changed();
        let entry = dir_entry(&cell, &protocols);
        executor.push(Command::Actor(ActorCommand::Spawn { actor: Box::new(actor), cell }));
        drop(dir);
        self.shared.decoders.register(set.all_protocols().flat_map(|p| p.messages()));
        self.shared.broadcast(&DirectoryUpdate { add: vec![entry], ..DirectoryUpdate::default() });
        debug!(actor = sender.name(), executor = index, "actor added");
        Ok(sender)
    }

    /// Stops `actor`, one of this manager's actors, after the messages
    /// already queued for it, as [`ActorSender::stop`] does: its `stopped`
    /// hook runs, its watchers are told `Stopped`, and it leaves the
    /// directory. An actor that has already ended is left as it is.
    ///
    /// `Err(UnknownActor)` when `actor` is not an actor of this manager (one
    /// of another manager or node, an inbox).
    ///
    /// # Examples
    ///
    /// ```
    /// # mod ipchnl { pub use actor::ActorSender; pub use actor::SystemError; pub use actor::Terminated; pub use actor::TerminationReason; pub use manager::Manager; pub use manager::ManagerConfig; pub mod echo { pub use server::Server; } }
    /// use std::time::Duration;
    /// use ipchnl::{ActorSender, SystemError, Terminated, TerminationReason};
    /// use ipchnl::{Manager, ManagerConfig};
    /// use ipchnl::echo::Server;
    ///
    /// let manager = Manager::new(ManagerConfig::default())?;
    /// let server = manager.add("server", Server::new())?;
    /// let (watcher, told) = ActorSender::inbox("watcher");
    /// server.watch(&watcher)?;
    ///
    /// manager.stop(&server)?;
    /// let end = told.recv_timeout(Duration::from_secs(30))?.msg.downcast::<Terminated>()?;
    /// assert_eq!(end.reason, TerminationReason::Stopped);
    /// // Not an actor of the manager:
    /// assert!(matches!(manager.stop(&watcher), Err(SystemError::UnknownActor(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(&self, actor: &ActorSender) -> Result<(), SystemError> {
        // An actor that has ended is no longer in the directory: whose it
        // is, is asked of its route.
        if actor.route().host() == host_token(&self.lifecycle) {
            actor.stop()
        } else {
            Err(SystemError::UnknownActor(actor.name().to_owned()))
        }
    }

    /// The door for transports of one's own: see [`LinkPort`].
    pub fn link_port(&self) -> LinkPort {
        LinkPort { shared: self.shared.clone() }
    }

    /// Learns how to decode the messages of `protocol`, for replies and
    /// asks answered by actors of other nodes. The protocols of this
    /// manager's own actors are known already.
    pub fn register_protocol(&self, protocol: &Protocol) {
        self.shared.decoders.register(protocol.messages());
    }

    /// Listens on `addr` (`tcp://HOST:PORT`, port 0 for any free one, or
    /// `unix:PATH`); returns the address bound.
    ///
    /// A non-loopback TCP address needs a secret
    /// ([`ManagerConfig::secret`]) unless [`ManagerConfig::allow_insecure`].
    /// A Unix socket file is created with mode 0600; an existing one is
    /// replaced only if nothing answers on it.
    pub fn listen(&self, addr: &Addr) -> Result<Addr, ManagerError> {
        if !self.lifecycle.is_running() {
            return Err(ManagerError::ShuttingDown);
        }
        if let Addr::Nats(nats) = addr {
            // Listening on NATS is joining it: others find us there.
            self.join_nats(nats)?;
            return Ok(addr.clone());
        }
        let config = &self.shared.config;
        if !addr.is_loopback() && config.security.secret.is_none() && !config.security.allow_insecure {
            return Err(ManagerError::Insecure(addr.to_string()));
        }
        let (listener, bound) = crate::transport::bind(addr)?;
        let count = self.executors.len();
        let executor = match self.shared.config.tuning.handshake_executor {
            Some(i) => i.min(count - 1),
            None => self.shared.next_link_executor(),
        };
        self.executors[executor].push(Command::Net(NetCommand::AddListener(listener)));
        debug!(%bound, executor, "listening");
        Ok(bound)
    }

    /// Links to the manager at `addr` and returns once the handshake and
    /// the first directory exchange are done: the peer's actors are then in
    /// [`find_by_protocol`](Self::find_by_protocol). If the link later goes
    /// down it is dialed again, with backoff.
    ///
    /// A `nats://` address joins the NATS server instead (needs the `nats`
    /// feature): every manager that joined it is linked to this one, found
    /// through announcements, as long as both are there. It returns once
    /// connected to the server; the others' actors appear in the directory
    /// as their links come up. The [`PeerInfo`] then names the server.
    pub fn connect(&self, addr: &Addr) -> Result<PeerInfo, ManagerError> {
        if !self.lifecycle.is_running() {
            return Err(ManagerError::ShuttingDown);
        }
        if let Addr::Nats(nats) = addr {
            self.join_nats(nats)?;
            return Ok(PeerInfo {
                node_id: NodeId::of_name(&nats.to_string()),
                node_name: nats.to_string(),
                executor: 0,
                up: true,
            });
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let executor = self.shared.next_link_executor();
        self.executors[executor]
            .push(Command::Net(NetCommand::Dial { addr: Box::new(addr.clone()), waiter: Some(tx) }));
        // The link times out on its own; this is only a guard against a bug.
        let guard = self.shared.config.link.handshake_timeout * 4 + Duration::from_secs(10);
        rx.recv_timeout(guard).map_err(|_| ManagerError::Connect {
            addr: addr.to_string(),
            reason: "no answer from the executor".into(),
        })?
    }

    #[cfg(feature = "nats")]
    fn join_nats(&self, addr: &crate::NatsAddr) -> Result<(), ManagerError> {
        let mut bridge = self.nats.lock().unwrap_or_else(|e| e.into_inner());
        if bridge.is_none() {
            *bridge = Some(crate::transport::nats::Bridge::start(self.link_port(), addr)?);
        }
        Ok(())
    }

    #[cfg(not(feature = "nats"))]
    fn join_nats(&self, addr: &crate::NatsAddr) -> Result<(), ManagerError> {
        Err(ManagerError::Connect {
            addr: addr.to_string(),
            reason: "this build has no NATS support (cargo feature `nats`)".into(),
        })
    }

    /// The linked nodes, in the order they were first linked.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.shared.nodes.peers().iter().map(|p| p.info()).collect()
    }

    /// The counters: per linked node, closes by reason, dead letters by reason.
    pub fn stats(&self) -> Stats {
        let peers = self.shared.nodes.peers();
        Stats {
            links: peers.iter().map(|p| p.counters.snapshot(p.node_id, p.node_name(), p.is_up())).collect(),
            closes: self.shared.closes.snapshot(),
            dead_letters: self.shared.dead_letters.by_reason.snapshot(),
            held: {
                let (read_buffers, inbound, output, read_waits) = self.shared.budgets.snapshot();
                Held { read_buffers, inbound, output, read_waits }
            },
        }
    }

    /// This node's id (the hash of [`ManagerConfig::node_name`]).
    pub fn node_id(&self) -> NodeId {
        self.shared.node_id
    }

    /// Every actor that speaks `protocol`: this manager's own first, in
    /// the order they were added; then each linked node's, nodes in the
    /// order they were first linked (a node that restarted counts as newly
    /// linked), each node's actors in the order it announced them.
    pub fn find_by_protocol(&self, protocol: ProtocolId) -> Vec<ActorSender> {
        self.shared.find_by_protocol(protocol)
    }

    /// The actor called `name`, if any: this manager's own if it has one,
    /// else the first of the linked nodes' in the order of
    /// [`find_by_protocol`](Self::find_by_protocol). `NAME@NODE` names the
    /// actor `NAME` of node `NODE` exactly (this node's own name included),
    /// unless an actor is called `NAME@NODE` itself.
    pub fn find_by_name(&self, name: &str) -> Option<ActorSender> {
        self.shared.find_by_name(name)
    }

    /// The actor with this id, if any.
    pub fn find_by_id(&self, id: ActorId) -> Option<ActorSender> {
        self.shared.nodes.dir().find_by_id(id)
    }

    /// How many actors of this manager are running.
    pub fn actor_count(&self) -> usize {
        self.shared.nodes.dir().local_len()
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
        &self.shared.config
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
        debug!(manager = %self.shared.config.identity.name, drain, "shutting down");
        // First every actor everywhere, while the links still carry what
        // their ends tell remote watchers; then the links.
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let mut waiting = 0;
        for executor in self.executors.iter() {
            executor.push(Command::StopActors { done: done_tx.clone() });
            waiting += usize::from(!executor.is_current());
        }
        for _ in 0..waiting {
            if done_rx.recv().is_err() {
                break;
            }
        }
        for executor in self.executors.iter() {
            executor.push(Command::Exit);
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
        for executor in self.executors.iter() {
            for cmd in executor.drain() {
                let (msg, window) = match cmd {
                    Command::Actor(ActorCommand::Deliver { env, .. }) => (env.msg, None),
                    Command::Peer(PeerCommand::Send { msg, peer, owed, .. }) => (msg, Some((peer, owed))),
                    Command::Peer(PeerCommand::SendLarge { msg, peer, .. }) => {
                        peer.give_back_large();
                        (msg, None)
                    }
                    _ => continue,
                };
                if let Some((peer, owed)) = window {
                    peer.give_back(owed);
                }
                let dst = msg.header().dst_id();
                self.shared.dead_letters.report_msg(msg, dst, DeadLetterReason::Shutdown);
            }
        }
        // The links through NATS are closed: publish their last bytes, say
        // goodbye, disconnect.
        #[cfg(feature = "nats")]
        if let Some(mut bridge) = self.nats.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bridge.leave();
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

    fn resolve(&self, addr: ActorAddr) -> Result<ActorSender, SystemError> {
        self.shared.resolve(addr)
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
            .field("name", &self.shared.config.identity.name)
            .field("executors", &self.executors.len())
            .field("actors", &self.actor_count())
            .finish()
    }
}
