//! Encrypted links, I/O-free: a Noise handshake keyed by the shared
//! secret, then records sealed with an AEAD. Bytes in, bytes out, as the
//! rest of the crate: the driver moves them.
//!
//! * **The handshake** is `Noise_NNpsk0_25519_AESGCM_BLAKE2s`: each
//!   side draws an ephemeral key pair for this link only (forward secrecy:
//!   a secret stolen later opens no record recorded earlier), and the
//!   pre-shared key ([`Secret::noise_psk`]) is mixed in before the first
//!   message, so a side without the secret cannot complete it. The
//!   prologue binds what came before it on the connection (the plain
//!   handshake's transcript): a relay that changed any byte of it makes
//!   the Noise handshake fail.
//! * **Records** carry the session's bytes: a 2-byte big-endian length,
//!   then that many bytes of ciphertext (at most [`MAX_RECORD`], the Noise
//!   limit; its last [`TAG_LEN`] bytes are the tag). One record holds as
//!   many frames as fit ([`MAX_PLAIN`] bytes), so the cost is per burst,
//!   not per small message. Nonces are implicit, counted on each side: a
//!   record altered, replayed, reordered, dropped or truncated fails to
//!   open ([`SecureError::BadRecord`]), and the link closes.
//!
//! ```
//! use connection::{NoiseHandshake, Role, Secret};
//!
//! let secret = Secret::new(b"both ends hold this".to_vec()).unwrap();
//! let psk = secret.noise_psk(b"what came before on the connection");
//! let mut client = NoiseHandshake::new(Role::Client, &psk, b"prologue").unwrap();
//! let mut server = NoiseHandshake::new(Role::Server, &psk, b"prologue").unwrap();
//! let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
//! client.write(&mut to_server).unwrap();
//! server.read(&to_server).unwrap();
//! server.write(&mut to_client).unwrap();
//! client.read(&to_client).unwrap();
//! let (mut client, mut server) = (client.finish().unwrap(), server.finish().unwrap());
//!
//! let mut wire = Vec::new();
//! client.seal(b"a burst of frames", &mut wire).unwrap();
//! assert!(!wire.windows(5).any(|w| w == b"burst"), "nothing of it in the clear");
//! let mut plain = Vec::new();
//! assert_eq!(server.open(&wire, &mut plain).unwrap(), wire.len());
//! assert_eq!(plain, b"a burst of frames");
//! ```

use ring::aead;

use crate::{Role, Secret};

/// The Noise protocol of encrypted links between nodes with node keys
/// ([`NodeKeys`]): each proves its static key too, after both ephemeral
/// keys, and the pre-shared key is mixed in last.
pub const NOISE_PATTERN_KEYS: &str = "Noise_XXpsk3_25519_AESGCM_BLAKE2s";

/// The Noise protocol of encrypted links. AES-256-GCM (ring's, on AES-NI
/// where the CPU has it), in place, seals and opens 1 MiB in 0.43 ms on
/// this project's test machine and a 128-byte record in 0.22 µs (`cargo
/// bench --bench records`); ring's ChaCha20-Poly1305 took 2.5 times as
/// long for 1 MiB, and 1.8 times for 150 bytes.
pub const NOISE_PATTERN: &str = "Noise_NNpsk0_25519_AESGCM_BLAKE2s";

/// The bytes of a record's length, before its ciphertext.
pub const RECORD_HEADER_LEN: usize = 2;

/// The AEAD tag at the end of every record's ciphertext.
pub const TAG_LEN: usize = 16;

/// Room for the largest handshake message (XX's second: an ephemeral
/// key, a sealed static key, an empty sealed payload) and then some; a
/// longer one fails the handshake.
const HANDSHAKE_BUF: usize = 256;

/// The largest ciphertext of a record (the Noise limit).
pub const MAX_RECORD: usize = 65535;

/// The most plaintext one record carries.
pub const MAX_PLAIN: usize = MAX_RECORD - TAG_LEN;

