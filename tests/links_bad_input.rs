//! Bad input closes one link, with a logged reason, and nothing else:
//! a second client of the same server completes its echo each time.

mod support;

use std::io::Write;

use support::*;

/// What a peer sends after its handshake, or instead of it.
enum Bad {
    /// Bytes that are no frame at all (a length below a header's).
    Garbage,
    /// A length of `u32::MAX`: refused from the length alone.
    HugeLength,
    /// Half a frame, then the end of the stream.
    Truncated,
    /// A HELLO that does not start with `IPCH`.
    WrongMagic,
    /// Messages past the receive window (a window of 4, ten at once).
    WindowOverrun,
}

fn send_bad(addr: &ipchnl::Addr, bad: Bad) -> Vec<u8> {
    let mut s = match bad {
        Bad::WrongMagic => {
            let mut s = raw::connect(addr);
            let mut hello = vec![0u8; 76];
            hello[..4].copy_from_slice(b"HTTP");
            s.write_all(&hello).unwrap();
            return raw::read_to_close(&mut s);
        }
        Bad::WindowOverrun => raw::connect(addr),
        _ => raw::handshake(addr, None),
    };
    match bad {
        Bad::Garbage => s.write_all(b"\x00\x00\x00\x05GET / HTTP/1.1\r\n\r\n").unwrap(),
        Bad::HugeLength => s.write_all(&[0xff, 0xff, 0xff, 0xff, 0x01]).unwrap(),
        Bad::Truncated => {
            let mut frame = vec![0u8; 60];
            frame[..4].copy_from_slice(&200u32.to_be_bytes());
            frame[4] = 1;
            s.write_all(&frame).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        Bad::WindowOverrun => {
            // Real requests for its echo server, more at once than the
            // window: the server acknowledges at the end of its read.
            let mut client = raw::Client::start(s, "overrun").unwrap();
            let frames: Vec<u8> = (1..=10).flat_map(|n| client.encode_request(n)).collect();
            let s = client.stream();
            s.write_all(&frames).unwrap();
            return raw::read_to_close(s);
        }
        Bad::WrongMagic => unreachable!(),
    }
    raw::read_to_close(&mut s)
}

#[test]
fn each_kind_of_bad_input_closes_only_its_link() {
    bad_input_closes_only_its_link("tcp://127.0.0.1:0");
}

#[test]
fn over_shared_memory_each_kind_of_bad_input_closes_only_its_link() {
    let name = shm_name("bad");
    bad_input_closes_only_its_link(&name.url());
}

fn bad_input_closes_only_its_link(listen: &str) {
    let serve = Serve::start(listen, &[]);
    let m = manager("bad-input");
    m.connect(&serve.addr).unwrap();
    for bad in [Bad::Garbage, Bad::HugeLength, Bad::Truncated, Bad::WrongMagic] {
        let sent = send_bad(&serve.addr, bad);
        // Whatever the server sent (its directory after a good handshake),
        // it was never a message: then the connection closed.
        assert!(!raw::frame_kinds(&sent).contains(&connection::FrameKind::Msg));
        echo_completes(&m, 100);
    }
    assert_eq!(m.dead_letter_count(), 0);
}

#[test]
fn each_kind_of_bad_input_is_counted_under_its_own_close_reason() {
    bad_input_counted("tcp://127.0.0.1:0");
}

#[test]
fn over_shared_memory_each_kind_of_bad_input_is_counted_under_its_own_close_reason() {
    let name = shm_name("bad-count");
    bad_input_counted(&name.url());
}

fn bad_input_counted(listen: &str) {
    for (bad, reason) in [
        (Bad::Garbage, "protocol_frame_too_short"),
        (Bad::HugeLength, "protocol_frame_too_large"),
        // 60 of the 200 bytes the frame's length announced.
        (Bad::Truncated, "truncated_frame"),
        (Bad::WrongMagic, "protocol_handshake_bad_magic"),
        (Bad::WindowOverrun, "protocol_window_overrun"),
    ] {
        let m = ipchnl::Manager::new(config(&format!("bad-{reason}")).window(4)).unwrap();
        m.add("server", ipchnl::echo::Server::new()).unwrap();
        let addr = m.listen(&listen.parse().unwrap()).unwrap();
        send_bad(&addr, bad);
        let closes = eventually("the link closed", || {
            let closes = m.stats().closes;
            (!closes.is_empty()).then_some(closes)
        });
        assert_eq!(closes.into_iter().collect::<Vec<_>>(), [(reason.to_string(), 1)], "{reason}");
    }
}

#[test]
fn a_stalled_handshake_is_cut_and_sees_nothing() {
    let serve = Serve::start("tcp://127.0.0.1:0", &["--handshake-timeout-ms", "300"]);
    // Connects, says nothing.
    let mut silent = raw::connect(&serve.addr);
    assert!(raw::read_to_close(&mut silent).is_empty());
    // Says half a HELLO.
    let mut half = raw::connect(&serve.addr);
    half.write_all(b"IPCH\x01\x01").unwrap();
    assert!(raw::read_to_close(&mut half).is_empty());
    let m = manager("stall");
    m.connect(&serve.addr).unwrap();
    echo_completes(&m, 10);
}
