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
//! * `ipchnl.link.<TO>.<FROM>.<LINK>`: the byte stream of link `LINK` (a
//!   random number the dialer picks, in hex) from node `FROM` to node `TO`
//!   (ids in hex), in the order written: the handshake, then frames. An
//!   empty payload closes the link. Bytes of a link the receiver does not
//!   have open a new one if they start with a HELLO, and are answered with
//!   an empty payload (close) otherwise.

use std::collections::HashMap;
use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::{Client, Event};
use bytes::Bytes;
use connection::{Incarnation, Role};
use futures_util::StreamExt;
use msg_header::NodeId;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::{LinkPort, ManagerError, NatsAddr};

const ANNOUNCE: &str = "ipchnl.announce";

/// The bytes a link reads from its socket pair at once, and so the largest
/// NATS payload the bridge publishes.
const CHUNK: usize = 64 * 1024;

/// How long a leaving manager waits for its links' last bytes (their
/// CLOSE frames) to be published.
const DRAIN: Duration = Duration::from_secs(1);

/// Keeps the bridge's thread polling (its sockets and NATS's, without
/// sleeping) for `ManagerConfig::nats_poll` after link bytes (other than a
/// lone heartbeat) last went through it.
///
/// A thread asleep in `epoll_wait` takes tens of microseconds to wake on
/// a VM whose CPU went idle, and a message over NATS passes through the
/// bridges of both ends twice per round trip: four such wake-ups doubled
/// the round trip. Polling for longer than a round trip keeps a
/// conversation awake (a round trip through NATS takes 100–200 µs on
/// loopback); an idle bridge still sleeps.
struct Busy {
    started: Instant,
    /// How long to poll after bytes, in ns.
    window: u64,
    /// When bytes last went through, in ns since `started`.
    last: std::sync::atomic::AtomicU64,
    wake: tokio::sync::Notify,
}

