//! The opening exchange of a link. See `docs/WIRE.md` §2.

use std::fmt;

use hmac::{Hmac, Mac};
use msg_header::NodeId;
use sha2::Sha256;

use crate::secure::{NodeKeys, NoiseHandshake, Secure, SecureError};

/// The first four bytes of every handshake message: `IPCH`.
pub const MAGIC: [u8; 4] = *b"IPCH";
/// The lowest protocol version this implementation speaks.
pub const VERSION_MIN: u8 = 1;
/// The highest protocol version this implementation speaks.
pub const VERSION_MAX: u8 = 1;
/// Capability bit: this side has a shared secret and requires the other to
/// prove it has it too.
pub const AUTH: u32 = 0x0000_0001;
/// Capability bit: this side reads DEAD frames (messages it sent, returned
/// unhandled after they were acknowledged); a peer sends it none without.
pub const DEAD: u32 = 0x0000_0002;
/// Capability bit: this side can encrypt the link (it has a shared secret,
/// the Noise pre-shared key, and speaks the records of `crate::Secure`).
pub const ENCRYPT: u32 = 0x0000_0004;
/// Capability bit: this side requires the link encrypted. The link is
/// encrypted when either side requires it; a side that requires it of a
/// peer that cannot refuses the link.
pub const ENCRYPT_REQUIRED: u32 = 0x0000_0008;
/// Capability bit: this side proves a node key and requires the other to
/// (all or nothing, as `AUTH`); the link is then encrypted, and each side
/// refuses a key it does not list.
pub const NODE_KEYS: u32 = 0x0000_0010;

