#!/usr/bin/env bash
# Files the hand-made seeds (`connection::fuzzing::seeds` and
# `testkit::fuzzing::seeds`) into
# fuzz/corpus/<target>/, each named by the SHA-1 of its bytes, as libFuzzer
# names what it finds. Seeds already there are left as they are.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

FUZZ_SEED_DIR="$out" cargo test --test fuzz_corpus -- --ignored --exact write_seeds
for dir in "$out"/*/; do
    target="$(basename "$dir")"
    mkdir -p "fuzz/corpus/$target"
    for seed in "$dir"*; do
        cp "$seed" "fuzz/corpus/$target/$(sha1sum "$seed" | cut -c1-40)"
    done
    echo "$target: $(find "$dir" -type f | wc -l) seeds" >&2
done
