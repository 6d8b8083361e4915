//! Managers meeting through a NATS server (the `nats` feature).
//!
//! One bridge thread per manager owns a small tokio runtime and the
//! `async-nats` client; nothing else sees tokio. The bridge does not speak
//! frames itself: for every other manager it meets it makes a socket pair,
//! hands one end to an executor as an ordinary link (dialed by the lower
//! node id, accepted by the higher), and carries the link's bytes over
//! NATS. So handshakes, acknowledgements, NACKs, heartbeats, directories,
//! watches and every report work as over a direct link.
//!
//! Subjects (see `docs/WIRE.md`, "NATS"):
//!
//! * `ipchnl.announce`: each manager's [`Announce`], on connect, every
//!   third of the expiry, and when it leaves (`bye`). A manager not heard
//!   of for the expiry is gone: its link is closed.
//! * `ipchnl.link.<TO>.<FROM>`: the byte stream of the link from node
//!   `FROM` to node `TO` (ids in hex), in the order written: the handshake,
//!   then frames. An empty payload closes the link.

use std::collections::HashMap;
use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Event};
use bytes::Bytes;
use connection::{Incarnation, Role};
use futures_util::StreamExt;
use msg_header::NodeId;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::ManagerError;
use crate::addr::NatsAddr;
use crate::executor::Command;
use crate::manager::Shared;
use crate::net::{Origin, Stream};

const ANNOUNCE: &str = "ipchnl.announce";

/// The bytes a link reads from its socket pair at once, and so the largest
/// NATS payload the bridge publishes.
const CHUNK: usize = 64 * 1024;

/// How long a leaving manager waits for its links' last bytes (their
/// CLOSE frames) to be published.
const DRAIN: Duration = Duration::from_secs(1);

/// What a manager says of itself on `ipchnl.announce`.
#[derive(Debug, Serialize, Deserialize)]
struct Announce {
    node: NodeId,
    name: String,
    /// This start of the node, in hex: a new one means a new link.
    incarnation: String,
    /// It is leaving.
    #[serde(default)]
    bye: bool,
}

/// The link subject that carries bytes from `from` to `to`.
fn link_subject(to: NodeId, from: NodeId) -> String {
    format!("ipchnl.link.{to}.{from}")
}

fn hex(incarnation: Incarnation) -> String {
    format!("{:032x}", u128::from_be_bytes(incarnation.0))
}

/// What the manager asks of its bridge.
enum Ask {
    Leave,
}

/// What the bridge's own tasks tell its loop.
enum Note {
    Nats(Event),
    /// The pair to this node ended (its link closed or its socket failed).
    PairEnded {
        node: NodeId,
        pair: u64,
    },
}

/// The running bridge of one manager.
pub(crate) struct Bridge {
    asks: mpsc::UnboundedSender<Ask>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Connects to the NATS server at `addr` and starts the bridge thread;
    /// returns once connected (or failed to).
    pub(crate) fn start(shared: Arc<Shared>, addr: &NatsAddr) -> Result<Self, ManagerError> {
        let (asks, asks_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let addr_shown = addr.to_string();
        let addr = addr.clone();
        let name = format!("{}-nats", shared.config.name);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(ManagerError::Io(e)));
                    return;
                }
            };
            runtime.block_on(run(shared, addr, asks_rx, ready_tx));
        })?;
        let shown = addr_shown;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self { asks, thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(ManagerError::Connect {
                    addr: shown,
                    reason: "the NATS bridge ended before connecting".into(),
                })
            }
        }
    }

    /// Says goodbye on NATS and ends the bridge; its links must be closed
    /// already (their last bytes are still published).
    pub(crate) fn leave(&mut self) {
        let _ = self.asks.send(Ask::Leave);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.leave();
    }
}

