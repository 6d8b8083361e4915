//! The seed's measurement as a benchmark: an echo in one thread, through
//! our addresses and actor dispatch, against a bare `Box<dyn Any + Send>`
//! echo through two crossbeam channels with the same four clock reads.
//!
//! `cargo bench --bench same_thread` (pin with `taskset -c 0` for steadier
//! figures).

use std::any::Any;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ipchnl::echo::{EchoReply, EchoReq, Server};
use ipchnl::{ActorSender, StaticDirectory, dispatch, now_ns};

struct BareReq {
    counter: u64,
    req_timestamp_ns: u64,
}

struct BareReply {
    counter: u64,
    req_timestamp_ns: u64,
    reply_timestamp_ns: u64,
}

fn same_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("same_thread");

    group.bench_function("bare_channels", |b| {
        let (req_tx, req_rx) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
        let (reply_tx, reply_rx) = crossbeam_channel::unbounded::<Box<dyn Any + Send>>();
        let mut counter = 0;
        b.iter(|| {
            counter += 1;
            let start = now_ns();
            req_tx.send(Box::new(BareReq { counter, req_timestamp_ns: now_ns() })).unwrap();
            let req = req_rx.recv().unwrap().downcast::<BareReq>().unwrap();
            let reply = BareReply {
                counter: req.counter,
                req_timestamp_ns: req.req_timestamp_ns,
                reply_timestamp_ns: now_ns(),
            };
            reply_tx.send(Box::new(reply)).unwrap();
            let reply = reply_rx.recv().unwrap().downcast::<BareReply>().unwrap();
            assert_eq!(reply.counter, counter);
            black_box((reply.req_timestamp_ns, reply.reply_timestamp_ns, now_ns() - start))
        });
    });

    group.bench_function("ipchnl_dispatch", |b| {
        let mut server = Server::new();
        let (server_addr, server_rx) = ActorSender::channel("server", &server, None);
        let (me, my_rx) = ActorSender::inbox("bench");
        let dir = StaticDirectory::default();
        let mut counter = 0;
        b.iter(|| {
            counter += 1;
            let start = now_ns();
            server_addr.send_from(EchoReq::stamped(counter), &me).unwrap();
            dispatch(&mut server, &server_addr, &dir, server_rx.recv().unwrap());
            let reply = my_rx.recv().unwrap().msg.downcast::<EchoReply>().unwrap();
            assert_eq!(reply.counter, counter);
            black_box((reply.req_timestamp_ns, reply.reply_timestamp_ns, now_ns() - start))
        });
    });

    group.finish();
}

criterion_group!(benches, same_thread);
criterion_main!(benches);
