//! Shared-memory links (`shm:NAME`): the link's bytes move through
//! iceoryx2 publish-subscribe services, one per direction, and a Unix
//! socket beside them does the rest.
//!
//! * **Rendezvous.** A listener on `shm:NAME` is a Unix socket
//!   ([`socket_path`], mode 0600, its peers checked as on `unix:`). The
//!   dialer creates the link's services under a random id, sends a hello
//!   naming them ([`HELLO_LEN`] bytes), and waits for the listener's
//!   `READY` (its own ports exist: nothing sent before is lost).
//! * **Bytes.** Each write publishes samples of at most [`CHUNK`] bytes; a
//!   side never has more than [`RING`] of them unread at the other
//!   (credits: each side publishes how many it has read on a small state
//!   service), so a sample is never dropped for want of room, and a
//!   reader that stops reading stops only its own link.
//! * **Wake-ups.** A reader polls while its executor spins. Before it
//!   sleeps it announces so on its state service and looks once more;
//!   a writer that publishes looks at the reader's state afterwards and,
//!   if it sleeps, rings it with one byte on the socket (at most once per
//!   sleep). Both sides fence between their publish and their look
//!   (Dekker): one of them sees the other. So an executor waits for
//!   shared-memory links where it waits for its sockets (`epoll`), and an
//!   idle process uses no CPU.
//! * **Ends.** The socket is the link's life: a peer that exits, or is
//!   killed, closes it, and the link ends at once (after what was
//!   published before). A peer killed with `kill -9` leaves its
//!   shared-memory objects: the survivor removes a dead node's resources
//!   when its link ends, and any new node does at its creation.
//!
//! Everything iceoryx2 creates is the user's only: its objects in
//! `/dev/shm` carry the prefix [`prefix`] (mode 0600), its other files sit
//! in a directory of mode 0700 ([`root_dir`]).

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Mutex, PoisonError};

use iceoryx2::config::Config;
use iceoryx2::node::{Node, NodeBuilder, NodeState, NodeView};
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::{
    BackpressureStrategy, CallbackProgression, FileName, Path as IoxPath, SemanticString, ServiceName,
    SignalHandlingMode, ipc,
};
use mio::event::Source;
use mio::{Interest, Registry, Token};
use rustc_hash::FxHashMap;
use tracing::debug;

use super::unix::UnixListener;
use super::{Accept, Flavor, Listener, Readiness, Stream};
use crate::admission::PeerUser;
use crate::config::UnixPeers;
use crate::{Addr, ManagerError};

/// The iceoryx2 service kind: its ports stay on the thread that made
/// them (see [`PORTS`]). The kind whose ports may move between threads
/// locks a mutex in each call: a round trip between two processes of bare
/// iceoryx2 took 1.24 µs with it, 0.93 µs without.
type Svc = ipc::Service;

thread_local! {
    /// The ports of this thread's shared-memory links, by [`ShmStream`]
    /// key. A link's ports are made on its executor's thread (a dialer's
    /// at the dial, a listener's at the hello) and the link never moves
    /// after that (an accepted `shm:` connection goes to its executor
    /// before its handshake): a stream that finds no ports here reports an
    /// error and its link ends, nothing worse.
    static PORTS: RefCell<FxHashMap<u64, Ports>> = RefCell::new(FxHashMap::default());
}

/// Keys of [`PORTS`] entries, unique in the process.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// Runs `f` with the ports of `key` (this thread's).
fn with_ports<R>(key: u64, f: impl FnOnce(&Ports) -> io::Result<R>) -> io::Result<R> {
    PORTS.with(|ports| match ports.borrow().get(&key) {
        Some(p) => f(p),
        None => Err(io::Error::other("shared memory: the link's ports are on another thread")),
    })
}

/// Keeps `ports` for this thread; their key.
fn keep(ports: Ports) -> u64 {
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    PORTS.with(|p| p.borrow_mut().insert(key, ports));
    key
}

/// The largest sample: a write of more is published as several. A part
/// of a large message (64 KiB) fits in one: 16 KiB samples spent a fifth
/// of the time in iceoryx2's per-sample work.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Samples a writer may have published that the reader has not read: the
/// reader's queue holds this many, so none is ever dropped (1 MiB a
/// direction per link).
pub(crate) const RING: usize = 16;

/// The dialer's first bytes on the socket: [`HELLO_MAGIC`] and the link's
/// id, [`ID_LEN`] lowercase hex digits.
pub(crate) const HELLO_LEN: usize = HELLO_MAGIC.len() + ID_LEN;
const HELLO_MAGIC: &[u8; 12] = b"ipchnl-shm2 ";
const ID_LEN: usize = 24;

