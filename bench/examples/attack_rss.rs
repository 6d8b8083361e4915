//! A measuring driver for what one process can cost a server: starts
//! `ipchnl serve` (the binary given, with its defaults), makes one of the
//! attacks of `docs/GUARANTEES.md` from this process with as many links as
//! asked, runs `ipchnl echo --count 1000` during it and after it, and
//! prints the server's resident memory: idle, at its peak, and how long it
//! took to come back within 64 MiB of idle once the attacker left.
//!
//! `cargo run --release -p bench --example attack_rss -- target/release/ipchnl trickle 1000`
//! (attacks: `trickle`, `whole`, `pipeline`, `idle`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use connection::blocking::BlockingLink;
use connection::{
    DEFAULT_MAX_FRAME, FRAME_HEADER_LEN, FrameHeader, FrameKind, HandshakeConfig, Incarnation, Role,
};
use msg_header::{ActorId, MsgId, NodeId};

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A linked raw client: handshake and directories done; the server's
/// echo actor's id.
fn link(addr: &str, n: usize) -> Option<(TcpStream, ActorId)> {
    let s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let name = format!("attacker-{}-{n}", std::process::id());
    let config = HandshakeConfig::new(NodeId::of_name(&name), Incarnation([1; 16]));
    let mut nonce = [0; 32];
    nonce[..8].copy_from_slice(&(n as u64).to_be_bytes());
    let (mut l, _) = BlockingLink::handshake(s, Role::Client, config, nonce, DEFAULT_MAX_FRAME).ok()?;
    l.write_frame(&FrameHeader::new(FrameKind::Directory), br#"{"full":true}"#).ok()?;
    loop {
        let (h, body) = l.read_frame().ok()?;
        if h.kind == FrameKind::Close {
            return None; // refused at a cap
        }
        if h.kind == FrameKind::Directory {
            let update: connection::DirectoryUpdate = serde_json::from_slice(&body).ok()?;
            if let Some(id) = update.add.iter().find(|e| e.name == "server").map(|e| e.id) {
                let (s, _) = l.into_parts();
                s.set_nonblocking(true).ok()?;
                return Some((s, id));
            }
        }
    }
}

fn frame(kind: FrameKind, dst: ActorId, seq: u64, body: &[u8]) -> Vec<u8> {
    let h = FrameHeader {
        msg_id: MsgId::of_name("echo_req::EchoReq"),
        dst,
        seq,
        corr: seq,
        ..FrameHeader::new(kind)
    };
    let mut f = Vec::new();
    connection::encode_frame(&h, body, DEFAULT_MAX_FRAME, &mut f).unwrap();
    f
}

fn write_some(s: &mut TcpStream, bytes: &[u8], at: &mut usize) {
    while *at < bytes.len() {
        match s.write(&bytes[*at..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => *at += n,
        }
    }
}

fn echo(exe: &str, addr: &str) -> String {
    let out = Command::new(exe)
        .args(["echo", "--insecure", "--connect", &format!("tcp://{addr}"), "--count", "1000"])
        .output()
        .unwrap();
    if out.status.success() {
        "ok".into()
    } else {
        format!("failed: {}", String::from_utf8_lossy(&out.stderr).trim())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let exe = args.get(1).cloned().unwrap_or_else(|| "target/release/ipchnl".into());
    let attack = args.get(2).cloned().unwrap_or_else(|| "trickle".into());
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mut server = Command::new(&exe)
        .args(["serve", "--listen", "tcp://127.0.0.1:0", "--insecure"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let addr = lines.next().unwrap().unwrap().strip_prefix("listening on tcp://").unwrap().to_owned();
    println!("echo before: {}", echo(&exe, &addr));
    std::thread::sleep(Duration::from_millis(500));
    let idle = rss(pid);
    let mut links: Vec<(TcpStream, ActorId)> = Vec::new();
    let mut refused = 0;
    for i in 0..n {
        match link(&addr, i) {
            Some(l) => links.push(l),
            None => refused += 1,
        }
    }
    println!("{} links, {refused} refused at a cap", links.len());
    let big = DEFAULT_MAX_FRAME - 64;
    let payload = |dst| {
        let pad = "x".repeat(big - FRAME_HEADER_LEN - 40);
        frame(
            FrameKind::Msg,
            dst,
            1,
            format!(r#"{{"counter":1,"req_timestamp_ns":0,"p":"{pad}"}}"#).as_bytes(),
        )
    };
    let frames: Vec<Vec<u8>> = match attack.as_str() {
        "trickle" => {
            links.iter().map(|(_, _)| payload(ActorId::from_u128(0xdead))[..big - 1].to_vec()).collect()
        }
        "whole" => links.iter().map(|(_, _)| payload(ActorId::from_u128(0xdead))).collect(),
        "pipeline" => links
            .iter()
            .map(|(_, dst)| {
                (1..=20_000u64)
                    .flat_map(|k| {
                        frame(
                            FrameKind::Msg,
                            *dst,
                            k,
                            format!(r#"{{"counter":{k},"req_timestamp_ns":0}}"#).as_bytes(),
                        )
                    })
                    .collect()
            })
            .collect(),
        _ => links.iter().map(|_| Vec::new()).collect(),
    };
    let mut sent = vec![0; links.len()];
    let start = Instant::now();
    let mut peak = idle;
    let mut during = String::new();
    while start.elapsed() < Duration::from_secs(15) {
        for ((s, _), (f, at)) in links.iter_mut().zip(frames.iter().zip(&mut sent)) {
            write_some(s, f, at);
        }
        peak = peak.max(rss(pid));
        if during.is_empty() && start.elapsed() > Duration::from_secs(3) {
            during = echo(&exe, &addr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("echo during: {during}");
    let left = Instant::now();
    drop(links);
    let mut back = None;
    while left.elapsed() < Duration::from_secs(30) {
        let now = rss(pid);
        peak = peak.max(now);
        if now <= idle + (64 << 20) {
            back = Some(left.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("echo after: {}", echo(&exe, &addr));
    println!(
        "{attack} x{n}: idle {} MB, peak {} MB (+{} MB), back within 64 MB of idle after {:?}",
        idle >> 20,
        peak >> 20,
        (peak - idle) >> 20,
        back
    );
    let _ = server.kill();
    let _ = server.wait();
}
