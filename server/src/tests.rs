use actor::{ActorSender, StaticDirectory, dispatch};
use echo_reply::EchoReply;

use super::*;

/// The seed's latency report: the echo in one thread, through our
/// addresses and dispatch. Run it with
/// `taskset -c 0 cargo test --release -- --nocapture` in this directory.
#[test]
fn test_1() {
    const LOOPS: usize = 100;
    let report = same_thread_echo(LOOPS).unwrap();
    // What is always true: every request answered once, clocks in order.
    assert_eq!(report.loops.len(), LOOPS);
    assert!(report.loops.iter().all(EchoLoop::is_ordered), "{:?}", report.loops);
    assert!(report.server.contains("Serving { replies: 100 }"), "{}", report.server);
    println!("{report}");
}

#[test]
fn unexpected_messages_are_not_answered() {
    let mut server = Server::new();
    let (addr, rx) = ActorSender::channel("server", &server, None);
    let (me, my_rx) = ActorSender::inbox("me");
    // The server accepts only its protocol; EchoReply is in it but is not a request.
    addr.send_from(EchoReply::new(1, 2, 3), &me).unwrap();
    dispatch(&mut server, &addr, &StaticDirectory::default(), rx.recv().unwrap());
    assert!(my_rx.is_empty());
    assert_eq!(server.state(), ServerState::Serving { replies: 0 });
}
