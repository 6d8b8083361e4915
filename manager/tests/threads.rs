//! No thread outlives the manager. A test binary of its own, so that the
//! process's thread count is the manager's doing.

use std::time::{Duration, Instant};

use manager::{Manager, ManagerConfig};
use server::Server;

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Polls until the count is `expected`, up to 10 s; returns the last count.
fn settle_at(expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = thread_count();
        if n == expected || Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn no_thread_outlives_the_manager() {
    let before = thread_count();
    for executors in [1, 4] {
        let m = Manager::new(ManagerConfig::default().executors(executors)).unwrap();
        for i in 0..10 {
            m.add(format!("s{i}"), Server::new()).unwrap();
        }
        assert_eq!(thread_count(), before + executors);
        drop(m);
        assert_eq!(settle_at(before), before, "threads left after dropping a manager of {executors}");
    }
}
