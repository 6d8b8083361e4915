//! Bare baselines: what the same work costs without ipchnl.
//!
//! * Sockets: one thread per side, blocking `read_exact` / `write_all`,
//!   `TCP_NODELAY`, the same frames ipchnl sends.
//! * Channels: a `Box<dyn Any + Send>` through crossbeam channels.

use std::any::Any;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use connection::{
    DEFAULT_MAX_FRAME, FRAME_HEADER_LEN, FrameDecoder, FrameHeader, FrameKind, encode_msg_frame,
};
use crossbeam_channel::{Receiver, Sender};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use hdrhistogram::Histogram;
use manager::Addr;
use msg_header::{WireMsg, now_ns};

use crate::histogram;

/// The frame ipchnl would send for `msg`.
pub fn frame_of(msg: &dyn WireMsg) -> Vec<u8> {
    let mut frame = Vec::new();
    let header = FrameHeader { msg_id: msg.header().msg_id(), seq: 1, ..FrameHeader::new(FrameKind::Msg) };
    // An EchoReq or EchoReply is far below any frame limit.
    let _ = encode_msg_frame(&header, msg, DEFAULT_MAX_FRAME, &mut frame);
    frame
}

/// A connected stream socket of either family.
pub enum Conn {
    /// TCP.
    Tcp(TcpStream),
    /// A Unix-domain socket.
    Unix(UnixStream),
}

impl Conn {
    /// Connects to `addr` (`TCP_NODELAY` on TCP).
    pub fn connect(addr: &Addr) -> io::Result<Self> {
        Ok(match addr {
            Addr::Tcp(sa) => {
                let s = TcpStream::connect(sa)?;
                s.set_nodelay(true)?;
                Self::Tcp(s)
            }
            Addr::Unix(path) => Self::Unix(UnixStream::connect(path)?),
            Addr::Nats(_) => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "no bare socket to a NATS server"));
            }
        })
    }

    /// Makes reads and writes return at once (`spin`) or block.
    pub fn set_spin(&self, spin: bool) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_nonblocking(spin),
            Self::Unix(s) => s.set_nonblocking(spin),
        }
    }
}

