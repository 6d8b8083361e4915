//! A fault-injecting TCP proxy between two processes on loopback.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipchnl::Addr;

/// What the proxy does to the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forwards everything as it comes.
    Pass,
    /// Keeps the connections, forwards nothing (reads nothing).
    Blackhole,
    /// Resets every connection (RST), and each new one.
    Reset,
    /// Forwards each chunk after a delay.
    Delay(Duration),
    /// Forwards in slices of 1 to 7 bytes.
    Slice,
    /// Stops reading what the client sends (the server side never sees
    /// it), while still forwarding what the server sends.
    StallUpstream,
    /// Flips one bit of the next chunk the server sends, then passes.
    FlipDownOnce,
}

/// The most bytes a proxy records (what passed, both ways).
const RECORD_MAX: usize = 8 << 20;

struct Conn {
    down: TcpStream,
    up: TcpStream,
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    pub addr: Addr,
    mode: Arc<Mutex<Mode>>,
    conns: Arc<Mutex<Vec<Conn>>>,
    stop: Arc<AtomicBool>,
    /// Bumped on every change of mode; each pump says which it has seen.
    generation: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<Arc<AtomicU64>>>>,
    recorded: Arc<Mutex<Vec<u8>>>,
}

impl Proxy {
    /// Proxies connections to `upstream` (a TCP address).
    pub fn start(upstream: &Addr) -> Self {
        let Addr::Tcp(upstream) = *upstream else { panic!("the proxy forwards TCP") };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = Addr::Tcp(listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let pumps = Pumps {
            mode: mode.clone(),
            stop: stop.clone(),
            generation: generation.clone(),
            seen: seen.clone(),
            recorded: recorded.clone(),
        };
        let c = conns.clone();
        std::thread::spawn(move || accept_loop(listener, upstream, pumps, c));
        Self { addr, mode, conns, stop, generation, seen, recorded }
    }

    /// What passed through so far, both ways (its first 8 MiB).
    pub fn recorded(&self) -> Vec<u8> {
        self.recorded.lock().unwrap().clone()
    }

    /// Sets the mode, and returns once every pump works by it.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
        let target = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let deadline = std::time::Instant::now() + super::HANG_GUARD;
        while self.seen.lock().unwrap().iter().any(|s| s.load(Ordering::SeqCst) < target) {
            assert!(std::time::Instant::now() < deadline, "the proxy's pumps did not take the new mode");
            std::thread::sleep(Duration::from_millis(1));
        }
        if mode == Mode::Reset {
            for c in self.conns.lock().unwrap().drain(..) {
                reset(&c.down);
                reset(&c.up);
            }
        }
    }

    /// Ends a blackhole: the connections it held are closed (what they
    /// hold is never forwarded), new ones pass.
    pub fn heal(&self) {
        *self.mode.lock().unwrap() = Mode::Pass;
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.down.shutdown(Shutdown::Both);
            let _ = c.up.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.down.shutdown(Shutdown::Both);
            let _ = c.up.shutdown(Shutdown::Both);
        }
    }
}

fn reset(s: &TcpStream) {
    // SO_LINGER 0: the close sends RST instead of FIN.
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
    let _ = s.shutdown(Shutdown::Both);
}

/// What every pump shares.
#[derive(Clone)]
struct Pumps {
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<Arc<AtomicU64>>>>,
    recorded: Arc<Mutex<Vec<u8>>>,
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, pumps: Pumps, conns: Arc<Mutex<Vec<Conn>>>) {
    let (mode, stop) = (pumps.mode.clone(), pumps.stop.clone());
    while !stop.load(Ordering::SeqCst) {
        let Ok((down, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let _ = down.set_nonblocking(false);
        if *mode.lock().unwrap() == Mode::Reset {
            reset(&down);
            continue;
        }
        let Ok(up) = TcpStream::connect(upstream) else { continue };
        let _ = down.set_nodelay(true);
        let _ = up.set_nodelay(true);
        let pairs = [
            (down.try_clone().unwrap(), up.try_clone().unwrap(), true),
            (up.try_clone().unwrap(), down.try_clone().unwrap(), false),
        ];
        for (from, to, towards_server) in pairs {
            let seen = Arc::new(AtomicU64::new(pumps.generation.load(Ordering::SeqCst)));
            pumps.seen.lock().unwrap().push(seen.clone());
            let p = pumps.clone();
            std::thread::spawn(move || pump(from, to, towards_server, &p, &seen));
        }
        conns.lock().unwrap().push(Conn { down, up });
    }
}

/// Moves bytes one way (towards the server if `upstream`), as the mode
/// says, until either side closes.
fn pump(mut from: TcpStream, mut to: TcpStream, upstream: bool, pumps: &Pumps, seen: &AtomicU64) {
    from.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut buf = [0u8; 16 * 1024];
    let mut slice_len = 1;
    while !pumps.stop.load(Ordering::SeqCst) {
        // Read the generation before the mode: what we say we have seen,
        // we work by.
        let generation = pumps.generation.load(Ordering::SeqCst);
        let current = *pumps.mode.lock().unwrap();
        seen.store(generation, Ordering::SeqCst);
        if current == Mode::Blackhole || (current == Mode::StallUpstream && upstream) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue;
            }
            Err(_) => break,
        };
        {
            let mut recorded = pumps.recorded.lock().unwrap();
            let room = RECORD_MAX.saturating_sub(recorded.len()).min(n);
            recorded.extend_from_slice(&buf[..room]);
        }
        let ok = match current {
            Mode::Pass | Mode::Blackhole | Mode::Reset | Mode::StallUpstream => {
                to.write_all(&buf[..n]).is_ok()
            }
            Mode::FlipDownOnce if !upstream => {
                let mut mode = pumps.mode.lock().unwrap();
                if *mode == Mode::FlipDownOnce {
                    buf[n / 2] ^= 0x10;
                    *mode = Mode::Pass;
                }
                drop(mode);
                to.write_all(&buf[..n]).is_ok()
            }
            Mode::FlipDownOnce => to.write_all(&buf[..n]).is_ok(),
            Mode::Delay(d) => {
                std::thread::sleep(d);
                to.write_all(&buf[..n]).is_ok()
            }
            Mode::Slice => {
                let mut ok = true;
                for chunk in buf[..n].chunks(slice_len) {
                    ok &= to.write_all(chunk).is_ok() && to.flush().is_ok();
                    slice_len = slice_len % 7 + 1;
                }
                ok
            }
        };
        if !ok {
            break;
        }
    }
    seen.store(u64::MAX, Ordering::SeqCst); // ended: never holds `set` up
    let _ = to.shutdown(Shutdown::Write);
}