/// The listener's answer to the hello: its ports exist.
const READY: u8 = b'R';
/// A wake-up: the other side published while this one slept.
const BELL: u8 = b'B';

/// Bytes a dialer takes before the listener is ready (its handshake).
const PENDING_MAX: usize = CHUNK;

/// State word bits: the side is (about to be) asleep; it has bytes to
/// write and waits for credits.
const ASLEEP: u64 = 1;
const BLOCKED: u64 = 2;

/// The rendezvous socket of `shm:NAME`.
pub(crate) fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ipchnl-shm-{name}.sock"))
}

/// The prefix of this user's iceoryx2 objects in `/dev/shm`.
pub(crate) fn prefix() -> String {
    format!("ipchnl{}_", rustix::process::geteuid().as_raw())
}

/// This user's iceoryx2 directory (nodes, services, event sockets).
pub(crate) fn root_dir() -> PathBuf {
    std::env::temp_dir().join(format!("ipchnl-iox-{}", rustix::process::geteuid().as_raw()))
}

fn config() -> io::Result<Config> {
    config_for(&prefix())
}

/// An iceoryx2 configuration of this user's alone: objects in `/dev/shm`
/// named with `prefix`, other files in [`root_dir`] (made, or checked to
/// be, a directory of this user's with mode 0700).
fn config_for(prefix: &str) -> io::Result<Config> {
    let root = root_dir();
    match std::fs::DirBuilder::new().mode(0o700).create(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(&root)?;
    let own = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != own || meta.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a directory of this user's alone", root.display()),
        ));
    }
    let mut c = Config::default();
    c.global.prefix = FileName::new(prefix.as_bytes()).map_err(iox)?;
    let mut path = root.into_os_string().into_encoded_bytes();
    path.push(b'/');
    c.global.set_root_path(&IoxPath::new(&path).map_err(iox)?);
    Ok(c)
}

fn iox(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("shared memory: {e:?}"))
}

/// An iceoryx2 node of this user's alone whose objects in `/dev/shm` are
/// named with `prefix` (ipchnl's links use `ipchnl<uid>_`), made as the
/// links make theirs: for bare iceoryx2 baselines beside them.
#[doc(hidden)]
pub fn private_node(prefix: &str) -> io::Result<Node<Svc>> {
    node(&config_for(prefix)?, prefix)
}

fn node(config: &Config, prefix: &str) -> io::Result<Node<Svc>> {
    let node = NodeBuilder::new()
        .config(config)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<Svc>()
        .map_err(iox)?;
    // iceoryx2 keeps a node counter in a world-writable object that
    // outlives every node; it is needed only while a node is made (ids
    // also carry the process id and the time), so it goes at once.
    remove_counter(prefix);
    Ok(node)
}

fn remove_counter(prefix: &str) {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else { return };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(".global_mgmt") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes what nodes of this user that died (killed, crashed) left in
/// shared memory.
pub(crate) fn remove_dead_nodes() {
    let Ok(config) = config() else { return };
    let mut dead = Vec::new();
    let listed = Node::<Svc>::list(&config, |state| {
        if let NodeState::Dead(view) = state {
            dead.push(view);
        }
        CallbackProgression::Continue
    });
    if let Err(e) = listed {
        debug!(error = ?e, "shared-memory nodes not listed");
    }
    for view in dead {
        if let Err(e) = view.try_remove_stale_resources() {
            debug!(error = ?e, "a dead node's shared memory not removed");
        }
    }
}

/// Whether a node of process `pid` is listed (alive or not).
fn has_node_of(config: &Config, pid: u32) -> bool {
    let mut found = false;
    let _ = Node::<Svc>::list(config, |state| {
        let id = match &state {
            NodeState::Alive(v) => v.id().pid::<Svc>().ok(),
            NodeState::Dead(v) => v.id().pid::<Svc>().ok(),
            NodeState::Inaccessible(_) | NodeState::Undefined(_) => None,
        };
        found |= id.is_some_and(|p| p.value() as u32 == pid);
        CallbackProgression::Continue
    });
    found
}

/// Whether process `pid` has ended (gone, or a zombie).
fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|s| s == "Z" || s == "X"),
        Err(_) => true,
    }
}

