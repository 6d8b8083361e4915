//! In-memory client/server pairs, honest and not.

use super::*;

const SECRET: &str = "s3cret";

fn secret(s: &str) -> Secret {
    Secret::new(s).unwrap()
}

fn config(name: &str, secret: Option<&str>) -> HandshakeConfig {
    let config = HandshakeConfig::new(NodeId::of_name(name), Incarnation([name.len() as u8; 16]));
    match secret {
        Some(s) => config.with_secret(self::secret(s)),
        None => config,
    }
}

fn client(secret: Option<&str>) -> Handshake {
    Handshake::new(Role::Client, config("alpha", secret), [0xaa; 32])
}

fn server(secret: Option<&str>) -> Handshake {
    Handshake::new(Role::Server, config("beta", secret), [0xbb; 32])
}

/// Sends `bytes` to `to` in pieces of `chunk` bytes, each of which must be
/// taken whole.
fn feed(to: &mut Handshake, bytes: &[u8], chunk: usize) -> Result<(), (Role, HandshakeError)> {
    for piece in bytes.chunks(chunk) {
        let used = to.read(piece).map_err(|e| (to.role(), e))?;
        assert_eq!(used, piece.len(), "{:?} left handshake bytes", to.role());
    }
    Ok(())
}

/// Shuttles bytes both ways in pieces of `chunk` until both are done; the
/// error of the side that failed otherwise.
fn drive(client: &mut Handshake, server: &mut Handshake, chunk: usize) -> Result<(), (Role, HandshakeError)> {
    for _ in 0..4 {
        feed(server, &client.take_output(), chunk)?;
        feed(client, &server.take_output(), chunk)?;
        if client.is_done() && server.is_done() {
            return Ok(());
        }
    }
    panic!("the handshake stalled");
}

/// A client and a server that have finished, or the error that stopped them.
fn run(
    client_secret: Option<&str>,
    server_secret: Option<&str>,
) -> Result<(Handshake, Handshake), (Role, HandshakeError)> {
    let (mut c, mut s) = (client(client_secret), server(server_secret));
    drive(&mut c, &mut s, usize::MAX).map(|()| (c, s))
}

fn assert_peers(c: &Handshake, s: &Handshake, authenticated: bool) {
    let expected_server = PeerHello {
        node_id: NodeId::of_name("beta"),
        incarnation: Incarnation([4; 16]),
        version: 1,
        capabilities: DEAD | if authenticated { AUTH | ENCRYPT } else { 0 },
        authenticated,
        encrypted: false,
        // Both ends read the dial number from the client's nonce.
        dial: 0xaaaa_aaaa_aaaa_aaaa,
    };
    let expected_client = PeerHello {
        node_id: NodeId::of_name("alpha"),
        incarnation: Incarnation([5; 16]),
        ..expected_server.clone()
    };
    assert_eq!(c.peer(), Some(&expected_server));
    assert_eq!(s.peer(), Some(&expected_client));
    assert_eq!((c.role(), s.role()), (Role::Client, Role::Server));
}

#[test]
fn succeeds_without_secret() {
    let (c, s) = run(None, None).unwrap();
    assert_peers(&c, &s, false);
}

#[test]
fn succeeds_with_the_same_secret() {
    let (c, s) = run(Some(SECRET), Some(SECRET)).unwrap();
    assert_peers(&c, &s, true);
}

#[test]
fn message_sizes_follow_the_spec() {
    for (secret, ack_len) in [(None, 76), (Some(SECRET), 108)] {
        let (mut c, mut s) = (client(secret), server(secret));
        let hello = c.take_output();
        assert_eq!(hello.len(), 76);
        assert_eq!(&hello[..8], &[b'I', b'P', b'C', b'H', 1, 1, 1, 0]);
        assert_eq!(s.read(&hello), Ok(76));
        let ack = s.take_output();
        assert_eq!(ack.len(), ack_len);
        assert_eq!(&ack[..8], &[b'I', b'P', b'C', b'H', 2, 1, 0, 0]);
        assert_eq!(c.read(&ack), Ok(ack_len));
        let auth = c.take_output();
        assert_eq!(auth.len(), if secret.is_some() { 40 } else { 0 });
    }
}

