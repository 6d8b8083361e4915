//! When the other process dies, stops or restarts.

mod support;

use std::time::Duration;

use ipchnl::echo::{Client, EchoReq, EchoStart};
use ipchnl::{
    ActorOptions, ActorSender, DeadLetterReason, Manager, SendError, Terminated, TerminationReason,
};
use support::*;

#[test]
fn kill_9_mid_echo_reports_the_unacknowledged_and_ends_the_run() {
    kill_9_mid_echo("tcp://127.0.0.1:0");
}

#[test]
fn kill_9_mid_echo_over_shared_memory() {
    let name = shm_name("kill9");
    kill_9_mid_echo(&name.url());
}

fn kill_9_mid_echo(listen: &str) {
    let mut serve = Serve::start(listen, &[]);
    let m = manager("kill9");
    let peer = m.connect(&serve.addr).unwrap();
    let server = m.find_by_name("server").unwrap();
    let client = m
        .add_with(
            "client",
            Client::with_partner(server.clone()),
            ActorOptions::default().executor(peer.executor),
        )
        .unwrap();
    let run = std::thread::spawn(move || client.ask(EchoStart::new(u64::MAX), HANG_GUARD));
    // Some round trips happen, then the server dies under the client.
    eventually("round trips before the kill", || (m.stats().links[0].msgs_in >= 100).then_some(()));
    serve.kill9();
    let done = run.join().unwrap().unwrap();
    // Requests go one at a time: at most the last one is unanswered.
    assert!(done.received >= 100, "{done:?}");
    assert!(done.sent - done.received <= 1, "{done:?}");
    if done.received < done.sent {
        // The request in flight when the link died is reported, not lost,
        // unless the server had acknowledged it (it was in its mailbox)
        // and died before answering: a killed process loses its
        // mailboxes, and the server takes no receipts (GUARANTEES.md,
        // "What an acknowledgement means"). The link reports what it
        // leaves unacknowledged as it goes down, before the client hears
        // of it and ends its run: nothing more comes later.
        match m.dead_letters().try_recv() {
            Ok(letter) => {
                assert_eq!(letter.reason, DeadLetterReason::Unacknowledged);
                assert_eq!(letter.msg.downcast::<EchoReq>().unwrap().counter, done.sent);
            }
            Err(_) => assert_eq!(m.dead_letter_count(), 0),
        }
    } else {
        // Its reply had arrived before the link died: nothing to report.
        assert_eq!(m.dead_letter_count(), 0);
    }
    // The dead server leaves the directory, and later sends to the address
    // the client had fail at once, handing the message back.
    assert!(m.find_by_name("server").is_none());
    match server.try_send(EchoReq::new(1, 0)) {
        Err(SendError::Disconnected(msg)) => assert_eq!(msg.downcast::<EchoReq>().unwrap().counter, 1),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    // Watching it now tells at once, as watching an ended local actor does.
    let (watcher, seen) = ActorSender::inbox("late watcher");
    server.watch(&watcher).unwrap();
    let t = seen.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Terminated>().unwrap();
    assert_eq!((t.actor, t.reason), (server.id(), TerminationReason::LinkDown));
}

#[test]
fn a_stopped_peer_is_declared_down_by_heartbeat() {
    stopped_peer_down_by_heartbeat("tcp://127.0.0.1:0");
}

#[test]
fn a_stopped_peer_over_shared_memory_is_declared_down_by_heartbeat() {
    let name = shm_name("sigstop");
    stopped_peer_down_by_heartbeat(&name.url());
}

fn stopped_peer_down_by_heartbeat(listen: &str) {
    let serve = Serve::start(listen, &[]);
    let m = Manager::new(config("sigstop").heartbeat(Duration::from_millis(100), Duration::from_millis(500)))
        .unwrap();
    m.connect(&serve.addr).unwrap();
    let server = m.find_by_name("server").unwrap();
    let (watcher, seen) = ActorSender::inbox("watcher");
    server.watch(&watcher).unwrap();
    // Still up while the peer lives (heartbeats flow both ways).
    assert_eq!(server.ask(EchoReq::new(1, 0), HANG_GUARD).unwrap().counter, 1);
    serve.stop();
    let t = seen.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Terminated>().unwrap();
    serve.signal(rustix::process::Signal::CONT);
    assert_eq!((t.actor, t.reason), (server.id(), TerminationReason::LinkDown));
    assert!(!m.peers()[0].up);
    let stats = m.stats();
    assert_eq!(stats.links[0].heartbeats_missed, 1);
    assert_eq!(stats.closes.get("heartbeat_timeout"), Some(&1));
    assert!(stats.links[0].frames_in > 0, "the peer was heard before it stopped");
}

#[test]
fn a_dialed_link_reconnects_to_a_restarted_peer() {
    let path = socket_path("restart");
    reconnects_to_restarted_peer(&path.url());
}

#[test]
fn a_dialed_link_over_shared_memory_reconnects_to_a_restarted_peer() {
    let name = shm_name("restart");
    reconnects_to_restarted_peer(&name.url());
}

fn reconnects_to_restarted_peer(listen: &str) {
    let listen = listen.to_owned();
    let node = format!("restarted-{}", std::process::id());
    let mut first = Serve::start(&listen, &["--node-name", &node]);
    let m = Manager::new(
        config("redial").reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200)),
    )
    .unwrap();
    let before = m.connect(&first.addr).unwrap();
    echo_completes(&m, 10);
    let old = m.find_by_name("server").unwrap();
    first.kill9();
    // The stale socket file is replaced by the restarted server.
    let _second = Serve::start(&listen, &["--node-name", &node]);
    let new = eventually("the restarted server in the directory", || {
        m.find_by_name("server").filter(|s| s.id() != old.id() && s.is_remote())
    });
    let after = m.peers().into_iter().find(|p| p.up).unwrap();
    // The same node, known by its new incarnation.
    assert_eq!((after.node_id, after.node_name.as_str()), (before.node_id, node.as_str()));
    assert_eq!(new.ask(EchoReq::new(2, 0), HANG_GUARD).unwrap().counter, 2);
    // The old address stays dead: it named an actor of the old incarnation.
    assert!(old.send(EchoReq::new(3, 0)).is_err());
}

