//! The door for transports of one's own: a stream adopted as a link.

use std::sync::Arc;

use connection::{Incarnation, Role};
use msg_header::NodeId;

use crate::link::Origin;
use crate::net::{Host, NetCommand};
use crate::shared::Shared;
use crate::transport::Stream;
use crate::{ManagerConfig, ManagerError};

/// A manager's door for transports of their own (the NATS bridge is
/// one): it adopts one end of a connected byte stream as a link, which then
/// runs the same session as a dialed or accepted socket (handshake,
/// authentication, acknowledgements, directory, every limit). Clones are
/// cheap; get one from [`Manager::link_port`](crate::Manager::link_port).
///
/// # Examples
///
/// A link over a socket pair this process made, as a transport would:
///
/// ```
/// # mod ipchnl { pub use manager::Manager; pub use manager::ManagerConfig; pub use manager::Role; }
/// use std::os::unix::net::UnixStream;
/// use ipchnl::{Manager, ManagerConfig, Role};
///
/// let a = Manager::new(ManagerConfig::default().node_name("a"))?;
/// let b = Manager::new(ManagerConfig::default().node_name("b"))?;
/// let (one, other) = UnixStream::pair()?;
/// a.link_port().adopt(one, Role::Client)?;
/// b.link_port().adopt(other, Role::Server)?;
/// let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
/// while !a.peers().iter().any(|p| p.node_name == "b" && p.up) {
///     assert!(std::time::Instant::now() < deadline, "linked");
///     std::thread::sleep(std::time::Duration::from_millis(5));
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct LinkPort {
    pub(crate) shared: Arc<Shared>,
}

impl LinkPort {
    /// The node this port's manager is.
    pub fn node_id(&self) -> NodeId {
        self.shared.node_id
    }

    /// This start of the manager's node (WIRE.md: a restart is a new one).
    pub fn incarnation(&self) -> Incarnation {
        self.shared.incarnation
    }

    /// The manager's configuration.
    pub fn config(&self) -> &ManagerConfig {
        &self.shared.config
    }

    /// Runs a link over `stream` (a connected Unix socket or TCP
    /// connection), this side in `role` (the client speaks first), on the
    /// next link executor. The link is not dialed again when it goes down:
    /// the transport adopts a new stream for that.
    pub fn adopt(&self, stream: impl Into<ByteStream>, role: Role) -> Result<(), ManagerError> {
        if !self.shared.lifecycle.is_running() {
            return Err(ManagerError::ShuttingDown);
        }
        let stream = match stream.into() {
            ByteStream::Unix(s) => {
                s.set_nonblocking(true)?;
                Stream::Unix(mio::net::UnixStream::from_std(s))
            }
            ByteStream::Tcp(s) => {
                s.set_nonblocking(true)?;
                Stream::Tcp(mio::net::TcpStream::from_std(s))
            }
        };
        let executor = self.shared.next_link_executor();
        let (stream, origin) = (Box::new(stream), Box::new(Origin::adopted(role)));
        self.shared.push_to(executor, NetCommand::AddStream { stream, origin });
        Ok(())
    }
}

/// A connected byte stream a transport of one's own hands to
/// [`LinkPort::adopt`]: a Unix socket or a TCP connection (blocking or
/// not: the link makes it non-blocking).
#[derive(Debug)]
#[non_exhaustive]
pub enum ByteStream {
    /// A Unix-domain socket (one end of a `socketpair`, say).
    Unix(std::os::unix::net::UnixStream),
    /// A TCP connection.
    Tcp(std::net::TcpStream),
}

impl From<std::os::unix::net::UnixStream> for ByteStream {
    fn from(s: std::os::unix::net::UnixStream) -> Self {
        Self::Unix(s)
    }
}

impl From<std::net::TcpStream> for ByteStream {
    fn from(s: std::net::TcpStream) -> Self {
        Self::Tcp(s)
    }
}
