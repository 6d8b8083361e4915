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
    let wrong = Manager::new(config("wrong").secret(secret("not the secret, but as long"))).unwrap();
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
    a.add("server", ipchnl::echo::Server::new()).unwrap();
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

    // The tool has a secret unless told otherwise (this user's, or a
    // file): without one it must be asked for explicitly.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["serve", "--listen", "tcp://0.0.0.0:0", "--insecure", "--secret-file", "/dev/null"])
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
    let addr = path.addr();
    // A stale socket file: bound once, its listener gone.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let a = manager("unix-a");
    a.add("server", ipchnl::echo::Server::new()).unwrap();
    a.listen(&addr).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A live listener is not replaced.
    let b = manager("unix-b");
    assert!(matches!(b.listen(&addr), Err(ManagerError::InUse(_))));
    // Nor is a file that is not a socket.
    let plain = socket_path("plain");
    std::fs::write(&plain, "keep me").unwrap();
    assert!(matches!(b.listen(&plain.addr()), Err(ManagerError::InUse(_))));
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
    let bound = strict.listen(&path.addr()).unwrap();
    let refused = manager("refused");
    assert!(refused.connect(&bound).is_err());
    // The default allows this very user.
    let open = manager("open");
    let path = socket_path("uid-ok");
    let bound = open.listen(&path.addr()).unwrap();
    open.add("server", ipchnl::echo::Server::new()).unwrap();
    let me = manager("me");
    me.connect(&bound).unwrap();
    echo_completes(&me, 10);
}

#[test]
fn a_shared_memory_peer_of_another_user_is_refused() {
    let own = rustix::process::geteuid().as_raw();
    let strict =
        Manager::new(config("shm-strict").unix_peers(UnixPeers::Users(vec![own.wrapping_add(1)]))).unwrap();
    let name = shm_name("uid");
    let bound = strict.listen(&name.url().parse().unwrap()).unwrap();
    let refused = manager("shm-refused");
    assert!(refused.connect(&bound).is_err());
    assert_eq!(strict.stats().closes.get("unix_peer_refused"), Some(&1));
}

#[test]
fn shared_memory_links_make_only_private_objects() {
    let a = manager("shm-a");
    a.add("server", ipchnl::echo::Server::new()).unwrap();
    let name = shm_name("private");
    let at = a.listen(&name.url().parse().unwrap()).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&name.socket()), 0o600, "the rendezvous socket");
    let b = manager("shm-b");
    b.connect(&at).unwrap();
    echo_completes(&b, 10);
    let uid = rustix::process::geteuid().as_raw();
    let ours: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("ipchnl{uid}_")))
        .collect();
    assert!(!ours.is_empty(), "the link's shared memory is in /dev/shm");
    for e in &ours {
        assert_eq!(mode(&e.path()), 0o600, "{:?}", e.file_name());
        assert!(!e.file_name().to_string_lossy().ends_with(".global_mgmt"), "no world-writable counter");
    }
    let root = std::env::temp_dir().join(format!("ipchnl-iox-{uid}"));
    assert_eq!(mode(&root), 0o700, "iceoryx2's directory");
}

/// `ipchnl serve` with no secret option and this `XDG_CONFIG_HOME`: this
/// user's secret there (created on first use).
fn serve_with_user_secret(config_home: &std::path::Path) -> (KillOnDrop, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["serve", "--listen", "tcp://127.0.0.1:0"])
        .env("XDG_CONFIG_HOME", config_home)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(HANG_GUARD).expect("serve prints its address");
    let addr = line.trim().strip_prefix("listening on ").expect("the first line").to_owned();
    (KillOnDrop(child), addr)
}

/// A child killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ipchnl echo --count 20` to `addr` with this `XDG_CONFIG_HOME`, run
/// by `as_user` (through `setpriv`) if given; its exit code and stderr.
fn echo_with_user_secret(addr: &str, config_home: &std::path::Path, as_user: Option<u32>) -> (i32, String) {
    let exe = env!("CARGO_BIN_EXE_ipchnl");
    let mut cmd = match as_user {
        Some(uid) => {
            let mut c = std::process::Command::new("setpriv");
            c.args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into(), exe.into()]);
            c
        }
        None => std::process::Command::new(exe),
    };
    let child = cmd
        .args(["echo", "--connect", addr, "--count", "20"])
        .env("XDG_CONFIG_HOME", config_home)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_guarded(child, HANG_GUARD);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Secure by default, as Erlang's cookie is: with no secret option,
