//! Unix-domain socket links (`unix:PATH`): socket files of mode 0600, a
//! file left by a dead process replaced, and every peer checked by its
//! uid (`SO_PEERCRED`) against [`UnixPeers`].

use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use socket2::{Domain, SockAddr, Socket, Type};

use super::{Accept, BACKLOG, Flavor, Listener, RemoveOnDrop, Stream};
use crate::admission::PeerUser;
use crate::config::UnixPeers;
use crate::{Addr, ManagerError};

/// Starts a non-blocking connect to the socket at `path`.
pub(crate) fn dial(path: &Path) -> io::Result<Stream> {
    mio::net::UnixStream::connect(path).map(Stream::Unix)
}

/// Binds a socket file at `path` (for `addr`).
pub(crate) fn bind(path: &Path, addr: &Addr) -> Result<(Listener, Addr), ManagerError> {
    Ok((Listener::Unix(UnixListener::bind(path, addr)?), addr.clone()))
}

/// A listening Unix socket; its file is removed when it is dropped.
pub(crate) struct UnixListener {
    listener: mio::net::UnixListener,
    _file: RemoveOnDrop,
}

impl UnixListener {
    /// Binds a Unix socket file at `path` (for `addr`), mode 0600,
    /// replacing one left by a dead process (one with a live listener is
    /// not).
    pub(crate) fn bind(path: &Path, addr: &Addr) -> Result<Self, ManagerError> {
        let std = match bind_file(path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
                if !is_socket || std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(ManagerError::InUse(addr.to_string()));
                }
                // A socket nobody answers on: left by a process that died.
                std::fs::remove_file(path)?;
                bind_file(path)?
            }
            Err(e) => return Err(e.into()),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        std.set_nonblocking(true)?;
        Ok(Self { listener: mio::net::UnixListener::from_std(std), _file: RemoveOnDrop(path.to_owned()) })
    }

    /// Accepts a connection (`WouldBlock`: none waits).
    pub(crate) fn accept_socket(&self) -> io::Result<mio::net::UnixStream> {
        self.listener.accept().map(|(s, _)| s)
    }
}

fn bind_file(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(BACKLOG)?;
    Ok(std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(socket)))
}

/// The user at the other end of a Unix socket.
pub(crate) fn peer_user(stream: &mio::net::UnixStream) -> PeerUser {
    rustix::net::sockopt::socket_peercred(stream).map_or(PeerUser::Unknown, |c| PeerUser::Uid(c.uid.as_raw()))
}

/// Refuses a peer of a user `peers` does not allow.
pub(crate) fn check_peer(stream: &mio::net::UnixStream, peers: &UnixPeers) -> Result<(), String> {
    let cred =
        rustix::net::sockopt::socket_peercred(stream).map_err(|e| format!("no peer credentials: {e}"))?;
    let own = rustix::process::geteuid().as_raw();
    let peer = cred.uid.as_raw();
    if peers.allows(peer, own) {
        Ok(())
    } else {
        Err(format!("user {peer} is not allowed (this process runs as {own})"))
    }
}

impl Flavor for mio::net::UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(self, buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Write::write(self, buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Write::write_vectored(self, bufs)
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        mio::net::UnixStream::take_error(self)
    }

    fn is_connected(&self) -> io::Result<bool> {
        super::connected(self.peer_addr().map(drop))
    }

    fn shutdown(&self, how: std::net::Shutdown) {
        let _ = mio::net::UnixStream::shutdown(self, how);
    }

    fn check_peer(&self, peers: &UnixPeers) -> Result<(), String> {
        check_peer(self, peers)
    }

    fn connected(&self, peers: &UnixPeers) -> Result<(), String> {
        check_peer(self, peers).map_err(|why| format!("the listener is not trusted: {why}"))
    }

    fn peer_user(&self) -> PeerUser {
        peer_user(self)
    }
}

impl Accept for UnixListener {
    fn accept(&self) -> io::Result<Stream> {
        self.accept_socket().map(Stream::Unix)
    }
}

impl Source for UnixListener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.listener.register(r, t, i)
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.listener.reregister(r, t, i)
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.listener.deregister(r)
    }
}
