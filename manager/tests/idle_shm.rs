//! Two managers linked over shared memory use no CPU while idle: their
//! executors sleep, and a message wakes them. A test binary of its own, so
//! that no other test runs beside it and the process's CPU time is theirs.
#![cfg(feature = "shm")]

use std::time::Duration;

use manager::{Addr, Manager, ManagerConfig};
use server::Server;

/// utime + stime of this process, in clock ticks (USER_HZ, 100 a second).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn managers_linked_over_shared_memory_use_no_cpu_when_idle_and_wake_for_a_message() {
    // With the default spin, then with none (executors sleep at once).
    for spin in [ManagerConfig::default().tuning.spin, Duration::ZERO] {
        idle_then_woken(spin);
    }
}

fn idle_then_woken(spin: Duration) {
    let config = |name: &str| ManagerConfig::default().node_name(name).executors(2).spin(spin);
    let a = Manager::new(config("idle-a")).unwrap();
    let b = Manager::new(config("idle-b")).unwrap();
    a.add("server", Server::new()).unwrap();
    let at: Addr = format!("shm:idle-{}-{}", std::process::id(), spin.as_nanos()).parse().unwrap();
    a.listen(&at).unwrap();
    b.connect(&at).unwrap();
    let server = b.find_by_name("server").unwrap();
    let ask = || server.ask(echo_req::EchoReq::new(1, 0), Duration::from_secs(60)).unwrap();
    // A burst first: the links have read and written more than one sample.
    for n in 0..1000 {
        server.send(echo_req::EchoReq::new(n, 0)).unwrap();
    }
    ask();
    std::thread::sleep(Duration::from_millis(200));

    let before = cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let used_ms = (cpu_ticks() - before) * 10;
    // Heartbeats wake both sides now and then, and CPU time is counted in
    // ticks of 10 ms; an executor that polled instead of sleeping would
    // use most of the 2000 ms (a bug once made it 1350).
    assert!(
        used_ms < 100,
        "two idle managers linked over shared memory used {used_ms} ms of CPU in 2 s (spin {spin:?})"
    );
    // Asleep on both sides, a message still gets through (a bell wakes
    // the reader), again and again.
    for _ in 0..100 {
        assert_eq!(ask().counter, 1);
        std::thread::sleep(Duration::from_millis(1));
    }
}
