//! Transports: how a link's bytes move. A closed set of flavors (as
//! crossbeam's channel flavors are), one module each, each owning its
//! dial, listen, accept and peer check:
//!
//! * [`tcp`]: TCP sockets (`tcp://HOST:PORT`);
//! * [`unix`]: Unix-domain sockets (`unix:PATH`), peers checked by uid;
//! * `shm` (cargo feature `shm`): shared memory through iceoryx2, met at a
//!   Unix socket (`shm:NAME`);
//! * `nats` (cargo feature `nats`): managers meeting through a NATS
//!   server; its bridge hands each link over as one end of a socket pair
//!   ([`LinkPort::adopt`](crate::LinkPort::adopt)), so the links run over
//!   [`unix`] streams.
//!
//! Every flavor runs the same link session: only the bytes' way differs.
//! A stream is a [`Flavor`]: it reads, writes and reports its state like a
//! non-blocking socket, and says through the trait's other methods what
//! the driver must do differently for it (a stream whose bytes come with
//! no readiness event is polled; one whose ports are bound to a thread
//! does its handshake where it will run). The driver never asks which
//! flavor a stream is.
//!
//! # Adding a transport
//!
//! 1. A module here with its stream type implementing [`Flavor`] (and
//!    `mio::event::Source`), its listener implementing [`Accept`], and its
//!    `dial` and `bind`.
//! 2. Its variant in [`flavors!`] below (the one registration point: the
//!    `Stream` and `Listener` enums and their dispatch are made from it),
//!    and its arms in [`dial`] and [`bind`].
//! 3. Its address: a variant of [`Addr`] (which is `#[non_exhaustive]`)
//!    and its scheme in `addr.rs`.
//!
//! Nothing else changes: the link core and the driver see a `Stream`.

use std::io;
use std::path::PathBuf;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::admission::PeerUser;
use crate::config::UnixPeers;
use crate::{Addr, ManagerError};

#[cfg(feature = "nats")]
pub(crate) mod nats;
#[cfg(feature = "shm")]
pub(crate) mod shm;
pub(crate) mod tcp;
pub(crate) mod unix;

/// What a poller's event (or a look at a polled stream) says of a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The end of the stream is there already: a short read is no sign
    /// that the stream is empty, so read on to its end.
    pub(crate) read_to_end: bool,
    /// Write after reading, not before (the bytes read may let it write).
    pub(crate) write_after_read: bool,
}

/// A connected byte stream of one transport, non-blocking: what the link
/// driver reads and writes.
pub(crate) trait Flavor: Source {
    /// Reads what is there (`Ok(0)`: the end; `WouldBlock`: nothing yet).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// As [`read`](Self::read), appending at most `max` bytes to `body`
    /// (a message coming in parts). By default the room is zeroed, then
    /// read into: a transport that holds its bytes in memory of its own
    /// appends them from there instead.
    fn read_into(&mut self, body: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let start = body.len();
        body.resize(start + max, 0);
        let read = self.read(&mut body[start..]);
        body.truncate(start + read.as_ref().map_or(0, |&n| n));
        read
    }
    /// Writes what it takes now.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// As [`write`](Self::write), `bufs` one after another. By default
    /// only the first that is not empty.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        bufs.iter().find(|b| !b.is_empty()).map_or(Ok(0), |b| self.write(b))
    }
    /// A pending error (a failed connect).
    fn take_error(&self) -> io::Result<Option<io::Error>>;
    /// Whether a non-blocking connect has completed.
    fn is_connected(&self) -> io::Result<bool>;
    /// Ends one or both directions.
    fn shutdown(&self, how: std::net::Shutdown);
    /// A connect this side made completed: checks whom it reached (a Unix
    /// socket's listener must be a user `peers` allows, before anything is
    /// sent to it) and sets the options the link wants.
    fn connected(&self, _peers: &UnixPeers) -> Result<(), String> {
        Ok(())
    }
    /// Refuses a peer this node's policy does not allow (accepted streams).
    fn check_peer(&self, _peers: &UnixPeers) -> Result<(), String> {
        Ok(())
    }
    /// Who is at the other end, for the caps on links per user.
    fn peer_user(&self) -> PeerUser {
        PeerUser::Unknown
    }
    /// The other end is on another host (its bytes cross a network that
    /// the kernel does not keep from others): TCP to a non-loopback
    /// address.
    fn is_off_host(&self) -> bool {
        false
    }
    /// Its bytes come with no readiness event: the executor looks at it
    /// whenever it looks at its sockets ([`poll`](Self::poll)).
    fn is_polled(&self) -> bool {
        false
    }
    /// How many bytes one turn reads at most, given the link's
    /// `read_budget`: a transport that hands out its bytes in units larger
    /// than that reads one unit at least.
    fn turn_bytes(&self, read_budget: usize) -> usize {
        read_budget
    }
    /// It must stay on the thread that made it (its handshake is done on
    /// the executor where it will run).
    fn is_thread_bound(&self) -> bool {
        false
    }
    /// What an event from the poller means for it; `writable_known`: the
    /// link knows it can write already.
    fn on_event(&mut self, readable: bool, writable: bool, ended: bool, _writable_known: bool) -> Readiness {
        Readiness { readable, writable, read_to_end: ended, write_after_read: false }
    }
    /// Looks at a polled stream: what it has.
    fn poll(&mut self) -> io::Result<Readiness> {
        Ok(Readiness::default())
    }
    /// The executor is about to sleep: a polled stream says so to its
    /// peer; what it has after all (then the executor must not sleep).
    fn prepare_sleep(&mut self) -> io::Result<Readiness> {
        Ok(Readiness::default())
    }
    /// Before a final read at close: look at everything it has.
    fn before_final_read(&mut self) {}
}

