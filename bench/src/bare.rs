//! Bare baselines: what the same work costs without ipchnl.
//!
//! * Sockets: one thread per side, `TCP_NODELAY`, the frames ipchnl sends,
//!   and the same JSON work: every request and reply is encoded and decoded
//!   as ipchnl does it ([`encode_msg_frame`], [`DecodeMsg::decode_body`]),
//!   so that a ratio measures the library and not JSON. A socket waits
//!   either as a blocking socket does, or as an ipchnl executor with a
//!   spin does: it polls a non-blocking socket for that long, then blocks.
//! * Channels: a `Box<dyn Any + Send>` through crossbeam channels.

use std::any::Any;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use connection::{DEFAULT_MAX_FRAME, FrameDecoder, FrameHeader, FrameKind, encode_msg_frame};
use crossbeam_channel::{Receiver, Sender};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use hdrhistogram::Histogram;
use manager::Addr;
use msg_header::{DecodeMsg, Msg, MsgHeader, WireMsg, now_ns};

use crate::histogram;

/// Appends the frame of `msg` (with correlation id `corr`) to `out`.
pub(crate) fn encode(msg: &dyn WireMsg, corr: u64, out: &mut Vec<u8>) -> io::Result<()> {
    let header =
        FrameHeader { msg_id: msg.header().msg_id(), seq: 1, corr, ..FrameHeader::new(FrameKind::Msg) };
    encode_msg_frame(&header, msg, DEFAULT_MAX_FRAME, out).map_err(io::Error::other)
}

/// Decodes a `T` from a whole frame, as a link does.
pub(crate) fn decode<T: DecodeMsg>(frame: &[u8]) -> io::Result<T> {
    let (frame, _) = FrameDecoder::new(DEFAULT_MAX_FRAME)
        .decode(frame)
        .map_err(io::Error::other)?
        .ok_or_else(|| io::Error::other("a partial frame"))?;
    let h = frame.header;
    T::decode_body(MsgHeader::with_ids(h.msg_id, h.dst, h.src, h.corr), frame.body).map_err(io::Error::other)
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
            _ => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, format!("no bare socket to {addr}")));
            }
        })
    }

    fn try_clone(&self) -> io::Result<Self> {
        Ok(match self {
            Self::Tcp(s) => Self::Tcp(s.try_clone()?),
            Self::Unix(s) => Self::Unix(s.try_clone()?),
        })
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_nonblocking(on),
            Self::Unix(s) => s.set_nonblocking(on),
        }
    }
}

/// A socket that waits as an executor with a spin of `spin` does: a
/// non-blocking socket polled for up to `spin`, then a blocking read or
/// write; with no spin, a blocking socket.
struct Waiting {
    conn: Conn,
    spin: Duration,
}

impl Waiting {
    fn new(conn: Conn, spin: Duration) -> io::Result<Self> {
        conn.set_nonblocking(!spin.is_zero())?;
        Ok(Self { conn, spin })
    }