/// Removes what the peer process `pid`, whose link just ended, left in
/// shared memory if it died. Its socket may close a moment before its
/// node is seen dead (the lock that says it lives is released with its
/// files), so one thread for the whole process looks again, for up to a
/// second per peer, and ends when it has no peer left to look at.
fn reap(pid: u32) {
    if pid == std::process::id() {
        return; // a link to this very process: it lives
    }
    let mut reaping = REAPING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(list) = reaping.as_mut() {
        if !list.iter().any(|(p, _)| *p == pid) {
            list.push((pid, REAP_LOOKS));
        }
        return;
    }
    *reaping = Some(vec![(pid, REAP_LOOKS)]);
    drop(reaping);
    if let Err(e) = std::thread::Builder::new().name("ipchnl-shm-reap".into()).spawn(reaper) {
        debug!(error = %e, "no thread to remove a dead peer's shared memory");
        *REAPING.lock().unwrap_or_else(PoisonError::into_inner) = None;
        remove_dead_nodes();
    }
}

/// Peer processes whose links ended, with the looks left for each, while
/// the reaper thread runs (`None`: it does not).
static REAPING: Mutex<Option<Vec<(u32, u32)>>> = Mutex::new(None);

/// The reaper thread of [`reap`]: every [`REAP_PAUSE`], for each peer that
/// has ended, removes dead nodes' leftovers; forgets a peer with no node
/// left, and any peer after [`REAP_LOOKS`] (one that lives on closed its
/// link, it did not die); ends with no peer left.
fn reaper() {
    let config = config().ok();
    loop {
        std::thread::sleep(REAP_PAUSE);
        let peers = match REAPING.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            Some(list) => list.clone(),
            None => return,
        };
        let mut done = Vec::new();
        for (pid, _) in &peers {
            // A living peer costs a look at /proc only; its nodes are
            // listed only once it has ended.
            if !has_ended(*pid) {
                continue;
            }
            remove_dead_nodes();
            if config.as_ref().is_none_or(|c| !has_node_of(c, *pid)) {
                done.push(*pid);
            }
        }
        let mut reaping = REAPING.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(list) = reaping.as_mut() else { return };
        list.retain_mut(|(pid, looks)| {
            *looks = looks.saturating_sub(1);
            !done.contains(pid) && *looks > 0
        });
        if list.is_empty() {
            *reaping = None;
            return;
        }
    }
}

/// How many times, how far apart, [`reap`] looks.
const REAP_LOOKS: u32 = 100;
const REAP_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// One side's ports; the node goes last.
struct Ports {
    data_tx: Publisher<Svc, [u8], ()>,
    data_rx: Subscriber<Svc, [u8], ()>,
    state_tx: Publisher<Svc, [u64; 2], ()>,
    state_rx: Subscriber<Svc, [u64; 2], ()>,
    _node: Node<Svc>,
}

impl Ports {
    /// The dialer creates the link's services (`create`); the listener
    /// opens them.
    fn new(id: &str, dialer: bool) -> io::Result<Self> {
        let node = node(&config()?, &prefix())?;
        let name = |dir: &str| -> io::Result<ServiceName> {
            ServiceName::new(&format!("ipchnl/{id}/{dir}")).map_err(iox)
        };
        let data = |dir: &str| -> io::Result<_> {
            let b = node
                .service_builder(&name(dir)?)
                .publish_subscribe::<[u8]>()
                .max_publishers(1)
                .max_subscribers(1)
                .max_nodes(2)
                .history_size(0)
                .subscriber_max_buffer_size(RING)
                .enable_safe_overflow(false);
            if dialer { b.create().map_err(iox) } else { b.open().map_err(iox) }
        };
        let state = |dir: &str| -> io::Result<_> {
            let b = node
                .service_builder(&name(dir)?)
                .publish_subscribe::<[u64; 2]>()
                .max_publishers(1)
                .max_subscribers(1)
                .max_nodes(2)
                .history_size(0)
                .subscriber_max_buffer_size(1)
                .enable_safe_overflow(true);
            if dialer { b.create().map_err(iox) } else { b.open().map_err(iox) }
        };
        let (out, back) = if dialer { ("up", "down") } else { ("down", "up") };
        let (data_out, data_in) = (data(out)?, data(back)?);
        let (state_out, state_in) = (state(&format!("{out}-state"))?, state(&format!("{back}-state"))?);
        Ok(Self {
            data_tx: data_out
                .publisher_builder()
                .initial_max_slice_len(CHUNK)
                .backpressure_strategy(BackpressureStrategy::DiscardData)
                .create()
                .map_err(iox)?,
            data_rx: data_in.subscriber_builder().create().map_err(iox)?,
            state_tx: state_out.publisher_builder().create().map_err(iox)?,
            state_rx: state_in.subscriber_builder().create().map_err(iox)?,
            _node: node,
        })
    }
}

