//! The bare baseline of the `shm` path: iceoryx2 as its own examples use
//! it, between two processes, carrying the same frames with the same JSON
//! work as ours.
//!
//! * Round trips: a request-response service of byte slices. The client
//!   encodes an `EchoReq` frame, sends it, and polls for the response; the
//!   server polls for requests, decodes each, encodes the `EchoReply`
//!   frame and answers. Both poll for the low-latency option's spin, then
//!   sleep a little between looks (iceoryx2 needs an event service to
//!   block, which its request-response example does not use).
//! * Streams: a publish-subscribe service. Each sample holds 256 encoded
//!   `EchoReq` frames (as the bare socket stream writes 256 at a time); the
//!   sink decodes every frame and counts, and at a CLOSE frame publishes
//!   its count on a second service.
//!
//! Its objects are private to the user, as ours are (`/dev/shm` prefix
//! `ipchnlbare<uid>_`), and every port and node is dropped when
//! [`serve`]'s stop flag is set.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use connection::{DEFAULT_MAX_FRAME, FrameDecoder, FrameHeader, FrameKind};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use hdrhistogram::Histogram;
use iceoryx2::config::Config;
use iceoryx2::node::{Node, NodeBuilder};
use iceoryx2::port::client::Client;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::{
    BackpressureStrategy, FileName, Path as IoxPath, SemanticString, ServiceName, SignalHandlingMode, ipc,
};
use msg_header::{Msg, MsgHeader, now_ns};

use crate::bare::{decode, encode};
use crate::histogram;

type Svc = ipc::Service;

/// The largest request or reply frame.
const MAX_FRAME: usize = 512;
/// The largest stream sample: 256 frames.
const MAX_BATCH: usize = 64 * 1024;
/// How long a waiting side sleeps between looks once its spin is over.
const NAP: Duration = Duration::from_micros(50);

fn iox(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("iceoryx2: {e:?}"))
}

