//! The `ipchnl` tool, as scripts use it: `serve`, `echo`, `bench`.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;

fn ipchnl(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ipchnl runs");
    wait_guarded(child, TOOL_GUARD)
}

/// The hang guard of one run of the tool: `bench --quick` included.
const TOOL_GUARD: Duration = Duration::from_secs(100);

fn echo_json(addr: &str, count: u64) -> serde_json::Value {
    let out = ipchnl(&["echo", "--connect", addr, "--insecure", "--count", &count.to_string(), "--json"]);
    assert!(out.status.success(), "echo failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "exactly one JSON object: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn serve_and_echo_over_tcp_unix_and_shared_memory() {
    let path = socket_path("cli");
    let name = shm_name("cli");
    for listen in ["tcp://127.0.0.1:0".to_string(), path.url(), name.url()] {
        let serve = Serve::start(&listen, &[]);
        let v = echo_json(&serve.addr.to_string(), 1000);
        assert_eq!((v["sent"].as_u64(), v["received"].as_u64()), (Some(1000), Some(1000)), "{v}");
        let (p50, p99, max) = (
            v["rtt_ns"]["p50"].as_u64().unwrap(),
            v["rtt_ns"]["p99"].as_u64().unwrap(),
            v["rtt_ns"]["max"].as_u64().unwrap(),
        );
        assert!(0 < p50 && p50 <= p99 && p99 <= max, "{v}");
        assert!(v["msgs_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    }
}

#[test]
fn serve_and_echo_take_the_low_latency_option() {
    let serve = Serve::start("tcp://127.0.0.1:0", &["--low-latency"]);
    let addr = serve.addr.to_string();
    let out =
        ipchnl(&["echo", "--connect", &addr, "--insecure", "--count", "1000", "--json", "--low-latency"]);
    assert!(out.status.success(), "echo failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["sent"].as_u64(), v["received"].as_u64()), (Some(1000), Some(1000)), "{v}");
}

#[test]
fn echo_fails_in_one_line_when_the_server_dies() {
    let mut serve = Serve::start("tcp://127.0.0.1:0", &[]);
    let addr = serve.addr.to_string();
    let echo = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["echo", "--connect", &addr, "--insecure", "--count", "100000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    serve.kill9();
    let out = wait_guarded(echo, HANG_GUARD);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert!(err.starts_with("ipchnl: echo incomplete"), "{err}");
}

#[test]
fn bad_input_is_one_line_and_a_failure_never_a_panic() {
    let serve = Serve::start(
        "tcp://127.0.0.1:0",
        &["--secret-file", secret_file("the right secret, long enough").path()],
    );
    let wrong = secret_file("a wrong secret, long enough too");
    let short = secret_file("s3cret");
    for (args, code) in [
        (vec!["echo", "--connect", "localhost:80"], 2),
        (vec!["echo", "--connect", "tcp://127.0.0.1:1", "--insecure"], 1),
        (vec!["echo", "--connect", &serve.addr.to_string(), "--secret-file", wrong.path()], 1),
        (vec!["echo", "--connect", &serve.addr.to_string(), "--secret-file", "/nonexistent/secret"], 2),
        (vec!["echo", "--connect", &serve.addr.to_string(), "--secret-file", short.path()], 2),
        (vec!["echo", "--connect", &serve.addr.to_string(), "--secret-file", wrong.path(), "--insecure"], 2),
        (vec!["serve", "--listen", "unix:"], 2),
    ] {
        let out = ipchnl(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ipchnl: ") && !err.contains("panicked"), "{args:?}: {err}");
    }
    // Refused for its secret, a client says so: a wrong one fails the
    // server's proof, none at all is refused in the handshake.
    let wrong_one = ipchnl(&["echo", "--connect", &serve.addr.to_string(), "--secret-file", wrong.path()]);
    assert!(String::from_utf8_lossy(&wrong_one.stderr).contains("authentication failed"));
    let none = ipchnl(&["echo", "--connect", &serve.addr.to_string(), "--insecure"]);
    let err = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(1), "{err}");
    assert!(err.contains("may want a secret"), "{err}");
}

#[test]
fn help_shows_examples_and_version_prints() {
    for cmd in [&["--help"][..], &["serve", "--help"], &["echo", "--help"], &["bench", "--help"]] {
        let out = ipchnl(cmd);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Example"), "{cmd:?}");
    }
    let out = ipchnl(&["--version"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ipchnl {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bench_quick_json_lists_eight_paths_and_the_large_one_with_positive_figures_and_plots_them() {
    let plot = std::env::temp_dir().join(format!("ipchnl-cli-plot-{}.svg", std::process::id()));
    // The suite keeps the machine busy: no waiting for it to settle.
    let out = ipchnl(&["bench", "--quick", "--json", "--settle-s", "0", "--plot", plot.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> =
        v["paths"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, BENCH_PATHS);
    let between: Vec<&str> =
        v["comparisons"].as_array().unwrap().iter().map(|c| c["what"].as_str().unwrap()).collect();
    assert_eq!(between.len(), 3, "shm against threads, and against unix in rtt and stream: {between:?}");
    assert!(v["comparisons"].as_array().unwrap().iter().all(|c| c["ratio"].as_f64().unwrap() > 0.0));
    // It ends with its answer, drawn from its figures.
    let verdict = v["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("Verdict: yes") && verdict.contains("across processes"), "{verdict}");
    assert_eq!(v["settled"], serde_json::json!(true), "not waited for: counted as settled");
    // The large path: 16 MiB messages over each transport, round trips
    // beside them, memory per message.
    let large = &v["large"];
    let transports: Vec<&str> =
        large["rows"].as_array().unwrap().iter().map(|r| r["transport"].as_str().unwrap()).collect();
    assert_eq!(transports, ["tcp", "unix", "shm"], "{large}");
    for r in large["rows"].as_array().unwrap() {
        assert!(r["ours_gb_per_sec"].as_f64().unwrap() > 0.0 && r["ratio"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(large["rtt_busy_ns"][1].as_u64().unwrap() > 0, "{large}");
    assert!(large["bare_rtt_busy_ns"][1].as_u64().unwrap() > 0, "{large}");
    assert!(large["receiver_rss_per_message"].as_f64().unwrap() >= 0.0, "{large}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    std::fs::remove_file(&plot).unwrap();
    for name in &names {
        assert!(svg.contains(name), "{name} has a panel");
    }
    for p in v["paths"].as_array().unwrap() {
        assert!(!p["baseline"].as_str().unwrap().is_empty(), "{p} says what its baseline does");
        for key in [
            "msgs_per_sec",
            "baseline_msgs_per_sec",
            "ratio_p50",
            "ratio_stream",
            "cpu_ns_per_rtt",
            "baseline_cpu_ns_per_rtt",
            "cpu_ns_per_msg",
            "baseline_cpu_ns_per_msg",
        ] {
            assert!(p[key].as_f64().unwrap() > 0.0, "{key} of {p}");
        }
        // Between processes, each stream is measured against the
        // hand-rolled socket + channel pair too; within one, not, nor the
        // encrypted link (its baseline is our plain one).
        let hand = &p["hand_rolled"];
        if ["same_thread", "cross_thread", "tcp_encrypted"].contains(&p["name"].as_str().unwrap()) {
            assert!(hand.is_null(), "{p}");
        } else {
            for key in ["msgs_per_sec", "cpu_ns_per_msg", "ratio_stream", "ratio_cpu_per_msg"] {
                assert!(hand[key].as_f64().unwrap() > 0.0, "hand_rolled {key} of {p}");
            }
        }
        for key in ["rtt_ns", "baseline_rtt_ns"] {
            assert!(
                p[key]["p50"].as_u64().unwrap() > 0
                    && p[key]["p99"].as_u64().unwrap() >= p[key]["p50"].as_u64().unwrap(),
                "{key} of {p}"
            );
        }
    }
}

#[test]
fn bench_low_latency_reports_only_the_low_latency_option() {
    let out =
        ipchnl(&["bench", "--quick", "--json", "--low-latency", "--sample-ms", "20", "--settle-s", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths = v["paths"].as_array().unwrap();
    let names: Vec<&str> = paths.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["same_thread", "cross_thread", "tcp_low_latency", "unix_low_latency", "shm", "tcp_encrypted"]
    );
    assert!(paths[1]["ours"].as_str().unwrap().contains("low-latency"), "{}", paths[1]);
    for p in paths {
        assert!(p["rtt_ns"]["p50"].as_u64().unwrap() > 0 && p["msgs_per_sec"].as_f64().unwrap() > 0.0, "{p}");
    }
}

/// The pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).ok().and_then(|s| {
                let rest = s.rsplit_once(')')?.1;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            }) == Some(pid)
        })
        .collect()
}

#[test]
fn ctrl_c_mid_bench_leaves_no_child_and_no_socket_file() {
    // In a process group of its own, as a terminal's Ctrl-C would see it.
    let bench = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["bench", "--quick", "--settle-s", "0"])
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = bench.id();
    let children = eventually("the report's child processes", || {
        let c = children_of(pid);
        (c.len() >= 2).then_some(c)
    });
    std::thread::sleep(Duration::from_millis(200));
    let group = rustix::process::Pid::from_raw(pid as i32).expect("a real pid");
    rustix::process::kill_process_group(group, rustix::process::Signal::INT).expect("the group gets SIGINT");
    let status = wait_guarded(bench, TOOL_GUARD).status;
    assert!(!status.success(), "interrupted");
    for child in children {
        assert!(
            !std::path::Path::new(&format!("/proc/{child}")).exists(),
            "child {child} outlived the report"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            n.starts_with(&format!("ipchnl-bench-{pid}-"))
                || n.starts_with(&format!("ipchnl-shm-bench-{pid}-"))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn serve_prints_its_counters_on_sigusr1_and_at_exit() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ipchnl"))
        .args(["serve", "--listen", "tcp://127.0.0.1:0", "--insecure"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Lines arrive through a channel, so that each wait has a hang guard.
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || stdout.lines().map_while(Result::ok).try_for_each(|l| tx.send(l)));
    let next_line = || lines.recv_timeout(HANG_GUARD).expect("serve prints a line");
    let addr = next_line().strip_prefix("listening on ").unwrap().to_owned();
    let v = echo_json(&addr, 50);
    assert_eq!(v["received"], 50);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let stats_line = || -> serde_json::Value {
        serde_json::from_str(next_line().strip_prefix("stats ").unwrap()).unwrap()
    };
    rustix::process::kill_process(pid, rustix::process::Signal::USR1).unwrap();
    let stats = stats_line();
    let link = &stats["links"][0];
    assert!(link["msgs_in"].as_u64().unwrap() >= 50 && link["msgs_out"].as_u64().unwrap() >= 50, "{stats}");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let at_exit = stats_line();
    assert!(
        at_exit["closes"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>() >= 1,
        "{at_exit}"
    );
    assert!(wait_guarded(child, HANG_GUARD).status.success());
}

#[test]
fn keygen_writes_node_keys_that_serve_and_echo_prove_and_an_unlisted_key_is_refused() {
    let dir = std::env::temp_dir().join(format!("ipchnl-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = RemoveDirs(vec![dir.clone()]);
    let keygen = |name: &str| {
        let path = dir.join(name);
        let out = ipchnl(&["keygen", path.to_str().unwrap()]);
        assert!(out.status.success(), "keygen failed: {}", String::from_utf8_lossy(&out.stderr));
        let public = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned();
        assert_eq!(public.len(), 64, "a public key in hex: {public}");
        (path, public)
    };
    let (server_key, server_pub) = keygen("server.key");
    let (client_key, client_pub) = keygen("client.key");
    let (stranger_key, _) = keygen("stranger.key");
    let list = |name: &str, keys: &[&str]| {
        let path = dir.join(name);
        std::fs::write(&path, keys.join("\n")).unwrap();
        path
    };
    let (server_list, client_list) =
        (list("server.allowed", &[&client_pub]), list("client.allowed", &[&server_pub]));
    let secret = secret_file("a secret both hosts share, long enough");
    let serve = Serve::start(
        "tcp://127.0.0.1:0",
        &[
            "--secret-file",
            secret.path(),
            "--node-key",
            server_key.to_str().unwrap(),
            "--allowed-keys",
            server_list.to_str().unwrap(),
        ],
    );
    let addr = serve.addr.to_string();
    let echo = |key: &std::path::Path| {
        ipchnl(&[
            "echo",
            "--connect",
            &addr,
            "--secret-file",
            secret.path(),
            "--node-key",
            key.to_str().unwrap(),
            "--allowed-keys",
            client_list.to_str().unwrap(),
            "--count",
            "100",
        ])
    };
    let listed = echo(&client_key);
    assert!(listed.status.success(), "a listed key links: {}", String::from_utf8_lossy(&listed.stderr));
    let unlisted = echo(&stranger_key);
    assert!(!unlisted.status.success(), "an unlisted key is refused");
    let err = String::from_utf8_lossy(&unlisted.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("does not list this node's key"), "says why: {err}");
    // A key file others may read is refused before anything starts.
    std::fs::set_permissions(&client_key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let exposed = echo(&client_key);
    assert!(String::from_utf8_lossy(&exposed.stderr).contains("chmod 600"), "{:?}", exposed);
}