/// Where the rendezvous is.
enum Phase {
    /// Listener: reading the dialer's hello.
    Hello { got: [u8; HELLO_LEN], len: usize },
    /// Dialer: waiting for the listener's `READY`.
    Ready,
    /// Bytes flow.
    Up,
}

/// A shared-memory link's stream: bytes through shared memory, the
/// rendezvous, wake-ups and the link's end through the socket.
pub(crate) struct ShmStream {
    sock: mio::net::UnixStream,
    /// The process at the other end (from the socket's credentials).
    peer_pid: Option<u32>,
    phase: Phase,
    /// Its entry in this thread's [`PORTS`], once they exist.
    ports: Option<u64>,
    /// What the socket still has to send (the hello, `READY`).
    sock_out: Vec<u8>,
    /// What a dialer took before `READY`.
    pending: Vec<u8>,
    /// A sample's bytes the last read had no room for.
    rest: Vec<u8>,
    rest_at: usize,
    /// An event said the socket has something (bells, the hello, its end).
    sock_readable: bool,
    /// The socket ended.
    eof: bool,
    /// Samples published, and what the other side said it has read.
    sent: u64,
    peer_read: u64,
    /// Samples read, and what of that was published.
    read: u64,
    read_published: u64,
    /// This side's sleeps announced; it waits for credits.
    epoch: u64,
    blocked: bool,
    /// The other side's last state word, and the sleep last rung.
    peer_state: u64,
    rung: u64,
}

impl ShmStream {
    /// Dials `shm:NAME`: connects its socket, creates the link's
    /// services, and queues the hello.
    pub(crate) fn connect(name: &str) -> io::Result<Self> {
        let sock = mio::net::UnixStream::connect(socket_path(name))?;
        let mut random = [0u8; ID_LEN / 2];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let id = hex::encode(random);
        let ports = keep(Ports::new(&id, true)?);
        let mut s = Self::with(sock, Phase::Ready, Some(ports));
        s.sock_out.extend_from_slice(HELLO_MAGIC);
        s.sock_out.extend_from_slice(id.as_bytes());
        Ok(s)
    }

    /// A connection accepted on a `shm:` listener: its hello comes next.
    pub(crate) fn accepted(sock: mio::net::UnixStream) -> Self {
        Self::with(sock, Phase::Hello { got: [0; HELLO_LEN], len: 0 }, None)
    }

    fn with(sock: mio::net::UnixStream, phase: Phase, ports: Option<u64>) -> Self {
        let peer_pid = rustix::net::sockopt::socket_peercred(&sock)
            .ok()
            .and_then(|c| u32::try_from(c.pid.as_raw_nonzero().get()).ok());
        Self {
            sock,
            peer_pid,
            phase,
            ports,
            sock_out: Vec::new(),
            pending: Vec::new(),
            rest: Vec::new(),
            rest_at: 0,
            sock_readable: true,
            eof: false,
            sent: 0,
            peer_read: 0,
            read: 0,
            read_published: 0,
            epoch: 0,
            blocked: false,
            peer_state: 0,
            rung: 0,
        }
    }

    /// The socket (peer credentials, connect state, shutdown).
    pub(crate) fn socket(&self) -> &mio::net::UnixStream {
        &self.sock
    }

    /// Readiness of the socket: read it on the next [`read`](Self::read).
    pub(crate) fn note_readable(&mut self) {
        self.sock_readable = true;
    }

