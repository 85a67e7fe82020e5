#!/usr/bin/env bash
# NetFlow collector throughput on one core, netwarden next to nfdump's nfcapd in the same run.
#
#   tests/bench/netflow_throughput.sh [SECONDS_PER_STEP] [RATES...]
#
# For each fixture (softflowd v9 and IPFIX exports of the scan-mixed capture) and each rate
# (datagrams/s, sent by nw-blast pinned to core 1 in whole capture loops), the collector runs
# pinned to core 0 (`taskset -c 0`: netwarden's socket task, pipeline thread and runtime all
# share that core). netwarden's records decoded+featurised+scored and its drops come from its
# stats.json; nfcapd's records from `nfdump -I`. A step is drop-free when the collector got every
# record sent (loops x records per capture). Last, peak RSS with 100,000 distinct synthetic v5
# flows (4,000 source hosts) and the model loaded. Needs root for net.core.rmem_max (else the
# kernel caps the socket buffer lower and says so). Traffic goes to 127.0.0.1 only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
secs="${1:-4}"
shift || true
rates=("$@")
((${#rates[@]})) || rates=(10000 20000 40000 80000)

cd "$root"
cargo build --release --locked -q -p netwarden -p netwarden-e2e --bins
nw="$root/target/release/netwarden"
blast="$root/target/release/nw-blast"
for tool in nfcapd nfdump taskset; do command -v "$tool" >/dev/null || { echo "bench: $tool missing" >&2; exit 1; }; done
if [[ $(id -u) -eq 0 ]]; then
    old_rmem=$(sysctl -n net.core.rmem_max)
    sysctl -qw net.core.rmem_max=16777216
    trap 'sysctl -qw net.core.rmem_max=$old_rmem' EXIT
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"; [[ -n "${old_rmem:-}" ]] && sysctl -qw net.core.rmem_max=$old_rmem' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }
records_per_capture() { awk -F, -v f="$1" '$1 == f {print $3}' "$root/tests/data/netflow/nfdump-counts.csv"; }

run_netwarden() { # fixture rate -> prints "records drops rss_kb"
    local pcap=$1 rate=$2 port dd pid out
    port=$(free_port); dd="$work/nw-$port"
    taskset -c 0 "$nw" run --netflow-listen "127.0.0.1:$port" --data-dir "$dd" 2>"$dd.log" &
    pid=$!
    for _ in $(seq 100); do [[ -f "$dd/stats.json" ]] && break; sleep 0.1; done
    out=$(taskset -c 1 "$blast" ${pcap:+--pcap "$pcap"} ${V5_FLOWS:+--v5-flows "$V5_FLOWS"} --to "127.0.0.1:$port" --rate "$rate" --seconds "$secs")
    local last="" now
    for _ in $(seq 60); do # until the counters stop moving
        sleep 0.5
        now=$(json "$dd/stats.json" "d['netflow_totals']['records']")
        [[ "$now" == "$last" ]] && break
        last=$now
    done
    local rss; rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid"; wait "$pid" || true
    local sent received qdrops scored
    sent=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['sent'])" "$out")
    received=$(json "$dd/stats.json" "d['metrics']['netflow_datagrams_received']")
    qdrops=$(json "$dd/stats.json" "d['metrics']['netflow_datagrams_dropped_queue_full']")
    scored=$(json "$dd/stats.json" "d['metrics']['flows_scored']")
    echo "$scored $((sent - received + qdrops)) $rss $out"
}

run_nfcapd() { # fixture rate -> prints "records"
    local pcap=$1 rate=$2 port dir pid
    port=$(free_port); dir="$work/nf-$port"; mkdir -p "$dir"
    taskset -c 0 nfcapd -w "$dir" -b 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    pid=$!
    sleep 0.5
    taskset -c 1 "$blast" --pcap "$pcap" --to "127.0.0.1:$port" --rate "$rate" --seconds "$secs" >/dev/null
    sleep 1
    kill -TERM "$pid"; wait "$pid" || true
    nfdump -R "$dir" -I | awk -F: '/^Flows:/ {gsub(/ /, "", $2); print $2}'
}

printf '%-32s %9s %7s | %12s %12s %9s %8s | %12s %12s\n' fixture dgram/s loops "nw records" "nw rec/s" "nw drops" "nw RSS" "nfcapd rec" "nfcapd rec/s"
for f in softflowd-v9-scan-mixed.pcap softflowd-ipfix-scan-mixed.pcap; do
    per=$(records_per_capture "$f")
    for rate in "${rates[@]}"; do
        read -r nw_rec nw_drops rss out < <(run_netwarden "$root/tests/data/netflow/$f" "$rate")
        loops=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['loops'])" "$out")
        took=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['seconds'])" "$out")
        nf_rec=$(run_nfcapd "$root/tests/data/netflow/$f" "$rate")
        expected=$((loops * per))
        mark() { [[ $1 -ge $expected ]] && echo "" || echo " (lost $((expected - $1)))"; }
        printf '%-32s %9s %7s | %12s %12.0f %9s %6sMB | %12s %12.0f   expected %s%s%s\n' \
            "$f" "$rate" "$loops" "$nw_rec" "$(python3 -c "print($nw_rec/$took)")" "$nw_drops" "$((rss / 1024))" \
            "$nf_rec" "$(python3 -c "print(${nf_rec:-0}/$took)")" "$expected" "$(mark "$nw_rec")" "$(mark "${nf_rec:-0}")"
    done
done

echo
echo "peak RSS with 100000 distinct v5 flows from 4000 hosts, model loaded:"
read -r nw_rec nw_drops rss out < <(V5_FLOWS=100000 run_netwarden "" 20000)
echo "  records scored $nw_rec, drops $nw_drops, VmHWM $((rss / 1024)) MB ($rss kB); blaster: $out"
