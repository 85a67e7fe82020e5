#!/usr/bin/env bash
# Alert latency under load: from the datagram that carries an attack leaving the sender to the
# broker's PUBACK of its alert at the gateway, on loopback with a real mosquitto.
#
#   tests/bench/alert_latency.sh [DROP_FREE_RECORDS_PER_S] [SECONDS] [ATTACKS]
#
# For each load, 10 %, 50 % and 90 % of DROP_FREE_RECORDS_PER_S (default 500000: the one-core
# drop-free v9 rate of docs/performance.md; LOADS="10 50 90" changes the list), a fresh
# `netwarden run` (pinned to GATEWAY_CORE, default 0; shipped thresholds, no learning period;
# MQTT to a mosquitto this script starts and stops by PID) receives the softflowd v9 scan-mixed
# capture looped at that record rate from alert_sender.py (pinned to SENDER_CORE, default the
# last core) for SECONDS (default 20), with ATTACKS (default 100) attack datagrams spread evenly
# over the run: one lone SYN from a new host each (tests/bench/alert_sender.py), whose wall
# clock send time the sender logs. The gateway logs, at debug level, the Unix µs at which each
# alert's PUBACK came back ("PUBACK for alert", sinks/mqtt/session.rs); mosquitto_sub on the
# alert topics maps each attack's source address to its alert id. Latency = PUBACK time - send
# time, per attack; the script prints p50, p99 and max per load and how many attacks got no
# alert, and the datagrams the gateway dropped (kernel + queue, stats.json). Sender and gateway share one clock (the same machine); NETWARDEN_BIN picks the
# binary (default: the release build). Bounded: SECONDS <= 120 per load,
# ATTACKS <= 10,000; traffic goes to 127.0.0.1 only. NO_BUILD=1 skips the release build.
# QUICK=1 is a smoke run (one load of 2,000 records/s for 3 s, 5 attacks) that fails unless
# every attack got an alert acknowledged.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dropfree="${1:-500000}"
secs="${2:-20}"
attacks="${3:-100}"
read -r -a loads <<<"${LOADS:-10 50 90}"
if [[ -n "${QUICK:-}" ]]; then dropfree=2000; secs=3; attacks=5; loads=(100); fi
(( secs <= 120 && attacks <= 10000 )) || { echo "bench: SECONDS <= 120, ATTACKS <= 10000" >&2; exit 2; }
ncores=$(nproc)
gw_core="${GATEWAY_CORE:-0}"
sender_core="${SENDER_CORE:-$((ncores - 1))}"
pcap="$root/tests/data/netflow/softflowd-v9-scan-mixed.pcap"

cd "$root"
[[ -n "${NO_BUILD:-}" ]] || cargo build --release --locked -q -p netwarden
nw="${NETWARDEN_BIN:-$root/target/release/netwarden}"
sender="$root/tests/bench/alert_sender.py"
for tool in mosquitto mosquitto_sub taskset python3; do command -v "$tool" >/dev/null || { echo "bench: $tool missing" >&2; exit 1; }; done
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.$1); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }

mport=$(free_port SOCK_STREAM)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$mport" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
mpid=$!; pids+=("$mpid")
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$mport") 2>/dev/null && break; sleep 0.1; done

# records per datagram of the capture, to turn a record rate into a datagram rate
per_dgram=$(awk -F, '$1 == "softflowd-v9-scan-mixed.pcap" {print $3 / $2}' "$root/tests/data/netflow/nfdump-counts.csv")

