//! Two sessions wired together in memory: every rule of the link and
//! every limit, with no socket and no clock.

use std::time::{Duration, Instant};

use msg_header::NodeId;

use super::*;
use crate::{DEFAULT_MAX_FRAME, DirEntry, FIRST_PART, Incarnation, encode_frame};

type S = Session<u64>;

fn handshake(name: &str) -> HandshakeConfig {
    HandshakeConfig::new(NodeId::of_name(name), Incarnation([7; 16]))
}

/// A client `a` and a server `b`, linked, with their events so far.
struct Pair {
    a: S,
    b: S,
    now: Instant,
}

impl Pair {
    fn new(config: LinkLimits) -> Self {
        Self::with(config.clone(), config)
    }

    fn with(a: LinkLimits, b: LinkLimits) -> Self {
        let now = Instant::now();
        let mut p = Self {
            a: Session::new(Role::Client, handshake("a"), [1; 32], a, now),
            b: Session::new(Role::Server, handshake("b"), [2; 32], b, now),
            now,
        };
        p.a_to_b();
        assert!(matches!(p.b.poll_event(), Some(Event::Up(peer)) if peer.node_id == NodeId::of_name("a")));
        p.b_to_a();
        assert!(matches!(p.a.poll_event(), Some(Event::Up(peer)) if peer.node_id == NodeId::of_name("b")));
        assert!(p.a.is_up() && p.b.is_up());
        p
    }

    fn a_to_b(&mut self) {
        pass(&mut self.a, &mut self.b, self.now);
    }

    fn b_to_a(&mut self) {
        pass(&mut self.b, &mut self.a, self.now);
    }
}

fn pass(from: &mut S, to: &mut S, now: Instant) {
    let bytes = from.transmit().to_vec();
    from.transmitted(now, bytes.len());
    if !bytes.is_empty() {
        to.handle_input(now, &bytes);
    }
}

/// A MSG frame for actor `dst` with body `{"n":N}`.
fn msg_frame(n: u64) -> Vec<u8> {
    let header = FrameHeader {
        dst: ActorId::from_u128(9),
        src: ActorId::from_u128(8),
        ..FrameHeader::new(FrameKind::Msg)
    };
    let mut frame = Vec::new();
    encode_frame(&header, format!("{{\"n\":{n}}}").as_bytes(), DEFAULT_MAX_FRAME, &mut frame).unwrap();
    frame
}

fn control_frame(header: FrameHeader, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_frame(&header, body, DEFAULT_MAX_FRAME, &mut frame).unwrap();
    frame
}

/// Every event, the bodies of messages as text.
#[derive(Debug, PartialEq)]
enum Seen {
    Msg(u64, String),
    Acked(Vec<u64>),
    Nacked(u64, Option<NackReason>),
    Unhandled(ActorId, Option<UnhandledReason>, String),
    Directory(usize),
    Watch(ActorId, ActorId),
    Closed(String),
    Up,
}

fn events(s: &mut S) -> Vec<Seen> {
    let mut out = Vec::new();
    while let Some(e) = s.poll_event() {
        out.push(Seen::of(e));
    }
    out
}

impl Seen {
    fn of(e: Event<'_, u64>) -> Self {
        match e {
            Event::Msg { header, body, .. } => {
                Seen::Msg(header.seq, String::from_utf8_lossy(body).into_owned())
            }
            Event::Acked(t) => Seen::Acked(t),
            Event::Nacked { msg, reason, .. } => Seen::Nacked(msg, reason),
            Event::Unhandled { header, reason, body } => {
                Seen::Unhandled(header.dst, reason, String::from_utf8_lossy(&body).into_owned())
            }
            Event::Directory(d) => Seen::Directory(d.add.len()),
            Event::Watch { target, watcher } => Seen::Watch(target, watcher),
            Event::Closed(r) => Seen::Closed(r.key()),
            Event::Up(_) => Seen::Up,
        }
    }
}

#[test]
fn messages_arrive_in_order_and_acknowledgements_return_them() {
    let mut p = Pair::new(LinkLimits::default());
    for n in 1..=3 {
        p.a.send_msg(&msg_frame(n), n);
    }
    p.a_to_b();
    assert_eq!(
        events(&mut p.b),
        [1, 2, 3].map(|n| Seen::Msg(n, format!("{{\"n\":{n}}}"))),
        "sequence numbers 1, 2, 3"
    );
    assert_eq!(p.a.unacked_len(), 3);
    assert!(p.b.flush_acks());
    assert!(!p.b.flush_acks(), "nothing new to acknowledge");
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Acked(vec![1, 2, 3])], "one acknowledgement covers them all");
    assert_eq!(p.a.unacked_len(), 0);
}

#[test]
fn a_reply_carries_the_acknowledgement() {
    let mut p = Pair::new(LinkLimits::default());
    p.a.send_msg(&msg_frame(1), 1);
    p.a_to_b();
    assert_eq!(events(&mut p.b).len(), 1);
    p.b.send_msg(&msg_frame(10), 10);
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Acked(vec![1]), Seen::Msg(1, "{\"n\":10}".into())]);
}

#[test]
fn a_refused_message_is_nacked_not_acknowledged() {
    let mut p = Pair::new(LinkLimits::default());
    p.a.send_msg(&msg_frame(1), 1);
    p.a.send_msg(&msg_frame(2), 2);
    p.a_to_b();
    let refused = msg_headers(&mut p.b, false)[0];
    assert_eq!(refused.seq, 1);
    p.b.refuse(&refused, NackReason::MailboxFull, "full");
    p.b.flush_acks();
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Nacked(1, Some(NackReason::MailboxFull)), Seen::Acked(vec![2])]);
}

#[test]
fn a_message_acknowledged_then_not_handled_returns_to_its_sender() {
    let mut p = Pair::new(LinkLimits::default());
    p.a.send_msg(&msg_frame(1), 1);
    p.a_to_b();
    let got = msg_headers(&mut p.b, false)[0];
    p.b.flush_acks();
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Acked(vec![1])]);
    // Its destination stopped before handling it: the body goes back.
    p.b.return_unhandled(&got, UnhandledReason::ActorStopped, b"{\"n\":1}");
    p.b_to_a();
    assert_eq!(
        events(&mut p.a),
        [Seen::Unhandled(ActorId::from_u128(9), Some(UnhandledReason::ActorStopped), "{\"n\":1}".into())]
    );
    // A code this version does not know still returns the message.
    let unknown = FrameHeader { flags: 99, dst: ActorId::from_u128(9), ..FrameHeader::new(FrameKind::Dead) };
    p.a.handle_input(p.now, &control_frame(unknown, b"{}"));
    assert_eq!(events(&mut p.a), [Seen::Unhandled(ActorId::from_u128(9), None, "{}".into())]);
    assert!(p.a.is_up(), "the link stays up");
}