    /// Runs `op` until it moves bytes: polling for the spin, then blocking.
    fn wait<T>(&mut self, mut op: impl FnMut(&mut Conn) -> io::Result<T>) -> io::Result<T> {
        let mut since = None;
        loop {
            match op(&mut self.conn) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let since = *since.get_or_insert_with(Instant::now);
                    if since.elapsed() < self.spin {
                        std::hint::spin_loop();
                        continue;
                    }
                    // The spin is over: sleep in the kernel until ready.
                    self.conn.set_nonblocking(false)?;
                    let out = op(&mut self.conn);
                    self.conn.set_nonblocking(true)?;
                    return out;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                out => return out,
            }
        }
    }

    fn read_full(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.wait(|c| c.read(buf))? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    fn write_full(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.wait(|c| c.write(buf))? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Reads one whole frame into `frame`.
    fn read_frame(&mut self, frame: &mut Vec<u8>) -> io::Result<()> {
        frame.resize(4, 0);
        self.read_full(frame)?;
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        if len + 4 > DEFAULT_MAX_FRAME {
            return Err(io::Error::other("a frame over the limit"));
        }
        frame.resize(len + 4, 0);
        self.read_full(&mut frame[4..])
    }
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
/// echo (an `EchoReq` frame in, decoded; an `EchoReply` frame encoded and
/// out; waiting with a spin of `spin`), `S` for a stream sink (`EchoReq`
/// frames decoded and counted until a CLOSE frame, then the count, 8
/// bytes, back), `H` for the same stream into a hand-rolled handler
/// (see [`handed`]), `L` for large messages (see [`large_stream`]).
pub fn serve(mut conn: Conn, spin: Duration) -> io::Result<()> {
    let mut mode = [0u8; 1];
    conn.read_exact(&mut mode)?;
    match mode[0] {
        b'E' => serve_echo(Waiting::new(conn, spin)?),
        b'H' => serve_sink(conn, true),
        b'L' => serve_large(conn),
        _ => serve_sink(conn, false),
    }
}

/// The bare side of [`large_stream`]: reads each message whole into a
/// buffer, and answers it with one byte; a length of 0 ends it.
fn serve_large(mut conn: Conn) -> io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 8];
        conn.read_exact(&mut len)?;
        let len = usize::try_from(u64::from_be_bytes(len)).map_err(io::Error::other)?;
        if len == 0 {
            return Ok(());
        }
        if len > 1 << 30 {
            return Err(io::Error::other("a message over 1 GiB"));
        }
        buf.resize(len, 0);
        conn.read_exact(&mut buf)?;
        conn.write_all(&[1])?;
    }
}

/// A bare stream of messages of `size` bytes (an 8-byte length, then the
/// bytes) to a bare sink at `addr` until `until`, each answered with a
/// byte; bytes per second the sink took.
pub fn large_stream(addr: &Addr, until: Instant, size: usize) -> io::Result<f64> {
    let mut conn = Conn::connect(addr)?;
    let mut acks = conn.try_clone()?;
    let payload = vec![0x5a; size];
    let start = Instant::now();
    conn.write_all(b"L")?;
    let reader = std::thread::spawn(move || -> io::Result<u64> {
        let mut n = 0;
        let mut ack = [0u8; 1];
        while acks.read(&mut ack)? == 1 {
            n += 1;
        }
        Ok(n)
    });
    let mut sent = 0u64;
    while Instant::now() < until {
        conn.write_all(&(size as u64).to_be_bytes())?;
        conn.write_all(&payload)?;
        sent += 1;
    }
    conn.write_all(&0u64.to_be_bytes())?;
    let acked = reader.join().map_err(|_| io::Error::other("the ack reader panicked"))??;
    if acked != sent {
        return Err(io::Error::other(format!("{acked} of {sent} large messages answered")));
    }
    Ok((sent * size as u64) as f64 / start.elapsed().as_secs_f64())
}

fn serve_echo(mut conn: Waiting) -> io::Result<()> {
    let (mut frame, mut out) = (Vec::new(), Vec::new());
    loop {
        conn.read_frame(&mut frame)?;
        echo(&frame, &mut out)?;
        conn.write_full(&out)?;
    }
}

/// What a bare echo server does with a request frame: decodes it, and
/// encodes the reply's frame into `out` (cleared first).
pub(crate) fn echo(req: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let req: EchoReq = decode(req)?;
    let reply = EchoReply::new(req.counter, req.req_timestamp_ns, now_ns());
    out.clear();
    encode(&reply, req.header().corr_id(), out)
}

/// A bare echo client's request number `counter`, sent at `sent_ns`, into
/// `out` (cleared first).
pub(crate) fn request(counter: u64, sent_ns: u64, out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    encode(&EchoReq::new(counter, sent_ns), counter, out)
}

/// Decodes a reply frame and checks that it answers request `counter`.
pub(crate) fn check_reply(frame: &[u8], counter: u64) -> io::Result<()> {
    let reply: EchoReply = decode(frame)?;
    if reply.counter != counter {
        return Err(io::Error::other(format!("reply {} to request {counter}", reply.counter)));
    }
    Ok(())
}

/// A bare stream's next 256 `EchoReq` frames, numbered on from `*last`,
/// into `batch` (cleared first).
pub(crate) fn stream_batch(last: &mut u64, batch: &mut Vec<u8>) -> io::Result<()> {
    batch.clear();
    for _ in 0..256 {
        *last += 1;
        encode(&EchoReq::new(*last, 0), 0, batch)?;
    }
    Ok(())
}

