use actor::{ActorSender, Envelope, StaticDirectory, dispatch};
use crossbeam_channel::Receiver;
use echo_complete::EchoComplete;
use echo_reply::EchoReply;
use echo_req::EchoReq;
use echo_start::EchoStart;

use super::*;

/// Runs a client against a hand-made server loop in one thread and returns
/// the requests it sent and the completion it reported.
fn run(ping_count: u64) -> (Vec<EchoReq>, Box<EchoComplete>) {
    let mut client = Client::new();
    let (client_addr, client_rx) = ActorSender::channel("client", &client, None);
    let (server, server_rx): (ActorSender, Receiver<Envelope>) = ActorSender::inbox("fake-server");
    let (controller, controller_rx) = ActorSender::inbox("controller");
    // The inbox accepts everything but speaks no protocol: hand the partner over.
    client.partner = Some(server.clone());
    let dir = StaticDirectory::default();

    client_addr.send_from(EchoStart::new(ping_count), &controller).unwrap();
    let mut requests = Vec::new();
    loop {
        if let Ok(env) = client_rx.try_recv() {
            dispatch(&mut client, &client_addr, &dir, env);
        } else if let Ok(env) = server_rx.try_recv() {
            let reply_to = env.reply_to.expect("requests carry the client's address");
            assert_eq!(reply_to, client_addr);
            let req = env.msg.downcast::<EchoReq>().expect("only EchoReqs reach the server");
            reply_to.send_from(EchoReply::new(req.counter, req.req_timestamp_ns, 0), &server).unwrap();
            requests.push(*req);
        } else {
            break;
        }
    }
    assert!(matches!(client.state(), ClientState::Idle));
    let done = controller_rx.try_recv().expect("one EchoComplete");
    assert!(controller_rx.try_recv().is_err(), "exactly one EchoComplete");
    (requests, done.msg.downcast::<EchoComplete>().unwrap())
}

#[test]
fn test_ping_count_0() {
    let (requests, done) = run(0);
    assert!(requests.is_empty());
    assert_eq!((done.sent, done.received), (0, 0));
}

#[test]
fn test_ping_counts() {
    for n in [1, 2, 10, 1000] {
        let (requests, done) = run(n);
        assert_eq!(requests.len() as u64, n);
        assert!(requests.iter().zip(1..).all(|(r, i)| r.counter == i), "counters in order");
        assert_eq!((done.sent, done.received), (n, n));
        assert!(done.rtt_p50_ns <= done.rtt_p99_ns && done.rtt_p99_ns <= done.rtt_max_ns, "{done:?}");
        assert!(done.rtt_max_ns > 0 && done.elapsed_ns >= done.rtt_max_ns, "{done:?}");
    }
}

#[test]
fn an_out_of_order_reply_ends_the_run() {
    let mut client = Client::new();
    let (client_addr, client_rx) = ActorSender::channel("client", &client, None);
    let (server, server_rx) = ActorSender::inbox("fake-server");
    let (controller, controller_rx) = ActorSender::inbox("controller");
    client.partner = Some(server.clone());
    let dir = StaticDirectory::default();

    client_addr.send_from(EchoStart::new(5), &controller).unwrap();
    dispatch(&mut client, &client_addr, &dir, client_rx.recv().unwrap());
    assert_eq!(server_rx.try_recv().unwrap().msg.downcast::<EchoReq>().unwrap().counter, 1);
    client_addr.send_from(EchoReply::new(7, 0, 0), &server).unwrap();
    dispatch(&mut client, &client_addr, &dir, client_rx.recv().unwrap());
    let done = controller_rx.try_recv().unwrap().msg.downcast::<EchoComplete>().unwrap();
    assert_eq!((done.sent, done.received), (1, 0));
}

#[test]
fn debug_of_a_running_state_shows_the_counters_not_the_histogram() {
    let (partner, _rx) = ActorSender::inbox("partner");
    let mut rtts = Box::new(rtt_histogram());
    rtts.saturating_record(1_000);
    rtts.saturating_record(2_000);
    let state = ClientState::Running {
        controller: None,
        partner,
        ping_count: 10,
        sent: 3,
        received: 2,
        started_ns: 5,
        rtts,
    };
    let text = format!("{state:?}");
    assert!(text.starts_with("Running {") && text.contains("sent: 3, received: 2"), "{text}");
    assert!(text.contains("rtts: 2 samples"), "{text}");
    assert!(text.len() < 300, "{} bytes: {text}", text.len());
    assert_eq!(format!("{:?}", ClientState::Idle), "Idle");
}
