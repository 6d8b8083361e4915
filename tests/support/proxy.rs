//! A fault-injecting TCP proxy between two processes on loopback.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
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
}

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
        let (m, c, s) = (mode.clone(), conns.clone(), stop.clone());
        std::thread::spawn(move || accept_loop(listener, upstream, m, c, s));
        Self { addr, mode, conns, stop }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
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

fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    conns: Arc<Mutex<Vec<Conn>>>,
    stop: Arc<AtomicBool>,
) {
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
        for (from, to) in [
            (down.try_clone().unwrap(), up.try_clone().unwrap()),
            (up.try_clone().unwrap(), down.try_clone().unwrap()),
        ] {
            let (m, s) = (mode.clone(), stop.clone());
            std::thread::spawn(move || pump(from, to, m, s));
        }
        conns.lock().unwrap().push(Conn { down, up });
    }
}

/// Moves bytes one way, as the mode says, until either side closes.
fn pump(mut from: TcpStream, mut to: TcpStream, mode: Arc<Mutex<Mode>>, stop: Arc<AtomicBool>) {
    from.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = [0u8; 16 * 1024];
    let mut slice_len = 1;
    while !stop.load(Ordering::SeqCst) {
        let current = *mode.lock().unwrap();
        if current == Mode::Blackhole {
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
        let ok = match current {
            Mode::Pass | Mode::Blackhole | Mode::Reset => to.write_all(&buf[..n]).is_ok(),
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
    let _ = to.shutdown(Shutdown::Write);
}
