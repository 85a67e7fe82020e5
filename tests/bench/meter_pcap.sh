#!/usr/bin/env bash
# Packet meter through the gateway vs softflowd, one core, same pcap, same run.
#
#   tests/bench/meter_pcap.sh [PCAP]
#
# Without PCAP, generates one with nw-gen-pcap (tests/src/bin/gen_pcap.rs). Then, each pinned
# to CPU 0 with taskset, and each run REPEAT times (default 3, best kept):
#   netwarden  `netwarden features --pcap PCAP --out /dev/null`: reads the pcap, meters every
#              frame into flows (the firmware meter, 16,384-flow table), turns ended flows into
#              records and flow-v1 feature vectors (host windows) and writes them as CSV;
#   softflowd  `softflowd -d -a -r PCAP -m 16384 -v 9 -n 127.0.0.1:PORT`: meters the same file
#              and exports NetFlow v9 to a local UDP port nobody reads (sending is part of its
#              cost, as writing the CSV is part of netwarden's). softflowd 1.1.0 waits on its
#              control socket after the file, so a poller asks `softflowctl statistics` every
#              0.1 s and sends `shutdown` (which flushes every flow) once all frames are read.
# Frames/s are frames / CPU seconds (user + sys of the metering process, from GNU time), so
# softflowd's idle wait for the poller does not count against it; wall seconds are shown too.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
repeat=${REPEAT:-3}
for tool in softflowd softflowctl taskset /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "meter_pcap.sh: $tool is missing" >&2; exit 1; }
done
work=$(mktemp -d /tmp/nw-meter-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

cargo build --release --locked -p netwarden -p netwarden-e2e --bin netwarden --bin nw-gen-pcap >&2
nw=target/release/netwarden
pcap=${1:-}
if [[ -z $pcap ]]; then
    pcap=$work/bench.pcap
    target/release/nw-gen-pcap --out "$pcap" >&2
fi

# netwarden: its own summary line gives the frame count.
best_nw=""
for _ in $(seq "$repeat"); do
    /usr/bin/time -f '%e %U %S' -o "$work/nw.time" \
        taskset -c 0 "$nw" features --pcap "$pcap" --out /dev/null 2>"$work/nw.log"
    read -r wall user sys <"$work/nw.time"
    cpu=$(echo "$user + $sys" | bc -l)
    if [[ -z $best_nw ]] || (($(echo "$cpu < $best_cpu_nw" | bc -l))); then
        best_nw="$wall $cpu"; best_cpu_nw=$cpu
    fi
done
frames=$(grep -oE '[0-9]+ frames,' "$work/nw.log" | head -n1 | grep -oE '[0-9]+')
summary=$(grep -E 'frames,' "$work/nw.log" | head -n1)

best_sf=""
for _ in $(seq "$repeat"); do
    port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ctl=$work/sf.ctl
    rm -f "$ctl"
    (
        prev=""
        for _ in $(seq 1 6000); do
            sleep 0.1
            [[ -S $ctl ]] || continue
            n=$(softflowctl -c "$ctl" statistics 2>/dev/null | awk -F': *' '/^Packets processed/ {print $2 + 0; exit}')
            if [[ -n $n && ($n -ge $frames || $n == "$prev") ]]; then
                softflowctl -c "$ctl" shutdown >/dev/null 2>&1 || true
                break
            fi
            prev=$n
        done
    ) &
    poller=$!
    /usr/bin/time -f '%e %U %S' -o "$work/sf.time" \
        taskset -c 0 softflowd -d -a -r "$pcap" -m 16384 -v 9 -n "127.0.0.1:$port" \
        -c "$ctl" -p "$work/sf.pid" >"$work/sf.log" 2>&1
    wait "$poller" || true
    read -r wall user sys <"$work/sf.time"
    cpu=$(echo "$user + $sys" | bc -l)
    if [[ -z $best_sf ]] || (($(echo "$cpu < $best_cpu_sf" | bc -l))); then
        best_sf="$wall $cpu"; best_cpu_sf=$cpu
    fi
done
sf_processed=$(grep -E '^Packets processed' "$work/sf.log" | tail -n1 || true)

read -r nw_wall nw_cpu <<<"$best_nw"
read -r sf_wall sf_cpu <<<"$best_sf"
echo "pcap: $pcap ($(stat -c %s "$pcap") bytes, $frames frames)"
echo "netwarden: $summary"
echo "softflowd: ${sf_processed:-Packets processed: ?}"
printf '%-34s %12s %10s %10s\n' "one core (taskset -c 0), best of $repeat" "frames/s" "cpu s" "wall s"
printf '%-34s %12.0f %10.2f %10.2f\n' "netwarden features --pcap" \
    "$(echo "$frames / $nw_cpu" | bc -l)" "$nw_cpu" "$nw_wall"
printf '%-34s %12.0f %10.2f %10.2f\n' "softflowd -r (NetFlow v9 export)" \
    "$(echo "$frames / $sf_cpu" | bc -l)" "$sf_cpu" "$sf_wall"
