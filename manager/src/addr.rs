//! Where a manager listens or connects: `tcp://HOST:PORT`, `unix:PATH`, or
//! `nats://[CREDENTIALS@]HOST:PORT` (a NATS server, with the `nats` feature).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// A link address.
///
/// ```
/// # mod ipchnl { pub use manager::Addr; }
/// use ipchnl::Addr;
/// let tcp: Addr = "tcp://127.0.0.1:0".parse()?;
/// assert!(tcp.is_loopback());
/// let unix: Addr = "unix:/tmp/ipchnl.sock".parse()?;
/// assert_eq!(unix.to_string(), "unix:/tmp/ipchnl.sock");
/// # Ok::<(), manager::AddrError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Addr {
    /// A TCP address, resolved.
    Tcp(SocketAddr),
    /// A Unix-domain socket path.
    Unix(PathBuf),
    /// A NATS server, through which managers meet (needs the `nats`
    /// feature to connect).
    Nats(NatsAddr),
    /// A shared-memory link's name (`shm:NAME`): processes of this host
    /// and user meet at its rendezvous socket and exchange bytes through
    /// shared memory.
    Shm(String),
}

/// A NATS server's address and the credentials its URL carries:
/// `nats://HOST:PORT` (port 4222 if left out), `nats://TOKEN@HOST:PORT` or
/// `nats://USER:PASSWORD@HOST:PORT`. Displayed (and logged) without them.
///
/// ```
/// # mod ipchnl { pub use manager::Addr; }
/// use ipchnl::Addr;
/// let Addr::Nats(nats) = "nats://s3cret@127.0.0.1:4222".parse()? else { unreachable!() };
/// assert_eq!(nats.host_port, "127.0.0.1:4222");
/// assert_eq!(nats.token.as_deref(), Some("s3cret"));
/// assert_eq!(nats.to_string(), "nats://127.0.0.1:4222");
/// # Ok::<(), manager::AddrError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NatsAddr {
    /// `HOST:PORT`.
    pub host_port: String,
    /// The token the URL carries, if any.
    pub token: Option<String>,
    /// The user and password the URL carries, if any.
    pub user: Option<(String, String)>,
}

impl fmt::Debug for NatsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the credentials.
        write!(f, "NatsAddr({self})")
    }
}

impl fmt::Display for NatsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nats://{}", self.host_port)
    }
}

#[cfg(feature = "nats")]
impl NatsAddr {
    /// `async-nats` connect options with the credentials this address
    /// carries (a token, or a user and password), for a client of one's own.
    pub fn connect_options(&self) -> async_nats::ConnectOptions {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some((user, password)) = &self.user {
            options = options.user_and_password(user.clone(), password.clone());
        }
        options
    }
}

