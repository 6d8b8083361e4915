//! Authentication, listening rules and Unix socket policy.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use ipchnl::{Addr, Manager, ManagerError, UnixPeers};
use support::*;

const SECRET: &str = "correct horse battery staple";

#[test]
fn a_wrong_secret_is_rejected_on_both_sides_and_nothing_is_delivered() {
    let file = secret_file(SECRET);
    let serve = Serve::start("tcp://127.0.0.1:0", &["--secret-file", file.path()]);

    // Client side: the server's MAC does not check out with the wrong secret.
    let wrong = Manager::new(config("wrong").secret(secret("not the secret"))).unwrap();
    let err = wrong.connect(&serve.addr).unwrap_err();
    assert!(err.to_string().contains("authentication failed"), "{err}");
    // No secret at all: the server requires one and closes.
    let none = manager("none");
    assert!(matches!(none.connect(&serve.addr), Err(ManagerError::Connect { .. })));
    for m in [&wrong, &none] {
        assert!(m.find_by_name("server").is_none(), "nothing of the server is known");
        assert!(m.peers().iter().all(|p| !p.up));
    }

    // Server side: a client that proves nothing (a bogus MAC, or the
    // server's own MAC reflected back) gets the HELLO_ACK, then a closed
    // connection, and not a single frame.
    for reflect in [false, true] {
        let mut s = raw::connect(&serve.addr);
        let mut hello = Vec::from(*b"IPCH\x01\x01\x01\x00\x00\x00\x00\x01");
        hello.extend_from_slice(&[0xaa; 32]);
        hello.extend_from_slice(ipchnl::NodeId::of_name("mallory").as_bytes());
        hello.extend_from_slice(&[0x33; 16]);
        s.write_all(&hello).unwrap();
        let mut ack = [0u8; 108];
        s.read_exact(&mut ack).unwrap();
        let mut auth = Vec::from(*b"IPCH\x03\x00\x00\x00");
        auth.extend_from_slice(if reflect { &ack[76..108] } else { &[0u8; 32] });
        s.write_all(&auth).unwrap();
        assert!(raw::read_to_close(&mut s).is_empty(), "reflect={reflect}: nothing after the handshake");
    }

    // The right secret works.
    let right = Manager::new(config("right").secret(secret(SECRET))).unwrap();
    let peer = right.connect(&serve.addr).unwrap();
    assert!(peer.up);
    echo_completes(&right, 100);
}

#[test]
fn the_secret_never_reaches_a_log() {
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || Capture(writer.clone()))
        .finish();
    // Global, so that the executors' threads log here too; no other test
    // of this binary sets one.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let a = Manager::new(config("log-a").secret(secret(SECRET))).unwrap();
    let b = Manager::new(config("log-b").secret(secret(SECRET))).unwrap();
    a.add(ipchnl::echo::Server::new("server")).unwrap();
    let bound = a.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    b.connect(&bound).unwrap();
    echo_completes(&b, 10);
    assert!(format!("{:?}", a.config()).contains("<redacted>"));
    drop((a, b));

    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("link up") && logs.contains("authenticated=true"), "the handshake was logged");
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!logs.contains(SECRET) && !logs.contains(&hex) && !logs.contains("horse"));
}

/// A log writer into a shared buffer.
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn listening_beyond_loopback_needs_a_secret_or_consent() {
    let any: Addr = "tcp://0.0.0.0:0".parse().unwrap();
    let plain = manager("insecure");
    assert!(matches!(plain.listen(&any), Err(ManagerError::Insecure(_))));
    let consenting = Manager::new(config("consent").allow_insecure(true)).unwrap();
    assert!(consenting.listen(&any).is_ok());
    let secured = Manager::new(config("secured").secret(secret(SECRET))).unwrap();
    assert!(secured.listen(&any).is_ok());
    assert!(plain.listen(&"tcp://127.0.0.1:0".parse().unwrap()).is_ok());

    // The tool says the same, and exits 2.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["serve", "--listen", "tcp://0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--secret-file") && err.contains("--insecure"), "{err}");
}

#[test]
fn unix_socket_files_are_private_and_replaced_only_when_stale() {
    let path = socket_path("perm");
    let addr = Addr::Unix(path.clone());
    // A stale socket file: bound once, its listener gone.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let a = manager("unix-a");
    a.add(ipchnl::echo::Server::new("server")).unwrap();
    a.listen(&addr).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A live listener is not replaced.
    let b = manager("unix-b");
    assert!(matches!(b.listen(&addr), Err(ManagerError::InUse(_))));
    // Nor is a file that is not a socket.
    let plain = socket_path("plain");
    std::fs::write(&plain, "keep me").unwrap();
    assert!(matches!(b.listen(&Addr::Unix(plain.clone())), Err(ManagerError::InUse(_))));
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me");
    std::fs::remove_file(&plain).unwrap();
    b.connect(&addr).unwrap();
    echo_completes(&b, 10);
    drop(a);
    assert!(!path.exists(), "the socket file goes with its manager");
}

#[test]
fn a_unix_peer_of_another_user_is_refused() {
    let own = rustix::process::geteuid().as_raw();
    // Pretend only another user may connect: this process is then refused.
    let strict =
        Manager::new(config("strict").unix_peers(UnixPeers::Users(vec![own.wrapping_add(1)]))).unwrap();
    let path = socket_path("uid");
    let bound = strict.listen(&Addr::Unix(path)).unwrap();
    let refused = manager("refused");
    assert!(refused.connect(&bound).is_err());
    // The default allows this very user.
    let open = manager("open");
    let path = socket_path("uid-ok");
    let bound = open.listen(&Addr::Unix(path)).unwrap();
    open.add(ipchnl::echo::Server::new("server")).unwrap();
    let me = manager("me");
    me.connect(&bound).unwrap();
    echo_completes(&me, 10);
}