/// Why encrypted bytes were refused: each closes the link.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecureError {
    /// A record did not open: altered, replayed, reordered, or out of
    /// place after a dropped one.
    #[error("a record failed its authentication (altered, replayed, reordered or dropped)")]
    BadRecord,
    /// A record too short to hold its tag.
    #[error("a record of {0} bytes, shorter than its tag")]
    ShortRecord(usize),
    /// The stream ended inside a record.
    #[error("the stream ended inside a record")]
    Truncated,
    /// The Noise handshake failed: the peer does not hold the secret, or
    /// what came before it on the connection was changed.
    #[error("the encrypted handshake failed: {0}")]
    Handshake(&'static str),
    /// So many records went one way that their nonces ran out.
    #[error("the link's keys are spent")]
    Exhausted,
    /// The peer's node key is not among the keys allowed to link.
    #[error("the peer's node key {0} is not allowed to link")]
    UnlistedKey(String),
}

/// A node's key pair (X25519) and the public keys of the nodes allowed to
/// link with it: with them, one leaked node key does not let its holder
/// pass for every other node, as one shared secret would.
#[derive(Clone)]
pub struct NodeKeys {
    private: [u8; 32],
    public: [u8; 32],
    allowed: Vec<[u8; 32]>,
}

impl std::fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKeys")
            .field("public", &hex::encode(self.public))
            .field("allowed", &self.allowed.len())
            .finish()
    }
}

impl Drop for NodeKeys {
    fn drop(&mut self) {
        self.private.fill(0);
        std::hint::black_box(&mut self.private);
    }
}

impl NodeKeys {
    /// A new random key pair (`ipchnl keygen`), allowing no peer yet.
    pub fn generate() -> Result<Self, SecureError> {
        let params =
            NOISE_PATTERN_KEYS.parse().map_err(|_| SecureError::Handshake("unknown Noise pattern"))?;
        let pair = snow::Builder::new(params)
            .generate_keypair()
            .map_err(|_| SecureError::Handshake("no randomness"))?;
        let (mut private, mut public) = ([0u8; 32], [0u8; 32]);
        private.copy_from_slice(&pair.private);
        public.copy_from_slice(&pair.public);
        Ok(Self { private, public, allowed: Vec::new() })
    }

    /// A key pair as [`to_text`](Self::to_text) wrote it: lines
    /// `private HEX` and `public HEX`.
    pub fn from_text(text: &str) -> Option<Self> {
        let field = |name: &str| {
            text.lines().find_map(|l| l.trim().strip_prefix(name)).and_then(|v| parse_key(v.trim()))
        };
        Some(Self { private: field("private ")?, public: field("public ")?, allowed: Vec::new() })
    }

    /// The key pair as text, for a file only its owner reads.
    pub fn to_text(&self) -> String {
        format!("private {}\npublic {}\n", hex::encode(self.private), hex::encode(self.public))
    }

    /// Allows the nodes of these public keys (lines of 64 hex digits;
    /// empty lines and `#` comments skipped); the first line that is not
    /// one is the error.
    pub fn allow(mut self, list: &str) -> Result<Self, String> {
        for line in list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            self.allowed.push(parse_key(line).ok_or_else(|| format!("not a public key: {line:?}"))?);
        }
        Ok(self)
    }

    /// This node's public key, in hex (what the other nodes list).
    pub fn public_hex(&self) -> String {
        hex::encode(self.public)
    }

    /// Whether the node of `public` may link.
    pub fn allows(&self, public: &[u8]) -> bool {
        self.allowed.iter().any(|k| k[..] == *public)
    }
}

fn parse_key(text: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(text, &mut key).ok()?;
    Some(key)
}

impl Secret {
    /// The Noise pre-shared key of a link: the secret's MAC over
    /// `transcript` (what the link's plain handshake exchanged), so that
    /// each link has a key of its own.
    pub fn noise_psk(&self, transcript: &[u8]) -> [u8; 32] {
        let mut psk = [0u8; 32];
        if let Ok(mac) = self.mac(b"ipchnl noise psk 1", &[transcript]) {
            psk.copy_from_slice(&hmac::Mac::finalize(mac).into_bytes());
        }
        psk
    }
}

