#!/usr/bin/env bash
# Fuzzes every target in turn (one at a time) for SECONDS each (default 600) and prints the last
# libFuzzer status line of each: executions, coverage, corpus. Needs cargo-fuzz
# (`cargo install cargo-fuzz --locked`); RUSTC_BOOTSTRAP=1 lets it use its nightly flags on a
# stable toolchain. Corpora grow in fuzz/corpus/<target>/ (not committed), crashes land in
# fuzz/artifacts/<target>/, logs in fuzz/logs/<target>.log.
#   fuzz/run-all.sh [SECONDS] [TARGET...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-600}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
export RUSTC_BOOTSTRAP=1
# The workspace release profile's thin LTO would link tract into every target binary for
# minutes each; fuzzing needs no LTO. These variables must be the same for `build` and `run`
# (else cargo fuzz builds again).
export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
cargo fuzz build
mkdir -p fuzz/logs
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "== $t for ${seconds}s" >&2
    rc=0
    cargo fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 > "fuzz/logs/$t.log" 2>&1 || rc=$?
    grep -E '^#[0-9]+' "fuzz/logs/$t.log" | tail -n 1
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "fuzz/logs/$t.log" || true
    echo "$t: exit $rc ($(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l) artifact(s))"
done
