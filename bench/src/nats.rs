//! The bare baseline of the `nats` path: `async-nats` request/reply of the
//! frames ipchnl would send, between this process and a bare child.
//!
//! The child subscribes to `ipchnl-bench.<PID>`: a request with a payload
//! is an echo (the request decoded, an `EchoReply` frame encoded back: the
//! same JSON work as ours); a message without a
//! reply subject is a stream message (counted); an empty request asks for
//! the count so far (8 bytes, big-endian). One subscription, so the count
//! follows every message the same publisher sent before it.
//!
//! The stream waits for the count after every batch of 256: without that
//! flow control, a publisher outruns the subscriber, whose client drops
//! what overflows its buffer (NATS is at most once), the count request
//! with it. ipchnl's links have the same control: their window.

use std::time::{Duration, Instant};

use async_nats::Client;
use bytes::Bytes;
use echo_reply::EchoReply;
use echo_req::EchoReq;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use manager::NatsAddr;
use msg_header::{Msg, now_ns};

use crate::bare::{decode, encode};
use crate::histogram;

/// The subject of the bare child with process id `pid`.
pub fn subject(pid: u32) -> String {
    format!("ipchnl-bench.{pid}")
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

async fn connect(addr: &NatsAddr) -> Result<Client, String> {
    addr.connect_options().connect(addr.host_port.as_str()).await.map_err(|e| format!("{addr}: {e}"))
}

/// Serves the bare side on `addr` from a thread of its own; returns once
/// it is subscribed.
pub fn serve(addr: &NatsAddr) -> Result<(), String> {
    let addr = addr.clone();
    let (ready, subscribed) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let runtime = match runtime() {
            Ok(rt) => rt,
            Err(e) => return drop(ready.send(Err(e))),
        };
        runtime.block_on(async move {
            let client = match connect(&addr).await {
                Ok(c) => c,
                Err(e) => return drop(ready.send(Err(e))),
            };
            let mut requests = match client.subscribe(subject(std::process::id())).await {
                Ok(s) => s,
                Err(e) => return drop(ready.send(Err(e.to_string()))),
            };
            // The subscription is on the server once a flush returns.
            if let Err(e) = client.flush().await {
                return drop(ready.send(Err(e.to_string())));
            }
            let _ = ready.send(Ok(()));
            let mut count = 0u64;
            while let Some(msg) = requests.next().await {
                match (msg.reply, msg.payload.is_empty()) {
                    (Some(to), false) => {
                        // The same JSON work as ours: the request decoded,
                        // the reply encoded.
                        let Ok(req) = decode::<EchoReq>(&msg.payload) else { continue };
                        let mut reply = Vec::new();
                        let echo = EchoReply::new(req.counter, req.req_timestamp_ns, now_ns());
                        if encode(&echo, req.header().corr_id(), &mut reply).is_ok() {
                            let _ = client.publish(to, Bytes::from(reply)).await;
                        }
                    }
                    (Some(to), true) => {
                        let n = count;
                        let _ = client.publish(to, Bytes::copy_from_slice(&n.to_be_bytes())).await;
                    }
                    (None, _) => {
                        // As a real sink does: decode the message.
                        if decode::<EchoReq>(&msg.payload).is_ok() {
                            count += 1;
                        }
                    }
                }
            }
        });
    });
    subscribed.recv().map_err(|_| "the bare NATS server ended".to_string())?
}

/// The bare client: request/reply and a stream to the bare child.
pub struct BareNats {
    runtime: tokio::runtime::Runtime,
    client: Client,
    subject: String,
}

/// A guard on every request: far beyond any round trip.
const GUARD: Duration = Duration::from_secs(60);

impl BareNats {
    /// Connects to `addr`, to talk to the bare child at `subject`.
    pub fn connect(addr: &NatsAddr, subject: String) -> Result<Self, String> {
        let runtime = runtime()?;
        let client = runtime.block_on(connect(addr))?;
        Ok(Self { runtime, client, subject })
    }

    /// Round trips until `until` (or `max` of them).
    pub fn rtt(&self, until: Instant, max: u64) -> Result<Histogram<u64>, String> {
        self.runtime.block_on(async {
            let mut h = histogram();
            while h.len() < max && Instant::now() < until {
                let start = now_ns();
                let counter = h.len() + 1;
                let mut req = Vec::new();
                encode(&EchoReq::new(counter, start), counter, &mut req).map_err(|e| e.to_string())?;
                let request = self.client.request(self.subject.clone(), Bytes::from(req));
                let reply = tokio::time::timeout(GUARD, request)
                    .await
                    .map_err(|_| "no bare NATS reply".to_string())?
                    .map_err(|e| e.to_string())?;
                let reply: EchoReply = decode(&reply.payload).map_err(|e| e.to_string())?;
                if reply.counter != counter {
                    return Err(format!("reply {} to request {counter}", reply.counter));
                }
                h.saturating_record(now_ns() - start);
            }
            Ok(h)
        })
    }

    /// A stream of `EchoReq` frames published in batches until `until`,
    /// waiting for the count after each; messages per second the child
    /// counted.
    pub fn stream(&self, until: Instant) -> Result<f64, String> {
        self.runtime.block_on(async {
            let before = self.count().await?;
            let start = Instant::now();
            let mut now = before;
            while Instant::now() < until {
                for i in 0..256 {
                    let mut frame = Vec::new();
                    encode(&EchoReq::new(i + 1, 0), 0, &mut frame).map_err(|e| e.to_string())?;
                    let frame = Bytes::from(frame);
                    self.client.publish(self.subject.clone(), frame).await.map_err(|e| e.to_string())?;
                }
                now = self.count().await?;
            }
            Ok((now - before) as f64 / start.elapsed().as_secs_f64())
        })
    }

    /// The child's count so far.
    async fn count(&self) -> Result<u64, String> {
        let count = tokio::time::timeout(GUARD, self.client.request(self.subject.clone(), Bytes::new()))
            .await
            .map_err(|_| "no bare NATS count".to_string())?
            .map_err(|e| e.to_string())?;
        let n = <[u8; 8]>::try_from(&count.payload[..]).map_err(|_| "a bad count".to_string())?;
        Ok(u64::from_be_bytes(n))
    }
}