/// `serve` and `echo` use this user's secret (a 0600 file created on first
/// use), so the same user links with no setup, and a process without that
/// secret is refused, over loopback TCP too. As root (CI), a real other
/// user (`nobody`, through `setpriv`) is refused; the same user connects.
#[test]
fn the_per_user_secret_links_this_user_and_refuses_others() {
    use std::os::unix::fs::MetadataExt;
    let mine = socket_path("xdg-mine");
    let theirs = socket_path("xdg-theirs");
    let nobodys = socket_path("xdg-nobody");
    let _cleanup = RemoveDirs(vec![mine.to_path_buf(), theirs.to_path_buf(), nobodys.to_path_buf()]);
    let (_serve, addr) = serve_with_user_secret(&mine);
    let file = mine.join("ipchnl").join("secret");
    let meta = std::fs::metadata(&file).expect("serve created this user's secret");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(file.parent().unwrap()).unwrap().mode() & 0o777, 0o700);

    // The same user (the same secret file): links, 20 round trips.
    let (code, err) = echo_with_user_secret(&addr, &mine, None);
    assert_eq!(code, 0, "{err}");

    // Without it (another user's secret, or none): refused.
    let (code, err) = echo_with_user_secret(&addr, &theirs, None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("authentication failed"), "{err}");
    let none = manager("no-secret");
    assert!(matches!(none.connect(&addr.parse().unwrap()), Err(ManagerError::Connect { .. })));

    // A real other user, where the test may switch users.
    if rustix::process::geteuid().is_root() {
        const NOBODY: u32 = 65534;
        std::fs::create_dir_all(&nobodys).unwrap();
        std::os::unix::fs::chown(&nobodys, Some(NOBODY), Some(NOBODY)).unwrap();
        let (code, err) = echo_with_user_secret(&addr, &nobodys, Some(NOBODY));
        assert_eq!(code, 1, "nobody is refused: {err}");
        assert!(err.contains("authentication failed"), "{err}");
        let (code, err) = echo_with_user_secret(&addr, &mine, None);
        assert_eq!(code, 0, "and this user still links: {err}");
    } else {
        eprintln!("not root: the other-uid half of this test runs in CI (as root)");
    }
}

/// A dialer checks who listens before it says anything: a Unix socket
/// whose listener runs as a user its policy does not allow gets no
/// HELLO (no node id, no link id), and the connect fails saying why.
#[test]
fn a_dialer_checks_the_listeners_user_before_it_sends_anything() {
    let own = rustix::process::geteuid().as_raw();
    let path = socket_path("listener-uid");
    let listener = std::os::unix::net::UnixListener::bind(&*path).unwrap();
    let strict =
        Manager::new(config("dial-strict").unix_peers(UnixPeers::Users(vec![own.wrapping_add(1)]))).unwrap();
    let err = strict.connect(&path.addr()).unwrap_err();
    assert!(err.to_string().contains("not trusted"), "{err}");
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(HANG_GUARD)).unwrap();
    drop(strict);
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(got.is_empty(), "nothing was sent to an untrusted listener: {got:?}");
    std::fs::remove_file(&*path).unwrap();
}

/// `serve` on `shm:` refuses at once, saying why, when this user's
/// shared-memory directory is not its own (another user could have made
/// it, and would then get every link's objects); it never says
/// "listening" only to drop every link.
#[test]
fn serve_on_shared_memory_refuses_a_directory_it_does_not_own_alone() {
    let tmp = socket_path("shm-tmpdir").with_extension("d");
    let _cleanup = RemoveDirs(vec![tmp.clone()]);
    let uid = rustix::process::geteuid().as_raw();
    let dir = tmp.join(format!("ipchnl-iox-{uid}"));
    std::fs::create_dir_all(&dir).unwrap();
    // Open to all: as another user's directory would be to us.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["serve", "--listen", "shm:owned", "--insecure"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {err}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "never listening");
    assert!(err.contains("not a directory of this user's alone"), "{err}");
}
