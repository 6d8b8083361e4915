use actor::{ActorSender, StaticDirectory, dispatch};
use echo_reply::EchoReply;
use echo_req::EchoReq;
use msg_header::now_ns;

use super::*;

/// One loop of the seed's measurement: the four clock readings.
#[derive(Clone, Copy, Debug, Default)]
struct Loop {
    start: u64,
    req: u64,
    reply: u64,
    end: u64,
}

impl Loop {
    fn t0(&self) -> u64 {
        self.req - self.start
    }
    fn t1(&self) -> u64 {
        self.reply - self.req
    }
    fn t2(&self) -> u64 {
        self.end - self.reply
    }
    fn rtt(&self) -> u64 {
        self.end - self.start
    }
    fn print(&self, title: &str) {
        println!("\n{title}");
        println!("  t0 = {:6}ns", self.t0());
        println!("  t1 = {:6}ns", self.t1());
        println!("  t2 = {:6}ns", self.t2());
        println!(" rtt = {:6}ns", self.rtt());
    }
}

/// The seed's latency report: the echo in one thread, through our
/// addresses and dispatch. Run it with
/// `taskset -c 0 cargo test --release -p server -- --nocapture`.
#[test]
fn test_1() {
    const LOOPS: usize = 100;
    let mut server = Server::new("server");
    let (server_addr, server_rx) = ActorSender::channel(&server, None);
    let (me, my_rx) = ActorSender::inbox("test_1");
    let dir = StaticDirectory::new([server_addr.clone()]);
    println!("test_1: server={server:?}");

    let first_now_ns = now_ns();
    let second_now_ns = now_ns();
    let third_now_ns = now_ns();
    println!("test_1:          second_now_ns - first_now_ns = {:6}ns", second_now_ns - first_now_ns);
    println!("test_1:          third_now_ns - second_now_ns = {:6}ns", third_now_ns - second_now_ns);

    let mut loops = [Loop::default(); LOOPS];
    for (i, l) in loops.iter_mut().enumerate() {
        let counter = i as u64 + 1;
        l.start = now_ns();
        server_addr.send_from(EchoReq::stamped(counter), &me).unwrap();
        let env = server_rx.try_recv().unwrap();
        dispatch(&mut server, &server_addr, &dir, env);
        let reply = my_rx.try_recv().unwrap().msg.downcast::<EchoReply>().unwrap();
        l.end = now_ns();
        l.req = reply.req_timestamp_ns;
        l.reply = reply.reply_timestamp_ns;
        assert_eq!(reply.counter, counter);
    }

    // What is always true: every request answered once, clocks in order.
    assert_eq!(server.state(), ServerState::Serving { replies: LOOPS as u64 });
    assert!(server_rx.is_empty() && my_rx.is_empty());
    for l in &loops {
        assert!(l.start <= l.req && l.req <= l.reply && l.reply <= l.end, "{l:?}");
    }

    loops[0].print("First loop");
    for (i, l) in loops.iter().enumerate().skip(LOOPS - 5) {
        l.print(&format!("Loop {}", i + 1));
    }
    let last = &loops[LOOPS - 80..];
    let avg = |f: fn(&Loop) -> u64| last.iter().map(f).sum::<u64>() / last.len() as u64;
    println!("\nAverage times of the last 80 loops");
    println!("  t0 = {}ns", avg(Loop::t0));
    println!("  t1 = {}ns", avg(Loop::t1));
    println!("  t2 = {}ns", avg(Loop::t2));
    println!(" rtt = {}ns", avg(Loop::rtt));
}

#[test]
fn unexpected_messages_are_not_answered() {
    let mut server = Server::new("server");
    let (addr, rx) = ActorSender::channel(&server, None);
    let (me, my_rx) = ActorSender::inbox("me");
    // The server accepts only its protocol; EchoReply is in it but is not a request.
    addr.send_from(EchoReply::new(1, 2, 3), &me).unwrap();
    dispatch(&mut server, &addr, &StaticDirectory::default(), rx.recv().unwrap());
    assert!(my_rx.is_empty());
    assert_eq!(server.state(), ServerState::Serving { replies: 0 });
}
