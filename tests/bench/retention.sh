#!/usr/bin/env bash
# Long replay of a busy router's history writes (nw-history-bench: alerts through the outbox
# transaction, flow/score summaries, 50 SNMP interfaces every 10 s) on a simulated clock, with
# the retention settings given; samples the data directory with `du` every 5 s from outside
# and prints the largest figure next to the cap. Figures: docs/retention.md.
#   tests/bench/retention.sh [SECONDS] [CAP_MB] [BUCKET_MIN] [MAX_AGE_DAYS]   (default 300 256 60 7)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
seconds="${1:-300}" cap_mb="${2:-256}" bucket_min="${3:-60}" age_days="${4:-7}"
# The dev profile builds dependencies (sled) with optimisation (root Cargo.toml), and it
# does not compile tract again the way a release build would.
cargo build -q -p netwarden-e2e --bin nw-history-bench
dir="$(mktemp -d /tmp/nw-retention-bench.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
log="$dir.log"
target/debug/nw-history-bench --data-dir "$dir/data" --cap-mb "$cap_mb" --seconds "$seconds" \
    --bucket-min "$bucket_min" --max-age-days "$age_days" > "$log" &
bench=$!
max_kb=0 samples=0
while kill -0 "$bench" 2>/dev/null; do
    kb="$(du -sk "$dir/data" 2>/dev/null | cut -f1 || echo 0)"
    kb="${kb:-0}"
    ((kb > max_kb)) && max_kb=$kb
    samples=$((samples + 1))
    sleep 5
done
wait "$bench"
tail -n 1 "$log"
cap_kb=$((cap_mb * 1024))
echo "du samples: $samples, largest: $max_kb KiB, cap: $cap_kb KiB, under cap: $([[ $max_kb -le $cap_kb ]] && echo yes || echo NO)"
echo "per-second log: $log"
