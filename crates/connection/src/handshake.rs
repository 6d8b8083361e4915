//! The opening exchange of a link. See `docs/WIRE.md` §2.

use std::fmt;

use msg_header::NodeId;

/// The first four bytes of every handshake message: `IPCH`.
pub const MAGIC: [u8; 4] = *b"IPCH";
/// The lowest protocol version this implementation speaks.
pub const VERSION_MIN: u8 = 1;
/// The highest protocol version this implementation speaks.
pub const VERSION_MAX: u8 = 1;
/// Capability bit: this side has a shared secret and requires the other to
/// prove it has it too.
pub const AUTH: u32 = 0x0000_0001;

/// A shared secret. Its `Debug` is redacted, it is never logged, and its
/// bytes are overwritten when it is dropped.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret of these bytes; `None` if there are none.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Self> {
        todo!()
    }

    /// The secret in a file: its bytes, without one trailing newline.
    /// An empty file is an error (`InvalidData`).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        todo!()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Which end of the link: the client dialed, the server accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that dialed; it speaks first.
    Client,
    /// The side that accepted.
    Server,
}

/// One start of a node: random, drawn anew each time a manager starts.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Incarnation(pub [u8; 16]);

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Incarnation({self})")
    }
}

/// What this side brings to a handshake.
#[derive(Clone, Debug)]
pub struct HandshakeConfig {
    /// This node.
    pub node_id: NodeId,
    /// This start of this node.
    pub incarnation: Incarnation,
    /// The shared secret, if the link must be authenticated.
    pub secret: Option<Secret>,
    /// The lowest version to speak.
    pub version_min: u8,
    /// The highest version to speak.
    pub version_max: u8,
}

impl HandshakeConfig {
    /// This node's configuration, without a secret, speaking every version
    /// this implementation knows.
    pub fn new(node_id: NodeId, incarnation: Incarnation) -> Self {
        Self { node_id, incarnation, secret: None, version_min: VERSION_MIN, version_max: VERSION_MAX }
    }

    /// Requires the peer to prove it has `secret`.
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }
}

/// What the handshake learnt of the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerHello {
    /// The peer node.
    pub node_id: NodeId,
    /// The peer's start.
    pub incarnation: Incarnation,
    /// The version both speak.
    pub version: u8,
    /// The peer's capability bits.
    pub capabilities: u32,
    /// Whether both sides proved they have the shared secret.
    pub authenticated: bool,
}

/// The handshake failed; close the connection without sending anything more.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The peer's message does not start with `IPCH`.
    #[error("bad magic: not an ipchnl peer")]
    BadMagic,
    /// The peer sent a message of the wrong type for this step.
    #[error("unexpected handshake message type {got:#04x}, expected {expected:#04x}")]
    UnexpectedMessage {
        /// The type this step expects.
        expected: u8,
        /// The type received.
        got: u8,
    },
    /// No version in both ranges.
    #[error("no common protocol version: ours {ours:?}, theirs {theirs:?}")]
    NoCommonVersion {
        /// Our range.
        ours: (u8, u8),
        /// The peer's range (or its choice, seen by a client).
        theirs: (u8, u8),
    },
    /// We have a secret and the peer did not offer authentication.
    #[error("authentication required but not offered by the peer")]
    AuthRequired,
    /// The peer requires authentication and we have no secret.
    #[error("the peer requires authentication and no secret is configured")]
    NoSecret,
    /// The peer's MAC is wrong: it does not know the secret.
    #[error("authentication failed")]
    BadMac,
    /// The peer is this very node.
    #[error("refusing a link to this node itself")]
    SelfConnect,
}

/// One side of a handshake, as an I/O-free state machine.
///
/// Feed it what the peer sent with [`read`](Self::read), send what
/// [`take_output`](Self::take_output) gives, until [`is_done`](Self::is_done).
/// Bytes after the last handshake message belong to frames.
pub struct Handshake {
    // Implementation detail: see the helper's work.
}

impl Handshake {
    /// Starts a handshake. `nonce` must be 32 fresh random bytes. A client
    /// has its HELLO ready in [`take_output`](Self::take_output) at once.
    pub fn new(role: Role, config: HandshakeConfig, nonce: [u8; 32]) -> Self {
        todo!()
    }

    /// Takes bytes from the peer: as many as belong to the handshake (the
    /// rest are frames). Returns how many it took; 0 with more needed.
    pub fn read(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        todo!()
    }

    /// The bytes to send to the peer now (empty if none).
    pub fn take_output(&mut self) -> Vec<u8> {
        todo!()
    }

    /// Whether the handshake has succeeded: frames may flow.
    pub fn is_done(&self) -> bool {
        todo!()
    }

    /// The peer, once known.
    pub fn peer(&self) -> Option<&PeerHello> {
        todo!()
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        todo!()
    }
}
