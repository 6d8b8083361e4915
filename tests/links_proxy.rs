//! Links through a fault-injecting proxy: each mode, and in every one,
//! nothing delivered twice and nothing gone without a report.

mod support;

use std::time::Duration;

use ipchnl::echo::EchoReq;
use ipchnl::{ActorSender, DeadLetterReason, Manager, Terminated, TerminationReason};
use support::proxy::{Mode, Proxy};
use support::*;
use testkit::Seq;

/// A server with a sink that logs, behind a proxy, and a manager linked
/// through the proxy.
struct Setup {
    _serve: Serve,
    proxy: Proxy,
    m: Manager,
    log: tempfile_path::TempFile,
    sent: Vec<u64>,
    send_errors: Vec<u64>,
}

impl Setup {
    fn new(tag: &str, fast_heartbeat: bool) -> Self {
        let log = tempfile_path::TempFile::with("");
        let serve = Serve::with_test_actors(&["--sink-log", log.path()]);
        let proxy = Proxy::start(&serve.addr);
        let mut cfg = config(tag).reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200));
        if fast_heartbeat {
            cfg = cfg.heartbeat(Duration::from_millis(50), Duration::from_millis(300));
        }
        let m = Manager::new(cfg).unwrap();
        m.connect(&proxy.addr).unwrap();
        Self { _serve: serve, proxy, m, log, sent: Vec::new(), send_errors: Vec::new() }
    }

    fn sink(&self) -> ActorSender {
        eventually("the sink in the directory", || self.m.find_by_name("sink"))
    }

    /// Sends `Seq`s, noting what was refused at once.
    fn send(&mut self, range: std::ops::RangeInclusive<u64>) {
        let sink = self.sink();
        for n in range {
            self.sent.push(n);
            if sink.send_timeout(Seq::new(n), Duration::from_secs(1)).is_err() {
                self.send_errors.push(n);
            }
        }
    }

    /// Waits until the sink has handled everything sent before (one link,
    /// one mailbox: the answer comes after them).
    fn settle(&self) {
        let reply = self.sink().ask(EchoReq::new(7, 0), HANG_GUARD).unwrap();
        assert_eq!(reply.counter, 7);
    }

    fn check(&self) -> Vec<(u64, DeadLetterReason)> {
        let dead: Vec<(u64, DeadLetterReason)> = self
            .m
            .dead_letters()
            .try_iter()
            .filter_map(|l| Some((l.msg.downcast_ref::<Seq>()?.n, l.reason)))
            .collect();
        check_accounting(&self.sent, &self.send_errors, &dead, &read_log(&self.log.0));
        dead
    }

    fn watch_sink(&self) -> crossbeam_channel::Receiver<ipchnl::Envelope> {
        let (watcher, seen) = ActorSender::inbox("watcher");
        self.sink().watch(&watcher).unwrap();
        seen
    }
}

fn delivers_everything_in_order(mode: Mode) {
    let mut s = Setup::new("proxy", false);
    s.proxy.set(mode);
    s.send(1..=2000);
    s.settle();
    assert!(s.check().is_empty(), "nothing lost, so nothing reported");
    assert_eq!(read_log(&s.log.0), (1..=2000).collect::<Vec<_>>());
}

#[test]
fn pass() {
    delivers_everything_in_order(Mode::Pass);
}

#[test]
fn delay_delivers_everything_in_order() {
    delivers_everything_in_order(Mode::Delay(Duration::from_millis(5)));
}

#[test]
fn slice_bytes_delivers_everything_in_order() {
    delivers_everything_in_order(Mode::Slice);
}

#[test]
fn blackhole_is_declared_down_by_heartbeat_and_reconnects_once_healed() {
    let mut s = Setup::new("blackhole", true);
    s.send(1..=100);
    s.settle();
    let seen = s.watch_sink();
    s.settle(); // the watch is registered
    s.proxy.set(Mode::Blackhole);
    s.send(101..=200);
    let t = seen.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Terminated>().unwrap();
    assert_eq!(t.reason, TerminationReason::LinkDown);
    s.proxy.heal();
    s.send(201..=300);
    s.settle();
    let dead = s.check();
    assert!(dead.iter().all(|(_, r)| *r == DeadLetterReason::Unacknowledged), "{dead:?}");
    let stats = s.m.stats();
    assert!(stats.links[0].heartbeats_missed >= 1 && stats.links[0].links_up >= 2, "{stats:?}");
    let logged = read_log(&s.log.0);
    assert!(logged.contains(&300) && logged.contains(&100), "before and after the blackhole");
}

#[test]
fn reset_is_noticed_and_reported() {
    let mut s = Setup::new("reset", false);
    s.send(1..=500);
    let seen = s.watch_sink();
    s.settle();
    s.send(501..=1000);
    s.proxy.set(Mode::Reset);
    let t = seen.recv_timeout(HANG_GUARD).unwrap().msg.downcast::<Terminated>().unwrap();
    assert_eq!(t.reason, TerminationReason::LinkDown);
    s.proxy.set(Mode::Pass);
    s.send(1001..=1500);
    s.settle();
    s.check();
    let stats = s.m.stats();
    assert!(stats.closes.keys().any(|k| k == "io" || k == "peer_closed"), "{stats:?}");
    assert!(stats.links[0].links_up >= 2, "{stats:?}");
}
