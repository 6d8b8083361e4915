//! Load: 1,000 wire-level clients, each its own link, against one server,
//! over TCP and over a Unix socket; each does the handshake and 100 round
//! trips. Then 10,000 connect-handshake-close cycles. Afterwards the
//! server's thread and descriptor counts are back where they were. All the
//! clients are this process's, so the server's cap on links per user (256)
//! is raised for the test. A test binary of its own.

mod support;

use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use ipchnl::Addr;
use support::raw::Client;
use support::*;

const CLIENTS: usize = 1000;
const THREADS: usize = 20;
const ROUND_TRIPS: u64 = 100;
const CYCLES: usize = 10_000;

/// Raises this process's open-file limit (children inherit it).
fn raise_nofile(need: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let max = limit.maximum.unwrap_or(u64::MAX);
    assert!(max >= need, "the open-file limit is {max}, the test needs {need}: raise it (ulimit -Hn)");
    let current = limit.current.unwrap_or(u64::MAX);
    if current < need {
        setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit { current: Some(max.min(need * 4)), maximum: limit.maximum },
        )
        .expect("the open-file limit can be raised");
    }
}

fn connect(addr: &Addr) -> std::io::Result<Box<dyn ReadWrite>> {
    Ok(match addr {
        Addr::Tcp(sa) => {
            let s = TcpStream::connect(sa)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(HANG_GUARD))?;
            Box::new(s)
        }
        Addr::Unix(p) => {
            let s = UnixStream::connect(p)?;
            s.set_read_timeout(Some(HANG_GUARD))?;
            Box::new(s)
        }
        _ => unreachable!("the load test serves TCP and Unix sockets"),
    })
}

trait ReadWrite: std::io::Read + std::io::Write + Send {}
impl<T: std::io::Read + std::io::Write + Send> ReadWrite for T {}

fn load(listen: &str) {
    raise_nofile((CLIENTS * 2 + 256) as u64);
    let serve = Serve::start(listen, &["--max-links-per-user", "4096"]);
    let pid = serve.pid();
    let before = counts(pid);

    // A burst of 1,000 links: each thread opens its clients one after
    // another, then all do their round trips in step.
    let started = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let addr = serve.addr.clone();
            std::thread::spawn(move || {
                let mut clients = Vec::new();
                for c in 0..CLIENTS / THREADS {
                    let node = format!("load-{}-{t}-{c}", std::process::id());
                    let conn = connect(&addr).expect("connects");
                    clients.push(Client::start(conn, &node).expect("handshake and directory"));
                }
                for counter in 1..=ROUND_TRIPS {
                    for c in &mut clients {
                        c.request(counter).expect("request sent");
                    }
                    for c in &mut clients {
                        c.reply(counter).expect("reply read");
                    }
                }
                clients.len()
            })
        })
        .collect();
    let done: usize = threads.into_iter().map(|t| t.join().expect("no client failed")).sum();
    assert_eq!(done, CLIENTS);
    let during = counts(pid);
    println!(
        "{listen}: {CLIENTS} clients x {ROUND_TRIPS} round trips in {:.1} s; server threads/fds before {before:?}, during {during:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(during.0, before.0, "no thread per link");

    // Everything closed: back to where it was.
    eventually("the server's descriptors back to before", || (counts(pid) == before).then_some(()));

    // Connect, handshake, close, many times over: nothing leaks.
    let started = Instant::now();
    let cycles: Vec<_> = (0..4)
        .map(|t| {
            let addr = serve.addr.clone();
            std::thread::spawn(move || {
                for c in 0..CYCLES / 4 {
                    let conn = connect(&addr).expect("connects");
                    drop(
                        Client::start(conn, &format!("cycle-{}-{t}-{c}", std::process::id()))
                            .expect("handshake"),
                    );
                }
            })
        })
        .collect();
    for c in cycles {
        c.join().expect("no cycle failed");
    }
    eventually("the server's threads and descriptors back to before", || {
        (counts(pid) == before).then_some(())
    });
    println!(
        "{listen}: {CYCLES} connect-handshake-close cycles in {:.1} s, counts back to {before:?}",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_thousand_clients_over_tcp() {
    load("tcp://127.0.0.1:0");
}

#[test]
fn a_thousand_clients_over_a_unix_socket() {
    let path = socket_path("load");
    load(&path.url());
}
