//! The default build has no async runtime: tokio comes only with the
//! `nats` feature (and with dev tools: benchmarks).

use std::process::Command;

/// `cargo tree` of the workspace's normal and build dependencies.
fn tree(features: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--workspace", "--edges", "normal,build", "--prefix", "none", "--format", "{p}"])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn has_tokio(tree: &str) -> bool {
    tree.lines().any(|l| l.split_whitespace().next() == Some("tokio"))
}

#[test]
fn the_default_build_has_no_tokio() {
    let default = tree(&[]);
    assert!(default.lines().any(|l| l.starts_with("crossbeam-channel ")), "the tree is listed:\n{default}");
    assert!(!has_tokio(&default), "tokio is in the default build:\n{default}");
}

#[test]
fn the_nats_feature_brings_tokio() {
    // The check above would pass if the tree were read wrong: this one
    // shows it finds tokio where it is.
    assert!(has_tokio(&tree(&["--features", "nats"])));
}