/// The Noise handshake of one link, in memory: [`write`](Self::write)
/// what it sends, [`read`](Self::read) what came, until
/// [`is_done`](Self::is_done); then [`finish`](Self::finish) gives the
/// link's [`Secure`] records. The client (initiator) writes first.
pub struct NoiseHandshake {
    state: snow::HandshakeState,
    buf: Vec<u8>,
    /// With node keys: whose keys may link.
    keys: Option<NodeKeys>,
    /// Handshake messages read.
    received: u32,
    /// Responder: the initiator's node key, which `keys` does not list
    /// (the handshake ends, so that the link can close saying why).
    unlisted: Option<String>,
}

impl std::fmt::Debug for NoiseHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseHandshake").field("done", &self.is_done()).finish_non_exhaustive()
    }
}

impl NoiseHandshake {
    /// A handshake for `role`, keyed with `psk`, bound to `prologue`.
    pub fn new(role: Role, psk: &[u8; 32], prologue: &[u8]) -> Result<Self, SecureError> {
        Self::with_keys(role, psk, prologue, None)
    }

    /// As [`new`](Self::new); with `keys`, each side proves its node key
    /// too ([`NOISE_PATTERN_KEYS`]), and a peer whose key `keys` does not
    /// allow is refused ([`SecureError::UnlistedKey`]) as soon as it is
    /// known.
    pub fn with_keys(
        role: Role,
        psk: &[u8; 32],
        prologue: &[u8],
        keys: Option<NodeKeys>,
    ) -> Result<Self, SecureError> {
        let (pattern, at) = if keys.is_some() { (NOISE_PATTERN_KEYS, 3) } else { (NOISE_PATTERN, 0) };
        let params = pattern.parse().map_err(|_| SecureError::Handshake("unknown Noise pattern"))?;
        let builder = snow::Builder::new(params)
            .psk(at, psk)
            .and_then(|b| b.prologue(prologue))
            .map_err(|_| SecureError::Handshake("bad Noise parameters"))?;
        let builder = match &keys {
            Some(k) => {
                builder.local_private_key(&k.private).map_err(|_| SecureError::Handshake("bad node key"))?
            }
            None => builder,
        };
        let state = match role {
            Role::Client => builder.build_initiator(),
            Role::Server => builder.build_responder(),
        }
        .map_err(|_| SecureError::Handshake("no Noise state"))?;
        Ok(Self { state, buf: vec![0; HANDSHAKE_BUF], keys, received: 0, unlisted: None })
    }

    /// The length of the peer's next handshake message as a record
    /// (`None`: none is due): fixed by the pattern, empty payloads.
    pub fn next_read_len(&self) -> Option<usize> {
        if self.state.is_handshake_finished() || self.state.is_my_turn() {
            return None;
        }
        let keyed = self.keys.is_some();
        // Message 1: e and its payload's tag. NN's message 2: e, tag. XX's
        // message 2: e, its static key sealed, tag; message 3: the static
        // key sealed, tag.
        let len = match (keyed, self.state.is_initiator()) {
            (false, _) => 32 + TAG_LEN,
            (true, false) if self.received == 0 => 32 + TAG_LEN,
            (true, true) => 32 + 32 + TAG_LEN + TAG_LEN,
            (true, false) => 32 + TAG_LEN + TAG_LEN,
        };
        Some(RECORD_HEADER_LEN + len)
    }

    /// Whether it is this side's turn to write.
    pub fn wants_to_write(&self) -> bool {
        !self.state.is_handshake_finished() && self.state.is_my_turn()
    }

    /// Appends this side's next handshake message, as a record, to `out`
    /// (nothing when it is not this side's turn).
    pub fn write(&mut self, out: &mut Vec<u8>) -> Result<(), SecureError> {
        if !self.wants_to_write() {
            return Ok(());
        }
        let n = self
            .state
            .write_message(&[], &mut self.buf)
            .map_err(|_| SecureError::Handshake("cannot write a handshake message"))?;
        push_record(out, &self.buf[..n]);
        Ok(())
    }

