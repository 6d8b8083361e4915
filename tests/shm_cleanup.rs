//! A peer linked over shared memory that is killed (`kill -9`) leaves
//! nothing behind: the survivor sees the link end at once and removes
//! what the dead process left in `/dev/shm`; a restarted peer links again.
//! A test binary of its own: no other test's links are in `/dev/shm`
//! meanwhile.

mod support;

use ipchnl::echo::EchoReq;
use support::*;

/// This user's shared-memory objects of ipchnl links.
fn objects() -> Vec<String> {
    let prefix = format!("ipchnl{}_", rustix::process::geteuid().as_raw());
    let mut names: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n.starts_with(&prefix));
    names
}

#[test]
fn a_peer_killed_over_shared_memory_leaves_no_objects_and_a_restart_links_again() {
    let name = shm_name("cleanup");
    let node = format!("cleaned-{}", std::process::id());
    let args = ["--node-name", node.as_str()];
    let mut first = Serve::start(&name.url(), &args);
    let m = manager("survivor");
    let before = m.connect(&first.addr).unwrap();
    let server = m.find_by_name("server").unwrap();
    assert_eq!(server.ask(EchoReq::new(1, 0), HANG_GUARD).unwrap().counter, 1);
    assert!(!objects().is_empty(), "the link lives in shared memory");

    first.kill9();
    eventually("the link seen down", || m.peers().iter().all(|p| !p.up).then_some(()));
    eventually("the dead peer's objects removed", || objects().is_empty().then_some(()));

    // A new incarnation of the same node links again over the same name.
    let _second = Serve::start(&name.url(), &args);
    m.connect(&name.url().parse().unwrap()).unwrap();
    let after = m.peers().into_iter().find(|p| p.up).unwrap();
    assert_eq!(after.node_id, before.node_id);
    let new = m.find_by_name("server").unwrap();
    assert_ne!(new.id(), server.id(), "an actor of the new incarnation");
    assert_eq!(new.ask(EchoReq::new(2, 0), HANG_GUARD).unwrap().counter, 2);
    drop(m);
    drop(_second);
    eventually("nothing left once both ended", || objects().is_empty().then_some(()));
}