echo "# $(date -u +%FT%TZ) $(uname -n), gateway core $gw_core, sender core $sender_core, ${secs}s per load, $attacks attacks, drop-free rate $dropfree rec/s"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %12s %12s %8s %9s %9s %9s %8s %s\n' load "rec/s sent" "dgram/s" attacks "p50 ms" "p99 ms" "max ms" "no alert" "dropped"
fail=0
for pct in "${loads[@]}"; do
    rate=$(python3 -c "print(max(1, round($dropfree * $pct / 100 / $per_dgram)))")
    port=$(free_port SOCK_DGRAM); dd="$work/nw-$pct"; mkdir -p "$dd"
    printf '[netflow]\nlisten = "127.0.0.1:%s"\n[mqtt]\nurl = "mqtt://127.0.0.1:%s"\ntopic_prefix = "nwbench/%s"\n' \
        "$port" "$mport" "$pct" >"$dd.toml"
    mosquitto_sub -h 127.0.0.1 -p "$mport" -q 1 -v -t "nwbench/$pct/#" >"$dd.sub" 2>/dev/null &
    spid=$!; pids+=("$spid")
    NETWARDEN_LOG="info,netwarden::sinks::mqtt=debug" taskset -c "$gw_core" \
        "$nw" run --config "$dd.toml" --data-dir "$dd" --http-listen off --learn off 2>"$dd.log" &
    gpid=$!; pids+=("$gpid")
    for _ in $(seq 100); do [[ -f "$dd/stats.json" ]] && grep -q "Connected to MQTT" "$dd.log" && break; sleep 0.1; done
    out=$(taskset -c "$sender_core" python3 "$sender" --pcap "$pcap" --to "127.0.0.1:$port" --rate "$rate" \
        --seconds "$secs" --attacks "$attacks" --out "$dd.attacks")
    sleep 3 # the last alerts' PUBACKs
    kill -TERM "$gpid"; wait "$gpid" || true
    kill -TERM "$spid"; wait "$spid" || true
    row=$(python3 - "$dd.attacks" "$dd.sub" "$dd.log" "$out" "$pct" "$per_dgram" "$dd/stats.json" <<'EOF'
import json, re, sys
attacks_f, sub_f, log_f, out, pct, per, stats_f = sys.argv[1:8]
sent = {}
for line in open(attacks_f):
    a = json.loads(line)
    sent[a["src"]] = a["sent_unix_us"]
first_id = {}  # attack source -> id of the alert that opened its incident
for line in open(sub_f, errors="replace"):
    topic, _, payload = line.partition(" ")
    if "/alerts/" not in topic:
        continue
    try:
        a = json.loads(payload)
    except ValueError:
        continue
    src = (a.get("subject") or {}).get("src_addr")
    inc = a.get("incident") or {}
    if src in sent and src not in first_id and inc.get("update", 0) == 0:
        first_id[src] = a["id"]
acked = {}
ansi = re.compile(r"\x1b\[[0-9;]*m")
for line in open(log_f, errors="replace"):
    line = ansi.sub("", line)
    if "PUBACK for alert" not in line:
        continue
    i = re.search(r"\bid=([0-9a-f-]{36})", line)
    t = re.search(r"acked_unix_us=(\d+)", line)
    if i and t:
        acked.setdefault(i.group(1), int(t.group(1)))
lat = sorted((acked[first_id[s]] - sent[s]) / 1000.0 for s in sent if first_id.get(s) in acked)
missing = len(sent) - len(lat)
def q(p):
    return lat[min(len(lat) - 1, int(round(p * (len(lat) - 1))))] if lat else float("nan")
o = json.loads(out)
m = json.load(open(stats_f))["metrics"]
dropped = m.get("netflow_datagrams_dropped_kernel", 0) + m.get("netflow_datagrams_dropped_queue_full", 0)
print(f"{pct + '%':<6} {o['rate'] * float(per):>12.0f} {o['rate']:>12.0f} {len(sent):>8} {q(0.5):>9.1f} {q(0.99):>9.1f} {q(1.0):>9.1f} {missing:>8} {dropped}")
EOF
)
    echo "$row"
    [[ "$(awk '{print $(NF-1)}' <<<"$row")" == 0 ]] || fail=1
done
if [[ -n "${QUICK:-}" && $fail -ne 0 ]]; then
    echo "bench: some attacks got no acknowledged alert" >&2
    exit 1
fi