    /// Reads what was published (or the socket's end: `Ok(0)`).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut at = 0;
        self.read_with(buf.len(), |bytes| {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        })
    }

    /// As [`read`](Self::read), appending at most `max` bytes to `body`
    /// straight from the samples.
    pub(crate) fn read_into(&mut self, body: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        self.read_with(max, |bytes| body.extend_from_slice(bytes))
    }

    /// Reads at most `max` bytes of what was published, handing them to
    /// `put` in order.
    fn read_with(&mut self, max: usize, mut put: impl FnMut(&[u8])) -> io::Result<usize> {
        self.flush_sock()?;
        if self.sock_readable {
            self.read_sock()?;
        }
        let mut n = 0;
        if self.rest_at < self.rest.len() {
            n = (self.rest.len() - self.rest_at).min(max);
            put(&self.rest[self.rest_at..self.rest_at + n]);
            self.rest_at += n;
        }
        if let (Phase::Up, Some(key)) = (&self.phase, self.ports) {
            let (read, rest, rest_at) = (&mut self.read, &mut self.rest, &mut self.rest_at);
            n = with_ports(key, |ports| {
                while n < max {
                    let Some(sample) = ports.data_rx.receive().map_err(iox)? else { break };
                    *read += 1;
                    let bytes = sample.payload();
                    if bytes.is_empty() {
                        continue; // never sent by ipchnl; no end of stream
                    }
                    let k = bytes.len().min(max - n);
                    put(&bytes[..k]);
                    n += k;
                    if k < bytes.len() {
                        rest.clear();
                        rest.extend_from_slice(&bytes[k..]);
                        *rest_at = 0;
                    }
                    if bytes.len() < CHUNK {
                        // The end of a write: more is unlikely this soon,
                        // and a look that finds nothing costs as much as a
                        // read.
                        break;
                    }
                }
                Ok(n)
            })?;
            if self.read - self.read_published >= RING as u64 / 2 {
                match self.publish_state(0) {
                    // What was read is delivered; the error comes again.
                    Err(e) if n == 0 => return Err(e),
                    _ => {}
                }
            }
        }
        match n {
            0 if self.eof => Ok(0),
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    /// Publishes what the credits allow of `buf`.
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.flush_sock()?;
        if self.eof {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        match self.phase {
            Phase::Up => {}
            Phase::Ready => {
                let n = buf.len().min(PENDING_MAX - self.pending.len());
                if n == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                self.pending.extend_from_slice(&buf[..n]);
                return Ok(n);
            }
            Phase::Hello { .. } => return Err(io::ErrorKind::WouldBlock.into()),
        }
        let n = self.publish(buf)?;
        self.blocked = n < buf.len();
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn publish(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(key) = self.ports else { return Ok(0) };
        let mut n = 0;
        while n < buf.len() {
            if self.sent - self.peer_read >= RING as u64 {
                self.refresh_peer()?;
                if self.sent - self.peer_read >= RING as u64 {
                    break;
                }
            }
            let k = (buf.len() - n).min(CHUNK);
            let delivered = with_ports(key, |ports| {
                let sample = ports.data_tx.loan_slice_uninit(k).map_err(iox)?;
                sample.write_from_slice(&buf[n..n + k]).send().map_err(iox)
            })?;
            if delivered == 0 {
                // Credits say there was room: the reader is gone.
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "shared memory: the reader is gone"));
            }
            self.sent += 1;
            n += k;
        }
        if n > 0 {
            self.ring_if_asleep(false)?;
        }
        Ok(n)
    }

    /// Publishes this side's state: `flags` and what it has read.
    fn publish_state(&mut self, flags: u64) -> io::Result<()> {
        let Some(key) = self.ports else { return Ok(()) };
        let state = [(self.epoch << 2) | flags, self.read];
        with_ports(key, |ports| ports.state_tx.send_copy(state).map_err(iox))?;
        self.read_published = self.read;
        // The other side may wait for these credits.
        self.ring_if_asleep(true)
    }

    /// Reads the other side's latest state.
    fn refresh_peer(&mut self) -> io::Result<()> {
        let Some(key) = self.ports else { return Ok(()) };
        let (peer_state, peer_read, sent) = (&mut self.peer_state, &mut self.peer_read, self.sent);
        with_ports(key, |ports| {
            while let Some(s) = ports.state_rx.receive().map_err(iox)? {
                let [word, read] = *s.payload();
                *peer_state = word;
                // Never backwards, and never past what was sent: a peer's
                // word is checked like its bytes.
                *peer_read = read.clamp(*peer_read, sent);
            }
            Ok(())
        })
    }

    /// After a publish: rings the other side if it sleeps (for credits:
    /// only if it waits for them), once per sleep.
    fn ring_if_asleep(&mut self, credits: bool) -> io::Result<()> {
        fence(Ordering::SeqCst);
        self.refresh_peer()?;
        let word = self.peer_state;
        let wants = !credits || word & BLOCKED != 0;
        if word & ASLEEP != 0 && wants && word != self.rung {
            self.rung = word;
            // A full socket has bells in it already; a closed one says so
            // to the reader, after what was published is read.
            if let Err(e) = Write::write(&mut self.sock, &[BELL]) {
                debug!(error = %e, "no bell rung");
            }
        }
        Ok(())
    }

    /// Announces that this side is going to sleep; whether there is work
    /// after all: bytes to read, credits to write with (then it must not).
    pub(crate) fn prepare_sleep(&mut self) -> io::Result<(bool, bool)> {
        if !matches!(self.phase, Phase::Up) {
            return Ok((false, false)); // the socket wakes it
        }
        self.epoch += 1;
        let flags = ASLEEP | if self.blocked { BLOCKED } else { 0 };
        self.publish_state(flags)?;
        // `publish_state` fenced after its publish.
        Ok((self.readable()?, self.writable()?))
    }

    /// Whether a read would find bytes (or the end).
    pub(crate) fn readable(&self) -> io::Result<bool> {
        if self.sock_readable || self.eof || self.rest_at < self.rest.len() {
            return Ok(true);
        }
        match (&self.phase, self.ports) {
            (Phase::Up, Some(key)) => with_ports(key, |p| p.data_rx.has_samples().map_err(iox)),
            _ => Ok(false),
        }
    }

    /// Whether a writer that was refused for want of credits has some now.
    pub(crate) fn writable(&mut self) -> io::Result<bool> {
        if !self.blocked {
            return Ok(false);
        }
        self.refresh_peer()?;
        Ok(self.sent - self.peer_read < RING as u64)
    }

    fn flush_sock(&mut self) -> io::Result<()> {
        while !self.sock_out.is_empty() {
            match Write::write(&mut self.sock, &self.sock_out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => drop(self.sock_out.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads the socket to its end for now: the hello, `READY`, bells.
    fn read_sock(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 64];
        loop {
            let want = match &self.phase {
                Phase::Hello { len, .. } => HELLO_LEN - len,
                _ => buf.len(),
            };
            let n = match Read::read(&mut self.sock, &mut buf[..want]) {
                Ok(0) => {
                    self.eof = true;
                    self.sock_readable = false;
                    return Ok(());
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.sock_readable = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // The end of the link (a reset: the peer closed with a
                    // bell unread); what it published is read first.
                    debug!(error = %e, "shared-memory link's socket ended");
                    self.eof = true;
                    self.sock_readable = false;
                    return Ok(());
                }
            };
            self.on_sock_bytes(&buf[..n])?;
        }
    }

    fn on_sock_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("shared memory: {what}"));
        match &mut self.phase {
            Phase::Hello { got, len } => {
                got[*len..*len + bytes.len()].copy_from_slice(bytes);
                *len += bytes.len();
                if *len < HELLO_LEN {
                    return Ok(());
                }
                let id = parse_hello(got).ok_or_else(|| bad("not a hello"))?.to_owned();
                self.ports = Some(keep(Ports::new(&id, false)?));
                self.phase = Phase::Up;
                self.sock_out.push(READY);
                self.flush_sock()
            }
            Phase::Ready => {
                if bytes[0] != READY {
                    return Err(bad("not ready"));
                }
                self.phase = Phase::Up;
                let pending = std::mem::take(&mut self.pending);
                if self.publish(&pending)? < pending.len() {
                    // Credits are the reader's whole queue: a handshake fits.
                    return Err(bad("the first bytes did not fit"));
                }
                self.on_sock_bytes_up(&bytes[1..])
            }
            Phase::Up => self.on_sock_bytes_up(bytes),
        }
    }

    fn on_sock_bytes_up(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.iter().any(|&b| b != BELL) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "shared memory: not a bell"));
        }
        Ok(())
    }
}

