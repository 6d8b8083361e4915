//! One peer cannot hurt the others: each attack a hostile process on the
//! same host could make, against a real `ipchnl serve`, with a real
//! `ipchnl echo` that must complete during and after it, and the server's
//! memory bounded by its configured limits.
//!
//! The memory bound, for the defaults: what one peer can make the server
//! hold is its read buffer (at most a frame, 1 MiB), its output (reading
//! stops at 8 MiB, and one turn's reading adds at most what it read, 64
//! KiB), its inbound messages not yet handled (8 MiB, plus one turn's
//! read), its unacknowledged messages (a window of 1,024 small replies),
//! its directory (4,096 actors, each a name of at most 255 bytes and at
//! most 128 protocol and 128 message ids, 16 bytes each: about 17 MiB,
//! held twice, in the directory and in the routes: 35 MiB) and its watches
//! (4,096 pairs, well under 1 MiB): 52 MiB in all, under the 64 MiB above
//! idle that the tests allow. A test binary of its own.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connection::{DirEntry, DirectoryUpdate, FrameHeader, FrameKind};
use ipchnl::ActorId;
use support::raw::Client;
use support::*;

/// What one peer's flood may add to the server's memory (see the module docs).
const RSS_BOUND: u64 = 64 << 20;

/// A real `ipchnl serve --insecure` (or with the options of
/// [`start_encrypted`](Self::start_encrypted)), its counters on demand.
struct Server {
    child: Child,
    addr: String,
    lines: Receiver<String>,
    /// What an `ipchnl echo` needs to link with it.
    client_args: Vec<String>,
    _secret: Option<tempfile_path::TempFile>,
}

/// The secret of [`Server::start_encrypted`].
const SECRET: &str = "the attackers know this one too";

impl Server {
    /// Starts it with `extra` arguments, its descriptors limited to
    /// `nofile` if given (through `prlimit`).
    fn start(extra: &[&str], nofile: Option<u64>) -> Self {
        Self::spawn(&[&["--insecure"], extra].concat(), nofile, vec!["--insecure".into()], None)
    }

    /// Starts it with [`SECRET`] and `--encrypt`: every link, on loopback
    /// too, is encrypted.
    fn start_encrypted(extra: &[&str]) -> Self {
        let file = secret_file(SECRET);
        let path = file.path().to_owned();
        let args = [&["--secret-file", path.as_str(), "--encrypt"], extra].concat();
        let client = vec!["--secret-file".into(), path.clone(), "--encrypt".into()];
        Self::spawn(&args, None, client, Some(file))
    }

    fn spawn(
        extra: &[&str],
        nofile: Option<u64>,
        client_args: Vec<String>,
        secret: Option<tempfile_path::TempFile>,
    ) -> Self {
        let exe = env!("CARGO_BIN_EXE_ipchnl");
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.args([format!("--nofile={n}:{n}"), "--".into(), exe.into()]);
                c
            }
            None => Command::new(exe),
        };
        let mut child = cmd
            .args(["serve", "--listen", "tcp://127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ipchnl serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let first = lines.recv_timeout(HANG_GUARD).expect("serve prints its address");
        let addr = first.strip_prefix("listening on tcp://").expect("the first line").to_owned();
        Self { child, addr, lines, client_args, _secret: secret }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Its counters (SIGUSR1 prints them).
    fn stats(&self) -> serde_json::Value {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("a real pid");
        rustix::process::kill_process(pid, rustix::process::Signal::USR1).expect("signalled");
        loop {
            let line = self.lines.recv_timeout(HANG_GUARD).expect("serve prints its counters");
            if let Some(json) = line.strip_prefix("stats ") {
                return serde_json::from_str(json).expect("JSON counters");
            }
        }
    }

    /// How many links closed for `reason`.
    fn closes(&self, reason: &str) -> u64 {
        self.stats()["closes"][reason].as_u64().unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real `ipchnl echo` of `count` round trips: it must succeed.
fn echo(server: &Server, count: u64) {
    let child = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["echo", "--connect", &server.url(), "--count", &count.to_string(), "--json"])
        .args(&server.client_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ipchnl echo starts");
    let out = wait_guarded(child, HANG_GUARD);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "echo failed: {err}; server: {}", server.stats());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("echo's JSON");
    assert_eq!(v["received"].as_u64(), Some(count), "{v}");
}

/// Samples the server's resident memory until `stop`; the highest seen.
fn watch_rss(pid: i32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut max = 0;
        while !stop.load(Ordering::Relaxed) {
            max = max.max(rss_bytes(pid));
            std::thread::sleep(Duration::from_millis(20));
        }
        max.max(rss_bytes(pid))
    })
}

