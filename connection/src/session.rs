//! The link session: one link's protocol, free of I/O.
//!
//! A [`Session`] owns everything one link keeps once its socket is open:
//! the handshake, the read and write buffers, sequence numbers and
//! acknowledgements, the send window's unacknowledged messages and the
//! receive window, NACK matching, the heartbeat, handshake and write
//! deadlines, the peer's actors as its directories announced them, the
//! peer's watches of this node's actors, and every per-link limit
//! ([`LinkLimits`]). It never touches a socket and never reads the
//! clock: the caller passes `now`, moves bytes in ([`input_buf`] then
//! [`input_filled`], or [`handle_input`]) and out ([`transmit`] then
//! [`transmitted`]), takes [`Event`]s with [`poll_event`], and calls
//! [`handle_timeout`] at [`poll_timeout`].
//!
//! `T` is what the caller keeps for each message it sends, until the peer
//! acknowledges it ([`Event::Acked`]) or refuses it ([`Event::Nacked`]), or
//! the link ends ([`Session::take_unacked`]).
//!
//! [`input_buf`]: Session::input_buf
//! [`input_filled`]: Session::input_filled
//! [`handle_input`]: Session::handle_input
//! [`transmit`]: Session::transmit
//! [`transmitted`]: Session::transmitted
//! [`poll_event`]: Session::poll_event
//! [`handle_timeout`]: Session::handle_timeout
//! [`poll_timeout`]: Session::poll_timeout
//!
//! # Examples
//!
//! Two sessions wired together in memory: a handshake, a message, its
//! acknowledgement.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use connection::{
//!     Event, FrameHeader, FrameKind, HandshakeConfig, Incarnation, Role, Session, LinkLimits,
//!     encode_frame,
//! };
//! use msg_header::{ActorId, NodeId};
//!
//! let now = Instant::now();
//! let config = LinkLimits::default();
//! let hs = |name: &str| HandshakeConfig::new(NodeId::of_name(name), Incarnation([1; 16]));
//! let mut a: Session<&str> = Session::new(Role::Client, hs("a"), [1; 32], config.clone(), now);
//! let mut b: Session<&str> = Session::new(Role::Server, hs("b"), [2; 32], config, now);
//! // Moves what one side has to send to the other.
//! fn pass(from: &mut Session<&str>, to: &mut Session<&str>, now: Instant) {
//!     let bytes = from.transmit().to_vec();
//!     from.transmitted(now, bytes.len());
//!     to.handle_input(now, &bytes);
//! }
//! pass(&mut a, &mut b, now); // HELLO
//! assert!(matches!(b.poll_event(), Some(Event::Up(_))));
//! pass(&mut b, &mut a, now); // HELLO_ACK
//! assert!(matches!(a.poll_event(), Some(Event::Up(_))));
//!
//! let mut frame = Vec::new();
//! let header = FrameHeader { dst: ActorId::from_u128(7), ..FrameHeader::new(FrameKind::Msg) };
//! encode_frame(&header, br#"{"n":1}"#, config_max(), &mut frame)?;
//! # fn config_max() -> usize { connection::DEFAULT_MAX_FRAME }
//! a.send_msg(&frame, "kept until acknowledged");
//! pass(&mut a, &mut b, now);
//! match b.poll_event() {
//!     Some(Event::Msg { header, body, .. }) => assert_eq!((header.seq, body), (1, &br#"{"n":1}"#[..])),
//!     other => panic!("{other:?}"),
//! }
//! b.flush_acks();
//! pass(&mut b, &mut a, now);
//! assert!(matches!(a.poll_event(), Some(Event::Acked(msgs)) if msgs == ["kept until acknowledged"]));
//! # Ok::<(), connection::FrameError>(())
//! ```

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use msg_header::{ActorId, NackReason, UnhandledReason};

use crate::output::{OUT_KEEP, Output};
use crate::parts::{Assembly, Outgoing, Piece};
use crate::{
    CloseBody, DirectoryUpdate, FIRST_PART, FRAME_HEADER_LEN, FrameDecoder, FrameError, FrameHeader,
    FrameKind, Handshake, HandshakeConfig, HandshakeError, LAST_PART, LinkLimits, MAX_RECORD, PART_BODY,
    PeerHello, RECORD_HEADER_LEN, Role, Secure, SecureError, encode_frame, patch_seq_ack,
};

/// How the peer broke the protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame could not be read.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// A record of an encrypted link did not open.
    #[error("encrypted link: {0}")]
    Record(#[from] SecureError),
    /// A MSG out of sequence.
    #[error("message {got} after {last}")]
    OutOfSequence {
        /// The last MSG's sequence number.
        last: u64,
        /// This one's.
        got: u64,
    },
    /// A MSG more than the receive window beyond the last acknowledgement sent.
    #[error("message {seq} beyond the receive window ({window} after acknowledgement {acked})")]
    WindowOverrun {
        /// Its sequence number.
        seq: u64,
        /// The last acknowledgement this side sent.
        acked: u64,
        /// The receive window.
        window: usize,
    },
    /// An acknowledgement of a message never sent.
    #[error("acknowledgement {ack} of a message never sent (last sent {sent})")]
    AckBeyondSent {
        /// The acknowledgement.
        ack: u64,
        /// The last sequence number sent.
        sent: u64,
    },
    /// A DIRECTORY body that is not JSON of the right shape.
    #[error("bad directory: {0}")]
    BadDirectory(String),
    /// A second full DIRECTORY on one link.
    #[error("a second full directory on one link")]
    DirectoryRepeated,
    /// More actors than [`LinkLimits::max_remote_actors`].
    #[error("more than {0} actors announced")]
    TooManyActors(usize),
    /// A name longer than [`LinkLimits::max_name_len`].
    #[error("a name of {len} bytes (at most {max})")]
    NameTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An actor listing more ids than [`LinkLimits::max_actor_ids`].
    #[error("an actor listing {len} ids (at most {max})")]
    TooManyIds {
        /// How many.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More watches than [`LinkLimits::max_watches`].
    #[error("more than {0} watches")]
    TooManyWatches(usize),
    /// The pieces of a message sent in parts broke the rules (WIRE.md §3).
    #[error("bad message parts: {0}")]
    BadPart(&'static str),
    /// A message in parts announced as larger than [`LinkLimits::max_message`].
    #[error("a message of {len} bytes announced (at most {max})")]
    MessageTooLarge {
        /// The length announced.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl ProtocolError {
    /// A short name for counters: `frame_too_large`, `frame_too_short`,
    /// `frame_unknown_kind`, `frame_body`, `handshake_bad_magic`,
    /// `handshake_unexpected`, `handshake_version`,
    /// `handshake_auth_required`, `handshake_no_secret`,
    /// `handshake_bad_mac`, `handshake_self`,
    /// `handshake_encryption_required`, `handshake_encryption_no_secret`,
    /// `handshake_noise`, `handshake_unlisted_key`, `handshake_node_keys`,
    /// `out_of_sequence`,
    /// `window_overrun`, `bad_ack`, `bad_directory`, `directory_repeated`,
    /// `too_many_actors`, `name_too_long`, `too_many_ids`, `too_many_watches`,
    /// `bad_part`, `message_too_large`, `bad_record`.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Frame(e) => match e {
                FrameError::TooLarge { .. } => "frame_too_large",
                FrameError::TooShort(_) => "frame_too_short",
                FrameError::UnknownKind(_) => "frame_unknown_kind",
                FrameError::Body(_) => "frame_body",
            },
            Self::Handshake(e) => match e {
                HandshakeError::BadMagic => "handshake_bad_magic",
                HandshakeError::UnexpectedMessage { .. } => "handshake_unexpected",
                HandshakeError::NoCommonVersion { .. } => "handshake_version",
                HandshakeError::AuthRequired => "handshake_auth_required",
                HandshakeError::NoSecret => "handshake_no_secret",
                HandshakeError::BadMac => "handshake_bad_mac",
                HandshakeError::SelfConnect => "handshake_self",
                HandshakeError::EncryptionRequired { .. } => "handshake_encryption_required",
                HandshakeError::EncryptionNeedsSecret => "handshake_encryption_no_secret",
                HandshakeError::Noise(SecureError::UnlistedKey(_)) => "handshake_unlisted_key",
                HandshakeError::Noise(_) => "handshake_noise",
                HandshakeError::NodeKeysRequired { .. } => "handshake_node_keys",
            },
            Self::OutOfSequence { .. } => "out_of_sequence",
            Self::WindowOverrun { .. } => "window_overrun",
            Self::AckBeyondSent { .. } => "bad_ack",
            Self::BadDirectory(_) => "bad_directory",
            Self::DirectoryRepeated => "directory_repeated",
            Self::TooManyActors(_) => "too_many_actors",
            Self::NameTooLong { .. } => "name_too_long",
            Self::TooManyIds { .. } => "too_many_ids",
            Self::TooManyWatches(_) => "too_many_watches",
            Self::BadPart(_) => "bad_part",
            Self::MessageTooLarge { .. } => "message_too_large",
            Self::Record(_) => "bad_record",
        }
    }
}

