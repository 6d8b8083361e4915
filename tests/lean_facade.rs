//! A crate that depends on the `ipchnl` library gets the library only:
//! none of the tool's dependencies (argument parsing, progress bars, the
//! log subscriber), the benchmarks' (criterion, `bench`) or the tests'
//! (`testkit`). `hdrhistogram` is the library's own: the echo client
//! keeps its round trips in one.

use std::process::Command;

/// `cargo tree` of one package's normal and build dependencies, a package
/// per line (`name vX.Y.Z ...`).
fn tree(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", package, "--edges", "normal,build", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The packages of a tree, by name.
fn names(tree: &str) -> Vec<&str> {
    tree.lines().filter_map(|l| l.split_whitespace().next()).collect()
}

/// What only the tool, the benchmarks and the tests may pull in.
const TOOLING: [&str; 6] = ["clap", "indicatif", "tracing-subscriber", "criterion", "bench", "testkit"];

#[test]
fn the_library_compiles_none_of_the_tools_dependencies() {
    let library = tree("ipchnl");
    let names = names(&library);
    assert!(
        names.contains(&"ipchnl-manager") && names.contains(&"crossbeam-channel"),
        "the tree is listed:\n{library}"
    );
    let found: Vec<&str> = TOOLING.into_iter().filter(|t| names.contains(t)).collect();
    assert!(found.is_empty(), "the library depends on {found:?}:\n{library}");
}

#[test]
fn the_tool_has_them() {
    // The check above would pass if the tree were read wrong: this one
    // finds the tool's dependencies where they are.
    let tool = tree("ipchnl-cli");
    let names = names(&tool);
    for t in ["clap", "indicatif", "tracing-subscriber", "bench", "testkit"] {
        assert!(names.contains(&t), "{t} not found in the tool's tree:\n{tool}");
    }
}
