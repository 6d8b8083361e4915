//! Floods a hostile peer on the same host could send, for measuring what
//! they cost the other links (`cargo bench -p bench --bench floods`). Each
//! runs in its own thread until told to stop, against a manager at a TCP
//! address, over connections of its own; the tests of the same attacks are
//! `tests/attacks.rs`.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use connection::blocking::BlockingLink;
use connection::{
    DEFAULT_MAX_FRAME, DirEntry, DirectoryUpdate, FrameHeader, FrameKind, HandshakeConfig, Incarnation, Role,
    encode_frame,
};
use echo_req::EchoReq;
use msg_header::{ActorId, MsgType, NodeId};

/// The floods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flood {
    /// Connections that never say a word, opened as fast as they can be.
    StalledHandshakes,
    /// Messages to an actor that does not exist (each makes a NACK), never
    /// reading what comes back.
    Nacks,
    /// Echo requests as fast as the socket takes them, never reading a reply.
    Pipelined,
    /// The same WATCH over and over.
    Watches,
    /// 685 KiB of directory on link after link.
    Directories,
    /// Heartbeats as fast as the socket takes them.
    Heartbeats,
}

impl Flood {
    /// Every flood, in the report's order.
    pub const ALL: [Flood; 6] = [
        Self::StalledHandshakes,
        Self::Nacks,
        Self::Pipelined,
        Self::Watches,
        Self::Directories,
        Self::Heartbeats,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::StalledHandshakes => "stalled_handshakes",
            Self::Nacks => "nacks_unread",
            Self::Pipelined => "pipelined_unread",
            Self::Watches => "watches",
            Self::Directories => "directories",
            Self::Heartbeats => "heartbeats",
        }
    }

    /// The flood of this name.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Starts the flood against `addr`; it runs until `stop`.
    pub fn start(self, addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            // A flood that fails (its link cut, say) starts over.
            while !stop.load(Ordering::Relaxed) {
                let _ = self.run(addr, &stop);
            }
        })
    }

    fn run(self, addr: SocketAddr, stop: &AtomicBool) -> std::io::Result<()> {
        if self == Self::StalledHandshakes {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) && held.len() < 4000 {
                held.push(TcpStream::connect(addr)?);
            }
            return Ok(());
        }
        let mut peer = RawPeer::link(addr)?;
        match self {
            Self::StalledHandshakes => Ok(()),
            Self::Nacks | Self::Pipelined => {
                let dst = if self == Self::Nacks { ActorId::from_u128(0xdead) } else { peer.server };
                while !stop.load(Ordering::Relaxed) {
                    let batch: Vec<u8> = (0..256).flat_map(|_| peer.request(dst)).collect();
                    peer.s.write_all(&batch)?;
                }
                Ok(())
            }
            Self::Watches => {
                let watch = frame(
                    FrameHeader {
                        dst: peer.server,
                        src: ActorId::from_u128(7),
                        ..FrameHeader::new(FrameKind::Watch)
                    },
                    &[],
                );
                let batch = watch.repeat(BATCH_FRAMES);
                while !stop.load(Ordering::Relaxed) {
                    peer.s.write_all(&batch)?;
                }
                Ok(())
            }
            Self::Directories => {
                let base = u128::from(NEXT.fetch_add(1, Ordering::Relaxed)) << 64;
                let add = (base..base + 4000)
                    .map(|i| DirEntry {
                        id: ActorId::from_u128(i),
                        name: format!("{i:0>100}"),
                        protocols: vec![],
                        msgs: vec![],
                    })
                    .collect();
                let update = DirectoryUpdate { add, ..DirectoryUpdate::default() };
                let body = serde_json::to_vec(&update).map_err(std::io::Error::other)?;
                peer.s.write_all(&frame(FrameHeader::new(FrameKind::Directory), &body))?;
                // A new link for the next one: at most 4,096 actors a peer.
                std::thread::sleep(Duration::from_millis(10));
                Ok(())
            }
            Self::Heartbeats => {
                let batch = frame(FrameHeader::new(FrameKind::Heartbeat), &[]).repeat(BATCH_FRAMES);
                while !stop.load(Ordering::Relaxed) {
                    peer.s.write_all(&batch)?;
                }
                Ok(())
            }
        }
    }
}

static NEXT: AtomicU64 = AtomicU64::new(1);

const BATCH_FRAMES: usize = 100;

fn frame(header: FrameHeader, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    // Small frames, far under the maximum: encoding cannot fail.
    let _ = encode_frame(&header, body, DEFAULT_MAX_FRAME, &mut f);
    f
}

/// A wire-level peer: handshake (no secret) and directories done.
struct RawPeer {
    s: TcpStream,
    seq: u64,
    server: ActorId,
}

impl RawPeer {
    fn link(addr: SocketAddr) -> std::io::Result<Self> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_write_timeout(Some(Duration::from_millis(200)))?;
        let name = format!("flood-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut nonce = [0; 32];
        nonce[..8].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        let config = HandshakeConfig::new(NodeId::of_name(&name), Incarnation([3; 16]));
        let (mut link, _) = BlockingLink::handshake(s, Role::Client, config, nonce, DEFAULT_MAX_FRAME)?;
        link.write_frame(&FrameHeader::new(FrameKind::Directory), br#"{"full":true}"#)?;
        loop {
            let (header, body) = link.read_frame()?;
            if header.kind == FrameKind::Directory {
                let update: DirectoryUpdate = serde_json::from_slice(&body).map_err(std::io::Error::other)?;
                if let Some(e) = update.add.iter().find(|e| e.name == "server") {
                    return Ok(Self { server: e.id, s: link.into_parts().0, seq: 0 });
                }
            }
        }
    }

    /// The next `EchoReq` frame for `dst`.
    fn request(&mut self, dst: ActorId) -> Vec<u8> {
        self.seq += 1;
        let h = FrameHeader {
            msg_id: EchoReq::msg_id(),
            dst,
            src: ActorId::from_u128(8),
            seq: self.seq,
            corr: self.seq,
            ..FrameHeader::new(FrameKind::Msg)
        };
        frame(h, format!(r#"{{"counter":{},"req_timestamp_ns":0}}"#, self.seq).as_bytes())
    }
}