/// The CLOSE frame that ends a bare stream, into `out` (cleared first).
pub(crate) fn close_frame(out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    connection::encode_frame(&FrameHeader::new(FrameKind::Close), b"{}", DEFAULT_MAX_FRAME, out)
        .map_err(io::Error::other)
}

/// What a bare sink finds in its bytes.
pub(crate) enum Item {
    /// A request, decoded as a real sink decodes it.
    Msg(EchoReq),
    /// The CLOSE frame that ends a stream.
    Close,
}

/// What a bare sink does with the frames at the start of `bytes`: decodes
/// each `EchoReq`, as a real sink does, and hands it (or a CLOSE) to `on`.
/// Returns the bytes of the whole frames taken.
pub(crate) fn sink_frames(
    decoder: &FrameDecoder,
    bytes: &[u8],
    mut on: impl FnMut(Item) -> io::Result<()>,
) -> io::Result<usize> {
    let mut at = 0;
    while let Ok(Some((frame, used))) = decoder.decode(&bytes[at..]) {
        at += used;
        if frame.header.kind == FrameKind::Close {
            on(Item::Close)?;
            continue;
        }
        let h = frame.header;
        let header = MsgHeader::with_ids(h.msg_id, h.dst, h.src, h.corr);
        if let Ok(req) = EchoReq::decode_body(header, frame.body) {
            on(Item::Msg(req))?;
        }
    }
    Ok(at)
}

/// The floor of a stream: counts what it decodes and delivers it to no
/// one; at a CLOSE, hands the count to `report` and starts again from 0.
pub(crate) fn counting(mut report: impl FnMut(u64) -> io::Result<()>) -> impl FnMut(Item) -> io::Result<()> {
    let mut count = 0u64;
    move |item| match item {
        Item::Msg(_) => {
            count += 1;
            Ok(())
        }
        Item::Close => report(std::mem::take(&mut count)),
    }
}