/// The headers of the messages `s` has read; each waits for its handler
/// before it is acknowledged if `wait_for_handling` (asked as it is read,
/// as the session requires).
fn msg_headers(s: &mut S, wait_for_handling: bool) -> Vec<FrameHeader> {
    let mut headers = Vec::new();
    while let Some(e) = s.poll_event() {
        if let Event::Msg { header, .. } = e {
            headers.push(header);
            if wait_for_handling {
                s.ack_when_handled(header.seq);
            }
        }
    }
    headers
}

/// The sequence numbers of the messages `s` has read (see [`msg_headers`]).
fn msg_seqs(s: &mut S, wait_for_handling: bool) -> Vec<u64> {
    msg_headers(s, wait_for_handling).iter().map(|h| h.seq).collect()
}

#[test]
fn a_message_that_waits_for_its_handler_is_acknowledged_once_handled() {
    let mut p = Pair::new(LinkLimits::default());
    for n in 1..=3 {
        p.a.send_msg(&msg_frame(n), n);
    }
    p.a_to_b();
    assert_eq!(msg_seqs(&mut p.b, true), [1, 2, 3]);
    assert!(!p.b.flush_acks(), "nothing handled, nothing acknowledged");
    // Handled out of order: the acknowledgement is cumulative, so 3 waits for 2.
    p.b.handled(1);
    p.b.handled(3);
    assert!(p.b.flush_acks());
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Acked(vec![1])]);
    // A reply carries no more than what was handled.
    p.b.send_msg(&msg_frame(10), 10);
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Msg(1, "{\"n\":10}".into())]);
    p.b.handled(2);
    assert!(p.b.flush_acks());
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Acked(vec![2, 3])]);
}

#[test]
fn unhandled_messages_keep_the_senders_window_closed() {
    let window = 8;
    let config = LinkLimits { window, ack_every: 2, ..LinkLimits::default() };
    let mut p = Pair::new(config);
    for n in 1..=window as u64 {
        p.a.send_msg(&msg_frame(n), n);
    }
    p.a_to_b();
    // Even past `ack_every`, a message waiting for its handler is not acknowledged.
    assert_eq!(msg_seqs(&mut p.b, true).len(), window);
    p.b.flush_acks();
    p.b_to_a();
    assert!(events(&mut p.a).is_empty());
    assert_eq!(p.a.unacked_len(), window, "the sender's window stays full");
    // One more would overrun the window: the peer that does so is cut.
    p.a.send_msg(&msg_frame(9), 9);
    p.a_to_b();
    assert_eq!(events(&mut p.b), [Seen::Closed("protocol_window_overrun".into())]);
}

#[test]
fn without_waiting_messages_are_acknowledged_every_ack_every() {
    let config = LinkLimits { ack_every: 2, ..LinkLimits::default() };
    let mut p = Pair::new(config);
    for n in 1..=5 {
        p.a.send_msg(&msg_frame(n), n);
    }
    p.a_to_b();
    assert_eq!(msg_seqs(&mut p.b, false), [1, 2, 3, 4, 5]);
    // Acknowledged while reading: two at the third, four at the fifth.
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Acked(vec![1, 2]), Seen::Acked(vec![3, 4])]);
}

#[test]
fn a_message_out_of_sequence_closes_the_link() {
    let mut p = Pair::new(LinkLimits::default());
    let mut frame = msg_frame(1);
    patch_seq_ack(&mut frame, 2, 0);
    p.b.handle_input(p.now, &frame);
    assert_eq!(events(&mut p.b), [Seen::Closed("protocol_out_of_sequence".into())]);
    assert!(p.b.is_closed() && !p.b.wants_read());
    // A protocol error says so to the peer.
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Closed("closed_protocol_error".into())]);
}

#[test]
fn a_peer_that_sends_beyond_the_receive_window_is_cut() {
    let config = LinkLimits { window: 4, ack_every: 1000, ..LinkLimits::default() };
    let mut p = Pair::new(config);
    for n in 1..=4 {
        p.a.send_msg(&msg_frame(n), n);
    }
    p.a_to_b();
    assert_eq!(events(&mut p.b).len(), 4, "a window's worth is fine");
    p.a.send_msg(&msg_frame(5), 5);
    p.a_to_b();
    assert_eq!(events(&mut p.b), [Seen::Closed("protocol_window_overrun".into())]);
}

#[test]
fn within_the_window_after_acknowledgements_is_fine() {
    let config = LinkLimits { window: 4, ack_every: 1000, ..LinkLimits::default() };
    let mut p = Pair::new(config);
    for round in 0..5 {
        for n in 1..=4 {
            p.a.send_msg(&msg_frame(round * 4 + n), round * 4 + n);
        }
        p.a_to_b();
        assert_eq!(events(&mut p.b).len(), 4);
        p.b.flush_acks();
        p.b_to_a();
        assert_eq!(events(&mut p.a), [Seen::Acked((round * 4 + 1..=round * 4 + 4).collect())]);
    }
}

#[test]
fn acknowledgements_wait_while_inbound_messages_hold_too_much() {
    let config = LinkLimits { max_inbound_bytes: 100, ..LinkLimits::default() };
    let mut p = Pair::new(config);
    p.a.send_msg(&msg_frame(1), 1);
    p.a_to_b();
    assert_eq!(events(&mut p.b).len(), 1);
    p.b.set_inbound_held(100);
    assert!(!p.b.wants_read(), "reading stops at the bound");
    assert!(!p.b.flush_acks(), "nothing is acknowledged");
    // Nor in a frame it sends anyway.
    p.b.send_msg(&msg_frame(10), 10);
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Msg(1, "{\"n\":10}".into())]);
    assert_eq!(p.a.unacked_len(), 1);
    p.b.set_inbound_held(99);
    assert!(p.b.wants_read());
    assert!(p.b.flush_acks());
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Acked(vec![1])]);
}

#[test]
fn reading_stops_while_the_output_is_over_its_cap() {
    let config = LinkLimits { max_write_buffer: 200, ..LinkLimits::default() };
    let mut p = Pair::new(config);
    p.b.send_msg(&msg_frame(1), 1);
    p.b.send_msg(&msg_frame(2), 2);
    p.b.send_msg(&msg_frame(3), 3);
    assert!(p.b.pending_output() >= 200);
    assert!(!p.b.wants_read());
    let n = p.b.pending_output();
    p.b.transmitted(p.now, n);
    assert!(p.b.wants_read());
}

#[test]
fn heartbeats_are_sent_when_idle_and_silence_ends_the_link() {
    let config = LinkLimits::default();
    let mut p = Pair::new(config.clone());
    let t0 = p.now;
    assert_eq!(p.a.poll_timeout(), Some(t0 + config.heartbeat_interval));
    p.a.handle_timeout(t0 + config.heartbeat_interval);
    assert!(p.a.pending_output() > 0, "a heartbeat is queued");
    p.a_to_b();
    assert!(events(&mut p.b).is_empty(), "a heartbeat is no event");
    p.a.handle_timeout(t0 + config.heartbeat_timeout);
    assert_eq!(events(&mut p.a), [Seen::Closed("heartbeat_timeout".into())]);
    // Nothing from a closed session, ever again.
    assert_eq!(p.a.poll_timeout(), None);
    assert!(p.a.is_finished());
}

