//! What a message costs to encode, decode and identify.
//!
//! `cargo bench --bench msg_codec`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ipchnl::echo::EchoReq;
use ipchnl::{BoxMsg, MsgId, MsgType, WireMsg};

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("msg_codec");
    let req = EchoReq::new(12345, 1_700_000_000_000_000_000);
    let json = req.to_json().unwrap();
    let mut body = Vec::new();
    req.encode_body(&mut body).unwrap();

    group.bench_function("EchoReq::to_json", |b| b.iter(|| black_box(&req).to_json().unwrap()));
    group.bench_function("EchoReq::from_json", |b| b.iter(|| EchoReq::from_json(black_box(&json)).unwrap()));
    group.bench_function("EchoReq::encode_body", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter(|| {
            out.clear();
            black_box(&req).encode_body(&mut out).unwrap();
            black_box(out.len())
        })
    });
    group.bench_function("EchoReq::decode_body", |b| {
        let header = *ipchnl::Msg::header(&req);
        b.iter(|| ipchnl::decode_body::<EchoReq>(header, black_box(&body)).unwrap())
    });
    group.bench_function("EchoReq::msg_id (type)", |b| b.iter(|| black_box(EchoReq::msg_id())));
    let boxed: BoxMsg = Box::new(req.clone());
    group.bench_function("BoxMsg::msg_id (instance)", |b| b.iter(|| black_box(&boxed).msg_id()));
    group.bench_function("MsgId::of_name (the hash, for scale)", |b| {
        b.iter(|| MsgId::of_name(black_box("echo_req::EchoReq")))
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