#[test]
fn two_nodes_dialing_each_other_keep_one_link() {
    let a = manager("dial-a");
    let b = manager("dial-b");
    a.add("server-a", ipchnl::echo::Server::new()).unwrap();
    b.add("server-b", ipchnl::echo::Server::new()).unwrap();
    let at_a = a.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let at_b = b.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let (ra, rb) = std::thread::scope(|s| {
        let ra = s.spawn(|| a.connect(&at_b));
        let rb = s.spawn(|| b.connect(&at_a));
        (ra.join().unwrap(), rb.join().unwrap())
    });
    assert!(ra.is_ok() && rb.is_ok(), "{ra:?} {rb:?}");
    // Both agree on one link, and its directory exchange is done.
    let (to_b, to_a) = eventually("one link kept, with each other's actors", || {
        let (pa, pb) = (a.peers(), b.peers());
        let agreed = pa.len() == 1 && pb.len() == 1 && pa[0].up && pb[0].up;
        agreed.then(|| a.find_by_name("server-b").zip(b.find_by_name("server-a"))).flatten()
    });
    // Both sides work through the link that was kept.
    echo_against(&a, to_b, 100);
    echo_against(&b, to_a, 100);
}

#[test]
fn one_node_dialing_another_many_times_at_once_keeps_one_link() {
    // As `connect` during a redial: both ends must keep the same link (the
    // newer dial), whatever order the handshakes finish in at each end,
    // and the dialer does not redial a link the peer says a newer one of
    // its own replaced (that redial replaced the kept link in turn, and
    // the echo below lost a message: 11 runs in 30 on a loaded machine).
    let a = manager("dials-a");
    let b = manager("dials-b");
    b.add("server-b", ipchnl::echo::Server::new()).unwrap();
    let at_b = b.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    let linked: Vec<_> = std::thread::scope(|s| {
        let dials: Vec<_> = (0..8).map(|_| s.spawn(|| a.connect(&at_b))).collect();
        dials.into_iter().map(|d| d.join().unwrap()).collect()
    });
    assert!(linked.iter().all(Result::is_ok), "{linked:?}");
    // The link kept stays up at both ends (a link both ends closed, each
    // keeping the other, would not be dialed again).
    let to_b = eventually("the kept link up at both ends", || {
        let (pa, pb) = (a.peers(), b.peers());
        let up = pa.len() == 1 && pb.len() == 1 && pa[0].up && pb[0].up;
        up.then(|| a.find_by_name("server-b")).flatten()
    });
    echo_against(&a, to_b, 100);
    assert!(a.peers()[0].up && b.peers()[0].up);
}

