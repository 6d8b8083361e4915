//! What a message costs to encode, decode and identify; and a 1 MiB
//! payload as a `Bytes` field (a blob after the JSON) against the same as a
//! `Vec<u8>` (a JSON array of numbers).
//!
//! `cargo bench --bench msg_codec`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ipchnl::echo::EchoReq;
use ipchnl::{BoxMsg, Bytes, MsgId, MsgType, WireMsg, msg_serde_macro};

msg_serde_macro! {
    /// A payload as a blob.
    struct AsBlob("bench::AsBlob") { data: Bytes }
}

msg_serde_macro! {
    /// The same payload as a JSON array.
    struct AsArray("bench::AsArray") { data: Vec<u8> }
}

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

/// Encodes a 1 MiB payload into a body and decodes it back.
fn binary_payload(c: &mut Criterion) {
    let mut group = c.benchmark_group("binary_payload_1MiB");
    let payload: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let blob = AsBlob::new(Bytes::from(payload.clone()));
    let array = AsArray::new(payload);
    group.bench_function("Bytes field, encode + decode", |b| {
        let header = *ipchnl::Msg::header(&blob);
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            black_box(&blob).encode_body(&mut out).unwrap();
            let back = ipchnl::decode_body::<AsBlob>(header, black_box(&out)).unwrap();
            black_box(back.data.len())
        })
    });
    group.bench_function("Vec<u8> field (JSON array), encode + decode", |b| {
        let header = *ipchnl::Msg::header(&array);
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            black_box(&array).encode_body(&mut out).unwrap();
            let back = ipchnl::decode_body::<AsArray>(header, black_box(&out)).unwrap();
            black_box(back.data.len())
        })
    });
    group.finish();
}

criterion_group!(benches, codec, binary_payload);
criterion_main!(benches);
