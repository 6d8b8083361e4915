use super::*;

fn psk(secret: &[u8]) -> [u8; 32] {
    Secret::new(secret.to_vec()).unwrap().noise_psk(b"transcript")
}

/// Runs the handshake between two sides of these keys and prologues;
/// the client's error, or the server's, or both sides' records.
fn handshake(
    client_psk: [u8; 32],
    server_psk: [u8; 32],
    prologues: (&[u8], &[u8]),
) -> Result<(Secure, Secure), SecureError> {
    let mut client = NoiseHandshake::new(Role::Client, &client_psk, prologues.0)?;
    let mut server = NoiseHandshake::new(Role::Server, &server_psk, prologues.1)?;
    assert!(client.wants_to_write() && !server.wants_to_write(), "the client speaks first");
    for _ in 0..4 {
        let mut wire = Vec::new();
        client.write(&mut wire)?;
        assert_eq!(server.read(&wire)?, wire.len());
        let mut wire = Vec::new();
        server.write(&mut wire)?;
        assert_eq!(client.read(&wire)?, wire.len());
        if client.is_done() && server.is_done() {
            return Ok((client.finish()?, server.finish()?));
        }
    }
    panic!("the handshake did not end");
}

fn pair() -> (Secure, Secure) {
    handshake(psk(b"s"), psk(b"s"), (b"p", b"p")).unwrap()
}

/// `records` sealed by `a`, one per message, each on its own.
fn records(a: &mut Secure, messages: &[&[u8]]) -> Vec<Vec<u8>> {
    messages
        .iter()
        .map(|m| {
            let mut r = Vec::new();
            a.seal(m, &mut r).unwrap();
            r
        })
        .collect()
}

#[test]
fn bytes_sealed_on_one_side_open_on_the_other_both_ways() {
    let (mut c, mut s) = pair();
    let exchange = |from: &mut Secure, to: &mut Secure| {
        let mut wire = Vec::new();
        from.seal(b"one", &mut wire).unwrap();
        from.seal(b"two", &mut wire).unwrap();
        let mut plain = Vec::new();
        assert_eq!(to.open(&wire, &mut plain).unwrap(), wire.len());
        assert_eq!(plain, b"onetwo");
    };
    exchange(&mut c, &mut s);
    exchange(&mut s, &mut c);
    assert_eq!(c.counters(), SecureCounters { records_out: 2, records_in: 2, bad_records: 0 });
}

#[test]
fn a_burst_larger_than_a_record_goes_in_several_and_comes_back_whole() {
    let (mut c, mut s) = pair();
    let burst: Vec<u8> = (0..3 * MAX_PLAIN + 7).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    c.seal(&burst, &mut wire).unwrap();
    assert_eq!(c.counters().records_out, 4);
    assert_eq!(wire.len(), burst.len() + 4 * (RECORD_HEADER_LEN + TAG_LEN));
    // Fed a byte at a time: a record not yet whole waits.
    let (mut plain, mut taken) = (Vec::new(), 0);
    for end in 1..=wire.len() {
        taken += s.open(&wire[taken..end], &mut plain).unwrap();
    }
    assert_eq!(taken, wire.len());
    assert_eq!(plain, burst);
    assert_eq!(s.check_end(0), Ok(()));
}