/// A boxed stream (a large one, so that the others stay small) is its
/// flavor.
impl<F: Flavor + ?Sized> Flavor for Box<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read(buf)
    }
    fn read_into(&mut self, body: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        (**self).read_into(body, max)
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (**self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (**self).write_vectored(bufs)
    }
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        (**self).take_error()
    }
    fn is_connected(&self) -> io::Result<bool> {
        (**self).is_connected()
    }
    fn shutdown(&self, how: std::net::Shutdown) {
        (**self).shutdown(how);
    }
    fn connected(&self, peers: &UnixPeers) -> Result<(), String> {
        (**self).connected(peers)
    }
    fn check_peer(&self, peers: &UnixPeers) -> Result<(), String> {
        (**self).check_peer(peers)
    }
    fn peer_user(&self) -> PeerUser {
        (**self).peer_user()
    }
    fn is_off_host(&self) -> bool {
        (**self).is_off_host()
    }
    fn is_polled(&self) -> bool {
        (**self).is_polled()
    }
    fn turn_bytes(&self, read_budget: usize) -> usize {
        (**self).turn_bytes(read_budget)
    }
    fn is_thread_bound(&self) -> bool {
        (**self).is_thread_bound()
    }
    fn on_event(&mut self, readable: bool, writable: bool, ended: bool, writable_known: bool) -> Readiness {
        (**self).on_event(readable, writable, ended, writable_known)
    }
    fn poll(&mut self) -> io::Result<Readiness> {
        (**self).poll()
    }
    fn prepare_sleep(&mut self) -> io::Result<Readiness> {
        (**self).prepare_sleep()
    }
    fn before_final_read(&mut self) {
        (**self).before_final_read();
    }
}

/// A listener of one transport.
pub(crate) trait Accept: Source {
    /// Accepts a connection (`WouldBlock`: none waits).
    fn accept(&self) -> io::Result<Stream>;
}

