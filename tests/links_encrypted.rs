//! Encrypted links (WIRE.md §2, "The encrypted link"), through a relay on
//! loopback that records every byte it forwards, or changes one.

mod support;

use ipchnl::{Encryption, Manager, ManagerError};
use support::proxy::{Mode, Proxy};
use support::*;

const SECRET: &str = "correct horse battery staple";

/// A server with the secret (requiring encryption with `encrypt`), a
/// relay before it, and a manager with the secret linked through it.
fn through_relay(tag: &str, encrypt: bool) -> (Serve, Proxy, Manager) {
    let file = secret_file(SECRET);
    let mut args = vec!["--secret-file", file.path()];
    if encrypt {
        args.push("--encrypt");
    }
    let serve = Serve::start("tcp://127.0.0.1:0", &args);
    let relay = Proxy::start(&serve.addr);
    let m = Manager::new(config(tag).secret(secret(SECRET))).unwrap();
    m.connect(&relay.addr).unwrap();
    (serve, relay, m)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_relay_finds_no_byte_of_a_message_on_an_encrypted_link() {
    // The same exchange on a plain link shows the relay reads JSON.
    let (_serve, relay, m) = through_relay("plain", false);
    echo_completes(&m, 20);
    assert!(contains(&relay.recorded(), b"\"counter\""), "a plain link's JSON is on the wire");
    drop(m);

    // The server requires encryption; the client only has the secret.
    let (_serve, relay, m) = through_relay("encrypted", true);
    echo_completes(&m, 20);
    let record = relay.recorded();
    assert!(record.len() > 20 * 50, "the echo went through the relay ({} bytes)", record.len());
    for word in [&b"counter"[..], b"req_timestamp", b"server", b"echo_req"] {
        assert!(!contains(&record, word), "{:?} readable on the wire", String::from_utf8_lossy(word));
    }
}

#[test]
fn a_record_changed_by_a_relay_closes_the_link_naming_why_and_it_comes_back() {
    let (_serve, relay, m) = through_relay("flip", true);
    echo_completes(&m, 10);
    relay.set(Mode::FlipDownOnce);
    // The next bytes from the server carry the flipped bit: an answer, or
    // a heartbeat.
    let _ = m.find_by_name("server").map(|s| s.send(ipchnl::echo::EchoReq::new(1, 0)));
    eventually("the link closed for a bad record", || {
        m.stats().closes.keys().any(|k| k.contains("bad_record")).then_some(())
    });
    // Redialed, it works again.
    eventually("the link back up", || m.peers().iter().any(|p| p.up).then_some(()));
    echo_completes(&m, 10);
}

#[test]
fn requiring_encryption_without_a_secret_is_refused_at_the_start() {
    let err = Manager::new(config("no-secret").encryption(Encryption::Always)).err();
    assert!(matches!(err, Some(ManagerError::EncryptionNeedsSecret)), "{err:?}");
}