#[test]
fn a_full_window_is_full_for_try_send_and_waits_for_send() {
    full_window("tcp://127.0.0.1:0");
}

#[test]
fn a_full_window_over_shared_memory_is_full_for_try_send_and_waits_for_send() {
    let name = shm_name("window");
    full_window(&name.url());
}

fn full_window(listen: &str) {
    let serve = Serve::start(listen, &[]);
    let m = Manager::new(config("window").window(2)).unwrap();
    m.connect(&serve.addr).unwrap();
    let server = m.find_by_name("server").unwrap();
    // A stopped peer acknowledges nothing: the window fills.
    serve.stop();
    server.try_send(EchoReq::new(1, 0)).unwrap();
    server.try_send(EchoReq::new(2, 0)).unwrap();
    let err = server.try_send(EchoReq::new(3, 0)).unwrap_err();
    assert!(
        matches!(&err, ipchnl::SendError::Full(msg) if msg.downcast_ref::<EchoReq>().unwrap().counter == 3)
    );
    let late = server.send_timeout(EchoReq::new(4, 0), Duration::from_millis(50)).unwrap_err();
    assert!(matches!(late, ipchnl::SendError::Timeout(_)));
    // `send` waits, and gets its place once the peer runs and acknowledges.
    let waiting = std::thread::spawn(move || server.send(EchoReq::new(5, 0)));
    std::thread::sleep(Duration::from_millis(50));
    serve.signal(rustix::process::Signal::CONT);
    waiting.join().unwrap().unwrap();
    assert_eq!(m.dead_letter_count(), 0);
}

#[test]
fn a_restarted_node_replaces_its_old_link_between_processes() {
    let node = format!("replaced-{}", std::process::id());
    let first = Serve::start("tcp://127.0.0.1:0", &["--node-name", &node]);
    // A heartbeat timeout far beyond the hang guard: only the replacement
    // can close the old link here.
    let m = Manager::new(config("replacer").heartbeat(Duration::from_secs(1), HANG_GUARD * 10)).unwrap();
    m.connect(&first.addr).unwrap();
    let old = m.find_by_name("server").unwrap();
    let (watcher, seen) = ActorSender::inbox("watcher");
    old.watch(&watcher).unwrap();
    // The node stops answering with its link still open; a message goes
    // into its socket and is never acknowledged.
    first.stop();
    old.send(EchoReq::new(1, 0)).unwrap();
    // The same node starts again (a new incarnation) and is dialed.
    let second = Serve::start("tcp://127.0.0.1:0", &["--node-name", &node]);
    let linked = m.connect(&second.addr).unwrap();
    let t = seen.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Terminated>().unwrap();
    assert_eq!((t.actor, t.reason), (old.id(), TerminationReason::LinkDown));
    let dead = m.dead_letters().recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(dead.reason, DeadLetterReason::Unacknowledged);
    let stats = m.stats();
    assert_eq!(stats.closes.get("replaced"), Some(&1), "{:?}", stats.closes);
    assert_eq!(stats.closes.get("heartbeat_timeout"), None);
    // Nothing goes to the old one any more; the new one answers.
    assert!(old.send(EchoReq::new(2, 0)).is_err());
    let peers = m.peers();
    assert_eq!(peers.iter().filter(|p| p.node_name == node && p.up).count(), 1, "{peers:?}");
    assert_eq!(linked.node_name, node);
    let new = m.find_by_name("server").unwrap();
    assert_ne!(new.id(), old.id());
    assert_eq!(new.ask(EchoReq::new(3, 0), HANG_GUARD).unwrap().counter, 3);
    first.signal(rustix::process::Signal::CONT);
}