    /// Reads the peer's next handshake message from the front of `input`;
    /// the bytes taken (0: it is not whole yet, or it is not the peer's
    /// turn).
    pub fn read(&mut self, input: &[u8]) -> Result<usize, SecureError> {
        if self.state.is_handshake_finished() || self.state.is_my_turn() {
            return Ok(0);
        }
        let Some((record, used)) = next_record(input)? else { return Ok(0) };
        self.state.read_message(record, &mut self.buf).map_err(|_| {
            SecureError::Handshake("the peer does not hold the secret, or the connection was changed")
        })?;
        self.received += 1;
        if let (Some(keys), Some(remote)) = (&self.keys, self.state.get_remote_static())
            && !keys.allows(remote)
        {
            let key = hex::encode(remote);
            if self.state.is_initiator() {
                // Before this side says who it is.
                return Err(SecureError::UnlistedKey(key));
            }
            self.unlisted = Some(key);
        }
        Ok(used)
    }

    /// Responder, once done: the initiator's node key if this side does
    /// not list it (the link must then close at once, saying so).
    pub fn unlisted_peer(&self) -> Option<&str> {
        self.unlisted.as_deref()
    }

    /// Whether both sides have what they need.
    pub fn is_done(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// The link's records, once [`is_done`](Self::is_done).
    pub fn finish(mut self) -> Result<Secure, SecureError> {
        if !self.state.is_handshake_finished() {
            return Err(SecureError::Handshake("the handshake is not done"));
        }
        // The Noise split: the first key seals what the initiator sends,
        // the second what the responder sends. Records are sealed with
        // them here, in place, as Noise's own transport would (AES-256-GCM,
        // nonce 32 zero bits and the record's 64-bit big-endian count, no
        // associated data), without its copy through a scratch buffer.
        let (initiator, responder) = self.state.dangerously_get_raw_split();
        let (send, recv) =
            if self.state.is_initiator() { (initiator, responder) } else { (responder, initiator) };
        Ok(Secure {
            send: Cipher::new(&send)?,
            recv: Cipher::new(&recv)?,
            counters: SecureCounters::default(),
        })
    }
}

/// One direction's key and the count of its records (the nonce).
struct Cipher {
    key: aead::LessSafeKey,
    next: u64,
}

impl Cipher {
    fn new(key: &[u8; 32]) -> Result<Self, SecureError> {
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, key)
            .map_err(|_| SecureError::Handshake("no AES-256-GCM key"))?;
        Ok(Self { key: aead::LessSafeKey::new(key), next: 0 })
    }

    /// The next record's nonce (Noise reserves the last count).
    fn nonce(&mut self) -> Result<aead::Nonce, SecureError> {
        if self.next == u64::MAX {
            return Err(SecureError::Exhausted);
        }
        let mut nonce = [0u8; aead::NONCE_LEN];
        nonce[4..].copy_from_slice(&self.next.to_be_bytes());
        self.next += 1;
        Ok(aead::Nonce::assume_unique_for_key(nonce))
    }
}

/// What a link's records counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecureCounters {
    /// Records sealed and sent.
    pub records_out: u64,
    /// Records opened.
    pub records_in: u64,
    /// Records refused (each closes the link: at most one per link).
    pub bad_records: u64,
}

/// A link's records after its handshake: [`seal`](Self::seal) what the
/// session writes, [`open_in_place`](Self::open_in_place) what the
/// connection brings. It holds two keys and two counts: no buffer.
pub struct Secure {
    send: Cipher,
    recv: Cipher,
    counters: SecureCounters,
}

impl std::fmt::Debug for Secure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secure").field("counters", &self.counters).finish_non_exhaustive()
    }
}