/// Why a link ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed the connection without a CLOSE frame.
    PeerClosed,
    /// The peer (a server) closed the connection during the handshake,
    /// without a word: it refused the HELLO (it wants a secret this side
    /// does not offer, or has none and this side offers one; or no version
    /// is common; or the HELLO named the server's own node).
    RefusedInHandshake,
    /// The peer closed the connection in the middle of a frame: this many
    /// bytes of it had come.
    Truncated(usize),
    /// The peer sent CLOSE with this reason.
    Peer(PeerCloseReason),
    /// Reading or writing failed (the caller's I/O: its text).
    Io(String),
    /// The peer broke the protocol.
    Protocol(ProtocolError),
    /// Nothing was received for the heartbeat timeout.
    HeartbeatTimeout,
    /// The handshake did not finish in time.
    HandshakeTimeout,
    /// The peer took nothing written for the write deadline.
    SlowConsumer,
    /// A frame was not whole by the frame deadline after its first byte,
    /// or a message in parts had none for that long
    /// ([`LinkLimits::frame_deadline`]).
    SlowFrame,
    /// Another link between the same two nodes is kept.
    Duplicate,
    /// A newer link from the same node (a new incarnation, or a redial)
    /// replaced this one.
    Replaced,
    /// This node is shutting down.
    Shutdown,
    /// Refused by a cap on links (after the handshake, with a CLOSE that
    /// names it), or cut for too many pending handshakes.
    Limit(LimitKind),
    /// Cut because the node's links together hold more than its budget of
    /// this kind, and this link held the most.
    Budget(BudgetKind),
}

/// Which node-wide cap refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitKind {
    /// `max_links`: the node's links, all peers together.
    Links,
    /// `max_pending_handshakes` (the oldest pending handshake is cut).
    PendingHandshakes,
    /// `max_links_per_user`: links from one user (a uid on this host, an
    /// address elsewhere).
    LinksPerUser,
    /// `max_links_per_node`: links from one node.
    LinksPerNode,
}

impl LimitKind {
    /// The reason a CLOSE frame gives for it (`too_many_links`,
    /// `too_many_links_from_user`, `too_many_links_from_node`,
    /// `too_many_handshakes`).
    pub fn wire(self) -> &'static str {
        match self {
            Self::Links => "too_many_links",
            Self::PendingHandshakes => "too_many_handshakes",
            Self::LinksPerUser => "too_many_links_from_user",
            Self::LinksPerNode => "too_many_links_from_node",
        }
    }
}

/// Which node-wide budget a link was cut for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetKind {
    /// Bytes of read buffers grown for large frames.
    ReadBuffers,
    /// Bytes of inbound messages delivered and not yet handled.
    Inbound,
    /// Bytes waiting to be written.
    Output,
}

impl BudgetKind {
    /// A short name: `read_buffers`, `inbound`, `output`.
    pub fn key(self) -> &'static str {
        match self {
            Self::ReadBuffers => "read_buffers",
            Self::Inbound => "inbound",
            Self::Output => "output",
        }
    }
}

/// The reason a peer gave in its CLOSE frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCloseReason {
    /// `shutdown`.
    Shutdown,
    /// `duplicate`.
    Duplicate,
    /// `replaced`.
    Replaced,
    /// Any other reason, as given (at most 64 bytes kept).
    Other(String),
}

impl PeerCloseReason {
    /// What the reason means, in words a person reads (the reason itself
    /// when it is not one this version knows).
    pub fn explain(&self) -> String {
        let known = match self.as_str() {
            "shutdown" => "the peer is shutting down",
            "duplicate" => "another link between the same two nodes is kept",
            "replaced" => "a newer link from the same node replaced it",
            "protocol_error" => "the peer found a protocol error in what this side sent",
            "slow_consumer" => "this side took nothing the peer wrote for its write deadline",
            "slow_frame" => "a frame from this side was not whole by the peer's frame deadline",
            "over_budget" => "the peer's links hold more than its budget, and this one held the most",
            "too_many_links" => "the peer has too many links",
            "too_many_links_from_user" => "the peer has too many links from this user",
            "too_many_links_from_node" => "the peer has too many links from this node",
            "too_many_handshakes" => "the peer has too many handshakes under way",
            "unlisted_key" => {
                "the peer does not list this node's key among those allowed to link (--allowed-keys)"
            }
            other => return other.to_owned(),
        };
        known.to_owned()
    }

    fn parse(reason: &str) -> Self {
        match reason {
            "shutdown" => Self::Shutdown,
            "duplicate" => Self::Duplicate,
            "replaced" => Self::Replaced,
            other => Self::Other(other.chars().take(64).collect()),
        }
    }

    /// The reason as the CLOSE frame says it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Shutdown => "shutdown",
            Self::Duplicate => "duplicate",
            Self::Replaced => "replaced",
            Self::Other(s) => s,
        }
    }
}

impl CloseReason {
    /// A short name for counters (`Manager::stats().closes`).
    pub fn key(&self) -> String {
        match self {
            Self::PeerClosed => "peer_closed".into(),
            Self::RefusedInHandshake => "handshake_refused".into(),
            Self::Truncated(_) => "truncated_frame".into(),
            Self::Peer(r) => format!("closed_{}", r.as_str()),
            Self::Io(_) => "io".into(),
            Self::Protocol(e) => format!("protocol_{}", e.key()),
            Self::HeartbeatTimeout => "heartbeat_timeout".into(),
            Self::HandshakeTimeout => "handshake_timeout".into(),
            Self::SlowConsumer => "slow_consumer".into(),
            Self::SlowFrame => "slow_frame".into(),
            Self::Duplicate => "duplicate".into(),
            Self::Replaced => "replaced".into(),
            Self::Shutdown => "shutdown".into(),
            Self::Limit(LimitKind::Links) => "link_limit".into(),
            Self::Limit(LimitKind::PendingHandshakes) => "handshake_limit".into(),
            Self::Limit(LimitKind::LinksPerUser) => "user_link_limit".into(),
            Self::Limit(LimitKind::LinksPerNode) => "node_link_limit".into(),
            Self::Budget(kind) => format!("over_budget_{}", kind.key()),
        }
    }

    /// The reason a CLOSE frame gives the peer, for the closes that send one.
    fn wire(&self) -> Option<&'static str> {
        match self {
            Self::Shutdown => Some("shutdown"),
            Self::Duplicate => Some("duplicate"),
            Self::Replaced => Some("replaced"),
            Self::Protocol(ProtocolError::Handshake(HandshakeError::Noise(SecureError::UnlistedKey(_)))) => {
                Some("unlisted_key")
            }
            Self::Protocol(_) => Some("protocol_error"),
            Self::SlowConsumer => Some("slow_consumer"),
            Self::SlowFrame => Some("slow_frame"),
            Self::Limit(kind) => Some(kind.wire()),
            Self::Budget(_) => Some("over_budget"),
            _ => None,
        }
    }

    /// Whether the link ended because of another link between the same
    /// two nodes (closed so here, or by the peer).
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Self::Duplicate | Self::Peer(PeerCloseReason::Duplicate))
    }

    /// Whether the peer's node is shutting down.
    pub fn is_peer_shutdown(&self) -> bool {
        matches!(self, Self::Peer(PeerCloseReason::Shutdown))
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerClosed => f.write_str("peer closed the connection"),
            Self::RefusedInHandshake => f.write_str(
                "the peer refused the handshake: it may want a secret this side does not have \
                 (--secret-file), or have none while this side offers one (--insecure), or \
                 require encryption or node keys this side does not offer, or \
                 speak another version",
            ),
            Self::Truncated(n) => {
                write!(f, "truncated frame: {n} bytes of an incomplete frame at end of stream")
            }
            Self::Peer(r) => write!(f, "peer closed the link: {}", r.explain()),
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::HeartbeatTimeout => f.write_str("no heartbeat from the peer"),
            Self::HandshakeTimeout => f.write_str("handshake timed out"),
            Self::SlowConsumer => f.write_str("the peer took nothing we wrote for the write deadline"),
            Self::SlowFrame => {
                f.write_str("the peer's frame (or message in parts) was not whole by the frame deadline")
            }
            Self::Duplicate => f.write_str("duplicate link"),
            Self::Replaced => f.write_str("replaced by a newer link from the same node"),
            Self::Shutdown => f.write_str("shutting down"),
            Self::Limit(LimitKind::Links) => f.write_str("too many links"),
            Self::Limit(LimitKind::PendingHandshakes) => f.write_str("too many pending handshakes"),
            Self::Limit(LimitKind::LinksPerUser) => f.write_str("too many links from this peer's user"),
            Self::Limit(LimitKind::LinksPerNode) => f.write_str("too many links from this peer's node"),
            Self::Budget(kind) => {
                write!(f, "the node's links hold more {} than its budget, and this one the most", kind.key())
            }
        }
    }
}

