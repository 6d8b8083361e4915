//! TCP links (`tcp://HOST:PORT`): `TCP_NODELAY` on every link, listeners
//! with address reuse and a SOMAXCONN backlog. Anyone who can reach the
//! port may connect: the handshake's secret is the check.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};

use super::{Accept, BACKLOG, Flavor, Listener, Stream};
use crate::admission::PeerUser;
use crate::config::UnixPeers;
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

    // No vectored write: a large message's part (a header of 80 bytes, then
    // 64 KiB of a blob) written with one `writev` streamed at 0.4x of the
    // same written as two writes (`stream_prof large 2 tcp ll`, 1.23 vs
    // 2.98 GB/s, median of 5 alternating runs); over a Unix socket one
    // `writev` is faster (3.07 vs 2.81 GB/s).

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        mio::net::TcpStream::take_error(self)
    }

    fn is_connected(&self) -> io::Result<bool> {
        super::connected(self.peer_addr().map(drop))
    }

    fn shutdown(&self, how: std::net::Shutdown) {
        let _ = mio::net::TcpStream::shutdown(self, how);
    }

    fn connected(&self, _peers: &UnixPeers) -> Result<(), String> {
        let _ = self.set_nodelay(true);
        Ok(())
    }

    fn is_off_host(&self) -> bool {
        // Unknown: as if it were, so that encryption fails safe.
        self.peer_addr().map_or(true, |peer| !peer.ip().is_loopback())
    }

    fn peer_user(&self) -> PeerUser {
        match (self.peer_addr(), self.local_addr()) {
            (Ok(peer), Ok(local)) if peer.ip().is_loopback() => {
                loopback_owner(peer, local).map_or(PeerUser::Unknown, PeerUser::Uid)
            }
            (Ok(peer), _) => PeerUser::Ip(peer.ip()),
            _ => PeerUser::Unknown,
        }
    }
}

/// The user who owns the other end of a loopback connection: the kernel
/// is asked, by netlink (`sock_diag`), for the socket whose own address is
/// `peer` and whose remote one is `local` (one exact lookup, however many
/// sockets the host has).
fn loopback_owner(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, netlink, sockopt};
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )
    .ok()?;
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(std::time::Duration::from_millis(100)))
        .ok()?;
    let request = diag_request(peer, local);
    rustix::net::sendto(&fd, &request, SendFlags::empty(), &netlink::SocketAddrNetlink::new(0, 0)).ok()?;
    let mut reply = [0u8; 512];
    let (_, n) = rustix::net::recv(&fd, &mut reply, RecvFlags::empty()).ok()?;
    diag_uid(&reply[..n.min(reply.len())])
}

/// `SOCK_DIAG_BY_FAMILY`, the netlink message type of an `inet_diag` request and its answer.
const SOCK_DIAG_BY_FAMILY: u16 = 20;

/// An `inet_diag_req_v2` for the one TCP socket from `from` to `to`,
/// behind its netlink header (`linux/inet_diag.h`).
fn diag_request(from: SocketAddr, to: SocketAddr) -> Vec<u8> {
    const LEN: u32 = 16 + 56;
    let mut m = Vec::with_capacity(LEN as usize);
    m.extend_from_slice(&LEN.to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&1u16.to_ne_bytes()); // NLM_F_REQUEST
    m.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    let family: u8 = if from.is_ipv4() { 2 } else { 10 }; // AF_INET, AF_INET6
    m.extend_from_slice(&[family, 6, 0, 0]); // family, IPPROTO_TCP, no extensions, padding
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // any state
    m.extend_from_slice(&from.port().to_be_bytes());
    m.extend_from_slice(&to.port().to_be_bytes());
    for ip in [from.ip(), to.ip()] {
        let mut bytes = [0u8; 16];
        match ip {
            std::net::IpAddr::V4(v4) => bytes[..4].copy_from_slice(&v4.octets()),
            std::net::IpAddr::V6(v6) => bytes.copy_from_slice(&v6.octets()),
        }
        m.extend_from_slice(&bytes);
    }
    m.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    m.extend_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
    m
}

/// The uid in the answer to [`diag_request`], if it found the socket.
fn diag_uid(reply: &[u8]) -> Option<u32> {
    // Its netlink header, then an `inet_diag_msg`: family, state, timer and
    // retransmits (4 bytes), the socket's id (48), expires, rqueue and
    // wqueue (12), then the uid.
    let kind = u16::from_ne_bytes(reply.get(4..6)?.try_into().ok()?);
    if kind != SOCK_DIAG_BY_FAMILY {
        return None; // an error: no such socket
    }
    Some(u32::from_ne_bytes(reply.get(16 + 64..16 + 68)?.try_into().ok()?))
}

impl Accept for mio::net::TcpListener {
    fn accept(&self) -> io::Result<Stream> {
        let (stream, _) = mio::net::TcpListener::accept(self)?;
        Ok(Stream::Tcp(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_names_a_loopback_peers_owner() {
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = std::net::TcpListener::bind(host) else { continue };
            let client =
                std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connected");
            let (server, _) = listener.accept().expect("accepted");
            let (peer, local) = (server.peer_addr().expect("peer"), server.local_addr().expect("local"));
            assert_eq!(client.local_addr().expect("addr"), peer);
            assert_eq!(loopback_owner(peer, local), Some(rustix::process::geteuid().as_raw()), "{host}");
            // No such connection: no owner.
            let nobody = SocketAddr::new(peer.ip(), peer.port().wrapping_add(1));
            assert_eq!(loopback_owner(nobody, local), None);
        }
    }
}