/// `read_exact`, busy-looping while a non-blocking socket has nothing.
fn read_full(conn: &mut Conn, buf: &mut [u8]) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        match conn.read(&mut buf[at..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `write_all`, busy-looping while a non-blocking socket is full.
fn write_full(conn: &mut Conn, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match conn.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serves one bare connection: the first byte says what it is, `E` for an
/// echo (a frame in, an `EchoReply` frame out; non-blocking and spinning
/// if `spin`), `S` for a stream sink (frames counted until a CLOSE frame,
/// then the count, 8 bytes, back).
pub fn serve(mut conn: Conn, spin: bool) -> io::Result<()> {
    let mut mode = [0u8; 1];
    conn.read_exact(&mut mode)?;
    match mode[0] {
        b'E' => {
            conn.set_spin(spin)?;
            serve_echo(conn)
        }
        _ => serve_sink(conn),
    }
}

fn serve_echo(mut conn: Conn) -> io::Result<()> {
    let reply = frame_of(&EchoReply::new(1, now_ns(), now_ns()));
    let mut head = [0u8; FRAME_HEADER_LEN];
    let mut body = vec![0u8; 4096];
    loop {
        read_full(&mut conn, &mut head)?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize + 4 - FRAME_HEADER_LEN;
        read_full(&mut conn, &mut body[..len.min(4096)])?;
        write_full(&mut conn, &reply)?;
    }
}

fn serve_sink(mut conn: Conn) -> io::Result<()> {
    let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut end, mut count) = (0, 0, 0u64);
    loop {
        if end == buf.len() {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = conn.read(&mut buf[end..])?;
        if n == 0 {
            return Ok(());
        }
        end += n;
        while let Ok(Some((frame, used))) = decoder.decode(&buf[start..end]) {
            start += used;
            if frame.header.kind == FrameKind::Close {
                conn.write_all(&count.to_be_bytes())?;
                count = 0;
                continue;
            }
            // As a real sink does: decode the message.
            if serde_json::from_slice::<serde_json::Value>(frame.body).is_ok() {
                count += 1;
            }
        }
    }
}

/// A bare echo client on one connection.
pub struct SocketEcho {
    conn: Conn,
    req: Vec<u8>,
    reply: Vec<u8>,
}

impl SocketEcho {
    /// Connects to a bare server at `addr`; with `spin`, reads busy-loop
    /// on a non-blocking socket (the server's too, if it was started so).
    pub fn connect(addr: &Addr, spin: bool) -> io::Result<Self> {
        let mut conn = Conn::connect(addr)?;
        conn.write_all(b"E")?;
        conn.set_spin(spin)?;
        let req = frame_of(&EchoReq::new(1, now_ns()));
        let reply = vec![0u8; frame_of(&EchoReply::new(1, now_ns(), now_ns())).len()];
        Ok(Self { conn, req, reply })
    }

    /// Round trips until `until` (or `max` of them).
    pub fn run(&mut self, until: Instant, max: u64) -> io::Result<Histogram<u64>> {
        let mut h = histogram();
        while h.len() < max && Instant::now() < until {
            let start = now_ns();
            write_full(&mut self.conn, &self.req)?;
            read_full(&mut self.conn, &mut self.reply)?;
            h.saturating_record(now_ns() - start);
        }
        Ok(h)
    }
}

/// A bare stream: `EchoReq` frames written in batches until `until`, to a
/// bare sink at `addr`; messages per second the sink counted.
pub fn socket_stream(addr: &Addr, until: Instant) -> io::Result<f64> {
    let mut conn = Conn::connect(addr)?;
    let frame = frame_of(&EchoReq::new(1, 0));
    let batch: Vec<u8> = (0..256).flat_map(|_| frame.iter().copied()).collect();
    let start = Instant::now();
    conn.write_all(b"S")?;
    while Instant::now() < until {
        conn.write_all(&batch)?;
    }
    let mut close = Vec::new();
    connection::encode_frame(&FrameHeader::new(FrameKind::Close), b"{}", DEFAULT_MAX_FRAME, &mut close)
        .map_err(io::Error::other)?;
    conn.write_all(&close)?;
    let mut count = [0u8; 8];
    conn.read_exact(&mut count)?;
    Ok(u64::from_be_bytes(count) as f64 / start.elapsed().as_secs_f64())
}

/// A request of the bare channel baselines.
pub struct BareReq {
    /// Its counter.
    pub counter: u64,
    /// When it was sent.
    pub req_timestamp_ns: u64,
}

/// The reply of the bare channel baselines.
pub struct BareReply {
    /// The request's counter.
    pub counter: u64,
    /// The request's timestamp.
    pub req_timestamp_ns: u64,
    /// When it was answered.
    pub reply_timestamp_ns: u64,
}

/// The seed's measurement without ipchnl: two channels, one thread.
pub fn same_thread_echo(until: Instant, max: u64) -> Histogram<u64> {
    let (req_tx, req_rx) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
    let (reply_tx, reply_rx) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
    let mut h = histogram();
    let mut counter = 0;
    while h.len() < max && Instant::now() < until {
        counter += 1;
        let start = now_ns();
        let _ = req_tx.send(Box::new(BareReq { counter, req_timestamp_ns: now_ns() }));
        let Some(req) = req_rx.try_recv().ok().and_then(|m| m.downcast::<BareReq>().ok()) else { break };
        let reply = BareReply {
            counter: req.counter,
            req_timestamp_ns: req.req_timestamp_ns,
            reply_timestamp_ns: now_ns(),
        };
        let _ = reply_tx.send(Box::new(reply));
        if reply_rx.try_recv().ok().and_then(|m| m.downcast::<BareReply>().ok()).is_none() {
            break;
        }
        h.saturating_record(now_ns() - start);
    }
    h
}

/// A bare ping-pong between this thread and one it starts.
pub struct ThreadEcho {
    to: Sender<Box<dyn Any + Send>>,
    from: Receiver<Box<dyn Any + Send>>,
}

impl ThreadEcho {
    /// Starts the echo thread; it ends when this is dropped.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let (to, rx) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
        let (tx, from) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
        std::thread::spawn(move || {
            for m in rx {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        Self { to, from }
    }

    /// Round trips until `until` (or `max` of them).
    pub fn run(&self, until: Instant, max: u64) -> Histogram<u64> {
        let mut h = histogram();
        let mut counter = 0;
        while h.len() < max && Instant::now() < until {
            counter += 1;
            let start = now_ns();
            if self.to.send(Box::new(BareReq { counter, req_timestamp_ns: start })).is_err() {
                break;
            }
            if self.from.recv().is_err() {
                break;
            }
            h.saturating_record(now_ns() - start);
        }
        h
    }
}

/// A bare stream of `EchoReq` boxes to a thread that counts them, until
/// `until`; messages per second.
pub fn thread_stream(until: Instant) -> f64 {
    let (tx, rx) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
    let counter = std::thread::spawn(move || rx.iter().filter(|m| m.is::<EchoReq>()).count());
    let start = Instant::now();
    let mut i = 0;
    while Instant::now() < until {
        for _ in 0..256 {
            i += 1;
            let _ = tx.send(Box::new(EchoReq::new(i, 0)));
        }
    }
    drop(tx);
    let n = counter.join().unwrap_or(0);
    n as f64 / start.elapsed().as_secs_f64()
}

/// A bare stream within one thread: `EchoReq` boxes through a channel, sent
/// and received in batches, until `until`; messages per second.
pub fn same_thread_stream(until: Instant) -> f64 {
    let (tx, rx) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < until {
        for i in 0..256 {
            let _ = tx.send(Box::new(EchoReq::new(i, 0)));
        }
        n += rx.try_iter().filter(|m| m.is::<EchoReq>()).count() as u64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}
