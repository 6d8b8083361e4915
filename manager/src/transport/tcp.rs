//! TCP links (`tcp://HOST:PORT`): `TCP_NODELAY` on every link, listeners
//! with address reuse and a SOMAXCONN backlog. Anyone who can reach the
//! port may connect: the handshake's secret is the check.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};

use super::{Accept, BACKLOG, Flavor, Listener, Stream};
use crate::{Addr, ManagerError};

/// Starts a non-blocking connect to `addr`.
pub(crate) fn dial(addr: SocketAddr) -> io::Result<Stream> {
    mio::net::TcpStream::connect(addr).map(Stream::Tcp)
}

/// Binds `addr` (port 0: any free port); the address bound.
pub(crate) fn bind(addr: SocketAddr) -> Result<(Listener, Addr), ManagerError> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    let std: std::net::TcpListener = socket.into();
    std.set_nonblocking(true)?;
    let bound = Addr::Tcp(std.local_addr()?);
    Ok((Listener::Tcp(mio::net::TcpListener::from_std(std)), bound))
}

impl Flavor for mio::net::TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(self, buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Write::write(self, buf)
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        mio::net::TcpStream::take_error(self)
    }

    fn is_connected(&self) -> io::Result<bool> {
        super::connected(self.peer_addr().map(drop))
    }

    fn shutdown(&self, how: std::net::Shutdown) {
        let _ = mio::net::TcpStream::shutdown(self, how);
    }

    fn connected(&self) {
        let _ = self.set_nodelay(true);
    }
}

impl Accept for mio::net::TcpListener {
    fn accept(&self) -> io::Result<Stream> {
        let (stream, _) = mio::net::TcpListener::accept(self)?;
        Ok(Stream::Tcp(stream))
    }
}
