//! Managers in several processes meeting through a real `nats-server`
//! (the `nats` feature): discovery, echo, the reports of an outage and the
//! recovery from it, expiry of a manager that vanished.
#![cfg(feature = "nats")]

mod support;

use std::process::Command;
use std::time::Duration;

use ipchnl::echo::{EchoReq, echo_requestee_protocol};
use ipchnl::samples::Msg1;
use ipchnl::{
    ActorAddr, ActorId, AskError, DeadLetterReason, Manager, MsgType, NackReason, SendError, System,
    Terminated, TerminationReason, msg_local_macro,
};
use support::{BENCH_PATHS, HANG_GUARD, Nats, Serve, config, eventually, read_log};
use testkit::Seq;

fn pid() -> u32 {
    std::process::id()
}

#[test]
fn two_servers_and_a_client_find_each_other_and_echo() {
    let nats = Nats::start();
    let url = nats.url();
    let s1 = format!("s1-{}", pid());
    let s2 = format!("s2-{}", pid());
    let _one = Serve::start(&url, &["--node-name", &s1]);
    let _two = Serve::start(&url, &["--node-name", &s2]);
    // This process sees both servers, by name and by protocol.
    let m = Manager::new(config("watcher")).unwrap();
    m.connect(&url.parse().unwrap()).unwrap();
    for node in [&s1, &s2] {
        let server = eventually("a server in the directory", || m.find_by_name(&format!("server@{node}")));
        let reply = server.ask(EchoReq::new(7, 0), HANG_GUARD).unwrap();
        assert_eq!(reply.counter, 7);
    }
    let echo_protocol = echo_requestee_protocol().id();
    assert_eq!(m.find_by_protocol(echo_protocol).len(), 2);
    // A third process, the `ipchnl echo` client, finds one and completes.
    let out = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["echo", "--connect", &url, "--insecure", "--count", "500", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "echo failed: {}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((summary["sent"].as_u64(), summary["received"].as_u64()), (Some(500), Some(500)));
}

#[test]
fn a_nats_outage_is_reported_as_a_link_down_and_recovered_from() {
    let mut nats = Nats::start();
    let url = nats.url();
    let node = format!("outage-{}", pid());
    let log = std::env::temp_dir().join(format!("ipchnl-nats-outage-{}.log", pid()));
    let _ = std::fs::remove_file(&log);
    let serve =
        Serve::start(&url, &["--node-name", &node, "--test-actors", "--sink-log", log.to_str().unwrap()]);
    let m = Manager::new(config("outage-tester")).unwrap();
    m.connect(&url.parse().unwrap()).unwrap();
    let server = eventually("the server", || m.find_by_name(&format!("server@{node}")));
    let sink = eventually("the sink", || m.find_by_name(&format!("sink@{node}")));
    let (watcher, seen) = ipchnl::ActorSender::inbox("watcher");
    server.watch(&watcher).unwrap();

    // The server's process stops: nothing sent from now on is acknowledged.
    serve.stop();
    let asked = server.clone();
    let ask = std::thread::spawn(move || asked.ask(EchoReq::new(1, 0), HANG_GUARD));
    const N: u64 = 20;
    for n in 1..=N {
        sink.send(Seq::new(n)).unwrap();
    }
    // The N messages and the ask's request.
    eventually("every message on its way", || (m.stats().links[0].msgs_out > N).then_some(()));

    // NATS goes away: as for a link that goes down.
    nats.kill();
    assert!(matches!(ask.join().unwrap(), Err(AskError::Disconnected)));
    let t = seen.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Terminated>().unwrap();
    assert_eq!((t.actor, t.reason), (server.id(), TerminationReason::LinkDown));
    let mut dead = Vec::new();
    let mut asked_back = false;
    for _ in 0..=N {
        let letter = m.dead_letters().recv_timeout(HANG_GUARD).unwrap();
        assert_eq!(letter.reason, DeadLetterReason::Unacknowledged);
        match letter.msg.downcast::<Seq>() {
            Ok(seq) => dead.push((seq.n, letter.reason)),
            Err(e) => {
                assert_eq!(e.into_inner().downcast::<EchoReq>().unwrap().counter, 1);
                asked_back = true;
            }
        }
    }
    assert!(asked_back, "the ask's request is reported too");
    assert!(m.find_by_name(&format!("server@{node}")).is_none(), "gone with the link");
    serve.signal(rustix::process::Signal::CONT);

    // NATS comes back on the same port: both find each other again.
    let _nats = Nats::on(nats.port);
    let server = eventually("the server again", || m.find_by_name(&format!("server@{node}")));
    let reply = server.ask(EchoReq::new(2, 0), HANG_GUARD).unwrap();
    assert_eq!(reply.counter, 2);
    // Every message is accounted for: handled, or reported (and maybe both,
    // for those reported unacknowledged).
    let sent: Vec<u64> = (1..=N).collect();
    support::check_accounting(&sent, &[], &dead, &read_log(&log));
    let _ = std::fs::remove_file(&log);
}

#[test]
fn a_manager_that_vanishes_is_forgotten_after_its_expiry() {
    let nats = Nats::start();
    let url = nats.url();
    let node = format!("vanish-{}", pid());
    let mut serve = Serve::start(&url, &["--node-name", &node, "--nats-expiry-ms", "1000"]);
    // Heartbeats that would take ten minutes to miss: only the expiry can
    // tell this manager that the other one is gone.
    let m = Manager::new(config("expiry-tester").heartbeat(Duration::from_secs(1), Duration::from_secs(600)))
        .unwrap();
    m.connect(&url.parse().unwrap()).unwrap();
    let server = eventually("the server", || m.find_by_name(&format!("server@{node}")));
    let (watcher, seen) = ipchnl::ActorSender::inbox("watcher");
    server.watch(&watcher).unwrap();
    serve.kill9();
    let t = seen.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Terminated>().unwrap();
    assert_eq!((t.actor, t.reason), (server.id(), TerminationReason::LinkDown));
    assert!(m.find_by_name(&format!("server@{node}")).is_none());
    assert!(m.find_by_protocol(echo_requestee_protocol().id()).is_empty());
    assert_eq!(m.stats().closes.get("heartbeat_timeout"), None);
}

#[test]
fn a_manager_that_leaves_is_forgotten_at_once() {
    let nats = Nats::start();
    let url = nats.url();
    let node = format!("leave-{}", pid());
    // An expiry no test waits for: the goodbye must do it.
    let mut serve = Serve::start(&url, &["--node-name", &node, "--nats-expiry-ms", "600000"]);
    let m = Manager::new(config("leave-tester")).unwrap();
    m.connect(&url.parse().unwrap()).unwrap();
    eventually("the server", || m.find_by_name(&format!("server@{node}")));
    assert!(serve.terminate().success());
    eventually("the server gone", || m.find_by_name(&format!("server@{node}")).is_none().then_some(()));
}

#[test]
fn the_report_measures_a_nats_path_against_bare_async_nats() {
    let nats = Nats::start();
    let out = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["bench", "--quick", "--json", "--sample-ms", "20", "--nats", &nats.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths = report["paths"].as_array().unwrap();
    let names: Vec<&str> = paths.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, [&BENCH_PATHS[..], &["nats"]].concat());
    // Found by name (an index once pointed at shm instead).
    let nats_path = paths.iter().find(|p| p["name"] == "nats").expect("the nats path");
    for figure in
        ["/rtt_ns/p50", "/baseline_rtt_ns/p50", "/msgs_per_sec", "/baseline_msgs_per_sec", "/ratio_p50"]
    {
        let v = nats_path.pointer(figure).and_then(serde_json::Value::as_f64).unwrap();
        assert!(v > 0.0, "{figure} is {v}");
    }
}

#[test]
fn the_report_refuses_a_nats_option_that_is_not_nats() {
    let out = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["bench", "--quick", "--nats", "tcp://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nats://"));
}