/// Makes the `Stream` and `Listener` enums, one variant per transport,
/// and their dispatch to the flavor's own methods.
macro_rules! flavors {
    (
        streams { $($(#[$smeta:meta])* $s:ident($sty:ty),)* }
        listeners { $($(#[$lmeta:meta])* $l:ident($lty:ty),)* }
    ) => {
        /// A connected stream of one of the transports.
        pub(crate) enum Stream {
            $($(#[$smeta])* $s($sty),)*
        }

        impl Stream {
            fn flavor(&self) -> &dyn Flavor {
                match self {
                    $($(#[$smeta])* Self::$s(s) => s,)*
                }
            }

            fn flavor_mut(&mut self) -> &mut dyn Flavor {
                match self {
                    $($(#[$smeta])* Self::$s(s) => s,)*
                }
            }
        }

        /// A listening socket of one of the transports.
        pub(crate) enum Listener {
            $($(#[$lmeta])* $l($lty),)*
        }

        impl Listener {
            fn flavor(&self) -> &dyn Accept {
                match self {
                    $($(#[$lmeta])* Self::$l(l) => l,)*
                }
            }

            fn flavor_mut(&mut self) -> &mut dyn Accept {
                match self {
                    $($(#[$lmeta])* Self::$l(l) => l,)*
                }
            }
        }
    };
}

flavors! {
    streams {
        Tcp(mio::net::TcpStream),
        Unix(mio::net::UnixStream),
        #[cfg(feature = "shm")]
        Shm(Box<shm::ShmStream>),
    }
    listeners {
        Tcp(mio::net::TcpListener),
        Unix(unix::UnixListener),
        #[cfg(feature = "shm")]
        Shm(shm::ShmListener),
    }
}

impl Stream {
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.flavor_mut().read(buf)
    }

    pub(crate) fn read_into(&mut self, body: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        self.flavor_mut().read_into(body, max)
    }

    pub(crate) fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.flavor_mut().write_vectored(bufs)
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.flavor().take_error()
    }

    pub(crate) fn is_connected(&self) -> io::Result<bool> {
        self.flavor().is_connected()
    }

    pub(crate) fn connected(&self, peers: &UnixPeers) -> Result<(), String> {
        self.flavor().connected(peers)
    }

    pub(crate) fn check_peer(&self, peers: &UnixPeers) -> Result<(), String> {
        self.flavor().check_peer(peers)
    }

    pub(crate) fn peer_user(&self) -> PeerUser {
        self.flavor().peer_user()
    }

    pub(crate) fn is_off_host(&self) -> bool {
        self.flavor().is_off_host()
    }

    pub(crate) fn is_polled(&self) -> bool {
        self.flavor().is_polled()
    }

    pub(crate) fn turn_bytes(&self, read_budget: usize) -> usize {
        self.flavor().turn_bytes(read_budget)
    }

    pub(crate) fn is_thread_bound(&self) -> bool {
        self.flavor().is_thread_bound()
    }

    pub(crate) fn on_event(&mut self, readable: bool, writable: bool, ended: bool, known: bool) -> Readiness {
        self.flavor_mut().on_event(readable, writable, ended, known)
    }

    pub(crate) fn poll(&mut self) -> io::Result<Readiness> {
        self.flavor_mut().poll()
    }

    pub(crate) fn prepare_sleep(&mut self) -> io::Result<Readiness> {
        self.flavor_mut().prepare_sleep()
    }

    /// Reads and drops what the peer sent, before the stream is closed:
    /// closing a socket with unread input resets it, and the peer might
    /// then lose what was written last (a CLOSE frame).
    pub(crate) fn drain_input(&mut self) {
        self.flavor_mut().before_final_read();
        let mut sink = [0u8; 4096];
        while matches!(self.read(&mut sink), Ok(n) if n > 0) {}
    }

    pub(crate) fn shutdown_write(&self) {
        self.flavor().shutdown(std::net::Shutdown::Write);
    }

    pub(crate) fn shutdown(&self) {
        self.flavor().shutdown(std::net::Shutdown::Both);
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.flavor_mut().register(r, t, i)
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.flavor_mut().reregister(r, t, i)
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.flavor_mut().deregister(r)
    }
}

impl Listener {
    /// Accepts a connection (`WouldBlock`: none waits).
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        self.flavor().accept()
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.flavor_mut().register(r, t, i)
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.flavor_mut().reregister(r, t, i)
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.flavor_mut().deregister(r)
    }
}

/// Starts a non-blocking connect to `addr`.
pub(crate) fn dial(addr: &Addr) -> io::Result<Stream> {
    match addr {
        Addr::Tcp(sa) => tcp::dial(*sa),
        Addr::Unix(path) => unix::dial(path),
        #[cfg(feature = "shm")]
        Addr::Shm(name) => shm::dial(name),
        #[cfg(not(feature = "shm"))]
        Addr::Shm(_) => Err(not_built("shm")),
        // The manager hands these to its NATS bridge, never here.
        Addr::Nats(_) => {
            Err(io::Error::new(io::ErrorKind::Unsupported, "a NATS server is not dialed as a link"))
        }
    }
}

/// Binds `addr`; returns the listener and the address bound (port 0
/// resolved).
pub(crate) fn bind(addr: &Addr) -> Result<(Listener, Addr), ManagerError> {
    match addr {
        Addr::Tcp(sa) => tcp::bind(*sa),
        Addr::Unix(path) => unix::bind(path, addr),
        #[cfg(feature = "shm")]
        Addr::Shm(name) => shm::bind(name, addr),
        #[cfg(not(feature = "shm"))]
        Addr::Shm(_) => Err(not_built("shm").into()),
        // `Manager::listen` joins a NATS server instead of binding.
        Addr::Nats(_) => {
            Err(io::Error::new(io::ErrorKind::Unsupported, "a NATS server is joined, not bound").into())
        }
    }
}

/// The error for an address of a transport this build leaves out.
#[cfg(not(feature = "shm"))]
fn not_built(feature: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("this build has no {feature}: addresses (cargo feature `{feature}`)"),
    )
}

/// The listen backlog asked for: the kernel cuts it to
/// `net.core.somaxconn` (4,096 on current Linux), so this is SOMAXCONN.
/// std's own is 128, which a burst of connects overflows.
pub(crate) const BACKLOG: i32 = i32::MAX;

/// A path a listener removes when it is dropped (a Unix socket file).
pub(crate) struct RemoveOnDrop(pub(crate) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether a non-blocking connect has completed, from asking the socket
/// for its peer's address.
pub(crate) fn connected(peer: io::Result<()>) -> io::Result<bool> {
    match peer {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}
