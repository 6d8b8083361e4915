//! Every committed fuzz input, replayed on stable through the same
//! functions the `cargo fuzz` targets call (`connection::fuzzing`,
//! `testkit::fuzzing`): the corpus
//! in `fuzz/corpus/<target>/`, and each crash ever found, kept in
//! `fuzz/regressions/<target>/`. So what the fuzzer learnt stays a test
//! without nightly or libFuzzer; `fuzz/run.sh` does the fuzzing.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// What a fuzz target calls with each input.
type Property = fn(&[u8]);

/// The fuzz targets and the function each one calls.
const TARGETS: [(&str, Property); 4] = [
    ("frames", connection::fuzzing::frames),
    ("handshake", connection::fuzzing::handshake),
    ("session", connection::fuzzing::session),
    ("bodies", testkit::fuzzing::bodies),
];

/// The hand-made seeds of every target.
fn seeds() -> Vec<connection::fuzzing::Seed> {
    let mut seeds = connection::fuzzing::seeds();
    seeds.extend(testkit::fuzzing::seeds());
    seeds
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.map(|e| e.expect("a directory entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs `run` on each file, and fails naming every file that panicked.
fn replay(files: &[PathBuf], run: fn(&[u8])) {
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{} of {} inputs failed:\n{}", failed.len(), files.len(), failed.join("\n"));
}

fn corpus(target: &str) {
    let (_, run) = TARGETS.iter().find(|(name, _)| *name == target).expect("a target");
    let dir = fuzz_dir().join("corpus").join(target);
    let files = files(&dir);
    assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
    replay(&files, *run);
}

fn regressions(target: &str) {
    let (_, run) = TARGETS.iter().find(|(name, _)| *name == target).expect("a target");
    replay(&files(&fuzz_dir().join("regressions").join(target)), *run);
}

#[test]
fn frames_corpus() {
    corpus("frames");
}

#[test]
fn handshake_corpus() {
    corpus("handshake");
}

#[test]
fn session_corpus() {
    corpus("session");
}

#[test]
fn session_regressions() {
    regressions("session");
}

#[test]
fn bodies_corpus() {
    corpus("bodies");
}

#[test]
fn frames_regressions() {
    regressions("frames");
}

#[test]
fn handshake_regressions() {
    regressions("handshake");
}

#[test]
fn bodies_regressions() {
    regressions("bodies");
}

#[test]
fn seeds_pass() {
    let seeds = seeds();
    for (target, _) in TARGETS {
        assert!(seeds.iter().any(|(t, _, _)| *t == target), "no seed for {target}");
    }
    for (target, name, data) in seeds {
        let (_, run) = TARGETS.iter().find(|(t, _)| *t == target).expect("a target");
        catch_unwind(|| run(&data)).unwrap_or_else(|_| panic!("seed {target}/{name} failed"));
    }
}

/// Writes the seeds to `$FUZZ_SEED_DIR/<target>/<name>`; `fuzz/seed.sh`
/// runs it and files them into the corpus.
#[test]
#[ignore = "writes files; run by fuzz/seed.sh"]
fn write_seeds() {
    let out = PathBuf::from(std::env::var_os("FUZZ_SEED_DIR").expect("FUZZ_SEED_DIR is set"));
    for (target, name, data) in seeds() {
        let dir = out.join(target);
        fs::create_dir_all(&dir).expect("the seed directory");
        fs::write(dir.join(name), data).expect("a seed written");
    }
}

/// Inputs that break an invariant and are not fixed yet, kept in
/// `fuzz/regressions/<target>/open/` (none now); once fixed, move them up a
/// level. The first, `bodies/fe82479e…`: `from_json` took a header in
/// serde's sequence form and `peek_msg_id` refused it; both now read the
/// header the same way.
#[test]
fn open_findings() {
    for (target, run) in TARGETS {
        replay(&files(&fuzz_dir().join("regressions").join(target).join("open")), run);
    }
}
