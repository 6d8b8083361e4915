//! What a slow consumer costs the other links of its process: the round
//! trip to one `ipchnl serve` child over a Unix socket, alone, then while
//! another child, its link on the same executor, has stopped reading
//! (`SIGSTOP`) and a thread keeps offering it messages (`try_send`, so the
//! window stays full and the link's buffer at its bound).
//!
//! `cargo bench --bench slow_consumer`; the ratio of the two medians is the
//! figure to quote.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ipchnl::echo::EchoReq;
use ipchnl::{Addr, Manager, ManagerConfig};
use testkit::Bulk;

const ASK: Duration = Duration::from_secs(10);

/// A `serve` child on a Unix socket; killed when dropped.
struct Serve {
    child: Child,
    addr: Addr,
    node: String,
}

impl Serve {
    fn start(tag: &str) -> Self {
        let node = format!("bench-{tag}-{}", std::process::id());
        let path = std::env::temp_dir().join(format!("ipc-bench-{}-{tag}.sock", std::process::id()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
            .args(["serve", "--insecure", "--test-actors", "--node-name", &node, "--listen"])
            .arg(format!("unix:{}", path.display()))
            .stdout(Stdio::piped())
            .spawn()
            .expect("ipchnl serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).expect("a line");
        let addr =
            line.trim().strip_prefix("listening on ").expect("its address").parse().expect("an address");
        Self { child, addr, node }
    }

    fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        rustix::process::kill_process(pid, sig).expect("signal sent");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.signal(rustix::process::Signal::CONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn slow_consumer(c: &mut Criterion) {
    let (fast, slow) = (Serve::start("fast"), Serve::start("slow"));
    // Both links on executor 0; nothing cuts the stopped one while we measure.
    let m = Manager::new(
        ManagerConfig::default()
            .link_executor(0)
            .heartbeat(Duration::from_secs(1), Duration::from_secs(3600))
            .write_deadline(Duration::from_secs(3600)),
    )
    .expect("manager starts");
    m.connect(&fast.addr).expect("linked to fast");
    m.connect(&slow.addr).expect("linked to slow");
    let relay = m.find_by_name(&format!("relay@{}", fast.node)).expect("fast's relay");
    let sink = m.find_by_name(&format!("sink@{}", slow.node)).expect("slow's sink");

    let mut group = c.benchmark_group("slow_consumer");
    let mut n = 0;
    group.bench_function("round_trip_alone", |b| {
        b.iter(|| {
            n += 1;
            relay.ask(EchoReq::new(n, 0), ASK).expect("an answer")
        })
    });

    slow.signal(rustix::process::Signal::STOP);
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let flood = std::thread::spawn({
        let (stop, refused) = (stop.clone(), refused.clone());
        move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                if sink.try_send(Bulk::new(i, "x".repeat(1024))).is_err() {
                    refused.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        }
    });
    // Until the window is full and the socket buffers with it.
    while refused.load(Ordering::Relaxed) < 1000 {
        std::thread::sleep(Duration::from_millis(10));
    }
    group.bench_function("round_trip_beside_a_stopped_reader", |b| {
        b.iter(|| {
            n += 1;
            relay.ask(EchoReq::new(n, 0), ASK).expect("an answer")
        })
    });
    group.finish();
    stop.store(true, Ordering::Relaxed);
    flood.join().expect("the flood thread ends");
    drop(slow);
    m.shutdown();
}

criterion_group!(benches, slow_consumer);
criterion_main!(benches);
