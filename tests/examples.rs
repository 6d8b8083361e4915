//! The examples run, each across two processes, and print what they should.

use std::path::PathBuf;
use std::process::Command;

/// An example built by `cargo test` beside this test binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    // target/<profile>/deps/<this> -> target/<profile>/examples/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    dir.join("examples").join(name)
}

fn run(name: &str) -> String {
    let out = Command::new(example(name)).output().expect("the example runs");
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn kv_store_puts_and_gets_across_two_processes() {
    let out = run("kv_store");
    assert!(out.contains("put colour = green (was Some(\"blue\"))"), "{out}");
    assert!(out.contains("get shape -> Some(\"round\")"), "{out}");
    assert!(out.contains("get size -> None"), "{out}");
}

#[test]
fn weather_asks_with_a_typed_reply_across_two_processes() {
    let out = run("weather");
    assert!(out.contains("Oslo: -3.5 °C"), "{out}");
    assert!(out.contains("Lisbon: 18.4 °C"), "{out}");
}

#[test]
fn the_adder_serves_a_typed_ask_here_and_across_two_processes() {
    let out = run("adder");
    assert!(out.contains("here: 2 + 3 = 5"), "{out}");
    assert!(out.contains("there: 40 + 2 = 42"), "{out}");
    assert!(out.contains("servers of Calc: 1"), "{out}");
}