fn node() -> io::Result<Node<Svc>> {
    let uid = rustix::process::geteuid().as_raw();
    let root = std::env::temp_dir().join(format!("ipchnl-iox-{uid}"));
    {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let mut c = Config::default();
    c.global.prefix = FileName::new(format!("ipchnlbare{uid}_").as_bytes()).map_err(iox)?;
    let mut path = root.into_os_string().into_encoded_bytes();
    path.push(b'/');
    c.global.set_root_path(&IoxPath::new(&path).map_err(iox)?);
    let node = NodeBuilder::new()
        .config(&c)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<Svc>()
        .map_err(iox)?;
    remove_counter(&format!("ipchnlbare{uid}_"));
    Ok(node)
}

/// iceoryx2's world-writable node counter, needed only while a node is made.
fn remove_counter(prefix: &str) {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name.ends_with(".global_mgmt") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn service(name: &str, what: &str) -> io::Result<ServiceName> {
    ServiceName::new(&format!("ipchnl-bare/{name}/{what}")).map_err(iox)
}

/// Serves `name` (round trips and streams) until `stop` is set, polling
/// for `spin` before each nap. Returns once everything is dropped.
pub fn serve(name: &str, spin: Duration, stop: Arc<AtomicBool>, ready: impl FnOnce()) -> io::Result<()> {
    let node = node()?;
    let rr = node
        .service_builder(&service(name, "echo")?)
        .request_response::<[u8], [u8]>()
        .open_or_create()
        .map_err(iox)?;
    let server = rr.server_builder().initial_max_slice_len(MAX_FRAME).create().map_err(iox)?;
    let stream = node
        .service_builder(&service(name, "stream")?)
        .publish_subscribe::<[u8]>()
        .subscriber_max_buffer_size(64)
        .enable_safe_overflow(false)
        .open_or_create()
        .map_err(iox)?;
    let sink = stream.subscriber_builder().create().map_err(iox)?;
    let counts = node
        .service_builder(&service(name, "count")?)
        .publish_subscribe::<u64>()
        .subscriber_max_buffer_size(4)
        .enable_safe_overflow(false)
        .open_or_create()
        .map_err(iox)?;
    let count_out = counts.publisher_builder().create().map_err(iox)?;
    ready();
    let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut out = Vec::new();
    let mut count = 0u64;
    let mut idle_since = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        while let Some(req) = server.receive().map_err(iox)? {
            busy = true;
            let r: EchoReq = decode(req.payload())?;
            let reply = EchoReply::new(r.counter, r.req_timestamp_ns, now_ns());
            out.clear();
            encode(&reply, r.header().corr_id(), &mut out)?;
            req.loan_slice_uninit(out.len()).map_err(iox)?.write_from_slice(&out).send().map_err(iox)?;
        }
        while let Some(batch) = sink.receive().map_err(iox)? {
            busy = true;
            let mut at = 0;
            while let Ok(Some((frame, used))) = decoder.decode(&batch.payload()[at..]) {
                at += used;
                if frame.header.kind == FrameKind::Close {
                    count_out.send_copy(count).map_err(iox)?;
                    count = 0;
                    continue;
                }
                let h = frame.header;
                let header = MsgHeader::with_ids(h.msg_id, h.dst, h.src, h.corr);
                if <EchoReq as msg_header::DecodeMsg>::decode_body(header, frame.body).is_ok() {
                    count += 1;
                }
            }
        }
        if busy {
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= spin {
            std::thread::sleep(NAP);
        } else {
            std::hint::spin_loop();
        }
    }
    Ok(())
}

/// A bare iceoryx2 client of [`serve`].
pub struct ShmEcho {
    client: Client<Svc, [u8], (), [u8], ()>,
    stream: Publisher<Svc, [u8], ()>,
    counts: Subscriber<Svc, u64, ()>,
    spin: Duration,
    req: Vec<u8>,
    // The node goes last.
    _node: Node<Svc>,
}

impl ShmEcho {
    /// Opens the services of `name`, polling for `spin` before each nap.
    pub fn connect(name: &str, spin: Duration) -> io::Result<Self> {
        let node = node()?;
        let rr = node
            .service_builder(&service(name, "echo")?)
            .request_response::<[u8], [u8]>()
            .open_or_create()
            .map_err(iox)?;
        let client = rr.client_builder().initial_max_slice_len(MAX_FRAME).create().map_err(iox)?;
        let stream = node
            .service_builder(&service(name, "stream")?)
            .publish_subscribe::<[u8]>()
            .subscriber_max_buffer_size(64)
            .enable_safe_overflow(false)
            .open_or_create()
            .map_err(iox)?
            .publisher_builder()
            .initial_max_slice_len(MAX_BATCH)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(iox)?;
        let counts = node
            .service_builder(&service(name, "count")?)
            .publish_subscribe::<u64>()
            .subscriber_max_buffer_size(4)
            .enable_safe_overflow(false)
            .open_or_create()
            .map_err(iox)?
            .subscriber_builder()
            .create()
            .map_err(iox)?;
        Ok(Self { client, stream, counts, spin, req: Vec::new(), _node: node })
    }

    /// Round trips until `until` (or `max` of them): each request encoded,
    /// each reply decoded and checked.
    pub fn run(&mut self, until: Instant, max: u64) -> io::Result<Histogram<u64>> {
        let mut h = histogram();
        while h.len() < max && Instant::now() < until {
            let start = now_ns();
            let counter = h.len() + 1;
            self.req.clear();
            encode(&EchoReq::new(counter, start), counter, &mut self.req)?;
            let pending = self
                .client
                .loan_slice_uninit(self.req.len())
                .map_err(iox)?
                .write_from_slice(&self.req)
                .send()
                .map_err(iox)?;
            let polled_at = Instant::now();
            let reply = loop {
                if let Some(r) = pending.receive().map_err(iox)? {
                    break r;
                }
                if polled_at.elapsed() >= crate::report::GUARD {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no bare iceoryx2 response"));
                }
                if polled_at.elapsed() >= self.spin {
                    std::thread::sleep(NAP);
                }
            };
            let reply: EchoReply = decode(reply.payload())?;
            if reply.counter != counter {
                return Err(io::Error::other(format!("reply {} to request {counter}", reply.counter)));
            }
            h.saturating_record(now_ns() - start);
        }
        Ok(h)
    }

    /// A stream of `EchoReq` frames, 256 to a sample, until `until`;
    /// messages per second the sink counted.
    pub fn stream(&mut self, until: Instant) -> io::Result<f64> {
        let start = Instant::now();
        let mut batch = Vec::new();
        let mut i = 0;
        while Instant::now() < until {
            batch.clear();
            for _ in 0..256 {
                i += 1;
                encode(&EchoReq::new(i, 0), 0, &mut batch)?;
            }
            self.publish(&batch)?;
        }
        batch.clear();
        connection::encode_frame(&FrameHeader::new(FrameKind::Close), b"{}", DEFAULT_MAX_FRAME, &mut batch)
            .map_err(io::Error::other)?;
        self.publish(&batch)?;
        let waited = Instant::now();
        loop {
            if let Some(n) = self.counts.receive().map_err(iox)? {
                return Ok(*n.payload() as f64 / start.elapsed().as_secs_f64());
            }
            if waited.elapsed() >= crate::report::GUARD {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no count from the bare iceoryx2 sink"));
            }
            std::thread::sleep(NAP);
        }
    }

    fn publish(&self, bytes: &[u8]) -> io::Result<()> {
        self.stream
            .loan_slice_uninit(bytes.len())
            .map_err(iox)?
            .write_from_slice(bytes)
            .send()
            .map_err(iox)?;
        Ok(())
    }
}