/// A blocking client of a `shm:` listener that speaks bytes, not a
/// session: for tests of what a manager would never send (garbage, cut
/// frames) over shared memory, as a `TcpStream` is over TCP. It waits by
/// polling (a pause of [`CONN_PAUSE`] between looks), up to its timeout.
#[doc(hidden)]
pub struct ShmConn {
    stream: ShmStream,
    timeout: std::time::Duration,
}

/// How long [`ShmConn`] pauses between two looks.
const CONN_PAUSE: std::time::Duration = std::time::Duration::from_micros(50);

impl ShmConn {
    /// Dials `shm:NAME`; reads and writes give up after `timeout`.
    pub fn connect(name: &str, timeout: std::time::Duration) -> io::Result<Self> {
        Ok(Self { stream: ShmStream::connect(name)?, timeout })
    }

    /// Ends what this side writes (the other side reads to its end).
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.stream.socket().shutdown(std::net::Shutdown::Write)
    }

    fn wait<R>(&mut self, mut attempt: impl FnMut(&mut ShmStream) -> io::Result<R>) -> io::Result<R> {
        let start = std::time::Instant::now();
        loop {
            // The socket is looked at every time: READY, and the end.
            self.stream.note_readable();
            match attempt(&mut self.stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            if start.elapsed() >= self.timeout {
                return Err(io::ErrorKind::TimedOut.into());
            }
            std::thread::sleep(CONN_PAUSE);
        }
    }
}

impl Read for ShmConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.wait(|s| s.read(buf))
    }
}