/// What a session tells its caller.
#[derive(Debug)]
pub enum Event<'a, T> {
    /// The handshake finished: the link is up. Send the full directory now.
    Up(PeerHello),
    /// A message for an actor of this node. The caller delivers it, or
    /// refuses it with [`Session::refuse`]; either way it is acknowledged.
    /// `body` borrows the session's buffer until the next call.
    Msg {
        /// The frame's header (`seq` already checked).
        header: FrameHeader,
        /// The message's body: its fields as JSON, or a body with blobs.
        body: &'a [u8],
        /// For a message that came in parts, the buffer `body` is: decoded
        /// within [`msg_header::with_shared_body`], its blobs are slices of
        /// it rather than copies.
        shared: Option<&'a bytes::Bytes>,
    },
    /// The peer acknowledged these messages sent with
    /// [`Session::send_msg`] (oldest first; one acknowledgement covers many).
    Acked(Vec<T>),
    /// The peer refused a message sent with [`Session::send_msg`].
    Nacked {
        /// What the caller kept for it.
        msg: T,
        /// The actor it was for.
        dst: ActorId,
        /// Why (`None`: a code this version does not know).
        reason: Option<NackReason>,
        /// The peer's detail text (at most 256 bytes kept).
        detail: String,
    },
    /// A message this node sent, which the peer acknowledged and then did
    /// not handle (returned with [`Session::return_unhandled`]): report it
    /// as a dead letter.
    Unhandled {
        /// The message's header as it was sent (`seq` and `ack` aside).
        header: FrameHeader,
        /// Why (`None`: a code this version does not know).
        reason: Option<UnhandledReason>,
        /// The message's fields as JSON, as they were sent.
        body: Vec<u8>,
    },
    /// The peer's actors changed. Checked against the limits and applied
    /// to [`Session::remote_actors`] already.
    Directory(DirectoryUpdate),
    /// The peer's actor `watcher` watches this node's actor `target`: tell
    /// it, with a `Terminated` MSG, when `target` ends. Each pair comes
    /// once; [`Session::forget_watch`] ends it.
    Watch {
        /// This node's actor.
        target: ActorId,
        /// The peer's watcher.
        watcher: ActorId,
    },
    /// The link ended. Nothing more comes; what is unacknowledged is in
    /// [`Session::take_unacked`].
    Closed(CloseReason),
}

/// Calls the macro `$m` with every count a session keeps, each with its
/// documentation: `$m! { $(#[doc = ..] name,)* }`. The one list of a link's
/// counters: [`SessionCounters`] here, and a node's per-peer counters and
/// their snapshot (`manager::LinkStats`) are made from it.
#[doc(hidden)]
#[macro_export]
macro_rules! session_counters {
    ($m:path) => {
        $m! {
            /// Frames received.
            frames_in,
            /// Frames sent.
            frames_out,
            /// Bytes received.
            bytes_in,
            /// Bytes sent.
            bytes_out,
            /// MSG frames received.
            msgs_in,
            /// MSG frames sent.
            msgs_out,
            /// HEARTBEATs received.
            heartbeats_in,
            /// HEARTBEATs sent.
            heartbeats_out,
            /// Times reading stopped because the peer spent its control
            /// budget ([`LinkLimits::control_rate`](crate::LinkLimits::control_rate)).
            control_throttled,
        }
    };
}

/// NACK reason codes counted apart: 0 (a code this version does not know)
/// to 5.
pub const NACK_CODES: usize = 6;

macro_rules! session_counters_struct {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// What a session has carried since the caller last took the counts
        /// ([`Session::take_counters`]).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct SessionCounters {
            $($(#[doc = $doc])* pub $name: u64,)*
            /// NACKs received, by reason code (0 for a code this version does not know).
            pub nacks_in: [u64; NACK_CODES],
            /// NACKs sent, by reason code.
            pub nacks_out: [u64; NACK_CODES],
        }
    };
}

session_counters!(session_counters_struct);

enum State {
    Handshaking(Box<Handshake>),
    Up(PeerHello),
    /// Ended; the CLOSE frame (if any) may still wait to be written.
    Closed,
}

/// One link's protocol: see [`connection`](crate) for how it is driven.
pub struct Session<T> {
    config: LinkLimits,
    decoder: FrameDecoder,
    role: Role,
    state: State,
    rbuf: Vec<u8>,
    rstart: usize,
    /// The end of the plaintext in `rbuf`: frames are read from
    /// `rstart..rend`.
    rend: usize,
    /// The end of what was read into `rbuf`: records not yet opened sit in
    /// `rend..cend` (the same as `rend` on a link that is not encrypted).
    cend: usize,
    /// An encrypted link's records, after its handshake.
    secure: Option<Secure>,
    /// An encrypted link's sealed output (`out` is sealed into it as the
    /// caller asks for bytes to write), and how much of it is written.
    sealed: Vec<u8>,
    sealed_pos: usize,
    /// Bytes of `rbuf` the last [`Event::Msg`] borrowed, consumed on the next call.
    consume: usize,
    eof: bool,
    /// The transport saw the peer end its stream while this side was not
    /// reading ([`peer_ended`](Session::peer_ended)).
    peer_ended: bool,
    out: Output,
    send_seq: u64,
    recv_seq: u64,
    ack_sent: u64,
    unacked: VecDeque<(u64, T)>,
    /// Messages too large for a frame, waiting to go in parts (the first
    /// one under way); numbered when their last piece goes.
    large_out: VecDeque<Outgoing<T>>,
    /// The peer's message coming in parts, if one is under way.
    assembly: Option<Assembly>,
    /// The body of the message in parts just delivered (an [`Event::Msg`]
    /// borrows it): dropped on the next call.
    assembled: Option<bytes::Bytes>,
    /// Bytes the caller allows the assembly to take ([`Session::grant_parts`]).
    part_room: usize,
    /// Bytes more the next piece needs than `part_room` allows (0: none waits).
    part_wanted: usize,
    /// The piece of the message in parts being read straight into its
    /// buffer ([`Session::input_direct`]), if one is.
    direct: Option<DirectPiece>,
    /// The message a piece read that way made whole, for the next
    /// [`Session::poll_event`].
    direct_whole: Option<(FrameHeader, bytes::Bytes)>,
    /// Messages that left `large_out` (all written, or reported) since the
    /// caller last asked ([`Session::take_large_done`]).
    large_done: usize,
    /// Messages read whose acknowledgement waits until they are handled
    /// ([`Session::ack_when_handled`]); fewer than the receive window.
    awaiting: BTreeSet<u64>,
    inbound_held: usize,
    events: VecDeque<OwnedEvent<T>>,
    closed_reported: bool,
    created: Instant,
    last_recv: Instant,
    /// When the first byte of the frame still incomplete came (`None`: no
    /// frame is under way).
    frame_since: Option<Instant>,
    last_send: Instant,
    blocked_since: Option<Instant>,
    full_directory_seen: bool,
    remote: HashSet<ActorId>,
    peer_watches: HashSet<(ActorId, ActorId)>,
    /// The last watch the peer asked for (in `peer_watches`).
    last_watch: Option<(ActorId, ActorId)>,
    /// Control frames the peer may still send now (negative: owed).
    control_credit: i64,
    /// When `control_credit` was last refilled.
    control_at: Instant,
    /// Reading waits until then: the peer overspent its control budget.
    throttled_until: Option<Instant>,
    counters: SessionCounters,
}

/// A piece of a message in parts whose body goes straight into the
/// message's buffer as it is read, not through the read buffer.
struct DirectPiece {
    header: FrameHeader,
    /// Bytes of its body still to come.
    left: usize,
    /// Bytes of the frame come so far, header included.
    got: usize,
    /// The length of the message's buffer once the piece is in.
    end: usize,
}

/// A piece whose body lacks at least this many bytes when its header is
/// read goes straight into the message's buffer; one nearly whole is
/// finished in the read buffer.
const DIRECT_MIN: usize = 4 << 10;

/// What became of a piece of a message in parts.
enum PieceTaken {
    /// Taken; more follows.
    More,
    /// The message is whole.
    Whole,
    /// It waits for room.
    Wait,
}

/// The events that do not borrow the buffer.
enum OwnedEvent<T> {
    Up(PeerHello),
    Acked(Vec<T>),
    Nacked { msg: T, dst: ActorId, reason: Option<NackReason>, detail: String },
    Unhandled { header: FrameHeader, body: Vec<u8> },
    Directory(DirectoryUpdate),
    Watch { target: ActorId, watcher: ActorId },
    Closed(CloseReason),
}

impl<T> OwnedEvent<T> {
    fn into_event<'a>(self) -> Event<'a, T> {
        match self {
            Self::Up(p) => Event::Up(p),
            Self::Acked(t) => Event::Acked(t),
            Self::Nacked { msg, dst, reason, detail } => Event::Nacked { msg, dst, reason, detail },
            Self::Unhandled { header, body } => {
                Event::Unhandled { header, reason: UnhandledReason::from_code(header.flags), body }
            }
            Self::Directory(d) => Event::Directory(d),
            Self::Watch { target, watcher } => Event::Watch { target, watcher },
            Self::Closed(r) => Event::Closed(r),
        }
    }
}

/// The read buffer's first size; it grows to the largest frame.
const RBUF_INITIAL: usize = READ_BUFFER_BASE;

/// A link's read buffer between large frames: it grows for a frame that
/// does not fit, up to the largest frame, and is given back afterwards
/// ([`Session::shrink_input`]).
pub const READ_BUFFER_BASE: usize = 16 * 1024;