#[test]
fn nothing_is_known_or_sent_before_its_time() {
    let (mut c, mut s) = (client(Some(SECRET)), server(Some(SECRET)));
    assert!(s.take_output().is_empty(), "the server waits for HELLO");
    assert!(c.peer().is_none() && !c.is_done());
    feed(&mut s, &c.take_output(), usize::MAX).unwrap();
    // The server has read a HELLO but not yet checked the client MAC.
    assert!(!s.is_done());
    assert!(s.peer().is_none());
}

#[test]
fn every_split_works() {
    for chunk in [1, 2, 3, 5, 8, 39, 40, 41, 75, 76, 77, 107, 108, 109] {
        for secret in [None, Some(SECRET)] {
            let (mut c, mut s) = (client(secret), server(secret));
            drive(&mut c, &mut s, chunk).unwrap_or_else(|e| panic!("chunk {chunk}: {e:?}"));
            assert_peers(&c, &s, secret.is_some());
        }
    }
}

#[test]
fn one_byte_at_a_time_needs_more_until_the_last() {
    let (mut c, mut s) = (client(Some(SECRET)), server(Some(SECRET)));
    feed(&mut s, &c.take_output(), usize::MAX).unwrap();
    let ack = s.take_output();
    for (i, byte) in ack.iter().enumerate() {
        assert!(c.take_output().is_empty(), "AUTH before the whole HELLO_ACK, at byte {i}");
        assert_eq!(c.read(std::slice::from_ref(byte)), Ok(1));
        assert_eq!(c.read(&[]), Ok(0));
    }
    assert!(c.is_done());
    assert_eq!(c.take_output().len(), 40);
}

#[test]
fn wrong_secret_fails_at_the_client() {
    let (mut c, mut s) = (client(Some("wrong")), server(Some(SECRET)));
    assert_eq!(drive(&mut c, &mut s, usize::MAX).unwrap_err(), (Role::Client, HandshakeError::BadMac));
    assert!(c.take_output().is_empty(), "no AUTH after a bad server MAC");
    assert!(!s.is_done());
}

/// A client that ignores the server MAC and sends an AUTH of `mac(transcript)`.
fn forge_auth(mac: impl Fn(&[u8], &[u8]) -> Vec<u8>) -> Result<Handshake, HandshakeError> {
    let mut s = server(Some(SECRET));
    let hello = client(Some("whatever")).take_output();
    s.read(&hello)?;
    let ack = s.take_output();
    assert_eq!(ack.len(), 108);
    let head = [b'I', b'P', b'C', b'H', 3, 0, 0, 0];
    let transcript = [&hello[..], &ack[..], &head[..]].concat();
    let auth = [&head[..], &mac(&transcript, &ack[76..])].concat();
    assert_eq!(s.read(&auth)?, 40);
    Ok(s)
}

fn hmac(key: &str, label: &[u8], transcript: &[u8]) -> Vec<u8> {
    secret(key).mac(label, &[transcript]).unwrap().finalize().into_bytes().to_vec()
}

#[test]
fn honest_forged_auth_is_accepted() {
    // The control for the forgeries below: the right secret, the right label.
    let s = forge_auth(|t, _| hmac(SECRET, CLIENT_LABEL, t)).unwrap();
    assert!(s.is_done() && s.peer().unwrap().authenticated);
}

#[test]
fn auth_with_a_wrong_secret_is_rejected() {
    let err = forge_auth(|t, _| hmac("wrong", CLIENT_LABEL, t)).err();
    assert_eq!(err, Some(HandshakeError::BadMac));
}

#[test]
fn reflected_server_mac_is_rejected() {
    let err = forge_auth(|_, server_mac| server_mac.to_vec()).err();
    assert_eq!(err, Some(HandshakeError::BadMac));
}