impl Busy {
    fn new(poll: Duration) -> Self {
        Self {
            started: Instant::now(),
            window: u64::try_from(poll.as_nanos()).unwrap_or(u64::MAX),
            last: Default::default(),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// `bytes` went through: a conversation, unless they are one lone
    /// heartbeat (idle links exchange one a second; no reason to poll).
    fn saw(&self, bytes: &[u8]) {
        if !is_lone_heartbeat(bytes) {
            self.mark();
        }
    }

    /// Bytes went through.
    fn mark(&self) {
        self.last.store(self.now(), std::sync::atomic::Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Runs for ever: yields (so the runtime polls its sockets without
    /// blocking) while bytes went through in the last `window`, waits for
    /// the next bytes otherwise.
    async fn poll(self: Arc<Self>) {
        loop {
            let last = self.last.load(std::sync::atomic::Ordering::Relaxed);
            if self.window > 0 && self.now().saturating_sub(last) < self.window {
                // Let other threads of this CPU run, too.
                std::thread::yield_now();
                tokio::task::yield_now().await;
            } else {
                self.wake.notified().await;
            }
        }
    }
}

/// The shortest period of the announcement tick.
const MIN_TICK: Duration = Duration::from_millis(10);

/// The bounds of another manager's announced expiry.
const MIN_EXPIRY: Duration = Duration::from_millis(100);
const MAX_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// Whether `bytes` are exactly one HEARTBEAT frame.
fn is_lone_heartbeat(bytes: &[u8]) -> bool {
    matches!(
        connection::FrameDecoder::new(connection::DEFAULT_MAX_FRAME).decode(bytes),
        Ok(Some((frame, used))) if used == bytes.len() && frame.header.kind == connection::FrameKind::Heartbeat
    )
}

/// What a manager says of itself on `ipchnl.announce`.
#[derive(Debug, Serialize, Deserialize)]
struct Announce {
    node: NodeId,
    name: String,
    /// This start of the node, in hex: a new one means a new link.
    incarnation: String,
    /// Not heard of for this long (ms), the node is gone. It announces
    /// itself three times as often. Absent: the receiver's own expiry.
    #[serde(default)]
    expiry_ms: Option<u64>,
    /// It is leaving.
    #[serde(default)]
    bye: bool,
}

/// The subject that carries link `link`'s bytes from `from` to `to`.
fn link_subject(to: NodeId, from: NodeId, link: u64) -> String {
    format!("ipchnl.link.{to}.{from}.{link:016x}")
}

/// The sending node and link of a link subject addressed to us.
fn parse_link_subject(subject: &str) -> Option<(NodeId, u64)> {
    let mut parts = subject.rsplitn(3, '.');
    let link = u64::from_str_radix(parts.next()?, 16).ok()?;
    let from = parts.next()?.parse().ok()?;
    Some((from, link))
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
        link: u64,
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
    pub(crate) fn start(port: LinkPort, addr: &NatsAddr) -> Result<Self, ManagerError> {
        let (asks, asks_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let addr_shown = addr.to_string();
        let addr = addr.clone();
        let name = format!("{}-nats", port.config().identity.name);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(ManagerError::Io(e)));
                    return;
                }
            };
            runtime.block_on(run(port, addr, asks_rx, ready_tx));
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
    port: &LinkPort,
    addr: &NatsAddr,
    notes: mpsc::UnboundedSender<Note>,
) -> Result<Client, ManagerError> {
    let mut options = addr
        .connect_options()
        .name(format!("ipchnl {}", port.config().identity.node_name))
        .connection_timeout(port.config().link.handshake_timeout)
        .event_callback(move |event| {
            let notes = notes.clone();
            async move {
                let _ = notes.send(Note::Nats(event));
            }
        });
    if let Some(path) = &port.config().nats.credentials {
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
/// Dropping it closes the pair, and so the link.
struct Pair {
    link: u64,
    to_socket: mpsc::Sender<Bytes>,
}

/// What the bridge knows of another manager.
struct Known {
    /// Empty until its first announce (when it dialed us first).
    incarnation: String,
    seen: Instant,
    /// Gone when not heard of for this long (its own announced expiry).
    expiry: Duration,
    pair: Option<Pair>,
}

impl Known {
    /// Heard of just now, its incarnation not yet announced.
    fn new(expiry: Duration) -> Self {
        Self { incarnation: String::new(), seen: Instant::now(), expiry, pair: None }
    }
}

struct Bridging {
    port: LinkPort,
    client: Client,
    me: NodeId,
    /// Ours, and that of a node until it announces its own.
    expiry: Duration,
    announce: Bytes,
    known: HashMap<NodeId, Known>,
    notes: mpsc::UnboundedSender<Note>,
    busy: Arc<Busy>,
    /// The connection was lost and has not come back yet.
    away: bool,
    pumps: tokio::task::JoinSet<()>,
}

async fn run(
    port: LinkPort,
    addr: NatsAddr,
    mut asks: mpsc::UnboundedReceiver<Ask>,
    ready: crossbeam_channel::Sender<Result<(), ManagerError>>,
) {
    let (notes, mut notes_rx) = mpsc::unbounded_channel();
    let client = match connect(&port, &addr, notes.clone()).await {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let me = port.node_id();
    let subscribed = async {
        let announces = client.subscribe(ANNOUNCE).await?;
        let links = client.subscribe(format!("ipchnl.link.{me}.*.*")).await?;
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
            name: port.config().identity.node_name.clone(),
            incarnation: hex(port.incarnation()),
            expiry_ms: Some(u64::try_from(port.config().nats.expiry.as_millis()).unwrap_or(u64::MAX)),
            bye,
        };
        Bytes::from(serde_json::to_vec(&a).unwrap_or_default())
    };
    let mut b = Bridging {
        port: port.clone(),
        client,
        me,
        expiry: port.config().nats.expiry,
        announce: announce(false),
        known: HashMap::new(),
        notes,
        busy: Arc::new(Busy::new(port.config().nats.poll)),
        away: false,
        pumps: tokio::task::JoinSet::new(),
    };
    let busy = tokio::spawn(b.busy.clone().poll());
    b.say_hello().await;
    info!(%addr, node = %me, "linked through NATS");
    let _ = ready.send(Ok(()));

    let expiry = port.config().nats.expiry;
    // (A zero period would panic: an expiry below 30 ms ticks every 10.)
    let mut tick = tokio::time::interval((expiry / 3).max(MIN_TICK));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ask = asks.recv() => match ask {
                Some(Ask::Leave) | None => break,
            },
            Some(note) = notes_rx.recv() => b.on_note(note).await,
            Some(msg) = announces.next() => b.on_announce(&msg.payload).await,
            Some(msg) = links.next() => b.on_link_bytes(msg.subject.as_str(), msg.payload).await,
            _ = tick.tick() => b.on_tick().await,
            Some(_) = b.pumps.join_next(), if !b.pumps.is_empty() => {}
        }
    }
    busy.abort();
    // Leaving: the executors have closed their links; what they wrote last
    // (CLOSE frames) is still on its way through the pumps.
    let drained = async { while b.pumps.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(DRAIN, drained).await;
    // Goodbye, unless NATS is away (then the others' expiry does it).
    let bye = async {
        b.client.publish(ANNOUNCE, announce(true)).await.map_err(|e| e.to_string())?;
        b.client.flush().await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(DRAIN, bye).await {
        Ok(Ok(())) => debug!(node = %me, "left NATS"),
        Ok(Err(e)) => debug!(node = %me, error = %e, "left NATS without a goodbye"),
        Err(_) => debug!(node = %me, "left NATS without a goodbye (no connection)"),
    }
}

impl Bridging {
    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    async fn say_hello(&self) {
        // Not while NATS is away: the client would queue every tick's
        // announcement, and once its queue was full, wait, and this loop
        // with it. The announcement on reconnection does instead.
        if !self.connected() {
            return;
        }
        if let Err(e) = self.client.publish(ANNOUNCE, self.announce.clone()).await {
            warn!(error = %e, "cannot announce on NATS");
        }
    }

    async fn on_note(&mut self, note: Note) {
        match note {
            Note::Nats(Event::Disconnected) => {
                // As for a link that goes down: every pair closes, with the
                // reports that brings; they come back with the server.
                // (Forgetting a manager drops its pair, which closes the link.)
                warn!("NATS connection lost; closing the links through it");
                self.known.clear();
                self.away = true;
            }
            Note::Nats(Event::Connected) => {
                if std::mem::take(&mut self.away) {
                    info!("NATS connection back");
                }
                self.say_hello().await;
            }
            Note::Nats(event) => debug!(%event, "NATS event"),
            Note::PairEnded { node, link } => {
                if let Some(known) = self.known.get_mut(&node)
                    && known.pair.as_ref().is_some_and(|p| p.link == link)
                {
                    known.pair = None;
                }
                // Tell the other side, whose link may still be up (unless
                // NATS is away, and the other side's links with it).
                if self.connected() {
                    let _ = self.client.publish(link_subject(node, self.me, link), Bytes::new()).await;
                }
            }
        }
    }

    async fn on_announce(&mut self, payload: &[u8]) {
        let Ok(a) = serde_json::from_slice::<Announce>(payload) else {
            return debug!("an announce that does not parse");
        };
        if a.node == self.me {
            if a.incarnation != hex(self.port.incarnation()) {
                warn!(name = %a.name, "another manager on NATS has this node's name (and so its id): \
                    neither can reach the other");
            }
            return;
        }
        if a.bye {
            if self.known.remove(&a.node).is_some() {
                debug!(node = %a.node, name = %a.name, "left NATS");
            }
            return;
        }
        let now = Instant::now();
        let dialer = self.me < a.node;
        // Within bounds: a forged or mistaken announcement must not make us
        // drop a link on every tick.
        let expiry = a.expiry_ms.map_or(self.expiry, Duration::from_millis).clamp(MIN_EXPIRY, MAX_EXPIRY);
        let known = self.known.entry(a.node).or_insert_with(|| Known::new(expiry));
        known.seen = now;
        known.expiry = expiry;
        let fresh = known.incarnation != a.incarnation;
        if fresh {
            debug!(node = %a.node, name = %a.name, "met on NATS");
            let restarted = !known.incarnation.is_empty();
            known.incarnation = a.incarnation;
            if restarted && dialer {
                // Our link went to its previous start: dial the new one.
                // (Were we the acceptor, its new dial replaces the link.)
                known.pair = None;
            }
            // Let it know of us at once rather than at our next tick.
            self.say_hello().await;
        }
        if dialer && self.known.get(&a.node).is_some_and(|k| k.pair.is_none()) {
            let link = getrandom::u64().unwrap_or_else(|_| rand_fallback());
            self.open_pair(a.node, link, Role::Client);
        }
    }

    async fn on_link_bytes(&mut self, subject: &str, payload: Bytes) {
        let Some((from, link)) = parse_link_subject(subject) else {
            return debug!(subject, "link bytes on a subject that does not parse");
        };
        let open = self
            .known
            .get(&from)
            .and_then(|k| k.pair.as_ref())
            .filter(|p| p.link == link)
            .map(|p| p.to_socket.clone());
        match (open, payload.is_empty()) {
            (Some(_), true) => {
                // The other side closed: so do we (the link reports it).
                if let Some(k) = self.known.get_mut(&from) {
                    k.pair = None;
                }
            }
            (Some(to_socket), false) => {
                self.busy.saw(&payload);
                if to_socket.try_send(payload).is_err() {
                    // The link's executor reads none of it (its caps) while
                    // the peer sends far past its window: bounded, so the
                    // link is closed (it reports what it carried).
                    warn!(%from, "a NATS link's queue is full; closing it");
                    if let Some(k) = self.known.get_mut(&from) {
                        k.pair = None;
                    }
                }
            }
            (None, true) => {}
            (None, false) if from < self.me && connection::starts_hello(&payload) => {
                // A lower node dials us: accept; a link we had with it
                // before is replaced (it has given up on it, or restarted).
                let expiry = self.expiry;
                let known = self.known.entry(from).or_insert_with(|| Known::new(expiry));
                known.seen = Instant::now();
                known.pair = None;
                if let Some(pair) = self.open_pair(from, link, Role::Server) {
                    let _ = pair.try_send(payload);
                }
            }
            (None, false) => {
                // Bytes of a link we do not have: tell it to close.
                let _ = self.client.publish(link_subject(from, self.me, link), Bytes::new()).await;
            }
        }
    }

    async fn on_tick(&mut self) {
        self.say_hello().await;
        let now = Instant::now();
        self.known.retain(|node, k| {
            let alive = now.duration_since(k.seen) < k.expiry;
            if !alive {
                info!(%node, "not heard of on NATS: gone");
            }
            alive
        });
    }

    /// Makes a socket pair for link `link` with `node`, hands one end to an
    /// executor as a link in `role`, and pumps the other; the sender into
    /// the socket.
    fn open_pair(&mut self, node: NodeId, link: u64, role: Role) -> Option<mpsc::Sender<Bytes>> {
        let pair = match socket_pair() {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "cannot make a socket pair for a NATS link");
                return None;
            }
        };
        let (ours, theirs) = pair;
        let ours = match tokio::net::UnixStream::from_std(ours) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot watch a socket pair");
                return None;
            }
        };
        let (to_socket, from_nats) = mpsc::channel(LINK_QUEUE);
        if let Err(e) = self.port.adopt(theirs, role) {
            warn!(error = %e, "cannot hand a NATS link to an executor");
            return None;
        }
        let busy = self.busy.clone();
        self.pumps.spawn(pump(
            ours,
            from_nats,
            self.client.clone(),
            link_subject(node, self.me, link),
            busy,
            {
                let notes = self.notes.clone();
                move || {
                    let _ = notes.send(Note::PairEnded { node, link });
                }
            },
        ));
        debug!(%node, link = format_args!("{link:016x}"), ?role, "NATS link opened");
        if let Some(k) = self.known.get_mut(&node) {
            k.pair = Some(Pair { link, to_socket: to_socket.clone() });
        }
        Some(to_socket)
    }
}

/// NATS messages of one link waiting to be written to its socket, at
/// most. A peer within its window never has more in flight (each message
/// carries at least one frame, and a window is 1,024 messages); one that
/// sends past it has its link closed rather than grow this queue.
const LINK_QUEUE: usize = 4096;

/// A link number when the system's randomness fails: the clock's
/// nanoseconds (unique enough: a node opens a link per peer at a time).
fn rand_fallback() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
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
    mut from_nats: mpsc::Receiver<Bytes>,
    client: Client,
    subject: String,
    busy: Arc<Busy>,
    ended: impl FnOnce(),
) {
    let (mut read, mut write) = socket.into_split();
    let outbound = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    busy.saw(&buf[..n]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_subject_names_the_sender_and_the_link() {
        let (to, from) = (NodeId::of_name("to"), NodeId::of_name("from"));
        let subject = link_subject(to, from, 0xfeed);
        assert_eq!(subject, format!("ipchnl.link.{to}.{from}.000000000000feed"));
        assert_eq!(parse_link_subject(&subject), Some((from, 0xfeed)));
        for bad in ["", "ipchnl.link", "ipchnl.link.x.y.z", &format!("ipchnl.link.{to}.{from}.nothex")] {
            assert_eq!(parse_link_subject(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_a_lone_heartbeat_lets_the_bridge_sleep() {
        let mut heartbeat = Vec::new();
        let header = connection::FrameHeader::new(connection::FrameKind::Heartbeat);
        connection::encode_frame(&header, &[], connection::DEFAULT_MAX_FRAME, &mut heartbeat).unwrap();
        assert!(is_lone_heartbeat(&heartbeat));
        let two: Vec<u8> = heartbeat.iter().chain(&heartbeat).copied().collect();
        assert!(!is_lone_heartbeat(&two));
        assert!(!is_lone_heartbeat(&heartbeat[..heartbeat.len() - 1]));
        assert!(!is_lone_heartbeat(b"not a frame at all"));
    }

    #[test]
    fn an_announcement_reads_without_its_optional_fields() {
        let node = NodeId::of_name("n");
        let a: Announce =
            serde_json::from_str(&format!(r#"{{"node":"{node}","name":"n","incarnation":"00"}}"#)).unwrap();
        assert_eq!((a.node, a.expiry_ms, a.bye), (node, None, false));
        assert!(serde_json::from_str::<Announce>(r#"{"node":"zz"}"#).is_err());
    }
}
