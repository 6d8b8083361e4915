#!/usr/bin/env bash
# Fuzzes each target for SECONDS (default 60) on nightly with libFuzzer and
# AddressSanitizer, growing the committed corpus fuzz/corpus/<target>/.
#
#   fuzz/run.sh SECONDS [TARGET...]     (targets: frames handshake session bodies)
#
# Installs cargo-fuzz if it is missing. A crash, leak, timeout (10 s for one
# input) or out-of-memory (-rss_limit_mb=1024, or one allocation over 64 MB)
# stops that target, leaves its input in fuzz/artifacts/<target>/ and makes
# the script exit non-zero after the other targets have run. Keep a crash
# input as a regression test by copying it to fuzz/regressions/<target>/.
# Not part of the normal test command: `cargo test --test fuzz_corpus`
# replays the corpus and the regressions on stable.
set -euo pipefail

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(frames handshake session bodies)
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo +nightly install cargo-fuzz --locked
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
status=0
summary=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    log="$logs/$target.log"
    echo "== $target: ${seconds} s" >&2
    if cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=64 -timeout=10 \
        -print_final_stats=1 2>&1 | tee "$log" >&2; then
        result="ok"
    else
        result="FAILED (see fuzz/artifacts/$target/)"
        status=1
    fi
    done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
    runs_line="$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1 || true)"
    files="$(find "fuzz/corpus/$target" -type f | wc -l)"
    bytes="$(du -sb "fuzz/corpus/$target" | cut -f1)"
    summary+=("$target: $result; ${done_line:-no DONE line}; ${runs_line:-no Done line}; corpus $files files, $bytes bytes")
done

echo
printf '%s\n' "${summary[@]}"
exit "$status"