/// Runs `attack` in a thread (it ends when told to stop, or on its own)
/// while an echo runs, twice over; checks the server's memory stayed
/// within [`RSS_BOUND`] of what it used idle, and that an echo completes
/// after it too.
fn during(server: &Server, attack: impl FnOnce(Arc<AtomicBool>) + Send + 'static) {
    echo(server, 50); // warm: what the server holds idle, after one client
    let idle = rss_bytes(server.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let rss = watch_rss(server.pid(), stop.clone());
    let attacker = {
        let stop = stop.clone();
        std::thread::spawn(move || attack(stop))
    };
    // Give it time to get going, then a client must still be served.
    std::thread::sleep(Duration::from_millis(300));
    echo(server, 200);
    echo(server, 200);
    stop.store(true, Ordering::Relaxed);
    attacker.join().expect("the attacker ends");
    let max = rss.join().expect("rss sampled");
    assert!(max <= idle + RSS_BOUND, "the server grew from {idle} to {max} bytes");
    echo(server, 200);
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(&server.addr).expect("connects");
    s.set_read_timeout(Some(HANG_GUARD)).expect("timeout set");
    s.set_write_timeout(Some(Duration::from_millis(500))).expect("timeout set");
    s
}

/// A linked wire-level client (handshake and directories done).
fn linked(server: &Server, tag: &str) -> Client<TcpStream> {
    Client::start(connect(server), &node(&format!("{tag}-{}", std::process::id()))).expect("links")
}

static NODES: AtomicU64 = AtomicU64::new(0);

fn node(tag: &str) -> String {
    format!("{tag}-{}", NODES.fetch_add(1, Ordering::Relaxed))
}

#[test]
fn a_flood_of_stalled_handshakes_cuts_the_oldest_and_clients_still_link() {
    raise_nofile(8192);
    let server = Server::start(&[], Some(512));
    let addr: std::net::SocketAddr = server.addr.parse().expect("an address");
    let held = Arc::new(Mutex::new(Vec::new()));
    let attacker_held = held.clone();
    during(&server, move |stop| {
        // Connections that never say a word: 1,150 at once, then more as
        // long as the echoes run. The server cuts the oldest past 128
        // pending; without that, its 512 descriptors would run out.
        let mut n = 0;
        while n < 1150 || (!stop.load(Ordering::Relaxed) && n < 4000) {
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                attacker_held.lock().unwrap().push(s);
            }
            n += 1;
        }
    });
    assert!(server.closes("handshake_limit") >= 500, "{}", server.stats());
    let fds = counts(server.pid()).1;
    assert!(fds < 300, "the server holds {fds} descriptors");
    drop(held);
}

#[test]
fn out_of_descriptors_the_listener_backs_off_and_accepts_again() {
    raise_nofile(8192);
    // 64 descriptors and no cap on pending handshakes: the flood takes
    // them all, and accepting fails with EMFILE.
    let server = Server::start(&["--max-pending-handshakes", "100000"], Some(64));
    echo(&server, 20);
    let mut held = Vec::new();
    for _ in 0..300 {
        if let Ok(s) =
            TcpStream::connect_timeout(&server.addr.parse().expect("an address"), Duration::from_secs(5))
        {
            held.push(s);
        }
    }
    eventually("accepting failed for want of descriptors", || {
        (server.closes("accept_backoff") >= 1).then_some(())
    });
    drop(held);
    // The listener was not given up: once the descriptors are back (the
    // attacker's connections closed, or cut at the handshake timeout), a
    // client links.
    echo(&server, 200);
}

