#!/usr/bin/env bash
# Builds every cargo-fuzz target with the normal dev profile (no sanitizer, no coverage
# instrumentation: cheap, and shares the workspace's compiled dependencies) and runs each over
# its committed seeds and regression inputs once (fuzz/seeds/<target>/). A crash or panic on
# any of them fails. Real fuzzing: docs/fuzzing.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo build -p netwarden-fuzz --locked
for src in fuzz/fuzz_targets/*.rs; do
    target="$(basename "$src" .rs)"
    seeds="fuzz/seeds/$target"
    [[ -d "$seeds" ]] || { echo "fuzz target $target has no seeds in $seeds" >&2; exit 1; }
    echo "fuzz smoke: $target ($(find "$seeds" -type f | wc -l) inputs)" >&2
    # libFuzzer may add files to the first corpus directory; give it a scratch copy.
    scratch="$(mktemp -d)"
    cp -r "$seeds/." "$scratch/"
    "target/debug/$target" -runs=0 -rss_limit_mb=2048 "$scratch" 2>&1 | tail -n 2 >&2
    rm -rf "$scratch"
done
