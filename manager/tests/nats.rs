//! Managers meeting through a real `nats-server` (the `nats` feature).
#![cfg(feature = "nats")]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use echo_req::EchoReq;
use manager::{Addr, Manager, ManagerConfig};
use server::Server;

const HANG_GUARD: Duration = Duration::from_secs(60);

/// A `nats-server` on a free loopback port; killed when dropped.
struct Nats {
    child: Child,
    port: u16,
}

impl Nats {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::on(port)
    }

    fn on(port: u16) -> Self {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (apt-get install nats-server)");
        let deadline = Instant::now() + HANG_GUARD;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn addr(&self) -> Addr {
        format!("nats://127.0.0.1:{}", self.port).parse().unwrap()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn manager(name: &str) -> Manager {
    Manager::new(ManagerConfig::default().node_name(format!("{name}-{}", std::process::id()))).unwrap()
}

#[test]
fn two_managers_echo_through_nats() {
    let nats = Nats::start();
    let a = manager("a");
    let b = manager("b");
    b.add("server", Server::new()).unwrap();
    a.connect(&nats.addr()).unwrap();
    b.connect(&nats.addr()).unwrap();
    let server = eventually("b's server in a's directory", || {
        a.find_by_name(&format!("server@b-{}", std::process::id()))
    });
    for n in 1..=100 {
        let reply = server.ask(EchoReq::new(n, 0), HANG_GUARD).unwrap();
        assert_eq!(reply.counter, n);
    }
}