#[test]
fn silence_while_this_side_does_not_read_is_not_the_peers() {
    let config = LinkLimits { max_inbound_bytes: 10, ..LinkLimits::default() };
    let mut p = Pair::new(config.clone());
    p.b.set_inbound_held(10);
    let later = p.now + config.heartbeat_timeout * 3;
    p.b.handle_timeout(later);
    assert!(p.b.is_up());
    p.b.set_inbound_held(0);
    p.b.handle_timeout(later + config.heartbeat_timeout - Duration::from_millis(1));
    assert!(p.b.is_up(), "silence counts from when reading resumed");
    p.b.handle_timeout(later + config.heartbeat_timeout);
    assert_eq!(events(&mut p.b), [Seen::Closed("heartbeat_timeout".into())]);
}

#[test]
fn a_stalled_handshake_times_out() {
    let now = Instant::now();
    let config = LinkLimits::default();
    let mut s: S = Session::new(Role::Server, handshake("b"), [2; 32], config.clone(), now);
    assert_eq!(s.poll_timeout(), Some(now + config.handshake_timeout));
    s.handle_timeout(now + config.handshake_timeout - Duration::from_millis(1));
    assert!(s.poll_event().is_none());
    s.handle_timeout(now + config.handshake_timeout);
    assert_eq!(events(&mut s), [Seen::Closed("handshake_timeout".into())]);
}

#[test]
fn a_peer_that_takes_nothing_is_cut_at_the_write_deadline() {
    let config = LinkLimits { heartbeat_timeout: Duration::from_secs(60), ..LinkLimits::default() };
    let mut p = Pair::new(config.clone());
    p.b.send_msg(&msg_frame(1), 1);
    p.b.write_blocked(p.now);
    p.b.handle_timeout(p.now + config.write_deadline - Duration::from_millis(1));
    assert!(p.b.is_up());
    p.b.handle_timeout(p.now + config.write_deadline);
    assert_eq!(events(&mut p.b), [Seen::Closed("slow_consumer".into())]);
    assert_eq!(p.b.take_unacked().collect::<Vec<_>>(), [1], "what was sent is the caller's to report");
}