#[test]
fn a_peer_that_sends_and_never_reads_is_bounded_then_cut() {
    let server = Server::start(&["--write-deadline-ms", "3000"], None);
    let mut attacker = linked(&server, "no-reader");
    let mut counter = 0;
    // The attacker hands its connection back, still open and unread.
    let (keep, kept) = channel();
    during(&server, move |stop| {
        while !stop.load(Ordering::Relaxed) {
            let mut frames = Vec::new();
            for _ in 0..2000 {
                counter += 1;
                let mut f = attacker.encode_request(counter);
                f[24..40].copy_from_slice(&ActorId::from_u128(0xdead).to_bytes());
                frames.extend_from_slice(&f);
            }
            if attacker.stream().write_all(&frames).is_err() {
                // Pushed back: the write timed out (the rest of this batch
                // is lost, so the stream is broken from here: stop writing).
                break;
            }
        }
        let _ = keep.send(attacker);
    });
    let _attacker = kept.recv_timeout(HANG_GUARD).expect("the attacker's connection");
    let deadline = std::time::Instant::now() + HANG_GUARD;
    while server.closes("slow_consumer") == 0 {
        assert!(std::time::Instant::now() < deadline, "not cut: {}", server.stats());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_peer_that_pipelines_requests_and_never_reads_is_bounded() {
    let server = Server::start(&["--write-deadline-ms", "3000"], None);
    let mut attacker = linked(&server, "pipeliner");
    let mut frames = Vec::new();
    let mut counter = 0;
    let mut next_batch = move |attacker: &mut Client<TcpStream>| {
        frames.clear();
        for _ in 0..1000 {
            counter += 1;
            frames.extend_from_slice(&attacker.encode_request(counter));
        }
        frames.clone()
    };
    let batches: Vec<Vec<u8>> = (0..50).map(|_| next_batch(&mut attacker)).collect();
    let mut s = attacker.stream().try_clone().expect("a second handle");
    during(&server, move |stop| {
        for batch in &batches {
            if stop.load(Ordering::Relaxed) || s.write_all(batch).is_err() {
                return;
            }
        }
    });
}

fn watch(target: ActorId, watcher: u128) -> Vec<u8> {
    let h =
        FrameHeader { dst: target, src: ActorId::from_u128(watcher), ..FrameHeader::new(FrameKind::Watch) };
    let mut f = Vec::new();
    connection::encode_frame(&h, &[], connection::DEFAULT_MAX_FRAME, &mut f).expect("a small frame");
    f
}

#[test]
fn watches_are_one_per_pair_capped_and_gone_with_their_link() {
    let server = Server::start(&[], None);
    let addr = server.addr.clone();
    during(&server, move |stop| {
        while !stop.load(Ordering::Relaxed) {
            let mut a = Client::start(
                TcpStream::connect(&addr).expect("connects"),
                &node(&format!("watcher-{}", std::process::id())),
            )
            .expect("links");
            let target = a.server;
            // The same watch over and over: one entry.
            let same: Vec<u8> = (0..2000).flat_map(|_| watch(target, 7)).collect();
            // Then distinct watchers, past the cap of 4,096: the link is closed.
            let many: Vec<u8> = (0..5000).flat_map(|w| watch(target, 100 + w)).collect();
            let s = a.stream();
            let _ = s.write_all(&same);
            let _ = s.write_all(&many);
            let _ = read_until_closed(s);
        }
    });
    assert!(server.closes("protocol_too_many_watches") >= 1, "{}", server.stats());
}

/// Reads until the server closes the connection (or the hang guard).
fn read_until_closed(s: &mut TcpStream) -> usize {
    let mut buf = [0u8; 65536];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

fn directory(update: &DirectoryUpdate) -> Vec<u8> {
    let body = serde_json::to_vec(update).expect("JSON");
    let mut f = Vec::new();
    connection::encode_frame(
        &FrameHeader::new(FrameKind::Directory),
        &body,
        connection::DEFAULT_MAX_FRAME,
        &mut f,
    )
    .expect("under the maximum");
    f
}

/// `n` actors with long names and a few ids each.
fn actors(from: u128, n: u128) -> Vec<DirEntry> {
    (from..from + n)
        .map(|i| DirEntry {
            id: ActorId::from_u128(i),
            name: format!("{i:0>100}"),
            protocols: vec![],
            msgs: vec![],
        })
        .collect()
}

#[test]
fn directories_are_capped_and_a_full_one_comes_once_per_link() {
    let server = Server::start(&[], None);
    let addr = server.addr.clone();
    during(&server, move |stop| {
        let mut round = 0u128;
        while !stop.load(Ordering::Relaxed) {
            round += 1;
            // 685 KiB of directory (4,000 actors), again and again on new
            // links: each costs its parse, none can starve the echo.
            let mut a = Client::start(TcpStream::connect(&addr).expect("connects"), &node("dir"))
                .expect("links (its full directory sent)");
            let adds = DirectoryUpdate { add: actors(round << 32, 4000), ..DirectoryUpdate::default() };
            let s = a.stream();
            let _ = s.write_all(&directory(&adds));
            match round % 3 {
                // A second full directory on the same link: closed.
                0 => {
                    let _ = s.write_all(&directory(&DirectoryUpdate { full: true, ..adds }));
                    let _ = read_until_closed(s);
                }
                // Additions past 4,096 actors: closed.
                1 => {
                    let more = DirectoryUpdate {
                        add: actors((round << 32) + 5000, 200),
                        ..DirectoryUpdate::default()
                    };
                    let _ = s.write_all(&directory(&more));
                    let _ = read_until_closed(s);
                }
                _ => {}
            }
        }
    });
    let stats = server.stats();
    assert!(stats["closes"]["protocol_directory_repeated"].as_u64() >= Some(1), "{stats}");
    assert!(stats["closes"]["protocol_too_many_actors"].as_u64() >= Some(1), "{stats}");
}

#[test]
fn a_busy_link_does_not_starve_the_others() {
    let server = Server::start(&[], None);
    let mut attacker = linked(&server, "busy");
    // Heartbeats as fast as the socket takes them: each is read and
    // handled, within the link's budget per turn.
    let mut beats = Vec::new();
    for _ in 0..10_000 {
        let mut f = Vec::new();
        connection::encode_frame(
            &FrameHeader::new(FrameKind::Heartbeat),
            &[],
            connection::DEFAULT_MAX_FRAME,
            &mut f,
        )
        .expect("a small frame");
        beats.extend_from_slice(&f);
    }
    let mut s = attacker.stream().try_clone().expect("a second handle");
    let flooding = Arc::new(AtomicBool::new(true));
    let still = flooding.clone();
    let flood = std::thread::spawn(move || {
        while still.load(Ordering::Relaxed) {
            if s.write_all(&beats).is_err() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    // While it goes on, other clients link and are served.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let mut other = linked(&server, "other");
        other.request(1).expect("sent");
        if let Err(e) = other.reply(1) {
            panic!("not answered: {e}: {}", server.stats());
        }
    }
    during(&server, |_| {});
    flooding.store(false, Ordering::Relaxed);
    flood.join().expect("the flood ends");
}

/// Raises this process's open-file limit (children inherit it).
fn raise_nofile(need: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let max = limit.maximum.unwrap_or(u64::MAX);
    let current = limit.current.unwrap_or(u64::MAX);
    if current < need {
        let raised = rustix::process::Rlimit { current: Some(max.min(need)), maximum: limit.maximum };
        setrlimit(Resource::Nofile, raised).expect("the open-file limit can be raised");
    }
}

#[test]
fn a_client_that_pipelines_and_reads_late_gets_every_reply_in_order() {
    const REQUESTS: u64 = 10_000;
    let server = Server::start(&[], None);
    let mut client = linked(&server, "pipeline");
    let frames: Vec<u8> = (1..=REQUESTS).flat_map(|n| client.encode_request(n)).collect();
    let mut writer = client.stream().try_clone().expect("a second handle");
    writer.set_write_timeout(Some(HANG_GUARD)).expect("timeout set");
    // All the requests at once (the server stops reading when it owes a
    // window of replies: the rest wait in TCP), nothing read for a second.
    let sending = std::thread::spawn(move || writer.write_all(&frames).expect("the requests are taken"));
    std::thread::sleep(Duration::from_secs(1));
    // Then read, acknowledging as WIRE.md asks: every reply, in order.
    for n in 1..=REQUESTS {
        client.reply(n).unwrap_or_else(|e| panic!("reply {n}: {e}; server: {}", server.stats()));
        if n % 100 == 0 {
            client.send_frame(FrameHeader::new(FrameKind::Ack), &[]).expect("ack sent");
        }
    }
    sending.join().expect("the writer ends");
    assert_eq!(server.stats()["dead_letters"], serde_json::json!({}), "nothing dropped");
}

#[test]
fn a_node_that_restarts_replaces_its_old_link() {
    let server = Server::start(&[], None);
    let name = node(&format!("restarts-{}", std::process::id()));
    let mut old = Client::start_as(connect(&server), &name, 1).expect("links");
    old.request(1).expect("sent");
    old.reply(1).expect("answered");
    // The same node, restarted (a new incarnation), while its old link is
    // still open: the old one is closed `replaced`, the new one serves.
    let mut new = Client::start_as(connect(&server), &name, 2).expect("links again");
    let rest = support::raw::read_to_close(old.stream());
    let kinds = support::raw::frame_kinds(&rest);
    assert_eq!(kinds.last(), Some(&FrameKind::Close), "{kinds:?}");
    assert!(String::from_utf8_lossy(&rest).contains(r#""reason":"replaced""#));
    new.request(1).expect("sent");
    new.reply(1).expect("answered");
    assert_eq!(server.closes("replaced"), 1, "{}", server.stats());
}

/// A linked client of node `tag` writes `frame` in batches of 100 while
/// `during` runs (blocking writes: once the server stops reading, they wait
/// for it); the server's stats, its link to the flooder, and how long the
/// flood lasted in seconds.
fn flood_frames(server: &Server, tag: &str, frame: Vec<u8>) -> (serde_json::Value, serde_json::Value, f64) {
    let addr = server.addr.clone();
    let name = node(tag);
    let flooder = name.clone();
    let started = std::time::Instant::now();
    during(server, move |stop| {
        let mut a = Client::start(TcpStream::connect(&addr).expect("connects"), &flooder).expect("links");
        let batch = frame.repeat(100);
        while !stop.load(Ordering::Relaxed) {
            if a.stream().write_all(&batch).is_err() {
                return;
            }
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let stats = server.stats();
    let id = ipchnl::NodeId::of_name(&name).to_string();
    let links = stats["links"].as_array().expect("links");
    let link = links.iter().find(|l| l["node"] == id.as_str()).expect("the flooder's link").clone();
    (stats, link, elapsed)
}

#[test]
fn a_flood_of_valid_control_frames_is_slowed_to_its_budget() {
    let server = Server::start(&[], None);
    let mut heartbeat = Vec::new();
    let h = FrameHeader::new(FrameKind::Heartbeat);
    connection::encode_frame(&h, &[], connection::DEFAULT_MAX_FRAME, &mut heartbeat).expect("a frame");
    let (_, link, elapsed) = flood_frames(&server, "heartbeats", heartbeat);
    assert!(link["control_throttled"].as_u64() >= Some(1), "{link}");
    // The defaults: a burst of 10,000, then 10,000 a second; what one read
    // turn brings in past the point where reading stops, 16 KiB of
    // heartbeats, is slack.
    let heartbeats = link["heartbeats_in"].as_u64().expect("counted") as f64;
    let bound = 10_000.0 + 10_000.0 * elapsed + (16 * 1024) as f64;
    assert!(heartbeats <= bound, "{heartbeats} heartbeats in {elapsed:.1} s: {link}");
}

#[test]
fn a_flood_of_dead_frames_is_slowed_to_its_budget_and_its_dead_letters_are_bounded() {
    let server = Server::start(&[], None);
    // "Your message to my actor was not handled": each is a dead letter
    // of the server (for messages it never sent, which it cannot tell).
    let h = FrameHeader {
        flags: 1,
        msg_id: ipchnl::MsgId::of_name("echo_req::EchoReq"),
        dst: ActorId::from_u128(7),
        ..FrameHeader::new(FrameKind::Dead)
    };
    let mut dead = Vec::new();
    let body = br#"{"counter":1,"req_timestamp_ns":2}"#;
    connection::encode_frame(&h, body, connection::DEFAULT_MAX_FRAME, &mut dead).expect("a frame");
    let (stats, link, elapsed) = flood_frames(&server, "deads", dead);
    assert!(link["control_throttled"].as_u64() >= Some(1), "{link}");
    // As for heartbeats: a burst of 10,000, then 10,000 a second, and what
    // one read turn brings in past the point where reading stops as slack.
    let letters = stats["dead_letters"]["actor_stopped"].as_u64().expect("counted") as f64;
    let bound = 10_000.0 + 10_000.0 * elapsed + (16 * 1024) as f64;
    assert!(letters >= 1.0 && letters <= bound, "{letters} dead letters in {elapsed:.1} s: {stats}");
}

// What one process can cost: many links at once, each within its own
// bounds, together within the node's budgets (GUARANTEES.md).

/// The most one process's links may add to the server's memory at their
/// peak: the node's budgets of read buffers, inbound messages and output
/// (128, 128 and 64 MiB), the links' base buffers, and the allocator's slack.
const PROCESS_RSS_BOUND: u64 = 384 << 20;

/// What may stay once the attacker has gone.
const AFTER_RSS_BOUND: u64 = 64 << 20;

/// The server's memory comes back to within [`AFTER_RSS_BOUND`] of `idle`.
fn memory_comes_back(server: &Server, idle: u64) {
    eventually(&format!("the server's memory back within 64 MiB of idle ({idle} bytes)"), || {
        std::thread::sleep(Duration::from_millis(50));
        if std::env::var_os("ATTACK_DEBUG").is_some() {
            let st = server.stats();
            eprintln!("rss {} held {} closes {}", rss_bytes(server.pid()), st["held"], st["closes"]);
            std::thread::sleep(Duration::from_millis(1000));
        }
        (rss_bytes(server.pid()) <= idle + AFTER_RSS_BOUND).then_some(())
    });
}

/// `n` linked wire clients of this process, their streams non-blocking.
fn many_links(server: &Server, tag: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut c = linked(server, tag);
            let s = c.stream().try_clone().expect("a second handle");
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect()
}

/// A first MSG (sequence 1) of `len` bytes in all, to an actor the server
/// does not have.
fn large_frame(len: usize) -> Vec<u8> {
    let h = FrameHeader {
        msg_id: ipchnl::MsgId::of_name("echo_req::EchoReq"),
        dst: ActorId::from_u128(0xdead),
        seq: 1,
        ..FrameHeader::new(FrameKind::Msg)
    };
    let pad = len - connection::FRAME_HEADER_LEN - 40;
    let body = format!(r#"{{"counter":1,"req_timestamp_ns":0,"p":"{}"}}"#, "x".repeat(pad));
    let mut f = Vec::new();
    connection::encode_frame(&h, body.as_bytes(), connection::DEFAULT_MAX_FRAME, &mut f).expect("a frame");
    f
}

/// Writes as much of `bytes[*at..]` as the socket takes now.
fn write_some(s: &mut TcpStream, bytes: &[u8], at: &mut usize) {
    while *at < bytes.len() {
        match s.write(&bytes[*at..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => *at += n,
        }
    }
}

/// Each of `n` links was taken: it is up, or was cut (after the budget's
/// grace, one at a time) for holding the most of the read budget.
fn every_link_taken(stats: &serde_json::Value, n: usize) {
    let up = stats["links"].as_array().expect("links").iter().filter(|l| l["up"] == true).count();
    let cut = stats["closes"]["over_budget_read_buffers"].as_u64().unwrap_or(0) as usize;
    assert!(up + cut >= n, "every link was taken: {up} up, {cut} cut, closes {}", stats["closes"]);
}

/// Each of `links` writes as much of its bytes as the server takes, in
/// `rounds` a quarter of a second apart, while the server's memory is
/// watched; then an echo must complete, the server must have waited for
/// its read budget and held no more than it (nor grown past
/// [`PROCESS_RSS_BOUND`] above `idle`), and once the links are gone their
/// room and memory must come back. `more` checks the counters too.
fn flood_the_read_budget<B: AsRef<[u8]>>(
    server: &Server,
    idle: u64,
    mut links: Vec<(TcpStream, B)>,
    rounds: usize,
    more: impl FnOnce(&serde_json::Value),
) {
    if std::env::var_os("ATTACK_DEBUG").is_some() {
        eprintln!("idle {idle} linked {}", rss_bytes(server.pid()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let rss = watch_rss(server.pid(), stop.clone());
    let mut sent = vec![0; links.len()];
    for _ in 0..rounds {
        for ((s, bytes), at) in links.iter_mut().zip(&mut sent) {
            write_some(s, bytes.as_ref(), at);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    echo(server, 200);
    stop.store(true, Ordering::Relaxed);
    let max = rss.join().expect("rss sampled");
    let stats = server.stats();
    let (held, closes) = (&stats["held"], &stats["closes"]);
    if std::env::var_os("ATTACK_DEBUG").is_some() {
        eprintln!("max {max} held {held}");
    }
    assert!(max <= idle + PROCESS_RSS_BOUND, "the server grew from {idle} to {max} bytes: {held}");
    assert!(held["read_waits"].as_u64() >= Some(1), "the read budget was reached: {held}, closes {closes}");
    assert!(held["read_buffers"].as_u64() <= Some(128 << 20), "{held}");
    more(&stats);
    drop(links);
    eventually("the read buffers given back", || {
        let st = server.stats();
        if std::env::var_os("ATTACK_DEBUG").is_some() {
            let up = st["links"].as_array().expect("links").iter().filter(|l| l["up"] == true).count();
            eprintln!("held {} up {up} closes {}", st["held"], st["closes"]);
            std::thread::sleep(Duration::from_millis(1000));
        }
        (st["held"]["read_buffers"].as_u64() == Some(0)).then_some(())
    });
    memory_comes_back(server, idle);
    echo(server, 200);
}

#[test]
fn many_links_trickling_large_frames_hold_no_more_than_the_read_budget() {
    raise_nofile(4096);
    let server = Server::start(&[], None);
    echo(&server, 50);
    let idle = rss_bytes(server.pid());
    // Each sends all of a 1 MiB frame but its last byte (as much as the
    // server takes), then a byte now and then: the frames never complete.
    let frame = large_frame(connection::DEFAULT_MAX_FRAME - 64);
    let whole = &frame[..frame.len() - 1];
    let links = many_links(&server, "trickle", 250).into_iter().map(|s| (s, whole)).collect();
    flood_the_read_budget(&server, idle, links, 5, |_| {});
}

#[test]
fn a_thousand_encrypted_links_trickling_large_frames_hold_no_more_than_the_read_budget() {
    raise_nofile(4096);
    // Its links send nothing while the thousand are made (slow in a debug
    // build): no heartbeat timeout may cut them meanwhile.
    let server = Server::start_encrypted(&["--max-links-per-user", "1100", "--heartbeat-ms", "60000"]);
    echo(&server, 50);
    let idle = rss_bytes(server.pid());
    // A thousand links that hold the secret, each encrypted: every one
    // sends all of a 256 KiB frame in records but the last record's last
    // byte, so the server holds the frame's plaintext and a record it
    // cannot open yet, for every link at once if its budget let it.
    let frame = large_frame(256 << 10);
    let links: Vec<(TcpStream, Vec<u8>)> = (0..1000)
        .map(|_| {
            let mut c = Client::start_secret(connect(&server), &node("sealed"), SECRET).expect("links");
            assert!(c.is_encrypted(), "the server requires it");
            let mut records = c.seal(&frame).expect("sealed");
            records.pop();
            let s = c.stream().try_clone().expect("a second handle");
            s.set_nonblocking(true).expect("non-blocking");
            (s, records)
        })
        .collect();
    flood_the_read_budget(&server, idle, links, 4, |stats| {
        every_link_taken(stats, 1000);
    });
}

#[test]
fn read_buffers_grown_for_large_frames_are_given_back() {
    raise_nofile(4096);
    let server = Server::start(&[], None);
    echo(&server, 50);
    let idle = rss_bytes(server.pid());
    let mut links = many_links(&server, "large", 60);
    let frame = large_frame(connection::DEFAULT_MAX_FRAME - 64);
    let mut sent = vec![0; links.len()];
    // Each sends one whole 1 MiB frame (refused: no such actor), then idles.
    eventually("every large frame written", || {
        for (s, at) in links.iter_mut().zip(&mut sent) {
            write_some(s, &frame, at);
        }
        sent.iter().all(|&at| at == frame.len()).then_some(())
    });
    eventually("every large frame refused", || {
        let nacks: u64 = server.stats()["links"]
            .as_array()
            .expect("links")
            .iter()
            .filter_map(|l| l["nacks_out"]["unknown_dst"].as_u64())
            .sum();
        (nacks >= 60).then_some(())
    });
    eventually("the read buffers given back", || {
        (server.stats()["held"]["read_buffers"].as_u64() == Some(0)).then_some(())
    });
    memory_comes_back(&server, idle);
    echo(&server, 200);
    drop(links);
}

#[test]
fn many_links_pipelining_and_never_reading_are_held_to_the_output_budget() {
    raise_nofile(4096);
    let server = Server::start(&[], None);
    echo(&server, 50);
    let idle = rss_bytes(server.pid());
    let mut clients: Vec<Client<TcpStream>> = (0..60).map(|_| linked(&server, "pipeliner")).collect();
    let batches: Vec<Vec<u8>> =
        clients.iter_mut().map(|c| (1..=20_000).flat_map(|n| c.encode_request(n)).collect()).collect();
    let mut streams: Vec<TcpStream> = clients
        .iter_mut()
        .map(|c| {
            let s = c.stream().try_clone().expect("a second handle");
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let rss = watch_rss(server.pid(), stop.clone());
    let flooding = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = vec![0; streams.len()];
            while !stop.load(Ordering::Relaxed) {
                for ((s, at), batch) in streams.iter_mut().zip(&mut sent).zip(&batches) {
                    write_some(s, batch, at);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            streams
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    echo(&server, 200);
    // Past the budget's grace, links holding the most are cut if the node
    // is still over it.
    std::thread::sleep(Duration::from_millis(1500));
    echo(&server, 200);
    let held = server.stats()["held"].clone();
    let inbound = held["inbound"].as_u64().expect("counted");
    // The budget, and what the turns that read it in brought past it.
    assert!(inbound <= (128 << 20) + 60 * (64 << 10), "{held}");
    stop.store(true, Ordering::Relaxed);
    let streams = flooding.join().expect("the flood ends");
    let max = rss.join().expect("rss sampled");
    assert!(
        max <= idle + PROCESS_RSS_BOUND,
        "the server grew from {idle} to {max} bytes: {}",
        server.stats()
    );
    drop((streams, clients));
    memory_comes_back(&server, idle);
    echo(&server, 200);
}

#[test]
fn one_user_cannot_take_every_link_and_a_refused_client_hears_which_cap() {
    raise_nofile(4096);
    let server = Server::start(&[], None);
    // The cap per user (256 by default) under the total (1,024).
    let held: Vec<Client<TcpStream>> = (0..256).map(|_| linked(&server, "idle")).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["echo", "--insecure", "--connect", &server.url(), "--count", "10"])
        .output()
        .expect("ipchnl echo runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused");
    assert!(err.contains("too many links from this user"), "{err}");
    assert!(server.closes("user_link_limit") >= 1, "{}", server.stats());
    drop(held);
    eventually("the slots are given back", || {
        let out = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
            .args(["echo", "--insecure", "--connect", &server.url(), "--count", "10"])
            .output()
            .expect("ipchnl echo runs");
        if !out.status.success() {
            eprintln!("echo: {} {}", String::from_utf8_lossy(&out.stderr), server.stats());
            std::thread::sleep(Duration::from_millis(500));
        }
        out.status.success().then_some(())
    });
}

// Messages in parts (WIRE.md §3): what a peer that breaks their rules, or
// starts them and stops, gets, and what many of them cost.

/// A piece of a message to an actor the server does not have: a PART, or
/// (`kind` Msg) the MSG that ends one, numbered `seq`.
fn piece(kind: FrameKind, flags: u8, seq: u64, body: &[u8]) -> Vec<u8> {
    let h = FrameHeader {
        flags,
        msg_id: ipchnl::MsgId::of_name("server::EchoBytes"),
        dst: ActorId::from_u128(0xdead),
        seq,
        ..FrameHeader::new(kind)
    };
    let mut f = Vec::new();
    connection::encode_frame(&h, body, connection::DEFAULT_MAX_FRAME, &mut f).expect("a frame");
    f
}

/// The first PART of a message of `total` bytes, carrying `len` of them.
fn first_part(total: u64, len: usize) -> Vec<u8> {
    let body: Vec<u8> = total.to_be_bytes().into_iter().chain(std::iter::repeat_n(7, len)).collect();
    piece(FrameKind::Part, connection::FIRST_PART, 0, &body)
}

#[test]
fn parts_that_break_the_rules_close_the_link_naming_why() {
    let server = Server::start(&[], None);
    let most = connection::LinkLimits::default().max_message as u64;
    let cases = [
        ("announcing more than the largest message", first_part(most + 1, 100), "protocol_message_too_large"),
        ("a part with no first part", piece(FrameKind::Part, 0, 0, b"xy"), "protocol_bad_part"),
        (
            "a first part while one is under way",
            [first_part(1 << 20, 100), first_part(1 << 20, 100)].concat(),
            "protocol_bad_part",
        ),
        (
            "a last piece short of the announced length",
            [first_part(1 << 20, 100), piece(FrameKind::Msg, connection::LAST_PART, 1, b"xy")].concat(),
            "protocol_bad_part",
        ),
        (
            "a last piece with no first part",
            piece(FrameKind::Msg, connection::LAST_PART, 1, b"xy"),
            "protocol_bad_part",
        ),
    ];
    for (what, bytes, reason) in cases {
        let before = server.closes(reason);
        let mut c = linked(&server, "parts");
        c.stream().write_all(&bytes).expect("written");
        read_until_closed(c.stream());
        eventually(&format!("{what}: closed, {reason}"), || (server.closes(reason) > before).then_some(()));
    }
    echo(&server, 50);
    assert_eq!(server.stats()["held"]["read_buffers"].as_u64(), Some(0));
}

#[test]
fn a_message_announced_then_left_after_one_part_is_cut_and_gives_its_room_back() {
    let server = Server::start(&["--frame-deadline-ms", "300"], None);
    let mut c = linked(&server, "stall");
    // 64 MiB announced, 60 KiB sent, then nothing more of it.
    c.stream().write_all(&first_part(64 << 20, 60 << 10)).expect("written");
    eventually("the link cut, slow_frame", || (server.closes("slow_frame") >= 1).then_some(()));
    eventually("its room given back", || {
        (server.stats()["held"]["read_buffers"].as_u64() == Some(0)).then_some(())
    });
    echo(&server, 50);
}

#[test]
fn a_thousand_links_each_sending_most_of_a_large_message_hold_no_more_than_the_read_budget() {
    raise_nofile(4096);
    // Its links send nothing while the thousand are made (slow in a debug
    // build): no heartbeat timeout may cut them meanwhile.
    let server = Server::start(&["--max-links-per-user", "1100", "--heartbeat-ms", "60000"], None);
    echo(&server, 50);
    let idle = rss_bytes(server.pid());
    // Each announces a 64 MiB message and sends 1 MiB of it as fast as the
    // server takes it, never the end: its later pieces are read straight
    // into the message, so 1 GB wanted at once against a budget of 128 MiB.
    // (All of it is read in the end, as the links holding the budget are
    // cut and others take their room: a gigabyte at about the budget per
    // second, to keep what the allocator holds of freed memory bounded.)
    let part = piece(FrameKind::Part, 0, 0, &[7; 64 << 10]);
    let stream: Vec<u8> = first_part(64 << 20, (64 << 10) - 8).into_iter().chain(part.repeat(15)).collect();
    let links = many_links(&server, "parts", 1000).into_iter().map(|s| (s, &stream[..])).collect();
    flood_the_read_budget(&server, idle, links, 6, |stats| {
        every_link_taken(stats, 1000);
    });
}