async fn connect(
    shared: &Shared,
    addr: &NatsAddr,
    notes: mpsc::UnboundedSender<Note>,
) -> Result<Client, ManagerError> {
    let mut options = ConnectOptions::new()
        .name(format!("ipchnl {}", shared.config.node_name))
        .connection_timeout(shared.config.handshake_timeout)
        .event_callback(move |event| {
            let notes = notes.clone();
            async move {
                let _ = notes.send(Note::Nats(event));
            }
        });
    if let Some(token) = &addr.token {
        options = options.token(token.clone());
    }
    if let Some((user, password)) = &addr.user {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(path) = &shared.config.nats_credentials {
        options = options.credentials_file(path).await.map_err(|e| ManagerError::Connect {
            addr: addr.to_string(),
            reason: format!("credentials file {}: {e}", path.display()),
        })?;
    }
    options
        .connect(addr.host_port.as_str())
        .await
        .map_err(|e| ManagerError::Connect { addr: addr.to_string(), reason: e.to_string() })
}

/// One socket pair: our end's bytes go to NATS, NATS's come to it.
struct Pair {
    id: u64,
    to_socket: mpsc::UnboundedSender<Bytes>,
}

/// What the bridge knows of another manager.
struct Known {
    incarnation: String,
    seen: Instant,
    pair: Option<Pair>,
}

struct Bridging {
    shared: Arc<Shared>,
    client: Client,
    me: NodeId,
    announce: Bytes,
    known: HashMap<NodeId, Known>,
    notes: mpsc::UnboundedSender<Note>,
    next_pair: u64,
    pumps: tokio::task::JoinSet<()>,
}

async fn run(
    shared: Arc<Shared>,
    addr: NatsAddr,
    mut asks: mpsc::UnboundedReceiver<Ask>,
    ready: crossbeam_channel::Sender<Result<(), ManagerError>>,
) {
    let (notes, mut notes_rx) = mpsc::unbounded_channel();
    let client = match connect(&shared, &addr, notes.clone()).await {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let me = shared.node_id;
    let subscribed = async {
        let announces = client.subscribe(ANNOUNCE).await?;
        let links = client.subscribe(format!("ipchnl.link.{me}.*")).await?;
        Ok::<_, async_nats::SubscribeError>((announces, links))
    };
    let (mut announces, mut links) = match subscribed.await {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(ManagerError::Connect { addr: addr.to_string(), reason: e.to_string() }));
            return;
        }
    };
    let announce = |bye: bool| {
        let a = Announce {
            node: me,
            name: shared.config.node_name.clone(),
            incarnation: hex(shared.incarnation),
            bye,
        };
        Bytes::from(serde_json::to_vec(&a).unwrap_or_default())
    };
    let mut b = Bridging {
        shared: shared.clone(),
        client,
        me,
        announce: announce(false),
        known: HashMap::new(),
        notes,
        next_pair: 0,
        pumps: tokio::task::JoinSet::new(),
    };
    b.say_hello().await;
    info!(%addr, node = %me, "linked through NATS");
    let _ = ready.send(Ok(()));

    let expiry = shared.config.nats_expiry;
    let mut tick = tokio::time::interval(expiry / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ask = asks.recv() => match ask {
                Some(Ask::Leave) | None => break,
            },
            Some(note) = notes_rx.recv() => b.on_note(note).await,
            Some(msg) = announces.next() => b.on_announce(&msg.payload).await,
            Some(msg) = links.next() => b.on_link_bytes(msg.subject.as_str(), msg.payload).await,
            _ = tick.tick() => b.on_tick(expiry).await,
            Some(_) = b.pumps.join_next(), if !b.pumps.is_empty() => {}
        }
    }
    // Leaving: the executors have closed their links; what they wrote last
    // (CLOSE frames) is still on its way through the pumps.
    let drained = async { while b.pumps.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(DRAIN, drained).await;
    let _ = b.client.publish(ANNOUNCE, announce(true)).await;
    let _ = b.client.flush().await;
    debug!(node = %me, "left NATS");
}

impl Bridging {
    async fn say_hello(&self) {
        if let Err(e) = self.client.publish(ANNOUNCE, self.announce.clone()).await {
            warn!(error = %e, "cannot announce on NATS");
        }
    }

    async fn on_note(&mut self, note: Note) {
        match note {
            Note::Nats(Event::Disconnected) => {
                // As for a link that goes down: every pair closes, with the
                // reports that brings; they come back with the server.
                warn!("NATS connection lost; closing the links through it");
                for known in self.known.values_mut() {
                    known.pair = None;
                }
                self.known.clear();
            }
            Note::Nats(Event::Connected) => {
                info!("NATS connection back");
                self.say_hello().await;
            }
            Note::Nats(event) => debug!(%event, "NATS event"),
            Note::PairEnded { node, pair } => {
                if let Some(known) = self.known.get_mut(&node) {
                    if known.pair.as_ref().is_some_and(|p| p.id == pair) {
                        known.pair = None;
                        // Tell the other side, whose link is still up.
                        let _ = self.client.publish(link_subject(node, self.me), Bytes::new()).await;
                    }
                }
            }
        }
    }