#[test]
fn the_role_label_matters() {
    // The server's own computation over the client's transcript, with the
    // right secret: only the label is wrong.
    let err = forge_auth(|t, _| hmac(SECRET, SERVER_LABEL, t)).err();
    assert_eq!(err, Some(HandshakeError::BadMac));

    // The same the other way: a server MAC made with the client label.
    let mut c = client(Some(SECRET));
    let mut s = server(Some(SECRET));
    let hello = c.take_output();
    s.read(&hello).unwrap();
    let mut ack = s.take_output();
    let swapped = hmac(SECRET, CLIENT_LABEL, &[&hello[..], &ack[..76]].concat());
    ack[76..].copy_from_slice(&swapped);
    assert_eq!(c.read(&ack), Err(HandshakeError::BadMac));
}

#[test]
fn bad_magic_fails_at_once() {
    let mut s = server(None);
    assert_eq!(s.read(b"G"), Err(HandshakeError::BadMagic));
    let mut c = client(None);
    assert_eq!(c.read(b"GET / HTTP/1.1\r\n"), Err(HandshakeError::BadMagic));

    // Late in the magic too.
    let mut s = server(None);
    assert_eq!(s.read(b"IPC"), Ok(3));
    assert_eq!(s.read(b"X"), Err(HandshakeError::BadMagic));
}

#[test]
fn wrong_message_type_fails() {
    let mut s = server(None);
    let mut hello = client(None).take_output();
    hello[4] = TYPE_HELLO_ACK;
    assert_eq!(s.read(&hello[..5]), Err(HandshakeError::UnexpectedMessage { expected: 1, got: 2 }));

    let mut c = client(None);
    let mut s = server(None);
    s.read(&c.take_output()).unwrap();
    let mut ack = s.take_output();
    ack[4] = TYPE_AUTH;
    assert_eq!(c.read(&ack), Err(HandshakeError::UnexpectedMessage { expected: 2, got: 3 }));
}

#[test]
fn no_common_version_fails_at_the_server() {
    let c_config = HandshakeConfig { version_min: 2, version_max: 3, ..config("alpha", None) };
    let mut c = Handshake::new(Role::Client, c_config, [1; 32]);
    let mut s = server(None);
    assert_eq!(
        drive(&mut c, &mut s, usize::MAX),
        Err((Role::Server, HandshakeError::NoCommonVersion { ours: (1, 1), theirs: (2, 3) }))
    );
    assert!(s.take_output().is_empty(), "the server closes without answering");
}

#[test]
fn the_server_picks_the_highest_common_version() {
    let c_config = HandshakeConfig { version_min: 1, version_max: 3, ..config("alpha", None) };
    let s_config = HandshakeConfig { version_min: 2, version_max: 5, ..config("beta", None) };
    let mut c = Handshake::new(Role::Client, c_config, [1; 32]);
    let mut s = Handshake::new(Role::Server, s_config, [2; 32]);
    drive(&mut c, &mut s, usize::MAX).unwrap();
    assert_eq!((c.peer().unwrap().version, s.peer().unwrap().version), (3, 3));
}

#[test]
fn a_chosen_version_outside_the_clients_range_fails() {
    let mut c = client(None);
    let mut s = server(None);
    s.read(&c.take_output()).unwrap();
    let mut ack = s.take_output();
    ack[5] = 2;
    assert_eq!(c.read(&ack), Err(HandshakeError::NoCommonVersion { ours: (1, 1), theirs: (2, 2) }));
}

#[test]
fn auth_mismatch_fails_both_ways() {
    // The client has a secret, the server none.
    assert_eq!(run(Some(SECRET), None).err(), Some((Role::Server, HandshakeError::NoSecret)));
    // The server has a secret, the client none.
    assert_eq!(run(None, Some(SECRET)).err(), Some((Role::Server, HandshakeError::AuthRequired)));

    // The client's own checks, against a HELLO_ACK with or without AUTH.
    let ack_from = |server_secret: Option<&str>| {
        let mut s = server(server_secret);
        s.read(&client(server_secret).take_output()).unwrap();
        s.take_output()
    };
    assert_eq!(client(Some(SECRET)).read(&ack_from(None)), Err(HandshakeError::AuthRequired));
    assert_eq!(client(None).read(&ack_from(Some(SECRET))), Err(HandshakeError::NoSecret));
}