#[test]
fn the_server_s_own_auth_is_used_and_a_wrong_token_is_a_clear_error() {
    let nats = Nats::start_with(&["--auth", "s3cret-token"]);
    let good = format!("nats://s3cret-token@127.0.0.1:{}", nats.port);
    let node = format!("auth-{}", pid());
    let _serve = Serve::start(&good, &["--node-name", &node]);
    let m = Manager::new(config("auth-tester")).unwrap();
    m.connect(&good.parse().unwrap()).unwrap();
    let server = eventually("the server", || m.find_by_name(&format!("server@{node}")));
    let reply = server.ask(EchoReq::new(3, 0), HANG_GUARD).unwrap();
    assert_eq!(reply.counter, 3);
    // A wrong token: a typed error that names the server, not the token.
    let bad = format!("nats://wrong-token@127.0.0.1:{}", nats.port);
    let other = Manager::new(config("auth-wrong")).unwrap();
    let err = other.connect(&bad.parse().unwrap()).unwrap_err();
    assert!(matches!(err, ipchnl::ManagerError::Connect { .. }), "{err:?}");
    assert!(!err.to_string().contains("wrong-token"), "{err}");
    // The same through the tool: one line, a non-zero exit.
    let out = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["echo", "--connect", &bad, "--insecure"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("ipchnl: ") && !stderr.contains("wrong-token"), "{stderr}");
}