/// A shared secret. Its `Debug` is redacted, it is never logged, and its
/// bytes are overwritten when it is dropped.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret of these bytes; `None` if there are none.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Self> {
        let secret = Self(bytes.into());
        (!secret.0.is_empty()).then_some(secret)
    }

    /// How many bytes the secret has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret has no bytes (never: [`new`](Self::new) and
    /// [`from_file`](Self::from_file) refuse that).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret in a file: its bytes, without one trailing newline.
    /// An empty file is an error (`InvalidData`).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        // Wrapped at once, so the bytes are wiped on every path out.
        let mut secret = Self(std::fs::read(path)?);
        if secret.0.ends_with(b"\r\n") {
            secret.0.truncate(secret.0.len() - 2);
        } else if secret.0.ends_with(b"\n") {
            secret.0.truncate(secret.0.len() - 1);
        }
        if secret.0.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the secret file is empty"));
        }
        Ok(secret)
    }

    /// The MAC keyed with this secret over `label` then `parts`.
    pub(crate) fn mac(&self, label: &[u8], parts: &[&[u8]]) -> Result<HmacSha256, HandshakeError> {
        // HMAC takes keys of any length, so this cannot fail; if it ever
        // did, no MAC could be checked: authentication fails.
        let mut mac = HmacSha256::new_from_slice(&self.0).map_err(|_| HandshakeError::BadMac)?;
        mac.update(label);
        parts.iter().for_each(|part| mac.update(part));
        Ok(mac)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Zero the whole allocation, spare capacity included (a trailing
        // newline cut off by `from_file` is still there). `resize` up to
        // the capacity never reallocates.
        self.0.fill(0);
        self.0.resize(self.0.capacity(), 0);
        // Keeps the compiler from dropping the writes as dead stores.
        std::hint::black_box(&mut self.0);
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
    /// Whether this side requires the link encrypted (it needs `secret`).
    pub encrypt: bool,
    /// This node's key and the keys allowed to link (it needs `secret`).
    pub node_keys: Option<NodeKeys>,
}

impl HandshakeConfig {
    /// This node's configuration, without a secret, speaking every version
    /// this implementation knows.
    pub fn new(node_id: NodeId, incarnation: Incarnation) -> Self {
        Self {
            node_id,
            incarnation,
            secret: None,
            version_min: VERSION_MIN,
            version_max: VERSION_MAX,
            encrypt: false,
            node_keys: None,
        }
    }

    /// Proves `keys` and requires the peer to prove one they list.
    pub fn with_node_keys(mut self, keys: NodeKeys) -> Self {
        self.node_keys = Some(keys);
        self
    }

    /// Requires the link encrypted (with [`with_secret`](Self::with_secret):
    /// the secret keys it).
    pub fn with_encryption(mut self) -> Self {
        self.encrypt = true;
        self
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
    /// Whether the link is encrypted (after the handshake, every byte is
    /// in records: [`Handshake::take_secure`]).
    pub encrypted: bool,
    /// The link's dial number: the client nonce's first 8 bytes, big-endian
    /// (see [`client_nonce`]). Of two links one node dialed to the same
    /// other node, the one with the larger number is the newer.
    pub dial: u64,
}

/// A client nonce: `dial`, the dialer's count of the links it dialed
/// (larger for a later dial), big-endian, then 24 random bytes. Both ends
/// of two links one node dialed to the same other then agree which is the
/// newer, whatever order their handshakes finished in (`docs/WIRE.md` §2).
///
/// ```
/// use connection::{client_nonce, Handshake, HandshakeConfig, Incarnation, Role};
/// use msg_header::NodeId;
/// let config = |name: &str| HandshakeConfig::new(NodeId::of_name(name), Incarnation::default());
/// let mut client = Handshake::new(Role::Client, config("a"), client_nonce(7, [9; 24]));
/// let mut server = Handshake::new(Role::Server, config("b"), [2; 32]);
/// server.read(&client.take_output())?;
/// client.read(&server.take_output())?;
/// assert_eq!(server.peer().map(|p| p.dial), Some(7));
/// assert_eq!(client.peer().map(|p| p.dial), Some(7));
/// # Ok::<(), connection::HandshakeError>(())
/// ```
pub fn client_nonce(dial: u64, random: [u8; 24]) -> [u8; 32] {
    let mut nonce = [0; 32];
    nonce[..8].copy_from_slice(&dial.to_be_bytes());
    nonce[8..].copy_from_slice(&random);
    nonce
}

/// The dial number a client nonce carries (see [`client_nonce`]).
fn dial_of(nonce: &[u8; 32]) -> u64 {
    let mut dial = [0; 8];
    dial.copy_from_slice(&nonce[..8]);
    u64::from_be_bytes(dial)
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
    /// One side requires the link encrypted and the other cannot encrypt.
    #[error("{}", if *.by_peer { "the peer requires encryption, and this side cannot encrypt" } else { "this side requires encryption, and the peer cannot encrypt" })]
    EncryptionRequired {
        /// Whether it was the peer that required it.
        by_peer: bool,
    },
    /// The Noise handshake after the plain one failed.
    #[error("{0}")]
    Noise(SecureError),
    /// This side requires encryption and has no secret to key it.
    #[error("encryption is required and no secret is configured to key it")]
    EncryptionNeedsSecret,
    /// One side proves node keys and the other has none.
    #[error("{}", if *.by_peer { "the peer requires node keys, and this side has none" } else { "this side requires node keys, and the peer has none" })]
    NodeKeysRequired {
        /// Whether it was the peer that required them.
        by_peer: bool,
    },
}

/// Bytes of a HELLO, and of a HELLO_ACK without its MAC.
const HELLO_LEN: usize = 76;
/// Bytes of an HMAC-SHA256.
const MAC_LEN: usize = 32;
/// Bytes of a HELLO_ACK with its MAC.
const HELLO_ACK_AUTH_LEN: usize = HELLO_LEN + MAC_LEN;
/// Bytes of an AUTH before its MAC.
const AUTH_HEAD_LEN: usize = 8;
/// Bytes of an AUTH.
const AUTH_LEN: usize = AUTH_HEAD_LEN + MAC_LEN;

/// Message type of a HELLO.
const TYPE_HELLO: u8 = 0x01;
/// Message type of a HELLO_ACK.
const TYPE_HELLO_ACK: u8 = 0x02;
/// Message type of an AUTH.
const TYPE_AUTH: u8 = 0x03;

/// The role label that starts the server's MAC input.
const SERVER_LABEL: &[u8] = b"ipchnl v1 server";
/// The role label that starts the client's MAC input.
const CLIENT_LABEL: &[u8] = b"ipchnl v1 client";

type HmacSha256 = Hmac<Sha256>;

/// Where a handshake stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Client: the HELLO is sent, its HELLO_ACK is awaited.
    AwaitHelloAck,
    /// Client: the first 76 bytes of an authenticated HELLO_ACK are in and
    /// checked; its MAC is awaited.
    AwaitServerMac,
    /// Server: waiting for the client's HELLO.
    AwaitHello,
    /// Server: the HELLO_ACK is sent, the client's AUTH is awaited.
    AwaitAuth,
    /// Either side: the plain handshake is done and the link encrypted;
    /// the peer's Noise message, of this many bytes, is awaited.
    AwaitNoise(usize),
    /// Frames may flow.
    Done,
    /// The handshake failed for good.
    Failed(HandshakeError),
}

impl State {
    /// The bytes of the message this state waits for, and its type; `None`
    /// if it waits for nothing.
    fn awaits(&self) -> Option<(usize, u8)> {
        match self {
            Self::AwaitHelloAck => Some((HELLO_LEN, TYPE_HELLO_ACK)),
            Self::AwaitServerMac => Some((HELLO_ACK_AUTH_LEN, TYPE_HELLO_ACK)),
            Self::AwaitHello => Some((HELLO_LEN, TYPE_HELLO)),
            Self::AwaitAuth => Some((AUTH_LEN, TYPE_AUTH)),
            // A record, not a handshake message: no magic, no type.
            Self::AwaitNoise(len) => Some((*len, 0)),
            Self::Done | Self::Failed(_) => None,
        }
    }
}

/// The fields of a HELLO or HELLO_ACK (their first 76 bytes).
struct Hello {
    /// HELLO: lowest version; HELLO_ACK: the chosen version.
    version_a: u8,
    /// HELLO: highest version; HELLO_ACK: reserved.
    version_b: u8,
    capabilities: u32,
    nonce: [u8; 32],
    node_id: NodeId,
    incarnation: Incarnation,
}

impl Hello {
    /// The 76 bytes of a message of type `kind` with these fields.
    fn encode(&self, kind: u8) -> [u8; HELLO_LEN] {
        let mut b = [0; HELLO_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = kind;
        b[5] = self.version_a;
        b[6] = self.version_b;
        // b[7] is reserved: 0.
        b[8..12].copy_from_slice(&self.capabilities.to_be_bytes());
        b[12..44].copy_from_slice(&self.nonce);
        b[44..60].copy_from_slice(self.node_id.as_bytes());
        b[60..76].copy_from_slice(&self.incarnation.0);
        b
    }

    /// The fields of `b`, whose magic and type have been checked.
    fn decode(b: &[u8; HELLO_LEN]) -> Self {
        let mut capabilities = [0; 4];
        capabilities.copy_from_slice(&b[8..12]);
        let mut nonce = [0; 32];
        nonce.copy_from_slice(&b[12..44]);
        let mut node_id = [0; 16];
        node_id.copy_from_slice(&b[44..60]);
        let mut incarnation = [0; 16];
        incarnation.copy_from_slice(&b[60..76]);
        Self {
            version_a: b[5],
            version_b: b[6],
            capabilities: u32::from_be_bytes(capabilities),
            nonce,
            node_id: NodeId::from_bytes(node_id),
            incarnation: Incarnation(incarnation),
        }
    }
}

/// Whether `bytes` start with a HELLO: the first bytes of a link, from the
/// side that dialed.
///
/// ```
/// use connection::{Handshake, HandshakeConfig, Incarnation, Role, starts_hello};
/// use msg_header::NodeId;
/// let mut client = Handshake::new(Role::Client, HandshakeConfig::new(NodeId::of_name("a"), Incarnation::default()), [1; 32]);
/// assert!(starts_hello(&client.take_output()));
/// assert!(!starts_hello(b"IPCH"));
/// ```
pub fn starts_hello(bytes: &[u8]) -> bool {
    bytes.len() >= 5 && bytes[..4] == MAGIC && bytes[4] == TYPE_HELLO
}

/// One side of a handshake, as an I/O-free state machine.
///
/// Feed it what the peer sent with [`read`](Self::read), send what
/// [`take_output`](Self::take_output) gives, until [`is_done`](Self::is_done).
/// Bytes after the last handshake message belong to frames.
///
/// ```
/// use connection::{Handshake, HandshakeConfig, Incarnation, Role, Secret};
/// use msg_header::NodeId;
///
/// let secret = Secret::new("s3cret").expect("not empty");
/// let config = |name: &str| {
///     HandshakeConfig::new(NodeId::of_name(name), Incarnation::default()).with_secret(secret.clone())
/// };
/// let mut client = Handshake::new(Role::Client, config("alpha"), [1; 32]);
/// let mut server = Handshake::new(Role::Server, config("beta"), [2; 32]);
///
/// let hello = client.take_output();
/// assert_eq!(server.read(&hello)?, hello.len());
/// let hello_ack = server.take_output();
/// assert_eq!(client.read(&hello_ack)?, hello_ack.len());
/// let auth = client.take_output();
/// assert_eq!(server.read(&auth)?, auth.len());
///
/// assert!(client.is_done() && server.is_done());
/// let peer = server.peer().expect("done");
/// assert_eq!(peer.node_id, NodeId::of_name("alpha"));
/// assert!(peer.authenticated);
/// # Ok::<(), connection::HandshakeError>(())
/// ```
pub struct Handshake {
    role: Role,
    config: HandshakeConfig,
    nonce: [u8; 32],
    state: State,
    /// The part of the awaited message received so far.
    input: Vec<u8>,
    /// HELLO, then HELLO_ACK once it is whole: what the MACs cover.
    transcript: Vec<u8>,
    /// Bytes to send.
    output: Vec<u8>,
    /// The peer, once the handshake succeeded.
    peer: Option<PeerHello>,
    /// Whether the link is to be encrypted (known from the peer's hello).
    encrypt: bool,
    /// The Noise handshake of an encrypted link, under way.
    noise: Option<NoiseHandshake>,
    /// An encrypted link's records, once done (taken by the session).
    secure: Option<Secure>,
    /// Server: the client's node key, not listed (the link closes at once).
    unlisted: Option<String>,
}

impl Handshake {
    /// Starts a handshake. `nonce` must be 32 fresh random bytes, a
    /// client's made by [`client_nonce`] (its dial number, then 24). A client
    /// has its HELLO ready in [`take_output`](Self::take_output) at once.
    pub fn new(role: Role, config: HandshakeConfig, nonce: [u8; 32]) -> Self {
        let mut handshake = Self {
            role,
            config,
            nonce,
            state: State::AwaitHello,
            input: Vec::with_capacity(HELLO_ACK_AUTH_LEN),
            transcript: Vec::with_capacity(HELLO_LEN + HELLO_ACK_AUTH_LEN),
            output: Vec::new(),
            peer: None,
            encrypt: false,
            noise: None,
            secure: None,
            unlisted: None,
        };
        if role == Role::Client {
            let hello = handshake
                .own_hello(handshake.config.version_min, handshake.config.version_max)
                .encode(TYPE_HELLO);
            handshake.transcript.extend_from_slice(&hello);
            handshake.output.extend_from_slice(&hello);
            handshake.state = State::AwaitHelloAck;
        }
        handshake
    }

    /// Takes bytes from the peer: as many as belong to the handshake (the
    /// rest are frames). Returns how many it took; 0 with more needed.
    ///
    /// Once it has failed, the handshake stays failed: every later call
    /// returns the same error. Once it is done, it takes nothing.
    pub fn read(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let mut used = 0;
        while let Some((len, kind)) = self.state.awaits() {
            let take = (len - self.input.len()).min(input.len() - used);
            self.input.extend_from_slice(&input[used..used + take]);
            used += take;
            let whole = self.input.len() == len;
            let step = match (whole, matches!(self.state, State::AwaitNoise(_))) {
                (true, _) => self.step(),
                (false, false) => self.check_start(kind),
                (false, true) => Ok(()),
            };
            if let Err(e) = step {
                self.fail(e.clone());
                return Err(e);
            }
            if !whole {
                break;
            }
        }
        match &self.state {
            State::Failed(e) => Err(e.clone()),
            _ => Ok(used),
        }
    }

    /// The bytes to send to the peer now (empty if none).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Whether the handshake has succeeded: frames may flow.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The peer, once the handshake has succeeded.
    pub fn peer(&self) -> Option<&PeerHello> {
        self.peer.as_ref().filter(|_| self.is_done())
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Server, once done: the client's node key, which this side does not
    /// list; the link must close at once, saying so (the handshake ends
    /// so that it can).
    pub fn unlisted_peer(&self) -> Option<&str> {
        self.unlisted.as_deref()
    }

    /// An encrypted link's records, once the handshake is done (once: the
    /// session takes them). `None` for a link that is not encrypted.
    pub fn take_secure(&mut self) -> Option<Secure> {
        if self.is_done() { self.secure.take() } else { None }
    }

    /// This side's HELLO or HELLO_ACK, version bytes aside.
    fn own_hello(&self, version_a: u8, version_b: u8) -> Hello {
        Hello {
            version_a,
            version_b,
            capabilities: DEAD
                | if self.config.secret.is_some() { AUTH | ENCRYPT } else { 0 }
                | if self.config.encrypt { ENCRYPT_REQUIRED } else { 0 }
                | if self.config.node_keys.is_some() { NODE_KEYS } else { 0 },
            nonce: self.nonce,
            node_id: self.config.node_id,
            incarnation: self.config.incarnation,
        }
    }

    fn fail(&mut self, error: HandshakeError) {
        self.state = State::Failed(error);
        self.output.clear();
        self.input.clear();
        self.peer = None;
        self.noise = None;
        self.secure = None;
    }

    /// Refuses a partial message as soon as its start is wrong, so that
    /// garbage fails at once rather than after a timeout.
    fn check_start(&self, kind: u8) -> Result<(), HandshakeError> {
        let magic = self.input.len().min(MAGIC.len());
        if self.input[..magic] != MAGIC[..magic] {
            return Err(HandshakeError::BadMagic);
        }
        match self.input.get(4) {
            Some(&got) if got != kind => Err(HandshakeError::UnexpectedMessage { expected: kind, got }),
            _ => Ok(()),
        }
    }

    /// Handles the awaited message, now whole in `self.input`.
    fn step(&mut self) -> Result<(), HandshakeError> {
        match self.state {
            State::AwaitHelloAck => self.on_hello_ack(),
            State::AwaitServerMac => self.on_server_mac(),
            State::AwaitHello => self.on_hello(),
            State::AwaitAuth => self.on_auth(),
            State::AwaitNoise(_) => self.on_noise(),
            State::Done | State::Failed(_) => Ok(()),
        }
    }

    /// The first 76 bytes of `self.input`, checked to be a message of `kind`.
    fn hello_in(&self, kind: u8) -> Result<Hello, HandshakeError> {
        self.check_start(kind)?;
        let mut b = [0; HELLO_LEN];
        b.copy_from_slice(&self.input[..HELLO_LEN]);
        Ok(Hello::decode(&b))
    }

    /// Checks that authentication is all or nothing and that the peer is
    /// another node; then whether the link is encrypted.
    fn check_peer(&self, peer: &Hello) -> Result<bool, HandshakeError> {
        match (self.config.secret.is_some(), peer.capabilities & AUTH != 0) {
            (true, false) => return Err(HandshakeError::AuthRequired),
            (false, true) => return Err(HandshakeError::NoSecret),
            _ => {}
        }
        if peer.node_id == self.config.node_id {
            return Err(HandshakeError::SelfConnect);
        }
        self.encrypted(peer)
    }

    /// Whether the link with `peer` is encrypted: when either side
    /// requires it, and both can.
    fn encrypted(&self, peer: &Hello) -> Result<bool, HandshakeError> {
        if (self.config.encrypt || self.config.node_keys.is_some()) && self.config.secret.is_none() {
            return Err(HandshakeError::EncryptionNeedsSecret);
        }
        match (self.config.node_keys.is_some(), peer.capabilities & NODE_KEYS != 0) {
            (true, false) => return Err(HandshakeError::NodeKeysRequired { by_peer: false }),
            (false, true) => return Err(HandshakeError::NodeKeysRequired { by_peer: true }),
            (true, true) => return Ok(true),
            (false, false) => {}
        }
        let ours = self.own_hello(0, 0).capabilities;
        let theirs = peer.capabilities;
        let (we_can, they_can) = (ours & ENCRYPT != 0, theirs & ENCRYPT != 0);
        match (self.config.encrypt, theirs & ENCRYPT_REQUIRED != 0) {
            (true, _) if !they_can => Err(HandshakeError::EncryptionRequired { by_peer: false }),
            (_, true) if !we_can => Err(HandshakeError::EncryptionRequired { by_peer: true }),
            (ours_req, theirs_req) => Ok(ours_req || theirs_req),
        }
    }

    /// The peer, from its HELLO or HELLO_ACK.
    fn remember_peer(&mut self, peer: &Hello, version: u8) {
        let client = if self.role == Role::Client { &self.nonce } else { &peer.nonce };
        self.peer = Some(PeerHello {
            dial: dial_of(client),
            node_id: peer.node_id,
            incarnation: peer.incarnation,
            version,
            capabilities: peer.capabilities,
            authenticated: false,
            encrypted: false,
        });
    }

    /// Succeeds; the peer proved it has the secret if `authenticated`.
    fn finish(&mut self, authenticated: bool) {
        if let Some(peer) = &mut self.peer {
            peer.authenticated = authenticated;
        }
        self.input.clear();
        self.state = State::Done;
    }

    /// Client: the first 76 bytes of the HELLO_ACK.
    fn on_hello_ack(&mut self) -> Result<(), HandshakeError> {
        let ack = self.hello_in(TYPE_HELLO_ACK)?;
        let ours = (self.config.version_min, self.config.version_max);
        let version = ack.version_a;
        if !(ours.0..=ours.1).contains(&version) {
            return Err(HandshakeError::NoCommonVersion { ours, theirs: (version, version) });
        }
        self.encrypt = self.check_peer(&ack)?;
        self.remember_peer(&ack, version);
        if self.config.secret.is_some() {
            // The server MAC follows.
            self.state = State::AwaitServerMac;
        } else {
            self.transcript.extend_from_slice(&self.input);
            self.finish(false);
        }
        Ok(())
    }

    /// Client: the whole authenticated HELLO_ACK. Checks the server MAC,
    /// then sends AUTH.
    fn on_server_mac(&mut self) -> Result<(), HandshakeError> {
        let Some(secret) = &self.config.secret else { return Err(HandshakeError::NoSecret) };
        let (ack, server_mac) = self.input.split_at(HELLO_LEN);
        secret
            .mac(SERVER_LABEL, &[&self.transcript, ack])?
            .verify_slice(server_mac)
            .map_err(|_| HandshakeError::BadMac)?;
        self.transcript.extend_from_slice(&self.input);

        let mut auth = [0; AUTH_LEN];
        auth[0..4].copy_from_slice(&MAGIC);
        auth[4] = TYPE_AUTH;
        // auth[5..8] is reserved: 0.
        let client_mac = secret.mac(CLIENT_LABEL, &[&self.transcript, &auth[..AUTH_HEAD_LEN]])?.finalize();
        auth[AUTH_HEAD_LEN..].copy_from_slice(&client_mac.into_bytes());
        self.output.extend_from_slice(&auth);
        self.after_auth()
    }

    /// Both sides, the plain handshake authenticated: done, or on to the
    /// Noise handshake of an encrypted link (the client writes first),
    /// keyed and bound by what the plain one exchanged.
    fn after_auth(&mut self) -> Result<(), HandshakeError> {
        let Some(secret) = self.config.secret.as_ref().filter(|_| self.encrypt) else {
            self.finish(true);
            return Ok(());
        };
        let psk = secret.noise_psk(&self.transcript);
        let mut noise =
            NoiseHandshake::with_keys(self.role, &psk, &self.transcript, self.config.node_keys.clone())
                .map_err(HandshakeError::Noise)?;
        noise.write(&mut self.output).map_err(HandshakeError::Noise)?;
        let len = noise.next_read_len().unwrap_or(0);
        self.noise = Some(noise);
        self.input.clear();
        self.state = State::AwaitNoise(len);
        Ok(())
    }

    /// Both sides: the peer's Noise message. The server answers with its
    /// own; after it (server) or after reading it (client) the link is up,
    /// encrypted.
    fn on_noise(&mut self) -> Result<(), HandshakeError> {
        let Some(noise) = self.noise.as_mut() else {
            return Err(HandshakeError::Noise(SecureError::Handshake("no Noise handshake")));
        };
        let used = noise.read(&self.input).map_err(HandshakeError::Noise)?;
        if used != self.input.len() {
            return Err(HandshakeError::Noise(SecureError::Handshake("a Noise message of the wrong length")));
        }
        noise.write(&mut self.output).map_err(HandshakeError::Noise)?;
        if let Some(len) = noise.next_read_len() {
            // Node keys: a third message is due.
            self.input.clear();
            self.state = State::AwaitNoise(len);
            return Ok(());
        }
        if !noise.is_done() {
            return Err(HandshakeError::Noise(SecureError::Handshake("the Noise handshake did not end")));
        }
        self.unlisted = noise.unlisted_peer().map(str::to_owned);
        let secure =
            self.noise.take().map(NoiseHandshake::finish).transpose().map_err(HandshakeError::Noise)?;
        self.secure = secure;
        self.finish(true);
        if let Some(peer) = &mut self.peer {
            peer.encrypted = true;
        }
        Ok(())
    }

    /// Server: the client's HELLO. Answers with HELLO_ACK.
    fn on_hello(&mut self) -> Result<(), HandshakeError> {
        let hello = self.hello_in(TYPE_HELLO)?;
        let ours = (self.config.version_min, self.config.version_max);
        let theirs = (hello.version_a, hello.version_b);
        let (low, high) = (ours.0.max(theirs.0), ours.1.min(theirs.1));
        if low > high {
            return Err(HandshakeError::NoCommonVersion { ours, theirs });
        }
        let version = high;
        self.encrypt = self.check_peer(&hello)?;
        self.remember_peer(&hello, version);
        self.transcript.extend_from_slice(&self.input);
        self.input.clear();

        let ack = self.own_hello(version, 0).encode(TYPE_HELLO_ACK);
        self.transcript.extend_from_slice(&ack);
        self.output.extend_from_slice(&ack);
        if let Some(secret) = &self.config.secret {
            let server_mac = secret.mac(SERVER_LABEL, &[&self.transcript])?.finalize().into_bytes();
            self.transcript.extend_from_slice(&server_mac);
            self.output.extend_from_slice(&server_mac);
            self.state = State::AwaitAuth;
        } else {
            self.finish(false);
        }
        Ok(())
    }

    /// Server: the client's AUTH. Checks the client MAC.
    fn on_auth(&mut self) -> Result<(), HandshakeError> {
        self.check_start(TYPE_AUTH)?;
        let Some(secret) = &self.config.secret else { return Err(HandshakeError::NoSecret) };
        let (head, client_mac) = self.input.split_at(AUTH_HEAD_LEN);
        secret
            .mac(CLIENT_LABEL, &[&self.transcript, head])?
            .verify_slice(client_mac)
            .map_err(|_| HandshakeError::BadMac)?;
        self.after_auth()
    }
}

#[cfg(test)]
mod tests;