#[test]
fn self_connect_fails() {
    let mut c = Handshake::new(Role::Client, config("alpha", None), [1; 32]);
    let mut s = Handshake::new(Role::Server, config("alpha", None), [2; 32]);
    assert_eq!(drive(&mut c, &mut s, usize::MAX), Err((Role::Server, HandshakeError::SelfConnect)));

    // And at the client, should a server not check.
    let mut c = client(None);
    let mut s = server(None);
    s.read(&c.take_output()).unwrap();
    let mut ack = s.take_output();
    ack[44..60].copy_from_slice(NodeId::of_name("alpha").as_bytes());
    assert_eq!(c.read(&ack), Err(HandshakeError::SelfConnect));
}

#[test]
fn reserved_bytes_and_unknown_capabilities_are_ignored() {
    let mut c = client(Some(SECRET));
    let mut s = server(Some(SECRET));
    let mut hello = c.take_output();
    hello[7] = 0xff;
    hello[8..12].copy_from_slice(&(0xffff_ffe0 | AUTH).to_be_bytes());
    // The client's transcript holds the HELLO as it sent it: tamper with
    // it too, as if the client had set those bits.
    c.transcript.copy_from_slice(&hello);
    assert_eq!(s.read(&hello), Ok(76));
    feed(&mut c, &s.take_output(), usize::MAX).unwrap();
    feed(&mut s, &c.take_output(), usize::MAX).unwrap();
    assert!(c.is_done() && s.is_done());
    assert_eq!(s.peer().unwrap().capabilities, 0xffff_ffe1);
}

#[test]
fn bytes_after_the_handshake_are_left() {
    let frame = [0, 0, 0, 76, 4];
    // Without a secret, the client is done after HELLO_ACK.
    let mut c = client(None);
    let mut s = server(None);
    s.read(&c.take_output()).unwrap();
    let ack = [s.take_output(), frame.to_vec()].concat();
    assert_eq!(c.read(&ack), Ok(76));
    assert!(c.is_done());
    assert_eq!(c.read(&frame), Ok(0), "a done handshake takes nothing");

    // With one, the client after HELLO_ACK's MAC, the server after AUTH.
    let mut c = client(Some(SECRET));
    let mut s = server(Some(SECRET));
    s.read(&c.take_output()).unwrap();
    let ack = [s.take_output(), frame.to_vec()].concat();
    assert_eq!(c.read(&ack), Ok(108));
    let auth = [c.take_output(), frame.to_vec()].concat();
    assert_eq!(s.read(&auth[..30]), Ok(30));
    assert_eq!(s.read(&auth[30..]), Ok(10));
    assert!(c.is_done() && s.is_done());
    assert_eq!(s.read(&frame), Ok(0));
}

#[test]
fn the_server_goes_on_to_auth_in_the_same_read() {
    // A HELLO and an AUTH in one read (as from a client that pipelines):
    // the server reads both messages, then stops.
    let mut c = client(Some(SECRET));
    let mut s = server(Some(SECRET));
    let hello = c.take_output();
    let mut peek = server(Some(SECRET));
    peek.read(&hello).unwrap();
    c.read(&peek.take_output()).unwrap();
    let input = [hello, c.take_output(), vec![0, 0]].concat();
    assert_eq!(s.read(&input), Ok(116));
    assert!(s.is_done());
}

#[test]
fn a_failed_handshake_stays_failed() {
    let (mut c, mut s) = (client(Some("wrong")), server(Some(SECRET)));
    s.read(&c.take_output()).unwrap();
    let ack = s.take_output();
    assert_eq!(c.read(&ack), Err(HandshakeError::BadMac));
    assert_eq!(c.read(&ack), Err(HandshakeError::BadMac));
    assert_eq!(c.read(&[]), Err(HandshakeError::BadMac));
    assert!(!c.is_done() && c.peer().is_none() && c.take_output().is_empty());
}