#[test]
fn a_user_and_password_are_used() {
    let nats = Nats::start_with(&["--user", "ann", "--pass", "pa55"]);
    let url = format!("nats://ann:pa55@127.0.0.1:{}", nats.port);
    let node = format!("userpass-{}", pid());
    let _serve = Serve::start(&url, &["--node-name", &node]);
    let out = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["echo", "--connect", &url, "--insecure", "--count", "50", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "echo failed: {}", String::from_utf8_lossy(&out.stderr));
}

msg_local_macro! {
    /// A local-only message: it may never leave its process.
    struct LocalOnly("nats_tests::LocalOnly") {}
}

#[test]
fn refusals_over_nats_are_the_same_typed_errors_and_dead_letters() {
    let nats = Nats::start();
    let url = nats.url();
    let node = format!("refuse-{}", pid());
    let _serve = Serve::start(&url, &["--node-name", &node]);
    let m = Manager::new(config("refuse-tester")).unwrap();
    m.connect(&url.parse().unwrap()).unwrap();
    let server = eventually("the server", || m.find_by_name(&format!("server@{node}")));
    // Not a message the server accepts (an address carries no protocols,
    // so the other node checks): NACKed back as a dead letter.
    let by_addr = m.resolve(server.addr()).unwrap();
    by_addr.send(Msg1::new(1, Default::default())).unwrap();
    let letter = m.dead_letters().recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(letter.reason, DeadLetterReason::Nacked(Some(NackReason::UnknownMsg)));
    assert_eq!(letter.msg.msg_id(), Msg1::msg_id());
    // No such actor there.
    let nobody = m.resolve(ActorAddr { node_id: server.node_id(), actor_id: ActorId::new() }).unwrap();
    nobody.send(EchoReq::new(3, 0)).unwrap();
    let letter = m.dead_letters().recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(letter.reason, DeadLetterReason::Nacked(Some(NackReason::UnknownDst)));
    // A local-only message never leaves: refused at once, nothing sent.
    let err = by_addr.send(LocalOnly::new()).unwrap_err();
    assert!(matches!(&err, SendError::NotSerializable(msg) if msg.name() == "nats_tests::LocalOnly"));
    // And the link still works.
    let reply = server.ask(EchoReq::new(4, 0), HANG_GUARD).unwrap();
    assert_eq!(reply.counter, 4);
}
