//! The bare baseline of the `shm` path: iceoryx2 as its own examples use
//! it, between two processes, carrying the same frames with the same JSON
//! work as ours.
//!
//! * Round trips: a request-response service of byte slices. The client
//!   encodes an `EchoReq` frame, sends it, and polls for the response; the
//!   server polls for requests, decodes each, encodes the `EchoReply`
//!   frame and answers. Both poll for the low-latency option's spin, then
//!   sleep a little between looks (iceoryx2 needs an event service to
//!   block, which its request-response example does not use); an idle
//!   server sleeps longer each time it finds nothing.
//! * Streams: a publish-subscribe service. Each sample holds 256 encoded
//!   `EchoReq` frames (as the bare socket stream writes 256 at a time); the
//!   sink decodes every frame and counts, and at a CLOSE frame publishes
//!   its count on a second service. A third service carries the same
//!   stream to a hand-rolled handler ([`bare::Sink::HandRolled`]): each
//!   decoded message goes through a crossbeam channel to a handler thread.
//!
//! Its objects are private to the user, as ours are (`/dev/shm` prefix
//! `ipchnlbare<uid>_`), and every port and node is dropped when
//! [`serve`]'s stop flag is set.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use connection::{DEFAULT_MAX_FRAME, FrameDecoder};
use hdrhistogram::Histogram;
use iceoryx2::node::Node;
use iceoryx2::port::client::Client;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::{BackpressureStrategy, ServiceName, ipc};
use msg_header::now_ns;

use crate::bare::{self, Sink};
use crate::histogram;

type Svc = ipc::Service;

/// The largest request or reply frame.
const MAX_FRAME: usize = 512;
/// The largest stream sample: 256 frames.
const MAX_BATCH: usize = 64 * 1024;
/// How long a waiting side sleeps between looks once its spin is over.
const NAP: Duration = Duration::from_micros(50);

/// The longest nap of an idle server: it naps [`NAP`] first, and twice as
/// long each time it finds nothing, up to this. (Napping 50 µs at a time
/// while idle, it woke 20,000 times a second and took about 12% of a CPU,
/// and the wake-ups preempted, from whichever path the report measured
/// meanwhile: our unix stream ran at 3.0-3.2 M msg/s in the report against
/// 4.4-4.7 M alone.) A round trip's first request after a pause may wait
/// one nap; the warm-up before each path's samples takes it.
const IDLE_NAP_MAX: Duration = Duration::from_millis(5);

fn iox(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("iceoryx2: {e:?}"))
}

/// A node of this user's alone, its objects named `ipchnlbare<uid>_`, made
/// as ipchnl's links make theirs.
fn node() -> io::Result<Node<Svc>> {
    manager::private_shm_node(&format!("ipchnlbare{}_", rustix::process::geteuid().as_raw()))
}

fn service(name: &str, what: &str) -> io::Result<ServiceName> {
    ServiceName::new(&format!("ipchnl-bare/{name}/{what}")).map_err(iox)
}

/// The services of `name`, opened (or created) alike by both sides: the
/// echo's request-response, the stream, and the sink's counts.
fn echo_service(node: &Node<Svc>, name: &str) -> io::Result<RequestResponse> {
    node.service_builder(&service(name, "echo")?)
        .request_response::<[u8], [u8]>()
        .open_or_create()
        .map_err(iox)
}

/// The stream service of a sink: `stream` for the floor, `handed` for
/// the hand-rolled handler.
fn stream_service(node: &Node<Svc>, name: &str, sink: Sink) -> io::Result<PublishSubscribe<[u8]>> {
    let what = match sink {
        Sink::Floor => "stream",
        Sink::HandRolled => "handed",
    };
    node.service_builder(&service(name, what)?)
        .publish_subscribe::<[u8]>()
        .subscriber_max_buffer_size(64)
        .enable_safe_overflow(false)
        .open_or_create()
        .map_err(iox)
}

fn count_service(node: &Node<Svc>, name: &str) -> io::Result<PublishSubscribe<u64>> {
    node.service_builder(&service(name, "count")?)
        .publish_subscribe::<u64>()
        .subscriber_max_buffer_size(4)
        .enable_safe_overflow(false)
        .open_or_create()
        .map_err(iox)
}

type RequestResponse =
    iceoryx2::service::port_factory::request_response::PortFactory<Svc, [u8], (), [u8], ()>;