impl Write for ShmConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.wait(|s| {
            // A dialer learns that the listener is ready by reading.
            match s.read(&mut []) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            s.write(buf)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.wait(|s| if s.pending.is_empty() { Ok(()) } else { Err(io::ErrorKind::WouldBlock.into()) })
    }
}

/// The link id a hello names, if it is one.
pub(crate) fn parse_hello(hello: &[u8]) -> Option<&str> {
    let id = hello.strip_prefix(HELLO_MAGIC.as_slice())?;
    let ok = id.len() == ID_LEN && id.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    ok.then(|| std::str::from_utf8(id).ok()).flatten()
}

impl Source for ShmStream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.sock.register(r, t, i)
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.sock.reregister(r, t, i)
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.sock.deregister(r)
    }
}

impl Drop for ShmStream {
    fn drop(&mut self) {
        if let Some(key) = self.ports.take() {
            // Dropped out of the thread's table first: a port's drop
            // never finds the table borrowed. A thread that is ending has
            // dropped its table already.
            let ports = PORTS.try_with(|p| p.borrow_mut().remove(&key)).ok().flatten();
            drop(ports);
        }
        if let (true, Some(pid)) = (self.eof, self.peer_pid) {
            // The other side may have died: what it left goes.
            reap(pid);
        }
    }
}

/// Dials `shm:NAME`.
pub(crate) fn dial(name: &str) -> io::Result<Stream> {
    ShmStream::connect(name).map(|s| Stream::Shm(Box::new(s)))
}

/// Listens on `shm:NAME`: its rendezvous socket. The directory of this
/// user's shared-memory files is checked first (another user who made it
/// would get every link's objects): refused clearly, not link by link.
pub(crate) fn bind(name: &str, addr: &Addr) -> Result<(Listener, Addr), ManagerError> {
    config()?;
    let socket = UnixListener::bind(&socket_path(name), addr)?;
    Ok((Listener::Shm(ShmListener(socket)), addr.clone()))
}

/// A `shm:` listener: the Unix socket its dialers meet at.
pub(crate) struct ShmListener(UnixListener);

impl Accept for ShmListener {
    fn accept(&self) -> io::Result<Stream> {
        self.0.accept_socket().map(|s| Stream::Shm(Box::new(ShmStream::accepted(s))))
    }
}

impl Source for ShmListener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.0.register(r, t, i)
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.0.reregister(r, t, i)
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.0.deregister(r)
    }
}