#[test]
fn the_end_of_the_stream_is_peer_closed_or_a_truncated_frame() {
    let mut p = Pair::new(LinkLimits::default());
    p.b.handle_input(p.now, &[]);
    assert_eq!(events(&mut p.b), [Seen::Closed("peer_closed".into())]);

    let mut p = Pair::new(LinkLimits::default());
    let frame = msg_frame(1);
    p.b.handle_input(p.now, &frame[..30]);
    assert!(events(&mut p.b).is_empty(), "half a frame waits for the rest");
    p.b.handle_input(p.now, &[]);
    match p.b.poll_event() {
        Some(Event::Closed(CloseReason::Truncated(30))) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_and_oversized_frames_close_the_link() {
    let mut p = Pair::new(LinkLimits::default());
    p.b.handle_input(p.now, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(
        events(&mut p.b),
        [Seen::Closed("protocol_frame_too_large".into())],
        "`GET ` read as a length"
    );

    let mut p = Pair::new(LinkLimits::default());
    p.b.handle_input(p.now, b"\x00\x00\x00\x05GET / HTTP/1.1\r\n\r\n");
    assert_eq!(events(&mut p.b), [Seen::Closed("protocol_frame_too_short".into())]);

    let mut p = Pair::new(LinkLimits::default());
    p.b.handle_input(p.now, &u32::MAX.to_be_bytes());
    assert_eq!(events(&mut p.b), [Seen::Closed("protocol_frame_too_large".into())]);
}

#[test]
fn a_wrong_magic_fails_the_handshake() {
    let now = Instant::now();
    let mut s: S = Session::new(Role::Server, handshake("b"), [2; 32], LinkLimits::default(), now);
    s.handle_input(now, &[0; 76]);
    assert_eq!(events(&mut s), [Seen::Closed("protocol_handshake_bad_magic".into())]);
    assert_eq!(s.pending_output(), 0, "an unauthenticated peer gets nothing");
}

#[test]
fn an_acknowledgement_of_what_was_never_sent_closes_the_link() {
    let mut p = Pair::new(LinkLimits::default());
    p.b.handle_input(p.now, &control_frame(FrameHeader { ack: 5, ..FrameHeader::new(FrameKind::Ack) }, &[]));
    assert_eq!(events(&mut p.b), [Seen::Closed("protocol_bad_ack".into())]);
}

#[test]
fn an_orderly_close_says_why_and_the_peer_hears_it() {
    let mut p = Pair::new(LinkLimits::default());
    p.a.send_msg(&msg_frame(1), 1);
    p.a.close(CloseReason::Shutdown);
    assert_eq!(events(&mut p.a), [Seen::Closed("shutdown".into())]);
    p.a_to_b();
    let seen = events(&mut p.b);
    assert_eq!(seen, [Seen::Msg(1, "{\"n\":1}".into()), Seen::Closed("closed_shutdown".into())]);
    assert_eq!(p.a.take_unacked().collect::<Vec<_>>(), [1]);
}

fn watch(target: u128, watcher: u128) -> Vec<u8> {
    control_frame(
        FrameHeader {
            dst: ActorId::from_u128(target),
            src: ActorId::from_u128(watcher),
            ..FrameHeader::new(FrameKind::Watch)
        },
        &[],
    )
}

#[test]
fn a_watch_comes_once_per_pair_and_is_capped() {
    let config = LinkLimits { max_watches: 2, ..LinkLimits::default() };
    let mut p = Pair::new(config);
    p.b.handle_input(p.now, &[watch(1, 10), watch(1, 10), watch(2, 10)].concat());
    let id = ActorId::from_u128;
    assert_eq!(events(&mut p.b), [Seen::Watch(id(1), id(10)), Seen::Watch(id(2), id(10))]);
    p.b.forget_watch(id(2), id(10));
    p.b.handle_input(p.now, &watch(2, 10));
    assert_eq!(events(&mut p.b), [Seen::Watch(id(2), id(10))], "a watch that ended can be asked for again");
    p.b.forget_watch(id(1), id(10));
    p.b.handle_input(p.now, &watch(1, 11));
    assert_eq!(events(&mut p.b), [Seen::Watch(id(1), id(11))]);
    p.b.handle_input(p.now, &watch(3, 11));
    assert_eq!(events(&mut p.b), [Seen::Closed("protocol_too_many_watches".into())]);
    assert_eq!(p.b.peer_watches().len(), 2, "the table never grew past its cap");
}

fn directory(update: &DirectoryUpdate) -> Vec<u8> {
    control_frame(FrameHeader::new(FrameKind::Directory), &serde_json::to_vec(update).unwrap())
}

fn entries(range: std::ops::Range<u128>) -> Vec<DirEntry> {
    range
        .map(|i| DirEntry {
            id: ActorId::from_u128(i),
            name: format!("a{i}"),
            protocols: vec![],
            msgs: vec![],
        })
        .collect()
}

#[test]
fn directories_are_applied_and_capped() {
    let config =
        LinkLimits { max_remote_actors: 3, max_name_len: 8, max_actor_ids: 2, ..LinkLimits::default() };
    let mut p = Pair::new(config.clone());
    let full = DirectoryUpdate { node: Some("b".into()), full: true, add: entries(0..2), remove: vec![] };
    p.b.handle_input(p.now, &directory(&full));
    let change = DirectoryUpdate {
        add: entries(2..3),
        remove: vec![ActorId::from_u128(0)],
        ..DirectoryUpdate::default()
    };
    p.b.handle_input(p.now, &directory(&change));
    assert_eq!(events(&mut p.b), [Seen::Directory(2), Seen::Directory(1)]);
    assert_eq!(p.b.remote_actors().len(), 2);
    p.b.handle_input(
        p.now,
        &directory(&DirectoryUpdate { add: entries(3..5), ..DirectoryUpdate::default() }),
    );
    assert_eq!(events(&mut p.b), [Seen::Closed("protocol_too_many_actors".into())]);

    for (bad, key) in [
        (DirectoryUpdate { full: true, ..full.clone() }, "protocol_directory_repeated"),
        (
            DirectoryUpdate {
                add: vec![DirEntry { name: "x".repeat(9), ..entries(7..8).remove(0) }],
                ..DirectoryUpdate::default()
            },
            "protocol_name_too_long",
        ),
        (
            DirectoryUpdate {
                add: vec![DirEntry { msgs: vec![MsgId_of("m"); 3], ..entries(7..8).remove(0) }],
                ..DirectoryUpdate::default()
            },
            "protocol_too_many_ids",
        ),
    ] {
        let mut p = Pair::new(config.clone());
        p.b.handle_input(p.now, &directory(&full));
        p.b.handle_input(p.now, &directory(&bad));
        assert_eq!(events(&mut p.b).pop(), Some(Seen::Closed(key.into())), "{bad:?}");
    }
    let mut p = Pair::new(config);
    p.b.handle_input(p.now, &control_frame(FrameHeader::new(FrameKind::Directory), b"[1,2"));
    assert_eq!(events(&mut p.b), [Seen::Closed("protocol_bad_directory".into())]);
}

#[allow(non_snake_case)]
fn MsgId_of(name: &str) -> msg_header::MsgId {
    msg_header::MsgId::of_name(name)
}

#[test]
fn a_large_frame_is_read_in_pieces_of_any_size() {
    let mut p = Pair::new(LinkLimits::default());
    let big = "x".repeat(200_000);
    let header = FrameHeader { seq: 1, ..FrameHeader::new(FrameKind::Msg) };
    let mut frame = Vec::new();
    encode_frame(&header, big.as_bytes(), DEFAULT_MAX_FRAME, &mut frame).unwrap();
    for mut piece in frame.chunks(7777) {
        while !piece.is_empty() {
            let buf = p.b.input_buf();
            let n = buf.len().min(piece.len());
            buf[..n].copy_from_slice(&piece[..n]);
            p.b.input_filled(p.now, n);
            piece = &piece[n..];
        }
    }
    match p.b.poll_event() {
        Some(Event::Msg { header, body, .. }) => assert_eq!((header.seq, body.len()), (1, 200_000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.b.buffered_input(), 200_080, "consumed on the next call");
    assert!(p.b.poll_event().is_none());
    assert_eq!(p.b.buffered_input(), 0);
}

fn heartbeats(n: usize) -> Vec<u8> {
    control_frame(FrameHeader::new(FrameKind::Heartbeat), &[]).repeat(n)
}

#[test]
fn control_frames_past_the_burst_stop_reading_until_the_budget_refills() {
    let config = LinkLimits { control_rate: 1_000, control_burst: 10, ..LinkLimits::default() };
    let mut p = Pair::new(config);
    let t0 = p.now;
    p.b.handle_input(t0, &heartbeats(10));
    assert!(events(&mut p.b).is_empty());
    assert!(p.b.wants_read() && !p.b.is_throttled(), "the burst is free");
    // Five more: five owed, 5 ms at 1,000 a second.
    p.b.handle_input(t0, &heartbeats(5));
    assert!(events(&mut p.b).is_empty());
    assert!(p.b.is_throttled() && !p.b.wants_read());
    let until = p.b.poll_timeout().expect("a timer");
    assert!(until > t0 && until <= t0 + Duration::from_millis(6), "{:?}", until - t0);
    p.b.handle_timeout(until - Duration::from_micros(100));
    assert!(p.b.is_throttled(), "not yet");
    p.b.handle_timeout(until);
    assert!(p.b.wants_read(), "paid: reading resumes");
    assert!(p.b.is_up(), "a throttled peer is slowed, not cut");
    assert_eq!(p.b.take_counters().control_throttled, 1);
}

#[test]
fn the_control_budget_refills_at_its_rate_up_to_the_burst() {
    let config = LinkLimits { control_rate: 1_000, control_burst: 10, ..LinkLimits::default() };
    let mut p = Pair::new(config);
    let t0 = p.now;
    // 10 a second for 10 seconds is far below the rate: never throttled.
    for i in 0..100 {
        p.b.handle_input(t0 + Duration::from_millis(100 * i), &heartbeats(1));
        events(&mut p.b);
        assert!(!p.b.is_throttled(), "at {i}");
    }
    // A long silence banks no more than the burst.
    let later = t0 + Duration::from_secs(60);
    p.b.handle_input(later, &heartbeats(11));
    events(&mut p.b);
    assert!(p.b.is_throttled(), "eleven at once is one over the burst");
}

#[test]
fn settling_frames_are_free_and_a_directory_costs_its_size() {
    let config = LinkLimits { control_rate: 1_000, control_burst: 4, ..LinkLimits::default() };
    let mut p = Pair::new(config);
    // Acknowledgements of what was sent are never charged.
    for n in 1..=20 {
        p.a.send_msg(&msg_frame(n), n);
        p.a_to_b();
        events(&mut p.b);
        p.b.flush_acks();
        p.b_to_a();
        assert_eq!(events(&mut p.a), [Seen::Acked(vec![n])]);
    }
    assert!(!p.a.is_throttled(), "twenty ACKs that settle messages cost nothing");
    // A directory of a few KiB costs more than the burst.
    let update = DirectoryUpdate { node: None, full: true, add: entries(0..100), remove: Vec::new() };
    let frame = directory(&update);
    assert!(frame.len() > 4 * 1024);
    p.a.handle_input(p.now, &frame);
    assert_eq!(events(&mut p.a), [Seen::Directory(100)]);
    assert!(p.a.is_throttled());
}

/// What `a` sends for a MSG to actor 9 of `len` bytes of body, as it
/// goes on the wire (its sequence number set).
fn sent_frame(p: &mut Pair, len: usize) -> Vec<u8> {
    let header = FrameHeader { dst: ActorId::from_u128(9), ..FrameHeader::new(FrameKind::Msg) };
    let body = format!("\"{}\"", "x".repeat(len.saturating_sub(2)));
    p.a.send_msg(&control_frame(header, body.as_bytes()), 0);
    let bytes = p.a.transmit().to_vec();
    p.a.transmitted(p.now, bytes.len());
    bytes
}

#[test]
fn a_frame_trickled_byte_by_byte_is_cut_at_the_frame_deadline() {
    let config = LinkLimits { heartbeat_timeout: Duration::from_secs(600), ..LinkLimits::default() };
    let mut p = Pair::new(config.clone());
    let frame = sent_frame(&mut p, 100_000);
    let start = p.now;
    // A byte a second keeps the heartbeat content, not the frame deadline.
    for (i, byte) in frame[..20].iter().enumerate() {
        let t = start + Duration::from_secs(i as u64 / 2);
        p.b.handle_input(t, &[*byte]);
        assert!(events(&mut p.b).is_empty());
        p.b.handle_timeout(t);
    }
    assert_eq!(p.b.poll_timeout(), Some(start + config.frame_deadline), "from the frame's first byte");
    p.b.handle_timeout(start + config.frame_deadline);
    assert_eq!(events(&mut p.b), [Seen::Closed("slow_frame".into())]);
}

#[test]
fn a_frame_that_completes_in_time_clears_its_deadline() {
    let config = LinkLimits::default();
    let mut p = Pair::new(config.clone());
    let frame = sent_frame(&mut p, 10);
    p.b.handle_input(p.now, &frame[..10]);
    assert!(events(&mut p.b).is_empty());
    assert_eq!(p.b.poll_timeout(), Some(p.now + config.heartbeat_interval.min(config.frame_deadline)));
    let later = p.now + config.frame_deadline - Duration::from_millis(1);
    p.b.handle_input(later, &frame[10..]);
    assert_eq!(events(&mut p.b).len(), 1);
    p.b.handle_timeout(later + Duration::from_millis(1));
    assert!(p.b.is_up(), "the frame was whole in time");
    assert!(p.b.poll_timeout().is_some_and(|t| t > p.now + config.frame_deadline));
}

#[test]
fn a_frame_waiting_while_this_side_does_not_read_is_not_late() {
    let config = LinkLimits { max_inbound_bytes: 10, ..LinkLimits::default() };
    let mut p = Pair::new(config.clone());
    let frame = sent_frame(&mut p, 10);
    p.b.handle_input(p.now, &frame[..10]);
    let _ = events(&mut p.b);
    p.b.set_inbound_held(10);
    let later = p.now + config.frame_deadline * 3;
    p.b.handle_timeout(later);
    assert!(p.b.is_up(), "this side chose not to read");
    // A peer that half-closed after its last message: the rest of the
    // frame waits in the transport for this side's handlers, still excused.
    p.b.peer_ended();
    p.b.handle_timeout(later + config.frame_deadline * 3);
    assert!(p.b.is_up(), "this side chose not to read, and the peer has ended");
}

#[test]
fn a_read_buffer_grown_for_a_large_frame_is_given_back() {
    let mut p = Pair::new(LinkLimits::default());
    assert_eq!((p.b.input_capacity(), p.b.input_growth()), (READ_BUFFER_BASE, 0));
    let frame = sent_frame(&mut p, 200_000);
    let mut grown = 0;
    for chunk in frame.chunks(4096) {
        grown += p.b.input_growth();
        let buf = p.b.input_buf();
        buf[..chunk.len()].copy_from_slice(chunk);
        p.b.input_filled(p.now, chunk.len());
        let _ = p.b.poll_event().map(|e| assert!(matches!(e, Event::Msg { .. })));
    }
    assert!(p.b.input_capacity() >= frame.len(), "grown to hold the frame");
    assert_eq!(p.b.input_capacity() - READ_BUFFER_BASE, grown, "each growth was announced");
    assert_eq!(p.b.shrink_input(), grown, "given back once read");
    assert_eq!(p.b.input_capacity(), READ_BUFFER_BASE);
    // Not while a frame is under way.
    let next = sent_frame(&mut p, 50_000);
    p.b.handle_input(p.now, &next[..30_000]);
    assert!(p.b.poll_event().is_none());
    assert_eq!(p.b.shrink_input(), 0);
}

// -- Messages in parts --------------------------------------------------------

/// Limits with small frames, so that a message of a few KiB goes in parts.
fn small_frames() -> LinkLimits {
    LinkLimits { max_frame: 4096, max_message: 1 << 20, ..LinkLimits::default() }
}

/// A message of `len` body bytes (0, 1, 2, ...) to actor 9, encoded as one MSG.
fn large_frame(len: usize) -> (Vec<u8>, Vec<u8>) {
    let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let header = FrameHeader { dst: ActorId::from_u128(9), corr: 5, ..FrameHeader::new(FrameKind::Msg) };
    let mut frame = Vec::new();
    encode_frame(&header, &body, usize::MAX, &mut frame).unwrap();
    (frame, body)
}

/// Moves bytes both ways until neither side has any, `b` granting what
/// pieces ask; `b`'s messages (seq and body) and `a`'s acknowledged.
fn run_parts(p: &mut Pair, grant: bool) -> (Vec<(u64, Vec<u8>)>, Vec<u64>) {
    let (mut got, mut acked) = (Vec::new(), Vec::new());
    for _ in 0..10_000 {
        p.a_to_b();
        let mut any = false;
        while let Some(e) = p.b.poll_event() {
            any = true;
            match e {
                Event::Msg { header, body, .. } => got.push((header.seq, body.to_vec())),
                other => panic!("{other:?}"),
            }
        }
        if grant && p.b.part_growth() > 0 {
            let n = p.b.part_growth();
            p.b.grant_parts(n);
            continue;
        }
        p.b.flush_acks();
        p.b_to_a();
        while let Some(e) = p.a.poll_event() {
            match e {
                Event::Acked(t) => acked.extend(t),
                other => panic!("{other:?}"),
            }
        }
        if !any && p.a.transmit().is_empty() {
            break;
        }
    }
    (got, acked)
}

#[test]
fn a_message_larger_than_a_frame_goes_in_parts_with_other_frames_between() {
    let mut p = Pair::new(small_frames());
    let (frame, body) = large_frame(100_000);
    p.a.send_large(frame, Vec::new(), 1);
    p.a.send_msg(&msg_frame(2), 2);
    // The small message goes out after one part, not after the whole.
    assert!(p.a.transmit().len() < 2 * 4096, "{} bytes queued", p.a.transmit().len());
    let (got, acked) = run_parts(&mut p, true);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], (1, br#"{"n":2}"#.to_vec()), "the small one, numbered first");
    assert_eq!(got[1].0, 2, "the large one takes its number with its last piece");
    assert!(got[1].1 == body, "delivered whole and unchanged");
    assert_eq!(acked, [2, 1]);
    // Once delivered, what was granted comes back.
    assert!(p.b.poll_event().is_none());
    assert!(p.b.release_parts() >= 100_000);
    assert_eq!(p.b.release_parts(), 0);
}

#[test]
fn a_piece_waits_for_room_and_reading_with_it() {
    let mut p = Pair::new(small_frames());
    let (frame, body) = large_frame(10_000);
    p.a.send_large(frame, Vec::new(), 1);
    p.a_to_b();
    assert!(events(&mut p.b).is_empty());
    let want = p.b.part_growth();
    assert!(want > 0 && want <= 4096, "{want}");
    assert!(!p.b.wants_read(), "no more is read while a piece waits");
    p.b.grant_parts(want);
    assert!(p.b.wants_read());
    let (got, acked) = run_parts(&mut p, true);
    assert!(got.len() == 1 && got[0].1 == body);
    assert_eq!(acked, [1]);
}

#[test]
fn a_message_in_parts_never_holds_more_than_its_length() {
    let mut p = Pair::new(small_frames());
    let (frame, _) = large_frame(50_001);
    p.a.send_large(frame, Vec::new(), 1);
    let mut granted = 0;
    for _ in 0..1000 {
        p.a_to_b();
        let _ = events(&mut p.b);
        let n = p.b.part_growth();
        if n == 0 && p.a.transmit().is_empty() {
            break;
        }
        granted += n;
        p.b.grant_parts(n);
    }
    assert!((50_001..=50_001 + 4096).contains(&granted), "{granted}");
}

#[test]
fn a_link_lost_mid_message_delivers_nothing_and_reports_it_unacknowledged() {
    let mut p = Pair::new(small_frames());
    let (frame, _) = large_frame(20_000);
    p.a.send_large(frame, Vec::new(), 7);
    p.a_to_b();
    p.b.grant_parts(1 << 20);
    assert!(events(&mut p.b).is_empty());
    p.b.handle_input(p.now, &[]);
    assert_eq!(events(&mut p.b), [Seen::Closed("peer_closed".into())]);
    assert_eq!(p.b.release_parts(), 1 << 20, "the half-received message is gone");
    p.a.close(CloseReason::Shutdown);
    let _ = events(&mut p.a);
    assert_eq!(p.a.take_unacked().collect::<Vec<_>>(), [7]);
}

/// A PART (or a last MSG, `kind` Msg) for actor 9 with `body`.
fn piece(kind: FrameKind, flags: u8, dst: u128, seq: u64, body: &[u8]) -> Vec<u8> {
    let header = FrameHeader { flags, dst: ActorId::from_u128(dst), seq, corr: 5, ..FrameHeader::new(kind) };
    control_frame(header, body)
}

fn first_part(total: u64, data: &[u8]) -> Vec<u8> {
    piece(FrameKind::Part, FIRST_PART, 9, 0, &[&total.to_be_bytes()[..], data].concat())
}

#[test]
fn pieces_that_break_the_rules_close_the_link() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a part with no first", piece(FrameKind::Part, 0, 9, 0, b"x"), "protocol_bad_part"),
        ("a last MSG with no parts", piece(FrameKind::Msg, LAST_PART, 9, 1, b"x"), "protocol_bad_part"),
        ("two firsts", [first_part(10, b"ab"), first_part(10, b"cd")].concat(), "protocol_bad_part"),
        (
            "a part of another message",
            [first_part(10, b"ab"), piece(FrameKind::Part, 0, 8, 0, b"cd")].concat(),
            "protocol_bad_part",
        ),
        (
            "more than announced",
            [first_part(3, b"ab"), piece(FrameKind::Part, 0, 9, 0, b"cd")].concat(),
            "protocol_bad_part",
        ),
        (
            "less than announced at the end",
            [first_part(10, b"ab"), piece(FrameKind::Msg, LAST_PART, 9, 1, b"cd")].concat(),
            "protocol_bad_part",
        ),
        ("over the largest message", first_part((1 << 20) + 1, b"ab"), "protocol_message_too_large"),
        ("no length", piece(FrameKind::Part, FIRST_PART, 9, 0, b"abc"), "protocol_bad_part"),
    ];
    for (what, bytes, key) in cases {
        let mut p = Pair::new(small_frames());
        p.b.grant_parts(1 << 20);
        p.b.handle_input(p.now, &bytes);
        let seen = events(&mut p.b);
        assert_eq!(seen.last(), Some(&Seen::Closed(key.into())), "{what}: {seen:?}");
        assert!(seen.iter().all(|s| !matches!(s, Seen::Msg(..))), "{what}: nothing delivered");
    }
}

#[test]
fn a_message_in_parts_that_stops_coming_is_cut_at_the_frame_deadline() {
    let mut p = Pair::new(small_frames());
    p.b.grant_parts(1 << 20);
    p.b.handle_input(p.now, &first_part(60 << 10, &[1; 1000]));
    assert!(events(&mut p.b).is_empty());
    let deadline = p.now + LinkLimits::default().frame_deadline;
    assert!(p.b.poll_timeout().is_some_and(|t| t <= deadline));
    // Heartbeats keep the link alive, not the message.
    for quarter in 1..4 {
        let at = p.now + LinkLimits::default().frame_deadline * quarter / 4;
        p.b.handle_input(at, &heartbeats(1));
        assert!(events(&mut p.b).is_empty());
        p.b.handle_timeout(at);
    }
    p.b.handle_timeout(deadline);
    assert_eq!(events(&mut p.b), [Seen::Closed("slow_frame".into())]);
}

#[test]
fn a_piece_waiting_for_room_is_late_once_the_peer_ended() {
    let mut p = Pair::new(small_frames());
    p.b.grant_parts(2000);
    p.b.handle_input(p.now, &first_part(60 << 10, &[1; 1000]));
    p.b.handle_input(p.now, &piece(FrameKind::Part, 0, 9, 0, &[2; 3000]));
    assert!(events(&mut p.b).is_empty());
    assert!(p.b.part_growth() > 0, "its second piece waits for room");
    let deadline = LinkLimits::default().frame_deadline;
    p.b.handle_timeout(p.now + deadline * 2);
    assert!(p.b.is_up(), "waiting for room is this side's doing");
    // The peer has gone: the room it waits for may never come.
    p.b.peer_ended();
    p.b.handle_timeout(p.now + deadline * 5 / 2);
    assert!(p.b.is_up(), "the deadline runs from the last wait excused");
    p.b.handle_timeout(p.now + deadline * 3);
    assert_eq!(events(&mut p.b), [Seen::Closed("slow_frame".into())]);
}

#[test]
fn a_message_sent_from_its_blobs_arrives_as_its_whole_encoding() {
    #[derive(serde::Serialize)]
    struct Picture {
        name: &'static str,
        pixels: msg_header::Bytes,
        empty: msg_header::Bytes,
        thumbnail: msg_header::Bytes,
    }
    let picture = Picture {
        name: "p",
        pixels: (0..30_000u32).map(|i| i as u8).collect::<Vec<u8>>().into(),
        empty: msg_header::Bytes::new(),
        thumbnail: vec![9; 5000].into(),
    };
    let mut whole = Vec::new();
    msg_header::encode_body(&picture, &mut whole).unwrap();
    let header = FrameHeader { dst: ActorId::from_u128(9), ..FrameHeader::new(FrameKind::Msg) };
    let mut head = vec![0; FRAME_HEADER_LEN];
    let blobs = msg_header::encode_body_split(&picture, &mut head).unwrap();
    assert_eq!(blobs.len(), 3);
    let mut frame = Vec::new();
    encode_frame(&header, &head[FRAME_HEADER_LEN..], usize::MAX, &mut frame).unwrap();
    let mut p = Pair::new(small_frames());
    p.a.send_large(frame, blobs, 1);
    let (got, acked) = run_parts(&mut p, true);
    assert!(got.len() == 1 && got[0].1 == whole, "the pieces add up to the whole encoding");
    assert_eq!(acked, [1]);
}

/// A client `a` that requires encryption and a server `b`, both with the
/// secret, linked: their handshake, then Noise's, in memory.
fn encrypted_pair(config: LinkLimits) -> Pair {
    let now = Instant::now();
    let with_secret = |name: &str| handshake(name).with_secret(crate::Secret::new("s3cret").unwrap());
    let mut p = Pair {
        a: Session::new(Role::Client, with_secret("a").with_encryption(), [1; 32], config.clone(), now),
        b: Session::new(Role::Server, with_secret("b"), [2; 32], config, now),
        now,
    };
    let (mut a_up, mut b_up) = (false, false);
    for _ in 0..4 {
        p.a_to_b();
        for e in events(&mut p.b) {
            assert_eq!(e, Seen::Up);
            b_up = true;
        }
        p.b_to_a();
        for e in events(&mut p.a) {
            assert_eq!(e, Seen::Up);
            a_up = true;
        }
    }
    assert!(a_up && b_up, "both up");
    assert!(p.a.peer().unwrap().encrypted && p.b.peer().unwrap().encrypted);
    p
}

#[test]
fn an_encrypted_link_carries_messages_both_ways_with_nothing_in_the_clear() {
    let mut p = encrypted_pair(LinkLimits::default());
    for n in 1..=3 {
        p.a.send_msg(&msg_frame(n), n);
    }
    let wire = p.a.transmit().to_vec();
    assert!(!wire.windows(4).any(|w| w == b"\"n\":"), "no JSON on the wire");
    p.a.transmitted(p.now, wire.len());
    // A byte at a time: frames and records end anywhere.
    for byte in wire.chunks(1) {
        p.b.handle_input(p.now, byte);
    }
    assert_eq!(events(&mut p.b), [1, 2, 3].map(|n| Seen::Msg(n, format!("{{\"n\":{n}}}"))));
    p.b.flush_acks();
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Acked(vec![1, 2, 3])]);
}

#[test]
fn a_record_changed_in_transit_closes_an_encrypted_link_with_its_reason() {
    let mut p = encrypted_pair(LinkLimits::default());
    p.a.send_msg(&msg_frame(1), 1);
    let mut wire = p.a.transmit().to_vec();
    let at = wire.len() / 2;
    wire[at] ^= 0x40;
    p.b.handle_input(p.now, &wire);
    assert_eq!(events(&mut p.b), [Seen::Closed("protocol_bad_record".into())]);
}

#[test]
fn a_message_larger_than_a_record_crosses_an_encrypted_link_in_parts() {
    let mut p = encrypted_pair(small_frames());
    let (frame, body) = large_frame(200_000);
    p.a.send_large(frame, Vec::new(), 1);
    let (got, acked) = run_parts(&mut p, true);
    assert!(got.len() == 1 && got[0].1 == body, "delivered whole");
    assert_eq!(acked, [1]);
}

#[test]
fn a_client_whose_node_key_the_server_does_not_list_is_told_so_in_a_close() {
    let (a, b, stranger) = (
        crate::NodeKeys::generate().unwrap(),
        crate::NodeKeys::generate().unwrap(),
        crate::NodeKeys::generate().unwrap(),
    );
    let with = |name: &str, keys: &crate::NodeKeys, allowed: &crate::NodeKeys| {
        handshake(name)
            .with_secret(crate::Secret::new("s3cret").unwrap())
            .with_node_keys(keys.clone().allow(&allowed.public_hex()).unwrap())
    };
    let now = Instant::now();
    let mut p = Pair {
        a: Session::new(Role::Client, with("a", &stranger, &b), [1; 32], LinkLimits::default(), now),
        b: Session::new(Role::Server, with("b", &b, &a), [2; 32], LinkLimits::default(), now),
        now,
    };
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        p.a_to_b();
        seen_b.extend(events(&mut p.b));
        p.b_to_a();
        seen_a.extend(events(&mut p.a));
    }
    assert_eq!(
        seen_b,
        [Seen::Closed("protocol_handshake_unlisted_key".into())],
        "the server never has it up"
    );
    assert_eq!(seen_a, [Seen::Up, Seen::Closed("closed_unlisted_key".into())], "told why");
}

