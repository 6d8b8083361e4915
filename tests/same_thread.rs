//! The seed's latency report, from the root: client and echo server in one
//! thread, through our addresses and dispatch (`ipchnl::echo::same_thread_echo`).
//! The figure users quote comes from
//! `taskset -c 0 cargo test --release -- --nocapture`; the same report
//! prints from `server/` as the seed's did.

use ipchnl::echo::{EchoLoop, same_thread_echo};

#[test]
fn test_1() {
    const LOOPS: usize = 100;
    let report = same_thread_echo(LOOPS).unwrap();
    // What is always true: every request answered once, clocks in order.
    assert_eq!(report.loops.len(), LOOPS);
    assert!(report.loops.iter().all(EchoLoop::is_ordered), "{:?}", report.loops);
    assert!(report.server.contains("Serving { replies: 100 }"), "{}", report.server);
    println!("{report}");
}
