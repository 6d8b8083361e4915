//! The sockets links run on: connected streams, listeners, and binding.

use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use socket2::{Domain, SockAddr, Socket, Type};

use crate::shm::ShmStream;
use crate::{Addr, ManagerError};

/// A connected socket, or a shared-memory link's stream.
pub(crate) enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
    Shm(Box<ShmStream>),
}

impl Stream {
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
            Self::Shm(s) => s.read(buf),
        }
    }

    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Unix(s) => s.write(buf),
            Self::Shm(s) => s.write(buf),
        }
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Self::Tcp(s) => s.take_error(),
            Self::Unix(s) => s.take_error(),
            Self::Shm(s) => s.socket().take_error(),
        }
    }

    /// Whether a non-blocking connect has completed.
    pub(crate) fn is_connected(&self) -> io::Result<bool> {
        let r = match self {
            Self::Tcp(s) => s.peer_addr().map(drop),
            Self::Unix(s) => s.peer_addr().map(drop),
            Self::Shm(s) => s.socket().peer_addr().map(drop),
        };
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn shutdown_write(&self) {
        let _ = match self {
            Self::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Self::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Self::Shm(s) => s.socket().shutdown(std::net::Shutdown::Write),
        };
    }

    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Self::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Self::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Self::Shm(s) => s.socket().shutdown(std::net::Shutdown::Both),
        };
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.register(r, t, i),
            Self::Unix(s) => s.register(r, t, i),
            Self::Shm(s) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.reregister(r, t, i),
            Self::Unix(s) => s.reregister(r, t, i),
            Self::Shm(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.deregister(r),
            Self::Unix(s) => s.deregister(r),
            Self::Shm(s) => s.deregister(r),
        }
    }
}

/// A listening socket; a Unix socket's file is removed when it is dropped.
/// A `shm:` listener is the Unix socket its dialers meet at.
pub(crate) enum Listener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener, PathBuf),
    Shm(mio::net::UnixListener, PathBuf),
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Self::Unix(_, path) | Self::Shm(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.register(r, t, i),
            Self::Unix(s, _) | Self::Shm(s, _) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.reregister(r, t, i),
            Self::Unix(s, _) | Self::Shm(s, _) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.deregister(r),
            Self::Unix(s, _) | Self::Shm(s, _) => s.deregister(r),
        }
    }
}

/// The listen backlog asked for: the kernel cuts it to
/// `net.core.somaxconn` (4,096 on current Linux), so this is SOMAXCONN.
/// std's own is 128, which a burst of connects overflows.
const BACKLOG: i32 = i32::MAX;

fn bind_unix(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixListener> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(BACKLOG)?;
    Ok(std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(socket)))
}

/// Binds `addr`; returns the listener and the address bound (port 0
/// resolved). A Unix socket file gets mode 0600; a file left by a dead
/// process is replaced, one with a live listener is not.
pub(crate) fn bind(addr: &Addr) -> Result<(Listener, Addr), ManagerError> {
    match addr {
        Addr::Tcp(sa) => {
            let socket = Socket::new(Domain::for_address(*sa), Type::STREAM, None)?;
            socket.set_reuse_address(true)?;
            socket.bind(&(*sa).into())?;
            socket.listen(BACKLOG)?;
            let std: std::net::TcpListener = socket.into();
            std.set_nonblocking(true)?;
            let bound = Addr::Tcp(std.local_addr()?);
            Ok((Listener::Tcp(mio::net::TcpListener::from_std(std)), bound))
        }
        Addr::Unix(path) => {
            let (listener, path) = bind_unix_file(path, addr)?;
            Ok((Listener::Unix(listener, path), addr.clone()))
        }
        Addr::Shm(name) => {
            let (listener, path) = bind_unix_file(&crate::shm::socket_path(name), addr)?;
            Ok((Listener::Shm(listener, path), addr.clone()))
        }
        // `Manager::listen` joins a NATS server instead of binding.
        Addr::Nats(_) => {
            Err(io::Error::new(io::ErrorKind::Unsupported, "a NATS server is joined, not bound").into())
        }
    }
}

/// Binds a Unix socket file at `path` (for `addr`), mode 0600, replacing
/// one left by a dead process.
fn bind_unix_file(
    path: &std::path::Path,
    addr: &Addr,
) -> Result<(mio::net::UnixListener, PathBuf), ManagerError> {
    let std = match bind_unix(path) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
            if !is_socket || std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ManagerError::InUse(addr.to_string()));
            }
            // A socket nobody answers on: left by a process that died.
            std::fs::remove_file(path)?;
            bind_unix(path)?
        }
        Err(e) => return Err(e.into()),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    std.set_nonblocking(true)?;
    Ok((mio::net::UnixListener::from_std(std), path.to_owned()))
}