/// All that `a` has to send, the output drained.
fn all_output(p: &mut Pair) -> Vec<u8> {
    let mut wire = Vec::new();
    loop {
        let out = p.a.transmit().to_vec();
        if out.is_empty() {
            return wire;
        }
        p.a.transmitted(p.now, out.len());
        wire.extend_from_slice(&out);
    }
}

/// Feeds `wire` to `b` `chunk` bytes at a time, straight into a message
/// in parts when `b` offers it (through its read buffer when not
/// `direct`), its events polled and its pieces granted between reads;
/// `b`'s messages, its other events, the bytes that went straight in and
/// the room `b` holds for parts at the end.
fn trickle(p: &mut Pair, wire: &[u8], chunk: usize, direct: bool) -> (Vec<Vec<u8>>, Vec<Seen>, usize, usize) {
    let (mut got, mut seen, mut straight) = (Vec::new(), Vec::new(), 0);
    let (mut at, mut granted, mut released) = (0, 0, 0);
    for _ in 0..10 * wire.len() {
        while let Some(e) = p.b.poll_event() {
            match e {
                Event::Msg { body, .. } => got.push(body.to_vec()),
                other => seen.push(Seen::of(other)),
            }
        }
        // As a link gives back what is not held after each turn.
        released += p.b.release_parts();
        if p.b.part_growth() > 0 {
            let n = p.b.part_growth();
            granted += n;
            assert!(granted - released <= 400_000, "{granted} granted, {released} given back");
            p.b.grant_parts(n);
            continue;
        }
        if at == wire.len() || p.b.is_closed() {
            return (got, seen, straight, granted - released);
        }
        let n = match p.b.input_direct().filter(|_| direct) {
            Some((body, left)) => {
                let n = left.min(chunk).min(wire.len() - at);
                body.extend_from_slice(&wire[at..at + n]);
                straight += n;
                n
            }
            None => {
                let buf = p.b.input_buf();
                let n = buf.len().min(chunk).min(wire.len() - at);
                buf[..n].copy_from_slice(&wire[at..at + n]);
                n
            }
        };
        p.b.input_filled(p.now, n);
        at += n;
    }
    panic!("the bytes were not taken");
}