type PublishSubscribe<T> = iceoryx2::service::port_factory::publish_subscribe::PortFactory<Svc, T, ()>;

/// Serves `name` (round trips and streams) until `stop` is set, polling
/// for `spin` before each nap. Returns once everything is dropped.
pub fn serve(name: &str, spin: Duration, stop: Arc<AtomicBool>, ready: impl FnOnce()) -> io::Result<()> {
    let node = node()?;
    let server =
        echo_service(&node, name)?.server_builder().initial_max_slice_len(MAX_FRAME).create().map_err(iox)?;
    let floor = stream_service(&node, name, Sink::Floor)?.subscriber_builder().create().map_err(iox)?;
    let hand = stream_service(&node, name, Sink::HandRolled)?.subscriber_builder().create().map_err(iox)?;
    let count_out = count_service(&node, name)?.publisher_builder().create().map_err(iox)?;
    ready();
    let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut out = Vec::new();
    let report = |n: u64| count_out.send_copy(n).map(drop).map_err(iox);
    let (mut on_floor, mut on_hand) = (bare::counting(report), bare::handed(report));
    let mut idle_since = Instant::now();
    let mut nap = NAP;
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        while let Some(req) = server.receive().map_err(iox)? {
            busy = true;
            bare::echo(req.payload(), &mut out)?;
            req.loan_slice_uninit(out.len()).map_err(iox)?.write_from_slice(&out).send().map_err(iox)?;
        }
        while let Some(batch) = floor.receive().map_err(iox)? {
            busy = true;
            bare::sink_frames(&decoder, batch.payload(), &mut on_floor)?;
        }
        while let Some(batch) = hand.receive().map_err(iox)? {
            busy = true;
            bare::sink_frames(&decoder, batch.payload(), &mut on_hand)?;
        }
        if busy {
            idle_since = Instant::now();
            nap = NAP;
        } else if idle_since.elapsed() >= spin {
            std::thread::sleep(nap);
            nap = (nap * 2).min(IDLE_NAP_MAX);
        } else {
            std::hint::spin_loop();
        }
    }
    Ok(())
}

/// A bare iceoryx2 client of [`serve`].
pub struct ShmEcho {
    client: Client<Svc, [u8], (), [u8], ()>,
    floor: Publisher<Svc, [u8], ()>,
    hand: Publisher<Svc, [u8], ()>,
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
        let client = echo_service(&node, name)?
            .client_builder()
            .initial_max_slice_len(MAX_FRAME)
            .create()
            .map_err(iox)?;
        let publisher = |sink| {
            stream_service(&node, name, sink)?
                .publisher_builder()
                .initial_max_slice_len(MAX_BATCH)
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()
                .map_err(iox)
        };
        let (floor, hand) = (publisher(Sink::Floor)?, publisher(Sink::HandRolled)?);
        let counts = count_service(&node, name)?.subscriber_builder().create().map_err(iox)?;
        Ok(Self { client, floor, hand, counts, spin, req: Vec::new(), _node: node })
    }

    /// Round trips until `until` (or `max` of them): each request encoded,
    /// each reply decoded and checked.
    pub fn run(&mut self, until: Instant, max: u64) -> io::Result<Histogram<u64>> {
        let mut h = histogram();
        while h.len() < max && Instant::now() < until {
            let start = now_ns();
            let counter = h.len() + 1;
            bare::request(counter, start, &mut self.req)?;
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
            bare::check_reply(reply.payload(), counter)?;
            h.saturating_record(now_ns() - start);
        }
        Ok(h)
    }

    /// A stream of `EchoReq` frames, 256 to a sample, to `sink` until
    /// `until`; messages per second the sink counted.
    pub fn stream(&mut self, until: Instant, sink: Sink) -> io::Result<f64> {
        let start = Instant::now();
        let mut batch = Vec::new();
        let mut last = 0;
        while Instant::now() < until {
            bare::stream_batch(&mut last, &mut batch)?;
            self.publish(sink, &batch)?;
        }
        bare::close_frame(&mut batch)?;
        self.publish(sink, &batch)?;
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

    fn publish(&self, sink: Sink, bytes: &[u8]) -> io::Result<()> {
        let publisher = match sink {
            Sink::Floor => &self.floor,
            Sink::HandRolled => &self.hand,
        };
        publisher.loan_slice_uninit(bytes.len()).map_err(iox)?.write_from_slice(bytes).send().map_err(iox)?;
        Ok(())
    }
}