    async fn on_announce(&mut self, payload: &[u8]) {
        let Ok(a) = serde_json::from_slice::<Announce>(payload) else {
            return debug!("an announce that does not parse");
        };
        if a.node == self.me {
            return;
        }
        if a.bye {
            if self.known.remove(&a.node).is_some() {
                debug!(node = %a.node, name = %a.name, "left NATS");
            }
            return;
        }
        let now = Instant::now();
        let fresh = match self.known.get_mut(&a.node) {
            Some(k) if k.incarnation == a.incarnation => {
                k.seen = now;
                false
            }
            _ => {
                // New, or started again: a new link (the old one closes).
                self.known.insert(a.node, Known { incarnation: a.incarnation, seen: now, pair: None });
                true
            }
        };
        if fresh {
            // Let it know of us at once rather than at our next tick.
            self.say_hello().await;
        }
        if self.me < a.node && self.known.get(&a.node).is_some_and(|k| k.pair.is_none()) {
            self.open_pair(a.node, Role::Client);
        }
    }

    async fn on_link_bytes(&mut self, subject: &str, payload: Bytes) {
        let Some(from) = subject.rsplit('.').next().and_then(|s| s.parse::<NodeId>().ok()) else {
            return;
        };
        let open = self.known.get(&from).and_then(|k| k.pair.as_ref()).map(|p| p.to_socket.clone());
        match (open, payload.is_empty()) {
            (Some(_), true) => {
                // The other side closed: so do we (the link reports it).
                if let Some(k) = self.known.get_mut(&from) {
                    k.pair = None;
                }
            }
            (Some(to_socket), false) => {
                let _ = to_socket.send(payload);
            }
            (None, true) => {}
            (None, false) if connection::starts_hello(&payload) => {
                // A lower node dials us: accept.
                let known = self.known.entry(from).or_insert_with(|| Known {
                    incarnation: String::new(),
                    seen: Instant::now(),
                    pair: None,
                });
                known.seen = Instant::now();
                if let Some(pair) = self.open_pair(from, Role::Server) {
                    let _ = pair.send(payload);
                }
            }
            (None, false) => {
                // The rest of a link we no longer have: tell it to close.
                let _ = self.client.publish(link_subject(from, self.me), Bytes::new()).await;
            }
        }
    }

    async fn on_tick(&mut self, expiry: Duration) {
        self.say_hello().await;
        let now = Instant::now();
        self.known.retain(|node, k| {
            let alive = now.duration_since(k.seen) < expiry;
            if !alive {
                info!(%node, "not heard of on NATS: gone");
            }
            alive
        });
    }

    /// Makes a socket pair for `node`, hands one end to an executor as a
    /// link in `role`, and pumps the other; the sender into the socket.
    fn open_pair(&mut self, node: NodeId, role: Role) -> Option<mpsc::UnboundedSender<Bytes>> {
        let pair = match socket_pair() {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "cannot make a socket pair for a NATS link");
                return None;
            }
        };
        let (ours, theirs) = pair;
        let theirs = Stream::Unix(mio::net::UnixStream::from_std(theirs));
        let ours = match tokio::net::UnixStream::from_std(ours) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot watch a socket pair");
                return None;
            }
        };
        self.next_pair += 1;
        let id = self.next_pair;
        let (to_socket, from_nats) = mpsc::unbounded_channel();
        let executor = self.shared.next_link_executor();
        self.shared
            .executor(executor)
            .push(Command::AddStream { stream: theirs, origin: Origin::bridged(role) });
        self.pumps.spawn(pump(ours, from_nats, self.client.clone(), link_subject(node, self.me), {
            let notes = self.notes.clone();
            move || {
                let _ = notes.send(Note::PairEnded { node, pair: id });
            }
        }));
        debug!(%node, ?role, "NATS link opened");
        if let Some(k) = self.known.get_mut(&node) {
            k.pair = Some(Pair { id, to_socket: to_socket.clone() });
        }
        Some(to_socket)
    }
}

fn socket_pair() -> io::Result<(StdUnixStream, StdUnixStream)> {
    let (a, b) = StdUnixStream::pair()?;
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    Ok((a, b))
}

/// Carries one link's bytes: from the socket to `subject`, and from NATS
/// (`from_nats`) into the socket, until either ends; then `ended`.
async fn pump(
    socket: tokio::net::UnixStream,
    mut from_nats: mpsc::UnboundedReceiver<Bytes>,
    client: Client,
    subject: String,
    ended: impl FnOnce(),
) {
    let (mut read, mut write) = socket.into_split();
    let outbound = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Err(e) = client.publish(subject.clone(), Bytes::copy_from_slice(&buf[..n])).await {
                        debug!(error = %e, "cannot publish link bytes");
                        return;
                    }
                }
            }
        }
    };
    let inbound = async {
        while let Some(bytes) = from_nats.recv().await {
            if write.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    // Whichever ends first ends the pair: the socket closes, the link
    // goes down and reports what it must.
    tokio::select! {
        () = outbound => {}
        () = inbound => {}
    }
    ended();
}