#[test]
fn nothing_of_the_plaintext_is_on_the_wire() {
    let (mut c, _) = pair();
    let mut wire = Vec::new();
    c.seal(br#"{"secret_field":"the payload"}"#, &mut wire).unwrap();
    assert!(!wire.windows(7).any(|w| w == b"payload"));
    assert!(!wire.windows(6).any(|w| w == b"secret"));
}

#[test]
fn a_side_without_the_secret_cannot_complete_the_handshake() {
    let err = handshake(psk(b"s"), psk(b"another"), (b"p", b"p")).err();
    assert!(matches!(err, Some(SecureError::Handshake(_))), "{err:?}");
}

#[test]
fn a_changed_prologue_fails_the_handshake() {
    let err = handshake(psk(b"s"), psk(b"s"), (b"p", b"q")).err();
    assert!(matches!(err, Some(SecureError::Handshake(_))), "{err:?}");
}

#[test]
fn each_link_has_its_own_key() {
    let secret = Secret::new(b"s".to_vec()).unwrap();
    assert_ne!(secret.noise_psk(b"one link"), secret.noise_psk(b"another"));
    assert_eq!(secret.noise_psk(b"one link"), secret.noise_psk(b"one link"));
}

#[test]
fn a_flipped_bit_anywhere_in_a_record_closes() {
    let (mut c, _) = pair();
    let wire = records(&mut c, &[b"hello"]).remove(0);
    for i in RECORD_HEADER_LEN..wire.len() {
        let (mut c2, mut s2) = pair();
        let mut w = Vec::new();
        c2.seal(b"hello", &mut w).unwrap();
        w[i] ^= 1;
        assert_eq!(s2.open(&w, &mut Vec::new()), Err(SecureError::BadRecord), "byte {i}");
        assert_eq!(s2.counters().bad_records, 1);
    }
}

#[test]
fn a_replayed_record_closes() {
    let (mut c, mut s) = pair();
    let r = records(&mut c, &[b"pay me"]);
    let mut plain = Vec::new();
    s.open(&r[0], &mut plain).unwrap();
    assert_eq!(s.open(&r[0], &mut plain), Err(SecureError::BadRecord));
}

#[test]
fn reordered_records_close() {
    let (mut c, mut s) = pair();
    let r = records(&mut c, &[b"first", b"second"]);
    assert_eq!(s.open(&r[1], &mut Vec::new()), Err(SecureError::BadRecord));
}

#[test]
fn a_dropped_record_closes_at_the_next() {
    let (mut c, mut s) = pair();
    let r = records(&mut c, &[b"first", b"second", b"third"]);
    let mut plain = Vec::new();
    s.open(&r[0], &mut plain).unwrap();
    assert_eq!(s.open(&r[2], &mut plain), Err(SecureError::BadRecord));
    assert_eq!(plain, b"first", "nothing after the gap is delivered");
}

#[test]
fn a_record_from_the_other_direction_closes() {
    let (mut c, mut s) = pair();
    let mut back = Vec::new();
    s.seal(b"to the client", &mut back).unwrap();
    // Reflected to the server that sealed it.
    assert_eq!(s.open(&back, &mut Vec::new()), Err(SecureError::BadRecord));
    assert!(c.open(&back, &mut Vec::new()).is_ok());
}

#[test]
fn a_truncated_record_or_one_shorter_than_its_tag_is_refused() {
    let (mut c, mut s) = pair();
    let r = records(&mut c, &[b"cut short"]).remove(0);
    let taken = s.open(&r[..r.len() - 1], &mut Vec::new()).unwrap();
    assert_eq!(taken, 0);
    assert_eq!(s.check_end(r.len() - 1 - taken), Err(SecureError::Truncated));
    let short = [0u8, 15, 1, 2, 3];
    assert_eq!(s.open(&short, &mut Vec::new()), Err(SecureError::ShortRecord(15)));
}

#[test]
fn a_record_injected_by_a_relay_closes() {
    let (_, mut s) = pair();
    // A relay that saw the handshake but holds no key seals with its own.
    let (mut relay, _) = pair();
    let forged = records(&mut relay, &[b"forged"]).remove(0);
    assert_eq!(s.open(&forged, &mut Vec::new()), Err(SecureError::BadRecord));
}

/// Two sides with node keys, each allowing the other's key if told to.
fn keyed(client_allows_server: bool, server_allows_client: bool) -> Result<(Secure, Secure), SecureError> {
    let (c, s) = (NodeKeys::generate().unwrap(), NodeKeys::generate().unwrap());
    let allow = |keys: NodeKeys, other: &NodeKeys, yes: bool| {
        if yes { keys.allow(&other.public_hex()).unwrap() } else { keys }
    };
    let psk = psk(b"s");
    let mut client = NoiseHandshake::with_keys(
        Role::Client,
        &psk,
        b"p",
        Some(allow(c.clone(), &s, client_allows_server)),
    )?;
    let mut server = NoiseHandshake::with_keys(
        Role::Server,
        &psk,
        b"p",
        Some(allow(s.clone(), &c, server_allows_client)),
    )?;
    for _ in 0..4 {
        let mut wire = Vec::new();
        client.write(&mut wire)?;
        if !wire.is_empty() {
            assert_eq!(Some(wire.len()), server.next_read_len(), "the length the server expects");
            assert_eq!(server.read(&wire)?, wire.len());
        }
        let mut wire = Vec::new();
        server.write(&mut wire)?;
        if !wire.is_empty() {
            assert_eq!(Some(wire.len()), client.next_read_len(), "the length the client expects");
            assert_eq!(client.read(&wire)?, wire.len());
        }
        if client.is_done() && server.is_done() {
            if let Some(key) = server.unlisted_peer() {
                return Err(SecureError::UnlistedKey(key.to_owned()));
            }
            return Ok((client.finish()?, server.finish()?));
        }
    }
    panic!("the handshake did not end");
}

#[test]
fn nodes_that_list_each_others_keys_link() {
    let (mut c, mut s) = keyed(true, true).unwrap();
    let mut wire = Vec::new();
    c.seal(b"keyed", &mut wire).unwrap();
    let mut plain = Vec::new();
    s.open(&wire, &mut plain).unwrap();
    assert_eq!(plain, b"keyed");
}

#[test]
fn a_node_whose_key_is_not_listed_is_refused_by_either_side() {
    assert!(matches!(keyed(true, false).err(), Some(SecureError::UnlistedKey(_))));
    assert!(matches!(keyed(false, true).err(), Some(SecureError::UnlistedKey(_))));
}

#[test]
fn node_keys_go_to_text_and_back() {
    let keys = NodeKeys::generate().unwrap();
    let again = NodeKeys::from_text(&keys.to_text()).unwrap();
    assert_eq!(again.public_hex(), keys.public_hex());
    assert!(NodeKeys::from_text("private 00\npublic 11\n").is_none());
    let listed = again.allow(&format!("# a comment\n\n{}\n", keys.public_hex())).unwrap();
    assert!(listed.allows(&NodeKeys::from_text(&keys.to_text()).unwrap().public));
    assert!(listed.allow("not a key").is_err());
    assert!(!format!("{keys:?}").contains(&keys.to_text()[8..20]), "Debug shows no private key");
}