impl<T> Session<T> {
    /// A session for a link just opened (a client speaks first: its HELLO
    /// is ready in [`transmit`](Self::transmit)). `nonce` must be random.
    pub fn new(
        role: Role,
        handshake: HandshakeConfig,
        nonce: [u8; 32],
        config: LinkLimits,
        now: Instant,
    ) -> Self {
        let mut hs = Box::new(Handshake::new(role, handshake, nonce));
        let mut out = Output::default();
        out.tail().extend_from_slice(&hs.take_output());
        let control_credit = i64::from(config.control_burst);
        Self {
            decoder: FrameDecoder::new(config.max_frame),
            config,
            role,
            state: State::Handshaking(hs),
            rbuf: vec![0; RBUF_INITIAL],
            rstart: 0,
            rend: 0,
            cend: 0,
            secure: None,
            sealed: Vec::new(),
            sealed_pos: 0,
            consume: 0,
            eof: false,
            peer_ended: false,
            out,
            send_seq: 0,
            recv_seq: 0,
            ack_sent: 0,
            unacked: VecDeque::new(),
            large_out: VecDeque::new(),
            assembly: None,
            assembled: None,
            part_room: 0,
            part_wanted: 0,
            direct: None,
            direct_whole: None,
            large_done: 0,
            awaiting: BTreeSet::new(),
            inbound_held: 0,
            events: VecDeque::new(),
            closed_reported: false,
            created: now,
            last_recv: now,
            frame_since: None,
            last_send: now,
            blocked_since: None,
            full_directory_seen: false,
            remote: HashSet::new(),
            peer_watches: HashSet::new(),
            last_watch: None,
            control_credit,
            control_at: now,
            throttled_until: None,
            counters: SessionCounters::default(),
        }
    }

    /// The side that dialed is the client.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer, once the handshake is done (and until the link ends).
    pub fn peer(&self) -> Option<&PeerHello> {
        match &self.state {
            State::Up(p) => Some(p),
            _ => None,
        }
    }

