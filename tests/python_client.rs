//! A foreign client: `tests/python_client.py`, written from `docs/WIRE.md`
//! with nothing but Python's standard library, links to `ipchnl serve`,
//! makes an echo round trip, sends an oversized frame and sees the link
//! close, redials as a new incarnation and sees its old link replaced, and
//! pipelines 10,000 requests (reading nothing for a second) and gets every
//! reply in order. The server must keep serving others afterwards.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The bound on every wait: a hang guard, far above what any step needs.
const HANG_GUARD: Duration = Duration::from_secs(90);

/// What the script prints first on success.
const SUCCESS: &str = "python client: ok";

/// A file under the temp dir, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn with(contents: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("ipchnl-pyclient-{}-{nanos}.secret", std::process::id()));
        std::fs::write(&path, contents).expect("secret file written");
        // A secret file is its owner's alone, or the tool refuses it.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("secret file made private");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A child process, killed and reaped when dropped, whatever happened.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a finished child printed.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to its end (killed past the hang guard), capturing its output.
fn run(mut cmd: Command, what: &str) -> Finished {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let mut child = KillOnDrop(child);
    let collect = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = collect(child.0.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = collect(child.0.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let deadline = Instant::now() + HANG_GUARD;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("waiting works") {
            break status;
        }
        if Instant::now() >= deadline {
            drop(child); // kills it, so that the readers see the end
            panic!(
                "{what} did not finish within the {HANG_GUARD:?} hang guard\nstdout:\n{}\nstderr:\n{}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Finished { status, stdout: out.join().expect("stdout read"), stderr: err.join().expect("stderr read") }
}

/// Starts `ipchnl serve` on a fresh loopback port; its guard and `HOST:PORT`.
fn serve(secret_file: &str) -> (KillOnDrop, String) {
    serve_with(secret_file, &[])
}

/// As [`serve`], with `extra` arguments.
fn serve_with(secret_file: &str, extra: &[&str]) -> (KillOnDrop, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["serve", "--listen", "tcp://127.0.0.1:0", "--secret-file", secret_file])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ipchnl serve starts");
    let mut server = KillOnDrop(child);
    let stdout = server.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(HANG_GUARD).expect("serve prints its address");
    let port = line
        .strip_suffix('\n')
        .and_then(|l| l.strip_prefix("listening on tcp://127.0.0.1:"))
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("unexpected first line of serve: {line:?}"));
    let addr = format!("127.0.0.1:{port}");
    (server, addr)
}

#[test]
fn a_python_client_written_from_wire_md_echoes_and_an_oversized_frame_closes_only_its_link() {
    // With a trailing newline, as `echo secret > file` writes it: not part
    // of the secret, for either side.
    let secret = TempFile::with("a python client knows this\n");
    let (mut server, addr) = serve(secret.path());

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("python_client.py");
    let mut python = Command::new("python3");
    python.arg(&script).args(["--addr", &addr, "--secret-file", secret.path()]);
    // No python3 is a failure, not a skip: the wire protocol is then untested.
    if let Err(e) = Command::new("python3").arg("--version").stdout(Stdio::null()).output() {
        panic!("python3 is required by this test and cannot be run (is it installed and on PATH?): {e}");
    }
    let py = run(python, "python3 tests/python_client.py");
    assert!(
        py.status.success(),
        "the python client failed ({})\nstdout:\n{}\nstderr:\n{}",
        py.status,
        py.stdout,
        py.stderr
    );
    assert!(
        py.stdout.lines().any(|l| l.starts_with(SUCCESS)),
        "no success line from the python client\nstdout:\n{}\nstderr:\n{}",
        py.stdout,
        py.stderr
    );
    println!("{}", py.stdout.trim_end());

    // The oversized frame closed one link; the server still serves.
    assert!(server.0.try_wait().expect("waiting works").is_none(), "ipchnl serve exited");
    let mut echo = Command::new(env!("CARGO_BIN_EXE_ipchnl"));
    echo.args(["echo", "--connect", &format!("tcp://{addr}"), "--secret-file", secret.path()]);
    echo.args(["--count", "100", "--json"]);
    let echo = run(echo, "ipchnl echo");
    assert!(echo.status.success(), "ipchnl echo failed ({})\nstderr:\n{}", echo.status, echo.stderr);
    let summary: serde_json::Value = serde_json::from_str(echo.stdout.trim())
        .unwrap_or_else(|e| panic!("ipchnl echo --json printed {:?}: {e}", echo.stdout));
    assert_eq!(summary["received"], 100, "{summary}");
    assert!(echo.stdout.contains("\"received\":100"), "{}", echo.stdout);
}

#[test]
fn the_python_client_speaks_the_encrypted_link_from_wire_md() {
    let secret = TempFile::with("a python client knows this\n");
    let (_server, addr) = serve_with(secret.path(), &["--encrypt"]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("python_client.py");
    let mut python = Command::new("python3");
    python.arg(&script).args(["--addr", &addr, "--secret-file", secret.path(), "--encrypt"]);
    let py = run(python, "python3 tests/python_client.py --encrypt");
    if py.status.code() == Some(77) {
        // `.ci/install-deps` installs it: CI never takes this branch.
        println!("SKIPPED: the python client has no `cryptography` package: {}", py.stderr.trim_end());
        return;
    }
    assert!(
        py.status.success() && py.stdout.lines().any(|l| l.starts_with(SUCCESS)),
        "the encrypted python client failed ({})\nstdout:\n{}\nstderr:\n{}",
        py.status,
        py.stdout,
        py.stderr
    );
    // A plain client, without the encryption this server requires, is
    // refused before its handshake is answered.
    let mut plain = Command::new("python3");
    plain.arg(&script).args(["--addr", &addr, "--secret-file", secret.path()]);
    let py = run(plain, "python3 tests/python_client.py");
    assert!(!py.status.success(), "a plain client linked to a server that requires encryption");
    assert!(py.stderr.contains("HELLO_ACK was expected"), "{}", py.stderr);
}
