//! A peer that stops reading while we flood it: our memory stays bounded
//! by the window, `try_send` gives `Full`, and after the write deadline the
//! link is cut as a slow consumer, while another link completes its echo.

mod support;

use std::time::Duration;

use ipchnl::{ActorSender, Manager, SendError, Terminated, TerminationReason};
use support::proxy::{Mode, Proxy};
use support::*;
use testkit::Bulk;

#[test]
fn a_peer_that_stops_reading_is_cut_and_costs_no_more_than_the_window() {
    const WINDOW: usize = 256;
    let log = tempfile_path::TempFile::with("");
    let stuck = Serve::with_test_actors(&["--sink-log", log.path()]);
    let healthy = Serve::start("tcp://127.0.0.1:0", &[]);
    let proxy = Proxy::start(&stuck.addr);
    let m = Manager::new(config("slow").window(WINDOW).write_deadline(Duration::from_millis(500))).unwrap();
    m.connect(&proxy.addr).unwrap();
    let sink = m.find_by_name("sink").unwrap();
    let healthy_peer = m.connect(&healthy.addr).unwrap();
    let (watcher, seen) = ActorSender::inbox("watcher");
    sink.watch(&watcher).unwrap();

    // The peer stops reading: nothing we send is acknowledged any more, and
    // the window's worth (16 MiB here) is more than the sockets buffer.
    proxy.set(Mode::StallUpstream);
    let pad = "x".repeat(64 * 1024);
    let mut accepted = 0;
    let full = loop {
        match sink.try_send(Bulk::new(accepted as u64 + 1, pad.clone())) {
            Ok(()) => accepted += 1,
            Err(SendError::Full(msg)) => break msg,
            Err(e) => panic!("expected Full, got {e:?}"),
        }
        assert!(accepted <= WINDOW, "more than the window was taken");
    };
    assert_eq!(accepted, WINDOW, "exactly the window, then Full");
    assert_eq!(full.downcast::<Bulk>().unwrap().n, WINDOW as u64 + 1);

    // The other link is not held up.
    let other = m.find_by_name(&format!("server@{}", healthy_peer.node_name)).unwrap();
    echo_against(&m, other, 1000);

    // The stalled link is cut at its write deadline (the peer's heartbeats
    // still arrive: it is the writes that wait).
    let t = seen.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Terminated>().unwrap();
    assert_eq!(t.reason, TerminationReason::LinkDown);
    let stats = m.stats();
    assert_eq!(stats.closes.get("slow_consumer"), Some(&1), "{stats:?}");
    // What was not acknowledged is reported (some passed before the stall).
    let reported = stats.dead_letters.get("unacknowledged").copied().unwrap_or(0);
    assert!(reported > 0 && reported <= WINDOW as u64, "{stats:?}");
}