/// What a user writes by hand to join a socket and an actor-like handler:
/// the reader thread sends each decoded message through a bounded
/// crossbeam channel (1,024: as many as a link's window) to a handler
/// thread that counts; at a CLOSE, the handler's count comes back and
/// goes to `report`. The handler thread ends with the returned closure.
pub(crate) fn handed(mut report: impl FnMut(u64) -> io::Result<()>) -> impl FnMut(Item) -> io::Result<()> {
    let (to_handler, inbox) = crossbeam_channel::bounded::<Handed>(1024);
    let (count_tx, counts) = crossbeam_channel::bounded::<u64>(1);
    std::thread::spawn(move || {
        let mut count = 0u64;
        for m in inbox {
            match m {
                Handed::Msg(req) => {
                    std::hint::black_box(&req);
                    count += 1;
                }
                Handed::Close => {
                    if count_tx.send(std::mem::take(&mut count)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let gone = || io::Error::other("the hand-rolled handler thread is gone");
    move |item| match item {
        Item::Msg(req) => to_handler.send(Handed::Msg(req)).map_err(|_| gone()),
        Item::Close => {
            to_handler.send(Handed::Close).map_err(|_| gone())?;
            report(counts.recv().map_err(|_| gone())?)
        }
    }
}

/// What the hand-rolled reader sends its handler.
enum Handed {
    Msg(EchoReq),
    Close,
}

fn serve_sink(mut conn: Conn, hand_rolled: bool) -> io::Result<()> {
    let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut buf = vec![0u8; 1 << 20];
    let (mut start, mut end) = (0, 0);
    let mut reply = conn.try_clone()?;
    let report = move |n: u64| reply.write_all(&n.to_be_bytes());
    let mut on: Box<dyn FnMut(Item) -> io::Result<()>> =
        if hand_rolled { Box::new(handed(report)) } else { Box::new(counting(report)) };
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
        start += sink_frames(&decoder, &buf[start..end], &mut on)?;
    }
}

/// A bare echo client on one connection.
pub struct SocketEcho {
    conn: Waiting,
    req: Vec<u8>,
    reply: Vec<u8>,
}

impl SocketEcho {
    /// Connects to a bare server at `addr`, waiting for replies with a
    /// spin of `spin` (zero: blocking reads).
    pub fn connect(addr: &Addr, spin: Duration) -> io::Result<Self> {
        let mut conn = Conn::connect(addr)?;
        conn.write_all(b"E")?;
        Ok(Self { conn: Waiting::new(conn, spin)?, req: Vec::new(), reply: Vec::new() })
    }

    /// Round trips until `until` (or `max` of them): each request encoded,
    /// each reply decoded and checked.
    pub fn run(&mut self, until: Instant, max: u64) -> io::Result<Histogram<u64>> {
        let mut h = histogram();
        while h.len() < max && Instant::now() < until {
            let start = now_ns();
            let counter = h.len() + 1;
            request(counter, start, &mut self.req)?;
            self.conn.write_full(&self.req)?;
            self.conn.read_frame(&mut self.reply)?;
            check_reply(&self.reply, counter)?;
            h.saturating_record(now_ns() - start);
        }
        Ok(h)
    }
}

/// Where a bare stream goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// A reader that decodes and counts, delivering to no one: the floor.
    Floor,
    /// A reader that decodes and sends each message through a crossbeam
    /// channel to a handler thread: what a user would write by hand.
    HandRolled,
}

/// A bare stream: `EchoReq` frames, each encoded, written in batches of
/// 256 until `until`, to a bare sink at `addr`; messages per second the
/// sink counted.
pub fn socket_stream(addr: &Addr, until: Instant, sink: Sink) -> io::Result<f64> {
    let mut conn = Conn::connect(addr)?;
    let mut batch = Vec::new();
    let start = Instant::now();
    conn.write_all(match sink {
        Sink::Floor => b"S",
        Sink::HandRolled => b"H",
    })?;
    let mut last = 0;
    while Instant::now() < until {
        stream_batch(&mut last, &mut batch)?;
        conn.write_all(&batch)?;
    }
    close_frame(&mut batch)?;
    conn.write_all(&batch)?;
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

impl BareReq {
    /// The reply our echo server would send: the request's counter and
    /// timestamp, stamped now. Takes the request by value, as a handler
    /// moves its message out of the box (freeing the box on the way).
    pub fn answered(self) -> BareReply {
        BareReply {
            counter: self.counter,
            req_timestamp_ns: self.req_timestamp_ns,
            reply_timestamp_ns: now_ns(),
        }
    }
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
        let _ = reply_tx.send(Box::new(req.answered()));
        if reply_rx.try_recv().ok().and_then(|m| m.downcast::<BareReply>().ok()).is_none() {
            break;
        }
        h.saturating_record(now_ns() - start);
    }
    h
}

/// A bare ping-pong between this thread and one it starts. Both sides wait
/// as an executor with a spin of `spin` does: they poll their channel for
/// up to `spin`, then block in `recv` (no spin: they block at once). The
/// echo thread does what our echo server does, as [`same_thread_echo`]'s
/// does: it takes the request out of its box and answers with a new,
/// stamped one, which the asker downcasts.
pub struct ThreadEcho {
    to: Sender<Box<dyn Any + Send>>,
    from: Receiver<Box<dyn Any + Send>>,
    spin: Duration,
}

/// The next message of `rx`: polled for up to `spin`, then waited for.
fn recv_polling<T>(rx: &Receiver<T>, spin: Duration) -> Option<T> {
    if !spin.is_zero() {
        let since = Instant::now();
        loop {
            match rx.try_recv() {
                Ok(m) => return Some(m),
                Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
                Err(crossbeam_channel::TryRecvError::Empty) if since.elapsed() < spin => {
                    std::hint::spin_loop()
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break,
            }
        }
    }
    rx.recv().ok()
}

impl ThreadEcho {
    /// Starts the echo thread, both sides waiting with a spin of `spin`;
    /// it ends when this is dropped.
    pub fn new(spin: Duration) -> Self {
        let (to, rx) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
        let (tx, from) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
        std::thread::spawn(move || {
            while let Some(m) = recv_polling(&rx, spin) {
                let Ok(req) = m.downcast::<BareReq>() else { break };
                if tx.send(Box::new(req.answered())).is_err() {
                    break;
                }
            }
        });
        Self { to, from, spin }
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
            if recv_polling(&self.from, self.spin).and_then(|m| m.downcast::<BareReply>().ok()).is_none() {
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
