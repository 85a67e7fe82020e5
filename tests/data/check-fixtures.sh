#!/usr/bin/env bash
# Verify the NetFlow/IPFIX export fixtures in tests/data/netflow/ with nfdump's nfcapd
# (the reference decoder): every fixture pcap is replayed (tests/data/replay_udp_pcap.py)
# to a fresh nfcapd on 127.0.0.1, and the flow records it decoded are counted.
#
#   tests/data/check-fixtures.sh            compare with tests/data/netflow/nfdump-counts.csv
#   tests/data/check-fixtures.sh --update   rewrite nfdump-counts.csv and the *.nfdump.csv dumps
#
# Needs nfdump (nfcapd, nfdump) and python3; no root needed. Uses UDP ports 29155+N on 127.0.0.1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NF_DIR=$HERE/netflow
COUNTS=$NF_DIR/nfdump-counts.csv
PY=${PYTHON:-python3}
PORT_BASE=29155
UPDATE=0
[[ ${1:-} == --update ]] && UPDATE=1

for tool in nfcapd nfdump "$PY"; do
    command -v "$tool" >/dev/null || { echo "check-fixtures.sh: missing tool: $tool" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/nwfx-check.XXXXXX)
NFCAPD_PID=
cleanup() {
    [[ -z $NFCAPD_PID ]] || kill "$NFCAPD_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

shopt -s nullglob
files=("$NF_DIR"/*.pcap)
[[ ${#files[@]} -gt 0 ]] || { echo "no fixtures in $NF_DIR" >&2; exit 1; }

printf 'file,datagrams,nfdump_flows,nfdump_packets,nfdump_bytes,tcp_flows,udp_flows,icmp_flows,nfcapd_sequence_errors,nfcapd_bad_packets\n' >"$WORK/counts.csv"
n=0
for f in "${files[@]}"; do
    name=$(basename "$f")
    port=$((PORT_BASE + n)); n=$((n + 1))
    dir=$WORK/${name%.pcap}
    mkdir -p "$dir"
    datagrams=$("$PY" "$HERE/replay_udp_pcap.py" --count "$f")
    nfcapd -w "$dir" -b 127.0.0.1 -p "$port" >"$dir.log" 2>&1 &
    NFCAPD_PID=$!
    for _ in $(seq 1 50); do
        grep -q 'Startup' "$dir.log" 2>/dev/null && break
        sleep 0.1
    done
    sleep 0.5
    "$PY" "$HERE/replay_udp_pcap.py" "$f" "$port" 2>>"$WORK/replay.log"
    sleep 1
    kill -TERM "$NFCAPD_PID"
    wait "$NFCAPD_PID" || true
    NFCAPD_PID=
    nfdump -R "$dir" -I >"$dir.stat"
    field() { awk -F': *' -v k="$1" '$1 == k {print $2; exit}' "$dir.stat"; }
    # nfcapd's summary line: "Ident: 'none' Flows: 800, ..., Sequence Errors: 0, Bad Packets: 0"
    seqerr=$(grep -oE 'Sequence Errors: [0-9]+' "$dir.log" | tail -n 1 | grep -oE '[0-9]+$' || echo '?')
    badpk=$(grep -oE 'Bad Packets: [0-9]+' "$dir.log" | tail -n 1 | grep -oE '[0-9]+$' || echo '?')
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$name" "$datagrams" "$(field Flows)" "$(field Packets)" \
        "$(field Bytes)" "$(field Flows_tcp)" "$(field Flows_udp)" "$(field Flows_icmp)" "$seqerr" "$badpk" \
        >>"$WORK/counts.csv"
    # the decoded records, one line each, in the order nfcapd stored them (= export order),
    # for field-level comparisons: times in UTC with ms, -N = plain (unscaled) numbers.
    # For ICMP, dp is nfdump's "type.code".
    {
        echo "ts,te,td,sa,da,sp,dp,pr,flg,tos,pkt,byt,in,out"
        TZ=UTC nfdump -R "$dir" -q -N -o "fmt:%ts,%te,%td,%sa,%da,%sp,%dp,%pr,%flg,%tos,%pkt,%byt,%in,%out" |
            sed -E 's/ *, */,/g; s/^ +//; s/ +$//'
    } >"$WORK/${name%.pcap}.nfdump.csv"
    lines=$(($(wc -l <"$WORK/${name%.pcap}.nfdump.csv") - 1))
    if [[ $lines != "$(field Flows)" ]]; then
        echo "$name: nfdump csv has $lines records but the stat says $(field Flows)" >&2
        exit 1
    fi
done

column -s, -t "$WORK/counts.csv" >&2 2>/dev/null || cat "$WORK/counts.csv" >&2
if [[ $UPDATE -eq 1 ]]; then
    cp "$WORK/counts.csv" "$COUNTS"
    cp "$WORK"/*.nfdump.csv "$NF_DIR/"
    echo "updated $COUNTS and $NF_DIR/*.nfdump.csv" >&2
else
    rc=0
    diff -u "$COUNTS" "$WORK/counts.csv" >&2 || rc=1
    for f in "$WORK"/*.nfdump.csv; do
        diff -q "$NF_DIR/$(basename "$f")" "$f" >&2 || rc=1
    done
    if [[ $rc -eq 0 ]]; then
        echo "OK: all fixtures decode to the recorded counts" >&2
    else
        echo "MISMATCH with $COUNTS" >&2
        exit 1
    fi
fi