/// A shared-memory stream's bytes come with no event (the executor polls
/// it); its socket's events (bells, the rendezvous, the end) are read on
/// the next read, and may let it write; its ports stay on their thread.
impl Flavor for ShmStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        ShmStream::read(self, buf)
    }

    fn read_into(&mut self, body: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        ShmStream::read_into(self, body, max)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        ShmStream::write(self, buf)
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    fn is_connected(&self) -> io::Result<bool> {
        super::connected(self.sock.peer_addr().map(drop))
    }

    fn shutdown(&self, how: std::net::Shutdown) {
        let _ = self.sock.shutdown(how);
    }

    fn check_peer(&self, peers: &UnixPeers) -> Result<(), String> {
        super::unix::check_peer(&self.sock, peers)
    }

    fn connected(&self, peers: &UnixPeers) -> Result<(), String> {
        super::unix::check_peer(&self.sock, peers)
            .map_err(|why| format!("the listener is not trusted: {why}"))
    }

    fn peer_user(&self) -> PeerUser {
        super::unix::peer_user(&self.sock)
    }

    fn is_polled(&self) -> bool {
        true
    }

    /// A sample at least: a turn that reads part of one pays a turn for
    /// each part (16 KiB turns of 64 KiB samples streamed large messages
    /// at 7.0 GB/s, whole samples at 8.0).
    fn turn_bytes(&self, read_budget: usize) -> usize {
        read_budget.max(CHUNK)
    }

    fn is_thread_bound(&self) -> bool {
        true
    }

    fn on_event(&mut self, readable: bool, writable: bool, _ended: bool, writable_known: bool) -> Readiness {
        if readable {
            self.note_readable();
        }
        // The socket's bytes (READY, a bell) may let it write: after they
        // are read. A short read is no sign that nothing follows.
        let writable = writable || (readable && !writable_known);
        Readiness { readable, writable, read_to_end: true, write_after_read: true }
    }

    fn poll(&mut self) -> io::Result<Readiness> {
        let writable = self.writable()?;
        let readable = self.readable()?;
        Ok(Readiness { readable, writable, read_to_end: true, write_after_read: false })
    }

    fn prepare_sleep(&mut self) -> io::Result<Readiness> {
        let (readable, writable) = ShmStream::prepare_sleep(self)?;
        Ok(Readiness { readable, writable, read_to_end: true, write_after_read: false })
    }

    fn before_final_read(&mut self) {
        self.note_readable(); // its socket's bells too
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener's side of a rendezvous whose dialer writes `bytes`.
    fn accepted_after(bytes: &[u8]) -> io::Result<usize> {
        let (mut dialer, listener) = std::os::unix::net::UnixStream::pair()?;
        listener.set_nonblocking(true)?;
        let mut s = ShmStream::accepted(mio::net::UnixStream::from_std(listener));
        dialer.write_all(bytes)?;
        s.read(&mut [0u8; 64])
    }

    #[test]
    fn a_bad_rendezvous_is_an_error_for_its_link_only() {
        let refused = |bytes: &[u8]| accepted_after(bytes).map_err(|e| e.kind());
        // Not a hello: refused from its bytes alone.
        assert_eq!(refused(&[b'x'; HELLO_LEN]), Err(io::ErrorKind::InvalidData));
        assert_eq!(refused(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"), Err(io::ErrorKind::InvalidData));
        // A hello naming no link: its services do not open.
        let hello = [HELLO_MAGIC.as_slice(), b"0123456789abcdef01234567"].concat();
        assert!(refused(&hello).is_err());
        // Half a hello waits for the rest.
        assert_eq!(refused(&hello[..10]), Err(io::ErrorKind::WouldBlock));
    }

    #[test]
    fn names_and_hellos() {
        for good in ["a", "bench-1", "x.y_z", &"n".repeat(crate::addr::MAX_SHM_NAME_LEN)] {
            assert!(crate::addr::valid_shm_name(good), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "sp ace", "é", &"n".repeat(crate::addr::MAX_SHM_NAME_LEN + 1)] {
            assert!(!crate::addr::valid_shm_name(bad), "{bad}");
        }
        let id = "0123456789abcdef01234567";
        let hello = [HELLO_MAGIC.as_slice(), id.as_bytes()].concat();
        assert_eq!(hello.len(), HELLO_LEN);
        assert_eq!(parse_hello(&hello), Some(id));
        let mut upper = hello.clone();
        upper[HELLO_LEN - 1] = b'F';
        assert_eq!(parse_hello(&upper), None);
        assert_eq!(parse_hello(&hello[..HELLO_LEN - 1]), None);
        assert_eq!(parse_hello(&[b'x'; HELLO_LEN]), None);
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    /// `cargo test --release -p ipchnl-manager shm::timing -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement"]
    fn ping_pong_costs() {
        let name = format!("timing-{}", std::process::id());
        let path = socket_path(&name);
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut a = ShmStream::connect(&name).unwrap();
        let (sock, _) = listener.accept().unwrap();
        sock.set_nonblocking(true).unwrap();
        let mut b = ShmStream::accepted(mio::net::UnixStream::from_std(sock));
        a.write(b"hello").unwrap();
        let mut buf = vec![0u8; 65536];
        let spin = |s: &mut ShmStream, buf: &mut [u8]| loop {
            s.note_readable();
            match s.read(buf) {
                Ok(n) => return n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        };
        assert!(b.read(&mut buf).is_err(), "the hello, no bytes yet");
        assert!(a.read(&mut buf).is_err(), "READY, and the pending bytes go");
        assert_eq!(spin(&mut b, &mut buf), 5);
        b.write(b"x").unwrap();
        spin(&mut a, &mut buf);
        let msg = [7u8; 100];
        let n = 200_000;
        let t = Instant::now();
        for _ in 0..n {
            a.write(&msg).unwrap();
            while b.read(&mut buf).is_err() {}
            b.write(&msg).unwrap();
            while a.read(&mut buf).is_err() {}
        }
        println!("in-thread round trip (2 writes, 2 reads): {:?}", t.elapsed() / n);
        let t = Instant::now();
        for _ in 0..n {
            a.write(&msg).unwrap();
            while b.read(&mut buf).is_err() {}
        }
        println!("write+read: {:?}", t.elapsed() / n);
        let t = Instant::now();
        for _ in 0..n {
            let _ = a.read(&mut buf);
        }
        println!("empty read: {:?}", t.elapsed() / n);
        let t = Instant::now();
        for _ in 0..n {
            let _ = a.readable();
        }
        println!("readable: {:?}", t.elapsed() / n);
        let _ = std::fs::remove_file(&path);
    }
}