#[test]
fn secret_debug_shows_no_secret() {
    let s = secret("hunter2");
    assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    let config = config("alpha", Some("hunter2"));
    for shown in [format!("{config:?}"), format!("{config:#?}")] {
        assert!(shown.contains("Secret(<redacted>)"), "{shown}");
        // Neither as text nor as a list of bytes (`h` is 104).
        assert!(!shown.contains("hunter2") && !shown.contains("104"), "{shown}");
    }
}

#[test]
fn an_empty_secret_is_none() {
    assert!(Secret::new("").is_none());
    assert!(Secret::new(Vec::new()).is_none());
    assert_eq!(Secret::new("x").unwrap().0, b"x");
}

#[test]
fn secret_from_file_strips_one_newline() {
    let dir = std::env::temp_dir().join(format!("connection-secret-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let read = |name: &str, contents: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        Secret::from_file(&path)
    };
    let cases: [(&str, &[u8], &[u8]); 6] = [
        ("plain", b"abc", b"abc"),
        ("lf", b"abc\n", b"abc"),
        ("crlf", b"abc\r\n", b"abc"),
        ("two_lf", b"abc\n\n", b"abc\n"),
        ("cr_only", b"abc\r", b"abc\r"),
        ("inner", b"a\nb\n", b"a\nb"),
    ];
    for (name, contents, expected) in cases {
        assert_eq!(read(name, contents).unwrap().0, expected, "{name}");
    }
    for (name, contents) in [("empty", &b""[..]), ("only_lf", b"\n"), ("only_crlf", b"\r\n")] {
        let err = read(name, contents).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{name}");
    }
    let missing = Secret::from_file(dir.join("missing")).unwrap_err();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A client and server with the secret, each requiring encryption or not.
fn run_encrypted(
    client_requires: bool,
    server_requires: bool,
) -> Result<(Handshake, Handshake), (Role, HandshakeError)> {
    let with = |c: HandshakeConfig, on: bool| if on { c.with_encryption() } else { c };
    let mut c =
        Handshake::new(Role::Client, with(config("alpha", Some(SECRET)), client_requires), [0xaa; 32]);
    let mut s = Handshake::new(Role::Server, with(config("beta", Some(SECRET)), server_requires), [0xbb; 32]);
    drive(&mut c, &mut s, 7).map(|()| (c, s))
}

#[test]
fn a_link_is_encrypted_when_either_side_requires_it() {
    for (client_requires, server_requires) in [(true, false), (false, true), (true, true)] {
        let (mut c, mut s) = run_encrypted(client_requires, server_requires).expect("done");
        assert!(c.peer().unwrap().encrypted && s.peer().unwrap().encrypted);
        assert!(c.peer().unwrap().authenticated && s.peer().unwrap().authenticated);
        let (mut cs, mut ss) =
            (c.take_secure().expect("client records"), s.take_secure().expect("server records"));
        assert!(c.take_secure().is_none(), "taken once");
        let mut wire = Vec::new();
        cs.seal(b"frames", &mut wire).unwrap();
        let mut plain = Vec::new();
        ss.open(&wire, &mut plain).unwrap();
        assert_eq!(plain, b"frames");
    }
}

#[test]
fn without_a_requirement_a_link_is_plain_as_before() {
    let (mut c, mut s) = run_encrypted(false, false).expect("done");
    assert!(!c.peer().unwrap().encrypted && !s.peer().unwrap().encrypted);
    assert!(c.take_secure().is_none() && s.take_secure().is_none());
}

#[test]
fn a_side_that_requires_encryption_refuses_a_peer_that_cannot() {
    // A peer with the secret that does not offer ENCRYPT (an older or
    // simpler implementation): its HELLO without the bit.
    let mut s = Handshake::new(Role::Server, config("beta", Some(SECRET)).with_encryption(), [0xbb; 32]);
    let mut c = client(Some(SECRET));
    let mut hello = c.take_output();
    let caps = u32::from_be_bytes(hello[8..12].try_into().unwrap()) & !ENCRYPT;
    hello[8..12].copy_from_slice(&caps.to_be_bytes());
    assert_eq!(s.read(&hello), Err(HandshakeError::EncryptionRequired { by_peer: false }));
    assert!(s.take_output().is_empty(), "nothing sent to it");
    // And a client that requires it, of a server that cannot.
    let mut c = Handshake::new(Role::Client, config("alpha", Some(SECRET)).with_encryption(), [0xaa; 32]);
    let mut s = server(Some(SECRET));
    s.read(&c.take_output()).unwrap();
    let mut ack = s.take_output();
    let caps = u32::from_be_bytes(ack[8..12].try_into().unwrap()) & !ENCRYPT;
    ack[8..12].copy_from_slice(&caps.to_be_bytes());
    assert_eq!(c.read(&ack), Err(HandshakeError::EncryptionRequired { by_peer: false }));
    // What the other case says (a side that cannot encrypt has no secret,
    // and a mismatch of secrets is refused before it).
    let err = HandshakeError::EncryptionRequired { by_peer: true };
    assert_eq!(err.to_string(), "the peer requires encryption, and this side cannot encrypt");
}

#[test]
fn requiring_encryption_without_a_secret_is_an_error() {
    let mut s = Handshake::new(Role::Server, config("beta", None).with_encryption(), [0xbb; 32]);
    let mut c = client(None);
    assert_eq!(s.read(&c.take_output()), Err(HandshakeError::EncryptionNeedsSecret));
}

#[test]
fn a_changed_noise_message_fails_the_handshake() {
    let mut c = Handshake::new(Role::Client, config("alpha", Some(SECRET)).with_encryption(), [0xaa; 32]);
    let mut s = server(Some(SECRET));
    feed(&mut s, &c.take_output(), usize::MAX).unwrap();
    feed(&mut c, &s.take_output(), usize::MAX).unwrap();
    // AUTH, then the client's Noise message: a bit of its key flipped.
    let mut out = c.take_output();
    let last = out.len() - 20;
    out[last] ^= 1;
    let err = s.read(&out).unwrap_err();
    assert!(matches!(err, HandshakeError::Noise(_)), "{err:?}");
    assert!(!s.is_done());
}

#[test]
fn nodes_with_keys_they_list_link_encrypted_and_an_unlisted_key_is_refused() {
    use crate::NodeKeys;
    let (a, b, stranger) =
        (NodeKeys::generate().unwrap(), NodeKeys::generate().unwrap(), NodeKeys::generate().unwrap());
    let with = |name: &str, keys: &NodeKeys, allowed: &[&NodeKeys]| {
        let list: String = allowed.iter().map(|k| k.public_hex() + "\n").collect();
        config(name, Some(SECRET)).with_node_keys(keys.clone().allow(&list).unwrap())
    };
    let run_keyed = |client: HandshakeConfig, server: HandshakeConfig| {
        let mut c = Handshake::new(Role::Client, client, [0xaa; 32]);
        let mut s = Handshake::new(Role::Server, server, [0xbb; 32]);
        drive(&mut c, &mut s, 5).map(|()| (c, s))
    };
    let (mut c, mut s) =
        run_keyed(with("alpha", &a, &[&b]), with("beta", &b, &[&a])).expect("listed keys link");
    assert!(c.peer().unwrap().encrypted && s.peer().unwrap().encrypted);
    assert!(c.take_secure().is_some() && s.take_secure().is_some());
    // A node with the secret and a key of its own the server does not
    // list: the handshake ends so that the server can close saying why.
    let (_, s) = run_keyed(with("alpha", &stranger, &[&b]), with("beta", &b, &[&a])).expect("ends");
    assert_eq!(s.unlisted_peer(), Some(stranger.public_hex().as_str()));
    // A server the client does not list: refused before the client says who it is.
    let err = run_keyed(with("alpha", &a, &[&stranger]), with("beta", &b, &[&a])).err().expect("refused");
    assert!(matches!(err, (Role::Client, HandshakeError::Noise(SecureError::UnlistedKey(_)))), "{err:?}");
    // Keys on one side only.
    let err = run_keyed(config("alpha", Some(SECRET)), with("beta", &b, &[&a])).err().expect("refused");
    assert_eq!(err, (Role::Server, HandshakeError::NodeKeysRequired { by_peer: false }));
}