#[test]
fn pieces_read_as_they_come_go_straight_into_their_message() {
    for (chunk, direct) in [(1000, true), (70_000, true), (3000, false), (1, true)] {
        let mut p = Pair::new(LinkLimits::default());
        let (frame, body) = large_frame(300_000);
        p.a.send_large(frame, Vec::new(), 1);
        p.a.send_msg(&msg_frame(2), 2);
        let wire = all_output(&mut p);
        let (got, seen, straight, _) = trickle(&mut p, &wire, chunk, direct);
        assert!(seen.is_empty(), "{seen:?}");
        assert_eq!(got.len(), 2, "chunks of {chunk}");
        assert_eq!(got[0], br#"{"n":2}"#.to_vec(), "the small one first");
        assert!(got[1] == body, "delivered whole and unchanged (chunks of {chunk})");
        if direct && chunk < 4096 {
            assert!(straight > 200_000, "{straight} bytes went straight in");
        }
    }
}

#[test]
fn a_link_lost_while_a_piece_comes_straight_in_delivers_nothing() {
    let mut p = Pair::new(LinkLimits::default());
    let (frame, _) = large_frame(300_000);
    p.a.send_large(frame, Vec::new(), 1);
    let wire = all_output(&mut p);
    let (got, seen, straight, _) = trickle(&mut p, &wire[..150_000], 1000, true);
    assert!(got.is_empty() && seen.is_empty() && straight > 0, "{seen:?}");
    assert!(p.b.input_direct().is_some(), "a piece under way");
    p.b.handle_input(p.now, &[]);
    assert_eq!(events(&mut p.b), [Seen::Closed("truncated_frame".into())]);
    assert!(p.b.input_direct().is_none());
    assert!(p.b.release_parts() > 0, "the half-received message's room comes back");
}

#[test]
fn a_piece_that_comes_straight_in_still_has_the_frame_deadline() {
    let mut p = Pair::new(LinkLimits::default());
    let (frame, _) = large_frame(300_000);
    p.a.send_large(frame, Vec::new(), 1);
    let wire = all_output(&mut p);
    let _ = trickle(&mut p, &wire[..150_000], 1000, true);
    assert!(p.b.input_direct().is_some(), "a piece under way");
    let deadline = p.now + LinkLimits::default().frame_deadline;
    assert!(p.b.poll_timeout().is_some_and(|t| t <= deadline));
    // A byte now and then keeps the link alive, not the piece.
    for quarter in 1..4 {
        let at = p.now + LinkLimits::default().frame_deadline * quarter / 4;
        p.b.handle_input(at, &wire[150_000 + quarter as usize - 1..][..1]);
        assert!(events(&mut p.b).is_empty());
        p.b.handle_timeout(at);
    }
    p.b.handle_timeout(deadline);
    assert_eq!(events(&mut p.b), [Seen::Closed("slow_frame".into())]);
}

#[test]
fn a_piece_announced_and_not_sent_is_given_no_more_room_than_a_part() {
    let mut p = Pair::new(LinkLimits::default());
    // A first part, then the header of a part as large as a frame may be
    // and a few bytes of it: the peer sends no more.
    let big = LinkLimits::default().max_frame - FRAME_HEADER_LEN;
    let second = piece(FrameKind::Part, 0, 9, 0, &vec![7; big]);
    let wire = [first_part(8 << 20, &[1; 1000]), second[..FRAME_HEADER_LEN + 5000].to_vec()].concat();
    let (got, seen, _, held) = trickle(&mut p, &wire, 1000, true);
    assert!(got.is_empty() && seen.is_empty(), "{seen:?}");
    assert!(p.b.input_direct().is_some(), "the second part comes straight in");
    assert!(held <= 1000 + 5000 + PART_BODY, "{held} bytes of room for 6000 received");
}

#[test]
fn a_last_piece_coming_straight_in_is_not_acknowledged_until_whole() {
    let mut p = Pair::new(LinkLimits::default());
    let (frame, body) = large_frame(300_000);
    p.a.send_large(frame, Vec::new(), 7);
    let wire = all_output(&mut p);
    let (got, seen, _, _) = trickle(&mut p, &wire[..wire.len() - 10_000], 1000, true);
    assert!(got.is_empty() && seen.is_empty(), "{seen:?}");
    assert!(p.b.input_direct().is_some(), "the last piece comes straight in");
    // What `b` sends meanwhile acknowledges nothing of it.
    p.b.send_msg(&msg_frame(1), 1);
    p.b.flush_acks();
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Msg(1, r#"{"n":1}"#.into())]);
    // Whole but not yet handed out, it is not acknowledged either.
    p.b.handle_input(p.now, &wire[wire.len() - 10_000..]);
    p.b.send_msg(&msg_frame(2), 2);
    p.b.flush_acks();
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Msg(2, r#"{"n":2}"#.into())]);
    // Handed out, it is.
    let Some(Event::Msg { header, body: got, .. }) = p.b.poll_event() else { panic!("no message") };
    assert!(header.seq == 1 && got == &body[..]);
    p.b.flush_acks();
    p.b_to_a();
    assert_eq!(events(&mut p.a), [Seen::Acked(vec![7])]);
}

#[test]
fn a_link_lost_before_its_last_piece_is_whole_reports_the_message_unacknowledged() {
    let mut p = Pair::new(LinkLimits::default());
    let (frame, _) = large_frame(300_000);
    p.a.send_large(frame, Vec::new(), 7);
    let wire = all_output(&mut p);
    let _ = trickle(&mut p, &wire[..wire.len() - 10_000], 1000, true);
    assert!(p.b.input_direct().is_some(), "the last piece comes straight in");
    p.b.send_msg(&msg_frame(1), 1);
    p.b.flush_acks();
    p.b_to_a();
    let _ = events(&mut p.a);
    p.a.close(CloseReason::Shutdown);
    let _ = events(&mut p.a);
    assert_eq!(p.a.take_unacked().collect::<Vec<_>>(), [7]);
}
