//! Where a manager listens or connects: `tcp://HOST:PORT` or `unix:PATH`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// A link address.
///
/// ```
/// use manager::Addr;
/// let tcp: Addr = "tcp://127.0.0.1:0".parse()?;
/// assert!(tcp.is_loopback());
/// let unix: Addr = "unix:/tmp/ipchnl.sock".parse()?;
/// assert_eq!(unix.to_string(), "unix:/tmp/ipchnl.sock");
/// # Ok::<(), manager::AddrError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A TCP address, resolved.
    Tcp(SocketAddr),
    /// A Unix-domain socket path.
    Unix(PathBuf),
}

/// An address that does not parse or resolve.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Neither `tcp://HOST:PORT` nor `unix:PATH`.
    #[error("{0:?} is not an address: expected tcp://HOST:PORT or unix:PATH")]
    Syntax(String),
    /// The host does not resolve.
    #[error("{0:?} does not resolve to an address")]
    Unresolved(String),
    /// The Unix socket path is too long (a socket path has at most 107 bytes).
    #[error("unix socket path of {0} bytes is longer than 107")]
    PathTooLong(usize),
}

impl Addr {
    /// Whether only this machine can reach it: a loopback IP or a Unix socket.
    pub fn is_loopback(&self) -> bool {
        match self {
            Self::Tcp(a) => a.ip().is_loopback(),
            Self::Unix(_) => true,
        }
    }
}

impl FromStr for Addr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, AddrError> {
        if let Some(hostport) = s.strip_prefix("tcp://") {
            let mut addrs = hostport.to_socket_addrs().map_err(|_| AddrError::Unresolved(s.to_owned()))?;
            return addrs.next().map(Self::Tcp).ok_or_else(|| AddrError::Unresolved(s.to_owned()));
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(AddrError::Syntax(s.to_owned()));
            }
            if path.len() > 107 {
                return Err(AddrError::PathTooLong(path.len()));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        Err(AddrError::Syntax(s.to_owned()))
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "tcp://{a}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!("tcp://127.0.0.1:80".parse::<Addr>().unwrap().to_string(), "tcp://127.0.0.1:80");
        assert_eq!("tcp://[::1]:80".parse::<Addr>().unwrap().to_string(), "tcp://[::1]:80");
        assert!("tcp://localhost:1".parse::<Addr>().unwrap().is_loopback());
        assert!(!"tcp://10.1.2.3:1".parse::<Addr>().unwrap().is_loopback());
        for bad in ["", "127.0.0.1:80", "tcp://", "tcp://127.0.0.1", "udp://1.2.3.4:5", "unix:"] {
            assert!(bad.parse::<Addr>().is_err(), "{bad}");
        }
        let long = format!("unix:/{}", "x".repeat(200));
        assert_eq!(long.parse::<Addr>(), Err(AddrError::PathTooLong(201)));
    }
}
