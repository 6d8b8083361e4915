//! What encrypting a link costs per byte: 1 MiB of frames sealed into
//! records and opened again (`connection::Secure`, AES-256-GCM in
//! records of up to 64 KiB), against the same bytes copied out to a
//! buffer and back in, which is what the plain link does with them.
//!
//! `cargo bench --bench records`

use std::hint::black_box;

use connection::{NoiseHandshake, Role, Secret, Secure};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn pair() -> (Secure, Secure) {
    let psk = Secret::new(b"bench".to_vec()).expect("not empty").noise_psk(b"bench");
    let mut client = NoiseHandshake::new(Role::Client, &psk, b"").expect("client");
    let mut server = NoiseHandshake::new(Role::Server, &psk, b"").expect("server");
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    client.write(&mut to_server).expect("msg 1");
    server.read(&to_server).expect("msg 1 read");
    server.write(&mut to_client).expect("msg 2");
    client.read(&to_client).expect("msg 2 read");
    (client.finish().expect("client done"), server.finish().expect("server done"))
}

fn records(c: &mut Criterion) {
    let burst: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut group = c.benchmark_group("records_1MiB");
    group.throughput(Throughput::Bytes(burst.len() as u64));
    let (mut sealer, mut opener) = pair();
    let (mut wire, mut plain) = (Vec::with_capacity(2 << 20), Vec::with_capacity(2 << 20));
    group.bench_function("sealed and opened", |b| {
        b.iter(|| {
            wire.clear();
            plain.clear();
            sealer.seal(black_box(&burst), &mut wire).expect("sealed");
            opener.open(&wire, &mut plain).expect("opened");
            black_box(plain.len())
        })
    });
    group.bench_function("copied out and in (the plain link)", |b| {
        b.iter(|| {
            wire.clear();
            plain.clear();
            wire.extend_from_slice(black_box(&burst));
            plain.extend_from_slice(&wire);
            black_box(plain.len())
        })
    });
    group.finish();

    // A round trip's worth: one small frame (an echo request's 128 bytes),
    // sealed and opened as a record of its own.
    let small = &burst[..128];
    let mut group = c.benchmark_group("record_128B");
    group.bench_function("sealed and opened", |b| {
        b.iter(|| {
            wire.clear();
            plain.clear();
            sealer.seal(black_box(small), &mut wire).expect("sealed");
            opener.open(&wire, &mut plain).expect("opened");
            black_box(plain.len())
        })
    });
    group.finish();
}

criterion_group!(benches, records);
criterion_main!(benches);