impl Secure {
    /// Appends `plain` to `out` as records of at most [`MAX_PLAIN`] bytes
    /// each (none for no bytes), each sealed where it lands in `out`.
    pub fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), SecureError> {
        out.reserve(plain.len() + plain.len().div_ceil(MAX_PLAIN) * (RECORD_HEADER_LEN + TAG_LEN));
        for chunk in plain.chunks(MAX_PLAIN) {
            let nonce = self.send.nonce()?;
            // A chunk is at most MAX_PLAIN bytes: with its tag the length fits.
            let len = u16::try_from(chunk.len() + TAG_LEN).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            let at = out.len();
            out.extend_from_slice(chunk);
            let tag = self
                .send
                .key
                .seal_in_place_separate_tag(nonce, aead::Aad::empty(), &mut out[at..])
                .map_err(|_| SecureError::Exhausted)?;
            out.extend_from_slice(tag.as_ref());
            self.counters.records_out += 1;
        }
        Ok(())
    }

    /// Opens the whole records at the front of `input`, appending their
    /// plaintext to `plain`; the bytes taken (a record not yet whole is
    /// left for the next call). On error the link must close: nothing
    /// after the bad record can be read.
    pub fn open(&mut self, input: &[u8], plain: &mut Vec<u8>) -> Result<usize, SecureError> {
        let mut used = 0;
        while let Some((_, n)) =
            next_record(&input[used..]).inspect_err(|_| self.counters.bad_records += 1)?
        {
            let at = plain.len();
            plain.extend_from_slice(&input[used..used + n]);
            let opened = self.open_in_place(&mut plain[at..]);
            let Ok(Some((len, _))) = opened else {
                plain.truncate(at);
                return opened.map(|_| used);
            };
            plain.copy_within(at + RECORD_HEADER_LEN..at + RECORD_HEADER_LEN + len, at);
            plain.truncate(at + len);
            used += n;
        }
        Ok(used)
    }

    /// Opens the record at the front of `input` where it lies, if it is
    /// whole: the length of its plaintext, which then starts at
    /// [`RECORD_HEADER_LEN`], and the bytes the record took.
    pub fn open_in_place(&mut self, input: &mut [u8]) -> Result<Option<(usize, usize)>, SecureError> {
        let next = next_record(input).inspect_err(|_| self.counters.bad_records += 1)?;
        let Some((record, used)) = next else { return Ok(None) };
        let len = record.len() - TAG_LEN;
        let nonce = self.recv.nonce()?;
        let record = &mut input[RECORD_HEADER_LEN..used];
        if self.recv.key.open_in_place(nonce, aead::Aad::empty(), record).is_err() {
            self.counters.bad_records += 1;
            return Err(SecureError::BadRecord);
        }
        self.counters.records_in += 1;
        Ok(Some((len, used)))
    }

    /// The connection ended with `left` bytes not taken by
    /// [`open`](Self::open): an error if they are part of a record.
    pub fn check_end(&self, left: usize) -> Result<(), SecureError> {
        if left == 0 { Ok(()) } else { Err(SecureError::Truncated) }
    }

    /// What was counted so far.
    pub fn counters(&self) -> SecureCounters {
        self.counters
    }
}

fn push_record(out: &mut Vec<u8>, ciphertext: &[u8]) {
    // Noise messages are at most MAX_RECORD (65535) bytes: the length fits.
    let len = u16::try_from(ciphertext.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(ciphertext);
}

/// The record at the front of `input` and the bytes it takes, if whole.
fn next_record(input: &[u8]) -> Result<Option<(&[u8], usize)>, SecureError> {
    let Some(len) = input.first_chunk::<RECORD_HEADER_LEN>() else { return Ok(None) };
    let len = usize::from(u16::from_be_bytes(*len));
    if len < TAG_LEN {
        return Err(SecureError::ShortRecord(len));
    }
    let end = RECORD_HEADER_LEN + len;
    Ok(input.get(RECORD_HEADER_LEN..end).map(|r| (r, end)))
}

#[cfg(test)]
mod tests;