impl NatsAddr {
    fn parse(s: &str, rest: &str) -> Result<Self, AddrError> {
        let (credentials, host_port) = match rest.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, rest),
        };
        let host_port = host_port.trim_end_matches('/');
        if host_port.is_empty() || host_port.contains('/') || credentials.is_some_and(str::is_empty) {
            return Err(AddrError::Syntax(redact(s)));
        }
        let host_port = match host_port.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => host_port.to_owned(),
            Some(_) if !host_port.ends_with(']') => return Err(AddrError::Syntax(redact(s))),
            _ => format!("{host_port}:4222"),
        };
        let (token, user) = match credentials.map(|c| c.split_once(':')) {
            None => (None, None),
            Some(Some((user, password))) => (None, Some((user.to_owned(), password.to_owned()))),
            Some(None) => (credentials.map(str::to_owned), None),
        };
        Ok(Self { host_port, token, user })
    }

    fn is_loopback(&self) -> bool {
        let host = self.host_port.rsplit_once(':').map_or(self.host_port.as_str(), |(h, _)| h);
        matches!(host, "localhost" | "[::1]")
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// An address as text for an error: no credentials.
fn redact(s: &str) -> String {
    match s.split_once("://").and_then(|(scheme, rest)| Some((scheme, rest.rsplit_once('@')?.1))) {
        Some((scheme, host)) => format!("{scheme}://…@{host}"),
        None => s.to_owned(),
    }
}

/// The longest name after `shm:`.
pub(crate) const MAX_SHM_NAME_LEN: usize = 64;

/// Whether `name` may follow `shm:`: 1 to [`MAX_SHM_NAME_LEN`] ASCII
/// letters, digits, `.`, `_` or `-`, not starting with a dot.
pub(crate) fn valid_shm_name(name: &str) -> bool {
    (1..=MAX_SHM_NAME_LEN).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// An address that does not parse or resolve.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Not `tcp://HOST:PORT`, `unix:PATH`, `shm:NAME` or `nats://HOST:PORT`.
    #[error("{0:?} is not an address: expected tcp://HOST:PORT, unix:PATH, shm:NAME or nats://HOST:PORT")]
    Syntax(String),
    /// A `shm:` name that is not 1 to 64 ASCII letters, digits, `.`, `_`
    /// or `-` (not starting with a dot).
    #[error("shm:{0:?} is not a name: 1 to 64 ASCII letters, digits, '.', '_' or '-', not starting with '.'")]
    ShmName(String),
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
            Self::Unix(_) | Self::Shm(_) => true,
            Self::Nats(n) => n.is_loopback(),
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
        if let Some(name) = s.strip_prefix("shm:") {
            if !valid_shm_name(name) {
                return Err(AddrError::ShmName(name.to_owned()));
            }
            return Ok(Self::Shm(name.to_owned()));
        }
        if let Some(rest) = s.strip_prefix("nats://") {
            return NatsAddr::parse(s, rest).map(Self::Nats);
        }
        Err(AddrError::Syntax(redact(s)))
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "tcp://{a}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Nats(n) => n.fmt(f),
            Self::Shm(name) => write!(f, "shm:{name}"),
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
        assert_eq!("shm:bench-1".parse::<Addr>().unwrap(), Addr::Shm("bench-1".into()));
        assert_eq!("shm:bench-1".parse::<Addr>().unwrap().to_string(), "shm:bench-1");
        assert!("shm:x".parse::<Addr>().unwrap().is_loopback());
        assert_eq!("shm:a/b".parse::<Addr>(), Err(AddrError::ShmName("a/b".into())));
        for bad in
            ["", "127.0.0.1:80", "tcp://", "tcp://127.0.0.1", "udp://1.2.3.4:5", "unix:", "shm:", "shm:.x"]
        {
            assert!(bad.parse::<Addr>().is_err(), "{bad}");
        }
        let long = format!("unix:/{}", "x".repeat(200));
        assert_eq!(long.parse::<Addr>(), Err(AddrError::PathTooLong(201)));
    }

    #[test]
    fn nats_addresses_keep_their_credentials_to_themselves() {
        let nats = |s: &str| match s.parse::<Addr>() {
            Ok(Addr::Nats(n)) => n,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(nats("nats://127.0.0.1").host_port, "127.0.0.1:4222");
        assert_eq!(nats("nats://[::1]:4223").host_port, "[::1]:4223");
        assert!(nats("nats://[::1]:4223").is_loopback() && nats("nats://localhost:1").is_loopback());
        assert!(!nats("nats://10.0.0.1:4222").is_loopback());
        let with_user = nats("nats://ann:pa:ss@127.0.0.1:4222");
        assert_eq!(with_user.user, Some(("ann".into(), "pa:ss".into())));
        assert_eq!(with_user.to_string(), "nats://127.0.0.1:4222");
        assert!(!format!("{with_user:?}").contains("pa:ss"));
        let with_token = nats("nats://t0k@h:1");
        assert_eq!((with_token.token.as_deref(), with_token.user), (Some("t0k"), None));
        for bad in ["nats://", "nats://@h:1", "nats://h:x", "nats://h:1/path"] {
            assert!(bad.parse::<Addr>().is_err(), "{bad}");
        }
        let Err(e) = "nats://secret@h:1/x".parse::<Addr>() else { panic!("a path is refused") };
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
