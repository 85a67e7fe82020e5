#!/usr/bin/env bash
# Backpressure: NetFlow offered faster than netwarden can score, for a minute. Bounded queues,
# drops counted (queue-full and kernel socket drops), memory flat.
#
#   tests/bench/backpressure.sh [DATAGRAMS_PER_S] [SECONDS]      (defaults: 75000 60)
#
# netwarden (release) runs pinned to core 0, nw-blast pinned to core 1 sends the softflowd v9
# scan-mixed capture (2,446 records in 78 datagrams) to 127.0.0.1 only. Every 10 s it prints
# netwarden's RSS (VmRSS) and counters from stats.json; at the end the offered load as a multiple
# of what netwarden scored (its capacity on this machine at this moment), RSS before/after and
# the peak (VmHWM). Root raises net.core.rmem_max to 16 MiB for the run (as in production).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rate="${1:-75000}"
secs="${2:-60}"
cd "$root"
# SKIP_BUILD=1 uses the binaries already in target/release (e.g. copied to a bench machine).
[[ -n "${SKIP_BUILD:-}" ]] || cargo build --release --locked -q -p netwarden -p netwarden-e2e --bins
nw="$root/target/release/netwarden"
blast="$root/target/release/nw-blast"
pcap="$root/tests/data/netflow/softflowd-v9-scan-mixed.pcap"
per_loop_records=$(awk -F, '$1 == "softflowd-v9-scan-mixed.pcap" {print $3}' tests/data/netflow/nfdump-counts.csv)
per_loop_datagrams=$(awk -F, '$1 == "softflowd-v9-scan-mixed.pcap" {print $2}' tests/data/netflow/nfdump-counts.csv)
command -v taskset >/dev/null || { echo "bench: taskset missing" >&2; exit 1; }
work="$(mktemp -d)"
old_rmem=""
if [[ $(id -u) -eq 0 ]]; then
    old_rmem=$(sysctl -n net.core.rmem_max)
    sysctl -qw net.core.rmem_max=16777216
fi
cleanup() {
    [[ -n "${nw_pid:-}" ]] && kill -TERM "$nw_pid" 2>/dev/null && wait "$nw_pid" 2>/dev/null || true
    [[ -n "$old_rmem" ]] && sysctl -qw net.core.rmem_max="$old_rmem"
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 "$nw" run --netflow-listen "127.0.0.1:$port" --data-dir "$work/data" 2>"$work/nw.log" &
nw_pid=$!
for _ in $(seq 100); do [[ -f "$work/data/stats.json" ]] && break; sleep 0.1; done
sleep 2
rss() { awk "/$1/ {print \$2}" "/proc/$nw_pid/status"; }
stat() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$work/data/stats.json" "$1"; }
rss_before=$(rss VmRSS)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); rate $rate datagrams/s ($((rate * per_loop_records / per_loop_datagrams)) records/s) for ${secs}s"
printf '%6s %10s %12s %12s %12s %12s\n' t_s rss_kB received queue_drops kernel_drops scored
printf '%6s %10s %12s %12s %12s %12s\n' 0 "$rss_before" 0 0 0 0
taskset -c 1 "$blast" --pcap "$pcap" --to "127.0.0.1:$port" --rate "$rate" --seconds "$secs" >"$work/blast.json" &
blast_pid=$!
start=$SECONDS
while kill -0 "$blast_pid" 2>/dev/null; do
    sleep 10
    printf '%6s %10s %12s %12s %12s %12s\n' $((SECONDS - start)) "$(rss VmRSS)" \
        "$(stat "d['metrics']['netflow_datagrams_received']")" \
        "$(stat "d['metrics']['netflow_datagrams_dropped_queue_full']")" \
        "$(stat "d['metrics']['netflow_datagrams_dropped_kernel']")" \
        "$(stat "d['metrics']['flows_scored']")"
done
wait "$blast_pid"
elapsed=$((SECONDS - start))
sleep 3
rss_after=$(rss VmRSS)
hwm=$(rss VmHWM)
sent=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['sent'])" "$work/blast.json")
blast_secs=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds'])" "$work/blast.json")
scored=$(stat "d['metrics']['flows_scored']")
received=$(stat "d['metrics']['netflow_datagrams_received']")
qdrops=$(stat "d['metrics']['netflow_datagrams_dropped_queue_full']")
kdrops=$(stat "d['metrics']['netflow_datagrams_dropped_kernel']")
python3 - "$sent" "$blast_secs" "$scored" "$received" "$qdrops" "$kdrops" "$rss_before" "$rss_after" "$hwm" "$per_loop_records" "$per_loop_datagrams" <<'EOF'
import sys
sent, secs, scored, received, q, k, before, after, hwm, per_loop, dgrams = sys.argv[1:]
sent, scored, received, q, k = map(int, (sent, scored, received, q, k))
secs = float(secs)
offered = sent * int(per_loop) / int(dgrams) / secs
done = scored / secs
print(f"sent {sent} datagrams in {secs:.1f}s: offered {offered:,.0f} records/s, scored {done:,.0f} records/s -> {offered / max(done, 1):.2f}x capacity")
print(f"datagrams: received {received}, dropped at the queue {q}, dropped by the kernel {k}, unaccounted {sent - received - k}")
print(f"RSS before {before} kB, after {after} kB, peak (VmHWM) {hwm} kB")
EOF
grep -c "NetFlow datagrams dropped" "$work/nw.log" | sed 's/^/drop warnings in the log: /'
grep "NetFlow datagrams dropped" "$work/nw.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-300
