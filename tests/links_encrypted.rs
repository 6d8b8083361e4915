//! Encrypted links (WIRE.md §2, "The encrypted link"), through a relay on
//! loopback that records every byte it forwards, or changes one.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use ipchnl::{Addr, Encryption, Manager, ManagerError};
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
    let server = eventually("the link back up, the server known again", || {
        m.peers().iter().any(|p| p.up).then(|| m.find_by_name("server")).flatten()
    });
    echo_against(&m, server, 10);
}

#[test]
fn requiring_encryption_without_a_secret_is_refused_at_the_start() {
    let err = Manager::new(config("no-secret").encryption(Encryption::Always)).err();
    assert!(matches!(err, Some(ManagerError::EncryptionNeedsSecret)), "{err:?}");
}

/// What a record relay does to the next record the server sends, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Drop,
    Duplicate,
    Reorder,
}

/// A relay that knows where the server's records are (after its
/// HELLO_ACK, 108 bytes, and its Noise message, 50) and can drop,
/// duplicate or reorder one.
struct RecordRelay {
    addr: Addr,
    fault: Arc<Mutex<Option<Fault>>>,
}

impl RecordRelay {
    fn start(upstream: &Addr) -> Self {
        let Addr::Tcp(upstream) = *upstream else { panic!("TCP") };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = Addr::Tcp(listener.local_addr().unwrap());
        let fault = Arc::new(Mutex::new(None));
        let f = fault.clone();
        std::thread::spawn(move || {
            for down in listener.incoming() {
                let Ok(down) = down else { return };
                let f = f.clone();
                std::thread::spawn(move || relay(down, upstream, &f));
            }
        });
        Self { addr, fault }
    }

    fn arm(&self, fault: Fault) {
        *self.fault.lock().unwrap() = Some(fault);
    }
}

fn relay(down: TcpStream, upstream: SocketAddr, fault: &Mutex<Option<Fault>>) {
    let Ok(up) = TcpStream::connect(upstream) else { return };
    let (mut from_client, mut to_server) = (down.try_clone().unwrap(), up.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(std::net::Shutdown::Write);
    });
    let (mut from_server, mut to_client) = (up, down);
    // The HELLO_ACK, then (once the client has answered) the Noise message.
    for len in [108, 50] {
        let mut head = vec![0u8; len];
        if from_server.read_exact(&mut head).is_err() || to_client.write_all(&head).is_err() {
            return;
        }
    }
    let read_record = |s: &mut TcpStream| -> Option<Vec<u8>> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).ok()?;
        let mut record = len.to_vec();
        record.resize(2 + usize::from(u16::from_be_bytes(len)), 0);
        s.read_exact(&mut record[2..]).ok()?;
        Some(record)
    };
    while let Some(record) = read_record(&mut from_server) {
        let out = match fault.lock().unwrap().take() {
            None => record,
            Some(Fault::Drop) => continue,
            Some(Fault::Duplicate) => [record.clone(), record].concat(),
            Some(Fault::Reorder) => {
                let Some(next) = read_record(&mut from_server) else { return };
                [next, record].concat()
            }
        };
        if to_client.write_all(&out).is_err() {
            return;
        }
    }
    let _ = to_client.shutdown(std::net::Shutdown::Write);
}

#[test]
fn a_record_dropped_duplicated_or_reordered_by_a_relay_closes_the_link() {
    let file = secret_file(SECRET);
    let serve = Serve::start("tcp://127.0.0.1:0", &["--secret-file", file.path(), "--encrypt"]);
    let relay = RecordRelay::start(&serve.addr);
    let m = Manager::new(config("records").secret(secret(SECRET))).unwrap();
    m.connect(&relay.addr).unwrap();
    echo_completes(&m, 10);
    for (n, fault) in [Fault::Drop, Fault::Duplicate, Fault::Reorder].into_iter().enumerate() {
        relay.arm(fault);
        // Replies, or heartbeats, carry the records it changes.
        let server = m.find_by_name("server").expect("the server is known");
        for i in 0..4 {
            let _ = server.send(ipchnl::echo::EchoReq::new(i, 0));
        }
        eventually(&format!("{fault:?}: a link closed for a bad record"), || {
            let closed = m
                .stats()
                .closes
                .iter()
                .filter(|(k, _)| k.contains("bad_record"))
                .map(|(_, n)| *n)
                .sum::<u64>();
            (closed > n as u64).then_some(())
        });
        let server = eventually("the link back up, the server known again", || {
            m.peers().iter().any(|p| p.up).then(|| m.find_by_name("server")).flatten()
        });
        echo_against(&m, server, 10);
    }
}

#[test]
fn nodes_that_list_each_others_keys_link_and_an_unlisted_key_is_refused() {
    use ipchnl::NodeKeys;
    let (a, b, stranger) =
        (NodeKeys::generate().unwrap(), NodeKeys::generate().unwrap(), NodeKeys::generate().unwrap());
    let node = |tag: &str, keys: &NodeKeys, allowed: &[&NodeKeys]| {
        let list: String = allowed.iter().map(|k| k.public_hex() + "\n").collect();
        Manager::new(config(tag).secret(secret(SECRET)).node_keys(keys.clone().allow(&list).unwrap()))
            .unwrap()
    };
    let server = node("keys-server", &b, &[&a]);
    server.add("server", ipchnl::echo::Server::new()).unwrap();
    let at = server.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();

    let listed = node("keys-listed", &a, &[&b]);
    listed.connect(&at).unwrap();
    echo_completes(&listed, 20);

    // The secret, and a key of its own the server does not list.
    let unlisted = node("keys-unlisted", &stranger, &[&b]);
    let err = unlisted.connect(&at).unwrap_err();
    assert!(matches!(err, ManagerError::Connect { .. }), "{err}");
    assert!(unlisted.find_by_name("server").is_none(), "learns nothing of the server's actors");
    eventually("the server's refusal counted", || {
        server.stats().closes.keys().any(|k| k.contains("unlisted_key")).then_some(())
    });
    // No node keys at all: refused too, saying why.
    let keyless = Manager::new(config("keys-none").secret(secret(SECRET))).unwrap();
    let err = keyless.connect(&at).unwrap_err();
    assert!(err.to_string().contains("node keys") || matches!(err, ManagerError::Connect { .. }), "{err}");
}