    /// Whether the handshake is done and the link has not ended.
    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up(_))
    }

    /// Whether the link has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The limits this session enforces.
    pub fn config(&self) -> &LinkLimits {
        &self.config
    }

    // -- Input ---------------------------------------------------------------

    /// Whether the caller should read more now: the link is open, the
    /// output waiting is under [`LinkLimits::max_write_buffer`], the
    /// inbound bytes held under [`LinkLimits::max_inbound_bytes`] and no
    /// piece of a message waits for room ([`part_growth`](Self::part_growth)).
    /// When this turns true again after being false, read at once (new
    /// bytes may have come while not reading, and raised no new event).
    pub fn wants_read(&self) -> bool {
        self.wants_read_given_room() && self.part_wanted == 0
    }

    /// Whether the caller should read more once a piece of a message that
    /// waits for room ([`part_growth`](Self::part_growth)) has it: what
    /// [`wants_read`](Self::wants_read) asks but that.
    pub fn wants_read_given_room(&self) -> bool {
        !self.eof
            && !self.is_closed()
            && self.pending_output() < self.config.max_write_buffer
            && self.inbound_held < self.config.max_inbound_bytes
            && self.throttled_until.is_none()
    }

    /// The transport saw the peer end its stream (or reset it). A piece of
    /// a message in parts that waits for room
    /// ([`part_growth`](Self::part_growth)) then gets no more time for
    /// that wait: unless what the peer sent completes it within the frame
    /// deadline, the link ends `slow_frame` and what it held is given
    /// back, so links whose peers all left cannot hold a budget that live
    /// ones wait for. Other waits of this side's (inbound or output caps,
    /// a peer that half-closed after its last message) stay excused.
    pub fn peer_ended(&mut self) {
        self.peer_ended = true;
    }

    /// Whether reading waits for the peer's control budget to refill
    /// (until [`poll_timeout`](Self::poll_timeout)).
    pub fn is_throttled(&self) -> bool {
        self.throttled_until.is_some()
    }

    /// Charges the peer `cost` control frames, received at the last read;
    /// past its budget, reading waits until the debt is paid.
    fn charge_control(&mut self, cost: u64) {
        let now = self.last_recv;
        let rate = u64::from(self.config.control_rate.max(1));
        let burst = i64::from(self.config.control_burst.max(1));
        let elapsed =
            u64::try_from(now.saturating_duration_since(self.control_at).as_micros()).unwrap_or(u64::MAX);
        let earned = elapsed.saturating_mul(rate) / 1_000_000;
        if earned > 0 {
            self.control_credit =
                self.control_credit.saturating_add(i64::try_from(earned).unwrap_or(i64::MAX));
            if self.control_credit >= burst {
                self.control_credit = burst;
                self.control_at = now;
            } else {
                self.control_at += Duration::from_micros(earned * 1_000_000 / rate);
            }
        }
        self.control_credit = self.control_credit.saturating_sub(i64::try_from(cost).unwrap_or(i64::MAX));
        if self.control_credit < 0 {
            if self.throttled_until.is_none() {
                self.counters.control_throttled += 1;
            }
            let debt = self.control_credit.unsigned_abs();
            self.throttled_until = Some(self.control_at + Duration::from_micros(debt * 1_000_000 / rate + 1));
        }
    }

    /// Where to read bytes into (at least one byte of room); then call
    /// [`input_filled`](Self::input_filled) with how many came.
    pub fn input_buf(&mut self) -> &mut [u8] {
        self.apply_consume();
        if self.cend == self.rbuf.len() {
            if self.rstart > 0 {
                self.rbuf.copy_within(self.rstart..self.cend, 0);
                self.rend -= self.rstart;
                self.cend -= self.rstart;
                self.rstart = 0;
            } else {
                // Full of one incomplete frame (and, encrypted, a record):
                // the decoder refused anything larger than the maximum, so
                // it fits once grown to it.
                let len = self.grown_len();
                self.rbuf.resize(len, 0);
            }
        }
        &mut self.rbuf[self.cend..]
    }

    /// The size the read buffer grows to when it is full.
    fn grown_len(&self) -> usize {
        // An encrypted link holds an incomplete frame's plaintext and an
        // incomplete record after it.
        let records = if self.secure.is_some() { RECORD_HEADER_LEN + MAX_RECORD } else { 0 };
        let max = self.config.max_frame.max(RBUF_INITIAL) + records;
        let len = (self.rbuf.len() * 2).clamp(RBUF_INITIAL, max);
        if len == self.rbuf.len() { len + RBUF_INITIAL } else { len }
    }

    /// How many bytes [`input_buf`](Self::input_buf) would add to the
    /// read buffer now (0: it has room): a caller that bounds read buffers
    /// across links asks before it reads.
    pub fn input_growth(&self) -> usize {
        let rstart = self.rstart + self.consume;
        if self.cend < self.rbuf.len() || rstart > 0 {
            return 0;
        }
        self.grown_len() - self.rbuf.len()
    }

    /// The read buffer's size: [`READ_BUFFER_BASE`] bytes, more while a
    /// large frame comes.
    pub fn input_capacity(&self) -> usize {
        self.rbuf.len()
    }

    /// Gives back what the read buffer grew for a large frame, if nothing
    /// is left in it (call it when the connection has nothing more to read
    /// for now); the bytes given back.
    pub fn shrink_input(&mut self) -> usize {
        self.apply_consume();
        if self.rstart != self.cend || self.rbuf.len() <= RBUF_INITIAL {
            return 0;
        }
        let freed = self.rbuf.len() - RBUF_INITIAL;
        self.rbuf = vec![0; RBUF_INITIAL];
        self.rstart = 0;
        self.rend = 0;
        self.cend = 0;
        freed
    }

    /// `n` bytes were read into [`input_buf`](Self::input_buf) at `now`;
    /// `0` means the peer closed the connection.
    pub fn input_filled(&mut self, now: Instant, n: usize) {
        if n == 0 {
            self.eof = true;
            return;
        }
        self.last_recv = now;
        self.counters.bytes_in += n as u64;
        if self.direct.is_some() {
            return self.direct_filled(now, n);
        }
        self.cend = (self.cend + n).min(self.rbuf.len());
        self.open_records();
    }

    /// Where the body of a piece of a message in parts goes while it comes
    /// ([`poll_event`](Self::poll_event) found its header with most of its
    /// body still to come): the message's buffer, and how many bytes may
    /// be appended to it at most. Append what is read, then call
    /// [`input_filled`](Self::input_filled) with how many. `None`: read
    /// into [`input_buf`](Self::input_buf).
    ///
    /// The body is then copied once, from wherever the transport has it,
    /// instead of twice (through the read buffer).
    pub fn input_direct(&mut self) -> Option<(&mut Vec<u8>, usize)> {
        let left = self.direct.as_ref()?.left;
        let a = self.assembly.as_mut()?;
        let room = left.min(self.part_room.saturating_sub(a.body.len()));
        (room > 0).then_some((&mut a.body, room))
    }

    /// `n` bytes came while a piece's body comes straight into its
    /// message: appended to the message's buffer
    /// ([`input_direct`](Self::input_direct)), or read into
    /// [`input_buf`](Self::input_buf) by a caller that does not read
    /// straight (they are moved over; what follows the piece stays).
    fn direct_filled(&mut self, now: Instant, n: usize) {
        let (Some(d), Some(a)) = (self.direct.as_mut(), self.assembly.as_mut()) else { return };
        let had = d.end - d.left;
        let n = if a.body.len() > had {
            // Never more than was announced, whatever the caller appended.
            a.body.truncate(d.end);
            a.body.len() - had
        } else {
            let n = n.min(self.rbuf.len() - self.cend);
            let take = n.min(d.left);
            a.body.extend_from_slice(&self.rbuf[self.cend..self.cend + take]);
            self.rbuf.copy_within(self.cend + take..self.cend + n, self.cend);
            self.cend += n - take;
            self.rend = self.cend;
            take
        };
        d.left -= n;
        d.got += n;
        a.at = now;
        if d.left > 0 {
            return self.want_direct_room();
        }
        let header = d.header;
        self.direct = None;
        self.frame_since = None;
        self.counters.frames_in += 1;
        if header.kind == FrameKind::Msg {
            // Its number counts (and is acknowledged) only once it is
            // handed out, at the next `poll_event`.
            self.direct_whole = self.assembly.take().map(|a| (header, bytes::Bytes::from(a.body)));
        }
    }

    /// Opens the whole records read, each in place, its plaintext moved
    /// down to follow the plaintext before it; then what is left of an
    /// incomplete record follows that (one move per read, however many
    /// records it brought). A link that is not encrypted has nothing to
    /// open. A record that does not open ends the link.
    fn open_records(&mut self) {
        let Some(secure) = self.secure.as_mut() else {
            self.rend = self.cend;
            return;
        };
        let mut at = self.rend;
        while at < self.cend {
            match secure.open_in_place(&mut self.rbuf[at..self.cend]) {
                Ok(None) => break,
                Ok(Some((len, used))) => {
                    let plain = at + RECORD_HEADER_LEN;
                    self.rbuf.copy_within(plain..plain + len, self.rend);
                    self.rend += len;
                    at += used;
                }
                Err(e) => {
                    // Nothing after it can be read.
                    self.cend = self.rend;
                    self.end(CloseReason::Protocol(ProtocolError::Record(e)));
                    return;
                }
            }
        }
        self.rbuf.copy_within(at..self.cend, self.rend);
        self.cend -= at - self.rend;
    }

    /// Records of an encrypted link from now on: what is left of the read
    /// bytes is records, what waits to be written is sent as it is (the
    /// handshake's last message).
    fn start_records(&mut self, secure: Secure) {
        let sealed = &mut self.sealed;
        self.out.drain(|bytes| sealed.extend_from_slice(bytes));
        self.cend = self.rend;
        self.rend = self.rstart;
        self.secure = Some(secure);
        self.open_records();
    }

    /// Copies `bytes` in, as if read from the connection (an empty slice
    /// is the end of the stream).
    pub fn handle_input(&mut self, now: Instant, mut bytes: &[u8]) {
        if bytes.is_empty() {
            return self.input_filled(now, 0);
        }
        while !bytes.is_empty() {
            let n = match self.input_direct() {
                Some((body, left)) => {
                    let n = left.min(bytes.len());
                    body.extend_from_slice(&bytes[..n]);
                    n
                }
                None => {
                    let buf = self.input_buf();
                    let n = buf.len().min(bytes.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    n
                }
            };
            self.input_filled(now, n);
            bytes = &bytes[n..];
        }
    }

    /// The bytes read and not yet taken by [`poll_event`](Self::poll_event).
    pub fn buffered_input(&self) -> usize {
        self.cend - self.rstart
    }

    /// How many bytes of this link's inbound messages the caller holds
    /// (delivered, not yet handled). At [`LinkLimits::max_inbound_bytes`]
    /// the session stops acknowledging and [`wants_read`](Self::wants_read)
    /// turns false, until it drains.
    pub fn set_inbound_held(&mut self, bytes: usize) {
        self.inbound_held = bytes;
    }

    fn apply_consume(&mut self) {
        self.rstart += std::mem::take(&mut self.consume);
        if self.rstart == self.cend {
            self.rstart = 0;
            self.rend = 0;
            self.cend = 0;
        }
    }

    // -- Events --------------------------------------------------------------

    /// The next event, if any: what the handshake, the frames read so far
    /// and the timers produced.
    pub fn poll_event(&mut self) -> Option<Event<'_, T>> {
        self.apply_consume();
        self.assembled = None;
        loop {
            if let Some(e) = self.events.pop_front() {
                if matches!(e, OwnedEvent::Closed(_)) {
                    self.closed_reported = true;
                }
                return Some(e.into_event());
            }
            if let Some((header, body)) = self.direct_whole.take() {
                // Its number counts (and is acknowledged) from now on: a
                // link lost before leaves it unacknowledged.
                if let Err(e) = self.on_msg_header(&header) {
                    self.end(CloseReason::Protocol(e));
                    continue;
                }
                self.counters.msgs_in += 1;
                let shared: &bytes::Bytes = self.assembled.insert(body);
                let header = FrameHeader { flags: 0, ..header };
                return Some(Event::Msg { header, body: &shared[..], shared: Some(shared) });
            }
            match &mut self.state {
                State::Closed => return None,
                State::Handshaking(hs) => {
                    let input = &self.rbuf[self.rstart..self.rend];
                    match hs.read(input) {
                        Ok(used) => {
                            self.rstart += used;
                            let out = hs.take_output();
                            self.out.tail().extend_from_slice(&out);
                            match hs.peer().cloned() {
                                Some(peer) => {
                                    let unlisted = hs.unlisted_peer().map(str::to_owned);
                                    if let Some(secure) = hs.take_secure() {
                                        self.start_records(secure);
                                    }
                                    self.state = State::Up(peer.clone());
                                    if let Some(key) = unlisted {
                                        // Up only to say why it closes.
                                        self.end(CloseReason::Protocol(ProtocolError::Handshake(
                                            HandshakeError::Noise(SecureError::UnlistedKey(key)),
                                        )));
                                        continue;
                                    }
                                    self.events.push_back(OwnedEvent::Up(peer));
                                    continue;
                                }
                                None => return self.at_end_of_input(),
                            }
                        }
                        Err(e) => {
                            self.end(CloseReason::Protocol(ProtocolError::Handshake(e)));
                            continue;
                        }
                    }
                }
                State::Up(_) => {}
            }
            if self.direct.is_some() {
                // The piece's body comes straight into its message.
                return self.at_end_of_input();
            }
            match self.direct_piece() {
                Ok(None) => {}
                Ok(Some(PieceTaken::Wait)) if self.eof => return self.at_end_of_input(),
                Ok(Some(PieceTaken::Wait)) => return None,
                Ok(Some(_)) => continue,
                Err(e) => {
                    self.end(CloseReason::Protocol(e));
                    continue;
                }
            }
            let decoded = self.decoder.decode(&self.rbuf[self.rstart..self.rend]);
            match decoded {
                Ok(None) => return self.at_end_of_input(),
                Err(e) => {
                    self.end(CloseReason::Protocol(e.into()));
                    continue;
                }
                Ok(Some((frame, used))) => {
                    let header = frame.header;
                    let piece = header.kind == FrameKind::Part
                        || (header.kind == FrameKind::Msg && header.flags & LAST_PART != 0);
                    if piece {
                        if let Err(e) = self.on_ack(header.ack) {
                            self.end(CloseReason::Protocol(e));
                            continue;
                        }
                        if !self.events.is_empty() {
                            continue;
                        }
                        match self.on_piece(&header, used) {
                            Ok(PieceTaken::More) => continue,
                            Ok(PieceTaken::Wait) if self.eof => return self.at_end_of_input(),
                            Ok(PieceTaken::Wait) => return None,
                            Ok(PieceTaken::Whole) => {}
                            Err(e) => {
                                self.end(CloseReason::Protocol(e));
                                continue;
                            }
                        }
                        let shared = self.assembled.as_ref();
                        let body = shared.map_or(&[][..], |b| &b[..]);
                        return Some(Event::Msg { header: FrameHeader { flags: 0, ..header }, body, shared });
                    }
                    if header.kind == FrameKind::Msg {
                        // What its acknowledgement returns comes first; the
                        // frame is read again on the next turn of the loop.
                        if let Err(e) = self.on_ack(header.ack) {
                            self.end(CloseReason::Protocol(e));
                            continue;
                        }
                        if !self.events.is_empty() {
                            continue;
                        }
                        if let Err(e) = self.on_msg_header(&header) {
                            self.end(CloseReason::Protocol(e));
                            continue;
                        }
                        self.consume = used;
                        self.frame_since = None;
                        self.counters.frames_in += 1;
                        self.counters.msgs_in += 1;
                        let body = &self.rbuf[self.rstart + FRAME_HEADER_LEN..self.rstart + used];
                        return Some(Event::Msg { header, body, shared: None });
                    }
                    let body = self.rbuf[self.rstart + FRAME_HEADER_LEN..self.rstart + used].to_vec();
                    self.rstart += used;
                    self.frame_since = None;
                    self.counters.frames_in += 1;
                    match header.kind {
                        FrameKind::Heartbeat => self.counters.heartbeats_in += 1,
                        FrameKind::Nack => self.counters.nacks_in[usize::from(header.flags.min(5))] += 1,
                        _ => {}
                    }
                    if let Err(e) = self.on_control(&header, &body) {
                        self.end(CloseReason::Protocol(e));
                    }
                }
            }
        }
    }

    /// A later piece of the message in parts under way whose header is
    /// read and whose body mostly is not (and the link not encrypted: a
    /// record's plaintext is in the read buffer anyway): checked and given
    /// the room it needs as [`on_piece`](Self::on_piece) does, then taken
    /// straight into the message's buffer as it comes
    /// ([`input_direct`](Self::input_direct)). `None`: not such a piece.
    fn direct_piece(&mut self) -> Result<Option<PieceTaken>, ProtocolError> {
        if self.secure.is_some() || self.assembly.is_none() {
            return Ok(None);
        }
        let input = &self.rbuf[self.rstart..self.rend];
        let Some((header, total)) = self.decoder.decode_header(input)? else { return Ok(None) };
        let later = match header.kind {
            FrameKind::Part => header.flags & FIRST_PART == 0,
            FrameKind::Msg => header.flags & LAST_PART != 0,
            _ => false,
        };
        if !later || total < input.len() + DIRECT_MIN {
            return Ok(None);
        }
        self.on_ack(header.ack)?;
        if !self.events.is_empty() {
            // What the acknowledgement returned comes first.
            return Ok(Some(PieceTaken::More));
        }
        let Some(a) = self.assembly.as_ref() else { return Ok(None) };
        let need = a.check_later(&header, total - FRAME_HEADER_LEN)?;
        // Room for what came so far and a part's worth more; the rest is
        // asked for as it comes (a peer that sends a header gets no more
        // room than that).
        let got = self.rend - self.rstart;
        let wanted = got - FRAME_HEADER_LEN + (total - got).min(PART_BODY);
        let room = self.part_room.saturating_sub(a.held());
        if wanted > room {
            self.part_wanted = wanted - room;
            return Ok(Some(PieceTaken::Wait));
        }
        self.part_wanted = 0;
        let Some(a) = self.assembly.as_mut() else { return Ok(None) };
        let end = a.body.len() + need.bytes;
        a.push(&self.rbuf[self.rstart + FRAME_HEADER_LEN..self.rend], self.last_recv);
        self.rstart = self.rend;
        self.frame_since.get_or_insert(self.last_recv);
        self.direct = Some(DirectPiece { header, left: total - got, got, end });
        self.want_direct_room();
        Ok(Some(PieceTaken::More))
    }

    /// A piece coming straight in that has used the room it was given asks
    /// for more, up to a part's worth ([`part_growth`](Self::part_growth)).
    fn want_direct_room(&mut self) {
        let (Some(d), Some(a)) = (&self.direct, &self.assembly) else { return };
        if d.left > 0 && self.part_room <= a.held() {
            self.part_wanted = d.left.min(PART_BODY);
        }
    }

    /// No whole frame is left: at the end of the stream the link ends.
    fn at_end_of_input(&mut self) -> Option<Event<'_, T>> {
        if let Some(d) = &self.direct {
            // A piece under way: it has until the frame deadline.
            self.frame_since.get_or_insert(self.last_recv);
            if self.eof {
                self.end(CloseReason::Truncated(d.got));
                return self.events.pop_front().map(|e| {
                    self.closed_reported = true;
                    e.into_event()
                });
            }
            return None;
        }
        if self.cend > self.rstart {
            // A frame (or a record) under way: it has until the frame deadline.
            self.frame_since.get_or_insert(self.last_recv);
        } else {
            self.frame_since = None;
        }
        if !self.eof {
            return None;
        }
        let reason = match (self.cend - self.rstart, &self.state, self.role) {
            // A server answers a HELLO it refuses by closing: say what that
            // most likely means.
            (0, State::Handshaking(_), Role::Client) => CloseReason::RefusedInHandshake,
            (0, ..) => CloseReason::PeerClosed,
            (n, ..) => CloseReason::Truncated(n),
        };
        self.end(reason);
        self.events.pop_front().map(|e| {
            self.closed_reported = true;
            e.into_event()
        })
    }

    /// Takes a piece of a message in parts, `used` bytes at the start of
    /// the input (its acknowledgement is taken already): the message is
    /// whole with its last piece (the caller then has it, and the frame is
    /// consumed on the next call), or the piece waits for the room the
    /// caller allows ([`part_growth`](Self::part_growth)).
    fn on_piece(&mut self, header: &FrameHeader, used: usize) -> Result<PieceTaken, ProtocolError> {
        let body = &self.rbuf[self.rstart + FRAME_HEADER_LEN..self.rstart + used];
        let need = Assembly::check(self.assembly.as_ref(), header, body, self.config.max_message)?;
        let held = self.assembly.as_ref().map_or(0, Assembly::held);
        let room = self.part_room.saturating_sub(held);
        if need.bytes > room {
            self.part_wanted = need.bytes - room;
            return Ok(PieceTaken::Wait);
        }
        self.part_wanted = 0;
        let last = header.kind == FrameKind::Msg;
        if last {
            self.on_msg_header(header)?;
        }
        let now = self.last_recv;
        let body = &self.rbuf[self.rstart + FRAME_HEADER_LEN..self.rstart + used];
        match &mut self.assembly {
            Some(a) => a.push(body, now),
            None => self.assembly = Some(Assembly::start(header, body, now)),
        }
        self.frame_since = None;
        self.counters.frames_in += 1;
        if last {
            self.counters.msgs_in += 1;
            self.consume = used;
            self.assembled = self.assembly.take().map(|a| bytes::Bytes::from(a.body));
            return Ok(PieceTaken::Whole);
        }
        self.rstart += used;
        Ok(PieceTaken::More)
    }

    /// Bytes the next piece of a message in parts needs beyond what
    /// [`grant_parts`](Self::grant_parts) allowed (0: none waits); reading
    /// waits until they are granted. A caller that bounds memory across
    /// links reserves them first.
    pub fn part_growth(&self) -> usize {
        self.part_wanted
    }

    /// Allows the message coming in parts `bytes` more.
    pub fn grant_parts(&mut self, bytes: usize) {
        self.part_room = self.part_room.saturating_add(bytes);
        self.part_wanted = 0;
    }

    /// Gives back what was granted and is not held (a message in parts
    /// delivered, or the link closed): the bytes given back.
    pub fn release_parts(&mut self) -> usize {
        // A piece coming straight in keeps the room it was given.
        let held = match &self.direct {
            Some(d) => d.end,
            None => self.assembly.as_ref().map_or(0, Assembly::held),
        };
        let free = self.part_room.saturating_sub(held);
        self.part_room -= free;
        free
    }

    /// Checks a MSG's sequence number and the receive window (its
    /// acknowledgement is taken already); then it is the caller's.
    fn on_msg_header(&mut self, h: &FrameHeader) -> Result<(), ProtocolError> {
        if h.seq != self.recv_seq + 1 {
            return Err(ProtocolError::OutOfSequence { last: self.recv_seq, got: h.seq });
        }
        if h.seq > self.ack_sent + self.config.window as u64 {
            return Err(ProtocolError::WindowOverrun {
                seq: h.seq,
                acked: self.ack_sent,
                window: self.config.window,
            });
        }
        // Acknowledges what came before this one only: the caller may yet
        // ask that this one wait for its handler (`ack_when_handled`).
        if self.recv_seq.saturating_sub(self.ack_sent) >= self.config.ack_every {
            self.flush_acks();
        }
        self.recv_seq = h.seq;
        Ok(())
    }

    /// The peer's cumulative acknowledgement: what it covers is the caller's again.
    fn on_ack(&mut self, ack: u64) -> Result<(), ProtocolError> {
        if ack > self.send_seq {
            return Err(ProtocolError::AckBeyondSent { ack, sent: self.send_seq });
        }
        let covered = self.unacked.iter().take_while(|(seq, _)| *seq <= ack).count();
        if covered > 0 {
            let acked = self.unacked.drain(..covered).map(|(_, msg)| msg).collect();
            self.events.push_back(OwnedEvent::Acked(acked));
        }
        Ok(())
    }

    fn on_control(&mut self, h: &FrameHeader, body: &[u8]) -> Result<(), ProtocolError> {
        let unsettled = self.unacked.len();
        self.on_control_frame(h, body)?;
        // What settles a message sent is bounded by what was sent; the rest
        // is charged to the peer's control budget.
        let cost = match h.kind {
            FrameKind::Ack | FrameKind::Nack if self.unacked.len() < unsettled => 0,
            FrameKind::Close | FrameKind::Msg => 0,
            FrameKind::Directory => 1 + body.len() as u64 / 1024,
            _ => 1,
        };
        if cost > 0 && self.is_up() {
            self.charge_control(cost);
        }
        Ok(())
    }

    fn on_control_frame(&mut self, h: &FrameHeader, body: &[u8]) -> Result<(), ProtocolError> {
        // A NACK's own acknowledgement covers the message it refuses: match
        // the refusal first, or the ack would take the message away.
        if h.kind == FrameKind::Nack
            && let Some(pos) = self.unacked.iter().position(|(seq, _)| *seq == h.corr)
            && let Some((_, msg)) = self.unacked.remove(pos)
        {
            let detail = String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned();
            let reason = NackReason::from_code(h.flags);
            self.events.push_back(OwnedEvent::Nacked { msg, dst: h.dst, reason, detail });
        }
        self.on_ack(h.ack)?;
        match h.kind {
            // Pieces of messages never come here (`poll_event` takes them).
            FrameKind::Msg | FrameKind::Part | FrameKind::Ack | FrameKind::Nack | FrameKind::Heartbeat => {}
            FrameKind::Dead => {
                let header = FrameHeader { ack: 0, ..*h };
                self.events.push_back(OwnedEvent::Unhandled { header, body: body.to_vec() });
            }
            FrameKind::Directory => {
                let update: DirectoryUpdate =
                    serde_json::from_slice(body).map_err(|e| ProtocolError::BadDirectory(e.to_string()))?;
                self.on_directory(&update)?;
                self.events.push_back(OwnedEvent::Directory(update));
            }
            FrameKind::Watch => {
                let pair = (h.dst, h.src);
                // The same watch again (a flood of one): no hashing.
                if self.last_watch != Some(pair) && !self.peer_watches.contains(&pair) {
                    if self.peer_watches.len() >= self.config.max_watches {
                        return Err(ProtocolError::TooManyWatches(self.config.max_watches));
                    }
                    self.peer_watches.insert(pair);
                    self.events.push_back(OwnedEvent::Watch { target: h.dst, watcher: h.src });
                }
                self.last_watch = Some(pair);
            }
            FrameKind::Close => {
                let reason = serde_json::from_slice::<CloseBody>(body)
                    .map_or(PeerCloseReason::Other("unknown".into()), |c| PeerCloseReason::parse(&c.reason));
                self.end(CloseReason::Peer(reason));
            }
        }
        Ok(())
    }

    /// Checks a directory against the limits and applies it to the table of
    /// the peer's actors.
    fn on_directory(&mut self, update: &DirectoryUpdate) -> Result<(), ProtocolError> {
        let c = &self.config;
        let long = |len: usize| {
            (len > c.max_name_len).then_some(ProtocolError::NameTooLong { len, max: c.max_name_len })
        };
        if let Some(e) = update.node.as_ref().and_then(|n| long(n.len())) {
            return Err(e);
        }
        for e in &update.add {
            if let Some(err) = long(e.name.len()) {
                return Err(err);
            }
            let ids = e.protocols.len().max(e.msgs.len());
            if ids > c.max_actor_ids {
                return Err(ProtocolError::TooManyIds { len: ids, max: c.max_actor_ids });
            }
        }
        if update.full {
            if self.full_directory_seen {
                return Err(ProtocolError::DirectoryRepeated);
            }
            self.full_directory_seen = true;
            self.remote.clear();
        }
        for id in &update.remove {
            self.remote.remove(id);
        }
        for e in &update.add {
            self.remote.insert(e.id);
        }
        if self.remote.len() > c.max_remote_actors {
            return Err(ProtocolError::TooManyActors(c.max_remote_actors));
        }
        Ok(())
    }

    /// The peer's actors, as its directories announced them.
    pub fn remote_actors(&self) -> &HashSet<ActorId> {
        &self.remote
    }

    /// The peer's watches of this node's actors: `(target, watcher)`.
    pub fn peer_watches(&self) -> &HashSet<(ActorId, ActorId)> {
        &self.peer_watches
    }

    /// Ends a watch of the peer's (its `Terminated` was sent).
    pub fn forget_watch(&mut self, target: ActorId, watcher: ActorId) {
        self.peer_watches.remove(&(target, watcher));
        if self.last_watch == Some((target, watcher)) {
            self.last_watch = None;
        }
    }

    // -- Output --------------------------------------------------------------

    /// The acknowledgement frames carry: what was read, unless the caller
    /// holds too much of this link's inbound messages.
    fn ack_value(&self) -> u64 {
        if self.inbound_held >= self.config.max_inbound_bytes {
            return self.ack_sent;
        }
        match self.awaiting.first() {
            // Nothing from the first message still waiting for its handler on.
            Some(&first) => self.recv_seq.min(first - 1),
            None => self.recv_seq,
        }
    }

    /// The MSG of `seq`, just returned by [`poll_event`](Self::poll_event),
    /// is acknowledged only once the caller says it was handled
    /// ([`handled`](Self::handled)), and with it every later one (an
    /// acknowledgement is cumulative): call it before anything else on
    /// the session. Until then the peer's window does not reopen past it,
    /// so at most a window of messages waits.
    pub fn ack_when_handled(&mut self, seq: u64) {
        if seq > self.ack_sent && seq <= self.recv_seq {
            self.awaiting.insert(seq);
        }
    }

    /// The MSG of `seq` (given to [`ack_when_handled`](Self::ack_when_handled))
    /// was handled, or returned with
    /// [`return_unhandled`](Self::return_unhandled): it may be acknowledged
    /// at the next [`flush_acks`](Self::flush_acks).
    pub fn handled(&mut self, seq: u64) {
        self.awaiting.remove(&seq);
    }

    /// Sends a MSG: `frame` is its encoding (`encode_msg_frame`), whose
    /// `seq` and `ack` are filled in here. `msg` is kept until the peer
    /// acknowledges or refuses it. The caller keeps within its send window.
    pub fn send_msg(&mut self, frame: &[u8], msg: T) {
        if !self.is_up() {
            // Reported as unacknowledged with the rest.
            self.unacked.push_back((0, msg));
            return;
        }
        self.send_seq += 1;
        let ack = self.ack_value();
        let out = self.out.tail();
        let at = out.len();
        out.extend_from_slice(frame);
        patch_seq_ack(&mut out[at..], self.send_seq, ack);
        self.ack_sent = ack;
        self.unacked.push_back((self.send_seq, msg));
        self.counters.frames_out += 1;
        self.counters.msgs_out += 1;
    }

    /// Sends a message too large for one frame, in parts (WIRE.md §3):
    /// `head` and `blobs` are its encoding as [`encode_msg_split`] gives
    /// it (or `head` a whole oversized MSG, as `encode_msg_frame` with the
    /// largest message as its maximum writes it, and no blobs). The parts
    /// go one at a time as the output drains, so frames sent meanwhile wait
    /// behind one part at most; the last piece takes the message's `seq`.
    /// `msg` is kept as for [`send_msg`](Self::send_msg).
    ///
    /// [`encode_msg_split`]: crate::encode_msg_split
    pub fn send_large(&mut self, head: Vec<u8>, blobs: Vec<msg_header::Bytes>, msg: T) {
        if !self.is_up() {
            self.unacked.push_back((0, msg));
            self.large_done += 1;
            return;
        }
        self.large_out.push_back(Outgoing::new(head, blobs, msg));
        self.send_parts();
    }

    /// Writes the next pieces of the messages going in parts while less
    /// than a part waits to be written.
    fn send_parts(&mut self) {
        let part = PART_BODY.min(self.config.max_frame.saturating_sub(FRAME_HEADER_LEN)).max(2 * 8);
        // An encrypted link seals what it writes into records anyway: its
        // blobs are copied, so that records stay whole.
        let share = self.secure.is_none();
        while self.pending_output() < part && self.is_up() {
            let ack = self.ack_value();
            let Some(head) = self.large_out.front_mut() else { return };
            if let Piece::Last = head.next_piece(&mut self.out, part, ack, self.send_seq + 1, share) {
                self.send_seq += 1;
                if let Some(sent) = self.large_out.pop_front() {
                    self.unacked.push_back((self.send_seq, sent.msg));
                    self.large_done += 1;
                }
                self.counters.msgs_out += 1;
            }
            self.ack_sent = ack;
            self.counters.frames_out += 1;
        }
    }

    /// Sends a control frame already encoded (a directory change), stamping
    /// its acknowledgement.
    pub fn send_encoded_control(&mut self, frame: &[u8]) {
        if !self.is_up() {
            return;
        }
        let ack = self.ack_value();
        let out = self.out.tail();
        let at = out.len();
        out.extend_from_slice(frame);
        patch_seq_ack(&mut out[at..], 0, ack);
        self.ack_sent = ack;
        self.counters.frames_out += 1;
    }

    /// Sends a control frame of `header` and `body` (its `ack` filled in).
    fn send_control(&mut self, mut header: FrameHeader, body: &[u8]) {
        header.ack = self.ack_value();
        if encode_frame(&header, body, self.config.max_frame, self.out.tail()).is_ok() {
            self.ack_sent = header.ack;
            self.counters.frames_out += 1;
            match header.kind {
                FrameKind::Heartbeat => self.counters.heartbeats_out += 1,
                FrameKind::Nack => self.counters.nacks_out[usize::from(header.flags.min(5))] += 1,
                _ => {}
            }
        }
    }

    /// Refuses the MSG of `header` (from an [`Event::Msg`]) with a NACK.
    pub fn refuse(&mut self, header: &FrameHeader, reason: NackReason, detail: &str) {
        if !self.is_up() {
            return;
        }
        let nack = FrameHeader {
            flags: reason as u8,
            msg_id: header.msg_id,
            dst: header.dst,
            src: header.src,
            corr: header.seq,
            ..FrameHeader::new(FrameKind::Nack)
        };
        let detail = &detail.as_bytes()[..detail.len().min(256)];
        self.send_control(nack, detail);
    }

    /// Returns to the peer a message it sent (of `header`, from an
    /// [`Event::Msg`], or rebuilt with the same ids and `corr`) that was
    /// acknowledged and then not handled, with its `body`, so that the
    /// peer reports it as a dead letter.
    ///
    /// Nothing is sent to a peer that does not read DEAD frames (its
    /// capabilities lack [`DEAD`](crate::DEAD)).
    pub fn return_unhandled(&mut self, header: &FrameHeader, reason: UnhandledReason, body: &[u8]) {
        if !matches!(&self.state, State::Up(peer) if peer.capabilities & crate::DEAD != 0) {
            return;
        }
        let dead = FrameHeader {
            flags: reason as u8,
            msg_id: header.msg_id,
            dst: header.dst,
            src: header.src,
            corr: header.corr,
            ..FrameHeader::new(FrameKind::Dead)
        };
        // A message that came in parts goes back without its body.
        let body = if FRAME_HEADER_LEN + body.len() > self.config.max_frame { &[][..] } else { body };
        self.send_control(dead, body);
    }

    /// Asks the peer to tell this node's `watcher` when its actor `target` ends.
    pub fn watch(&mut self, target: ActorId, watcher: ActorId) {
        if self.is_up() {
            self.send_control(
                FrameHeader { dst: target, src: watcher, ..FrameHeader::new(FrameKind::Watch) },
                &[],
            );
        }
    }

    /// Acknowledges what was read and not yet acknowledged (call once per
    /// batch of input handled); whether an ACK was queued.
    pub fn flush_acks(&mut self) -> bool {
        if !self.is_up() || self.ack_value() <= self.ack_sent {
            return false;
        }
        self.send_control(FrameHeader::new(FrameKind::Ack), &[]);
        true
    }

    /// Ends the link for `reason`: a CLOSE frame is queued where the
    /// protocol sends one, and [`Event::Closed`] follows.
    pub fn close(&mut self, reason: CloseReason) {
        self.end(reason);
    }

    fn end(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        if let (State::Up(_), Some(wire)) = (&self.state, reason.wire()) {
            let body = serde_json::to_vec(&CloseBody { reason: wire.to_owned() }).unwrap_or_default();
            self.send_control(FrameHeader::new(FrameKind::Close), &body);
        }
        self.state = State::Closed;
        // Nothing half-received is delivered.
        self.assembly = None;
        self.direct = None;
        self.direct_whole = None;
        self.part_wanted = 0;
        self.events.push_back(OwnedEvent::Closed(reason));
    }

    /// The next bytes waiting to be written (on an encrypted link, what
    /// the session wrote so far is sealed into records first). While a
    /// large message goes, its blobs' bytes wait where they lie, between
    /// the frames around them: this is then only the first of several
    /// slices. Write it, call [`transmitted`](Self::transmitted), and ask
    /// again while [`pending_output`](Self::pending_output) is not 0 (or
    /// take them all at once with
    /// [`transmit_vectored`](Self::transmit_vectored)).
    pub fn transmit(&mut self) -> &[u8] {
        let Some(secure) = self.secure.as_mut() else { return self.out.front() };
        if !self.out.is_empty() {
            let (mut sealed, records) = (Ok(()), &mut self.sealed);
            self.out.drain(|plain| {
                if sealed.is_ok() {
                    sealed = secure.seal(plain, records);
                }
            });
            if let Err(e) = sealed {
                // Nothing more can go: the link ends (the CLOSE it queues
                // is dropped with the rest).
                self.end(CloseReason::Protocol(ProtocolError::Record(e)));
                self.out.clear();
            }
        }
        &self.sealed[self.sealed_pos..]
    }

    /// As [`transmit`](Self::transmit), as up to `slices.len()` slices in
    /// order, for a vectored write (a large message's blobs go from where
    /// they lie, between the frames around them); how many.
    pub fn transmit_vectored<'a>(&'a mut self, slices: &mut [&'a [u8]]) -> usize {
        if self.secure.is_some() {
            let sealed = self.transmit();
            return match slices.first_mut() {
                Some(slot) if !sealed.is_empty() => {
                    *slot = sealed;
                    1
                }
                _ => 0,
            };
        }
        self.out.fronts(slices)
    }

    /// How many bytes wait to be written (before sealing, on an encrypted
    /// link: its records add 18 bytes per 64 KiB).
    pub fn pending_output(&self) -> usize {
        self.out.len() + self.sealed.len() - self.sealed_pos
    }

    /// `n` bytes of [`transmit`](Self::transmit) were written at `now`.
    pub fn transmitted(&mut self, now: Instant, n: usize) {
        if n > 0 {
            self.last_send = now;
            self.counters.bytes_out += n as u64;
        }
        if self.secure.is_some() {
            Self::written(&mut self.sealed, &mut self.sealed_pos, n);
        } else {
            self.out.advance(n);
        }
        if self.pending_output() == 0 {
            self.blocked_since = None;
        }
        if !self.large_out.is_empty() {
            self.send_parts();
        }
    }

    /// `n` more bytes of `buf` from `pos` were written: what was written
    /// goes once it is all, or half, of `buf` (a link that never quite
    /// catches up would keep every byte it ever sent otherwise).
    fn written(buf: &mut Vec<u8>, pos: &mut usize, n: usize) {
        *pos = (*pos + n).min(buf.len());
        if *pos == buf.len() {
            buf.clear();
            buf.shrink_to(OUT_KEEP);
            *pos = 0;
        } else if *pos >= buf.len() - *pos {
            buf.drain(..*pos);
            *pos = 0;
        }
    }

    /// The connection takes no more for now, with bytes still waiting: the
    /// write deadline runs from the first such `now`.
    pub fn write_blocked(&mut self, now: Instant) {
        if self.pending_output() > 0 && self.blocked_since.is_none() {
            self.blocked_since = Some(now);
        }
    }

    /// What was carried since the last call (the counts start again at zero).
    pub fn take_counters(&mut self) -> SessionCounters {
        std::mem::take(&mut self.counters)
    }

    /// The last acknowledgement sent (a MSG's `seq`).
    pub fn ack_sent(&self) -> u64 {
        self.ack_sent
    }

    /// How many messages sent wait for the peer's acknowledgement (those
    /// still going in parts among them).
    pub fn unacked_len(&self) -> usize {
        self.unacked.len() + self.large_out.len()
    }

    /// What was sent and is neither acknowledged nor refused, oldest first:
    /// once the link has ended, the caller reports it (`Unacknowledged`).
    pub fn take_unacked(&mut self) -> impl Iterator<Item = T> + '_ {
        self.large_done += self.large_out.len();
        self.unacked.drain(..).map(|(_, msg)| msg).chain(self.large_out.drain(..).map(|o| o.msg))
    }

    /// How many messages sent with [`send_large`](Self::send_large) have
    /// been written whole, or handed back by
    /// [`take_unacked`](Self::take_unacked), since the last call.
    pub fn take_large_done(&mut self) -> usize {
        std::mem::take(&mut self.large_done)
    }

    // -- Timers --------------------------------------------------------------

    /// When [`handle_timeout`](Self::handle_timeout) should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let c = &self.config;
        match &self.state {
            State::Closed => None,
            State::Handshaking(_) => Some(self.created + c.handshake_timeout),
            State::Up(_) => {
                let mut next =
                    (self.last_recv + c.heartbeat_timeout).min(self.last_send + c.heartbeat_interval);
                if let Some(b) = self.blocked_since {
                    next = next.min(b + c.write_deadline);
                }
                if let Some(t) = self.throttled_until {
                    next = next.min(t);
                }
                if let Some(t) = self.frame_since {
                    next = next.min(t + c.frame_deadline);
                }
                if let Some(a) = &self.assembly {
                    next = next.min(a.at + c.frame_deadline);
                }
                Some(next)
            }
        }
    }

    /// Runs the timers due at `now`: the handshake timeout, the heartbeat
    /// (sent after the interval without sending; the link ends after the
    /// timeout without receiving, except while this side chose not to
    /// read), the frame deadline (likewise) and the write deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        let c = &self.config;
        match &self.state {
            State::Closed => {}
            State::Handshaking(_) => {
                if now >= self.created + c.handshake_timeout {
                    self.end(CloseReason::HandshakeTimeout);
                }
            }
            State::Up(_) => {
                if self.throttled_until.is_some_and(|t| now >= t) {
                    // The budget refilled: read again, the wait not counted
                    // as the peer's silence.
                    self.throttled_until = None;
                    self.last_recv = self.last_recv.max(now);
                }
                if !self.wants_read() && !self.eof {
                    // Silence while not reading is this side's doing, and
                    // so is a frame's wait; but a piece that waits for room
                    // from a peer that has ended is no longer excused: all
                    // it will ever get is here, and the room it waits for
                    // may be held by others like it.
                    self.last_recv = now;
                    if !(self.peer_ended && self.part_wanted > 0) {
                        if self.frame_since.is_some() {
                            self.frame_since = Some(now);
                        }
                        if let Some(a) = &mut self.assembly {
                            a.at = now;
                        }
                    }
                }
                if now >= self.last_recv + c.heartbeat_timeout {
                    self.end(CloseReason::HeartbeatTimeout);
                } else if self.frame_since.is_some_and(|t| now >= t + c.frame_deadline)
                    || self.assembly.as_ref().is_some_and(|a| now >= a.at + c.frame_deadline)
                {
                    self.end(CloseReason::SlowFrame);
                } else if self.blocked_since.is_some_and(|b| now >= b + c.write_deadline) {
                    self.end(CloseReason::SlowConsumer);
                } else if now >= self.last_send + c.heartbeat_interval {
                    self.send_control(FrameHeader::new(FrameKind::Heartbeat), &[]);
                    // Stamped as sent now, so that a link whose socket takes
                    // nothing does not queue a heartbeat on every call.
                    self.last_send = now;
                }
            }
        }
    }

    /// Whether the session's [`Event::Closed`] has been taken.
    pub fn is_finished(&self) -> bool {
        self.closed_reported && self.events.is_empty()
    }
}

impl<T> fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("up", &self.is_up())
            .field("closed", &self.is_closed())
            .field("send_seq", &self.send_seq)
            .field("recv_seq", &self.recv_seq)
            .field("ack_sent", &self.ack_sent)
            .field("unacked", &self.unacked.len())
            .field("pending_output", &self.pending_output())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
