//! The unchanged echo client runs against a server in another process,
//! found by protocol, over TCP, a Unix socket and shared memory; so do
//! binary payloads.

mod support;

use ipchnl::echo::{BytesEchoService, Client, EchoBytes, EchoReq, EchoStart, echo_requestee_protocol};
use ipchnl::{ActorOptions, Bytes, Manager};
use support::*;

fn echo_runs(m: &Manager, serve: &Serve) {
    let peer = m.connect(&serve.addr).unwrap();
    // NAME@NODE names the actor of one node exactly.
    let exact = m.find_by_name(&format!("server@{}", peer.node_name)).unwrap();
    assert_eq!(exact.node_id(), peer.node_id);
    assert!(m.find_by_name("server@no-such-node").is_none());
    let found = m.find_by_protocol(echo_requestee_protocol().id());
    assert_eq!(found.len(), 1, "the server of the other process, and only it");
    assert!(found[0].is_remote());
    assert_eq!(found[0].node_id(), peer.node_id);
    let client =
        m.add_with("client", Client::new(), ActorOptions::default().executor(peer.executor)).unwrap();
    for n in [0, 1, 10_000] {
        let done = client.ask(EchoStart::new(n), HANG_GUARD).unwrap();
        assert_eq!((done.sent, done.received), (n, n));
    }
    // Location transparency: ask works on the remote server as on a local one.
    let reply = found[0].ask(EchoReq::new(42, 7), HANG_GUARD).unwrap();
    assert_eq!((reply.counter, reply.req_timestamp_ns), (42, 7));
    // Binary payloads travel beside the JSON and come back byte for byte;
    // one larger than a frame goes in parts, both ways.
    let bytes = m.find::<BytesEchoService>("bytes").expect("serve runs `bytes`");
    for (tag, len) in [(1, 0), (2, 1), (3, 300_000), (4, 16 << 20)] {
        let data = Bytes::from((0..len).map(|i| (i * 7 + tag) as u8).collect::<Vec<u8>>());
        let reply = bytes.ask(EchoBytes::new(tag as u64, data.clone()), HANG_GUARD).unwrap();
        assert_eq!(reply.tag, tag as u64);
        assert!(reply.data == data, "{len} bytes came back changed");
    }
    assert_eq!(m.dead_letter_count(), 0);
}

#[test]
fn echo_between_two_processes_over_tcp() {
    let serve = Serve::start("tcp://127.0.0.1:0", &[]);
    let m = manager("echo-tcp");
    echo_runs(&m, &serve);
}

#[test]
fn echo_between_two_processes_over_a_unix_socket() {
    let path = socket_path("echo");
    let serve = Serve::start(&format!("unix:{}", path.display()), &[]);
    let m = manager("echo-unix");
    echo_runs(&m, &serve);
}

#[test]
fn echo_between_two_processes_over_shared_memory() {
    let name = shm_name("echo");
    let serve = Serve::start(&name.url(), &[]);
    let m = manager("echo-shm");
    echo_runs(&m, &serve);
}

#[test]
fn lookups_find_local_actors_first_then_linked_nodes() {
    let serve = Serve::start("tcp://127.0.0.1:0", &[]);
    let m = manager("lookup");
    let peer = m.connect(&serve.addr).unwrap();
    // Added after the remote one was known: local still comes first.
    let local = m.add("server", ipchnl::echo::Server::new()).unwrap();
    let remote = m.find_by_name(&format!("server@{}", peer.node_name)).unwrap();
    assert!(remote.is_remote() && remote.node_id() == peer.node_id);

    assert_eq!(m.find_by_name("server"), Some(local.clone()));
    assert_eq!(m.find_by_name(&format!("server@{}", m.config().identity.node_name)), Some(local.clone()));
    assert_eq!(m.find_by_protocol(echo_requestee_protocol().id()), [local, remote.clone()]);
    let reply = remote.ask(EchoReq::new(5, 0), HANG_GUARD).unwrap();
    assert_eq!(reply.counter, 5);
}

#[test]
fn serve_shuts_down_in_order_on_sigterm() {
    let path = socket_path("term");
    shuts_down_in_order(&path.url(), &path);
}

#[test]
fn serve_over_shared_memory_shuts_down_in_order_on_sigterm() {
    let name = shm_name("term");
    shuts_down_in_order(&name.url(), &name.socket());
}

fn shuts_down_in_order(listen: &str, path: &std::path::Path) {
    let mut serve = Serve::start(listen, &[]);
    let m = manager("term");
    m.connect(&serve.addr).unwrap();
    let server = m.find_by_name("server").unwrap();
    let (watcher, seen) = ipchnl::ActorSender::inbox("watcher");
    server.watch(&watcher).unwrap();
    // Frames keep their order: once this is answered, the watch is registered.
    server.ask(EchoReq::new(1, 0), HANG_GUARD).unwrap();
    assert!(serve.terminate().success());
    // An orderly shutdown: the remote watcher hears Shutdown, not link down.
    let t = seen.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<ipchnl::Terminated>().unwrap();
    assert_eq!(t.reason, ipchnl::TerminationReason::Shutdown);
    assert!(!path.exists(), "the socket file is removed");
}

#[test]
fn round_trips_go_on_while_a_large_message_is_under_way() {
    let serve = Serve::start("tcp://127.0.0.1:0", &[]);
    let m = manager("echo-large");
    m.connect(&serve.addr).unwrap();
    let bytes = m.find::<BytesEchoService>("bytes").expect("serve runs `bytes`");
    let server = m.find_by_name("server").expect("the echo server");
    let data = Bytes::from(vec![0x5a; 48 << 20]);
    std::thread::scope(|s| {
        let large = s.spawn(|| bytes.ask(EchoBytes::new(9, data.clone()), HANG_GUARD));
        // Small round trips are not queued behind the 48 MiB each way.
        for n in 1..=200 {
            let reply = server.ask(EchoReq::new(n, 0), HANG_GUARD).unwrap();
            assert_eq!(reply.counter, n);
        }
        let reply = large.join().unwrap().unwrap();
        assert!(reply.data == data);
    });
    assert_eq!(m.dead_letter_count(), 0);
}

#[test]
fn a_message_larger_than_the_largest_is_refused_before_anything_is_sent() {
    let serve = Serve::start("tcp://127.0.0.1:0", &[]);
    let m = Manager::new(config("too-large").max_message(1 << 20)).unwrap();
    m.connect(&serve.addr).unwrap();
    let bytes = m.find::<BytesEchoService>("bytes").expect("serve runs `bytes`");
    let err = bytes.send(EchoBytes::new(1, Bytes::from(vec![1; 2 << 20]))).unwrap_err();
    assert!(matches!(err, ipchnl::SendError::TooLarge(_)), "{err:?}");
    // The link is fine, and one just under the largest goes.
    let reply = bytes.ask(EchoBytes::new(2, Bytes::from(vec![2; 1000 << 10])), HANG_GUARD).unwrap();
    assert_eq!(reply.data.len(), 1000 << 10);
}
