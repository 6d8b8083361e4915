//! An idle manager uses no CPU. A test binary of its own, so that no other
//! test runs beside it and the process's CPU time is the manager's.

use std::time::Duration;

use manager::{Manager, ManagerConfig};
use server::Server;

/// utime + stime of this process, in clock ticks, from `/proc/self/stat`.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> u64 {
    // USER_HZ is 100 on every Linux architecture we run on.
    100
}

#[test]
fn an_idle_manager_uses_no_cpu() {
    let m = Manager::new(ManagerConfig::default().executors(2)).unwrap();
    let a = m.add("a", Server::new()).unwrap();
    let b = m.add("b", Server::new()).unwrap();
    // Some work first, so the executors have run and gone back to sleep.
    for s in [&a, &b] {
        s.ask(echo_req::EchoReq::new(1, 0), Duration::from_secs(30)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));

    let before = cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used_ms = (cpu_ticks() - before) * 1000 / ticks_per_second();
    assert!(used_ms < 20, "an idle manager used {used_ms} ms of CPU in one second");
}
