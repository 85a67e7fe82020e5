#!/usr/bin/env bash
# Regenerate the committed traffic / NetFlow test fixtures under tests/data/.
#
#   sudo tests/data/make-fixtures.sh
#
# What it does (see tests/data/README.md for the details):
#   1. builds two network namespaces nwfx-a (10.213.0.1) and nwfx-b (10.213.0.2)
#      joined by a veth pair, and generates bounded traffic between them only;
#   2. captures it with tcpdump inside nwfx-a -> pcap/benign.pcap, pcap/scan-mixed.pcap;
#   3. feeds each capture to softflowd (v5, v9, IPFIX) and pmacctd/nfprobe (v9, IPFIX),
#      which export to 127.0.0.1:<high port>; the export datagrams are captured on lo
#      -> netflow/<exporter>-<version>-<traffic>.pcap;
#   4. runs tests/data/check-fixtures.sh --update (nfcapd/nfdump as reference decoder).
#
# Every traffic generator is bounded by a count and by `timeout`; all generated traffic
# stays inside the two namespaces, exports go to 127.0.0.1 only. The namespaces are
# removed on exit (also on error / Ctrl-C), and left-overs of an earlier run are
# removed at start, so the script can simply be re-run.
set -euo pipefail

if [[ ${EUID} -ne 0 ]]; then
    echo "make-fixtures.sh: must be run as root (sudo $0)" >&2
    exit 1
fi

for tool in ip tcpdump softflowd softflowctl pmacctd nmap curl ethtool timeout nfcapd nfdump; do
    command -v "$tool" >/dev/null || { echo "make-fixtures.sh: missing tool: $tool" >&2; exit 1; }
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/data/helpers.sh
. "$HERE/helpers.sh"
PCAP_DIR=$HERE/pcap
NF_DIR=$HERE/netflow
PY=${PYTHON:-python3}

NS_A=nwfx-a
NS_B=nwfx-b
VETH_A=nwfx-va
VETH_B=nwfx-vb
IP_A=10.213.0.1   # scanner / client
IP_B=10.213.0.2   # server / target
PORT_BASE=29055   # export ports: PORT_BASE + N, on 127.0.0.1 only
SNAPLEN=128

# pmacct nfprobe flow timeouts (seconds): pmacct's defaults except a 1 s expiry check
# interval. Everything still cached when the savefile ends is flushed on exit.
PMACCT_TIMEOUTS="tcp=3600:tcp.rst=120:tcp.fin=300:udp=300:icmp=300:general=3600:maxlife=604800:expint=1"

WORK=$(mktemp -d /tmp/nwfx-fixtures.XXXXXX)

log() { printf '[make-fixtures %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

ns_teardown() {
    local ns
    for ns in "$NS_A" "$NS_B"; do
        # processes still running inside *our* namespaces (left-over generators/servers)
        netns_remove "$ns"
    done
    # a veth left in the root namespace by an interrupted setup
    ip link del "$VETH_A" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # our own background jobs that are still running (tcpdump, exporters, servers, ...)
    local p
    for p in $(jobs -pr); do
        kill "$p" 2>/dev/null || true
    done
    ns_teardown
    rm -rf "$WORK"
    if [[ $rc -ne 0 ]]; then log "FAILED (exit $rc)"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -------------------------------------------------------------------------------------
# helper programs (written to the temp dir)
# -------------------------------------------------------------------------------------
cat >"$WORK/udp_echo_server.py" <<'EOF'
# Tiny DNS-like UDP responder: answers every datagram with the first 12 bytes of the
# request followed by a random "answer" section. Exits after DURATION seconds.
import os, random, socket, sys, time
host, port, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, port))
s.settimeout(0.5)
end = time.time() + duration
rnd = random.Random(7)
while time.time() < end:
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    s.sendto(data[:12] + data[12:] + os.urandom(rnd.randint(16, 220)), addr)
EOF

cat >"$WORK/udp_client.py" <<'EOF'
# DNS-sized UDP request/response client. Mostly a fresh socket (new source port) per
# query, like a stub resolver; sometimes a few queries on the same socket.
import os, random, socket, sys, time
host, port, count, duration, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(seed)
end = time.time() + duration
sent = 0
while sent < count and time.time() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    for _ in range(1 if rnd.random() < 0.75 else rnd.randint(2, 4)):
        if sent >= count:
            break
        s.sendto(os.urandom(12) + os.urandom(rnd.randint(17, 70)), (host, port))
        sent += 1
        try:
            s.recvfrom(2048)
        except socket.timeout:
            pass
        time.sleep(rnd.uniform(0.0, 0.05))
    s.close()
    time.sleep(rnd.uniform(0.02, 0.35))
print(f"udp_client: sent {sent} queries", file=sys.stderr)
EOF

cat >"$WORK/udp_sink.py" <<'EOF'
# Bind 127.0.0.1:PORT and discard (count) datagrams, so that exporters sending to this
# port do not get ICMP port-unreachable / ECONNREFUSED. Exits on SIGTERM.
import signal, socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", port))
n = 0
def stop(*_):
    print(f"udp_sink: {n} datagrams on port {port}", file=sys.stderr)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
while True:
    s.recv(65535)
    n += 1
EOF

cat >"$WORK/scan_window.py" <<'EOF'
# Locate the nmap SYN probes in a capture: TCP SYN (no ACK) from A to B with window 1024
# (nmap's raw SYN probes; kernel/curl SYNs use a window of 64240). Prints JSON.
import json, struct, sys
path, ip_a, ip_b = sys.argv[1], sys.argv[2], sys.argv[3]
def ip(s): return bytes(int(x) for x in s.split("."))
a, b = ip(ip_a), ip(ip_b)
with open(path, "rb") as f:
    hdr = f.read(24)
    magic = struct.unpack("<I", hdr[:4])[0]
    e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(e + "I", hdr[20:24])[0]
    assert linktype == 1, linktype
    first = last = None
    probes = []
    npk = 0
    while True:
        ph = f.read(16)
        if len(ph) < 16:
            break
        sec, frac, incl, _orig = struct.unpack(e + "IIII", ph)
        data = f.read(incl)
        ts = sec + frac / (1e9 if nano else 1e6)
        npk += 1
        first = ts if first is None else first
        last = ts
        if len(data) < 14 + 20 or data[12:14] != b"\x08\x00":
            continue
        iph = data[14:]
        ihl = (iph[0] & 15) * 4
        if iph[9] != 6 or iph[12:16] != a or iph[16:20] != b or len(iph) < ihl + 16:
            continue
        tcp = iph[ihl:]
        flags, win = tcp[13], struct.unpack(">H", tcp[14:16])[0]
        if flags & 0x12 == 0x02 and win == 1024:
            probes.append((ts, struct.unpack(">H", tcp[2:4])[0]))
out = {
    "capture_first_packet_epoch": round(first, 6),
    "capture_last_packet_epoch": round(last, 6),
    "capture_packets": npk,
    "scan_probe_packets": len(probes),
    "scan_distinct_dst_ports": len({p for _, p in probes}),
}
if probes:
    s, t = probes[0][0], probes[-1][0]
    out.update({
        "scan_first_probe_epoch": round(s, 6),
        "scan_last_probe_epoch": round(t, 6),
        "scan_first_probe_offset_s": round(s - first, 6),
        "scan_last_probe_offset_s": round(t - first, 6),
    })
print(json.dumps(out, indent=2))
EOF

# -------------------------------------------------------------------------------------
# namespaces
# -------------------------------------------------------------------------------------
ns_setup() {
    ns_teardown
    local ns
    for ns in "$NS_A" "$NS_B"; do
        ip netns add "$ns"
        # IPv4 only: no IPv6 router/neighbour solicitations, MLD, ...
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip -n "$ns" link set lo up
    done
    ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B"
    ip -n "$NS_A" addr add "$IP_A/24" dev "$VETH_A"
    ip -n "$NS_B" addr add "$IP_B/24" dev "$VETH_B"
    ip -n "$NS_A" link set "$VETH_A" up
    ip -n "$NS_B" link set "$VETH_B" up
    # no TSO/GSO/GRO: the capture then shows wire-sized (<= MTU) packets as a real link would
    ip netns exec "$NS_A" ethtool -K "$VETH_A" tso off gso off gro off >/dev/null ||
        log "warning: could not disable offloads on $VETH_A"
    ip netns exec "$NS_B" ethtool -K "$VETH_B" tso off gso off gro off >/dev/null ||
        log "warning: could not disable offloads on $VETH_B"
    # wait for the link to come up
    for _ in $(seq 1 50); do
        ip netns exec "$NS_A" ping -c 1 -W 1 -q "$IP_B" >/dev/null 2>&1 && break
        sleep 0.1
    done
}

start_servers() {
    mkdir -p "$WORK/www-b" "$WORK/www-a"
    printf '<html><head><title>nwfx</title></head><body>ok</body></html>\n' >"$WORK/www-b/index.html"
    head -c 300 /dev/urandom | base64 >"$WORK/www-b/s.txt"
    head -c 4096 /dev/urandom >"$WORK/www-b/m.bin"
    head -c 32768 /dev/urandom >"$WORK/www-b/l.bin"
    head -c 262144 /dev/urandom >"$WORK/www-b/xl.bin"
    head -c 2097152 /dev/urandom >"$WORK/www-b/big.bin"
    printf '{"status":"ok"}\n' >"$WORK/www-a/status.json"
    head -c 8192 /dev/urandom >"$WORK/www-a/report.bin"
    local port
    # nwfx-b: HTTP on 80, 443 (plain HTTP) and 8080 -> open ports 80 and 443 in nmap's 1-1000
    for port in 80 443 8080; do
        ip netns exec "$NS_B" timeout 900 "$PY" -m http.server "$port" --bind "$IP_B" \
            --directory "$WORK/www-b" >>"$WORK/http-b.log" 2>&1 &
    done
    ip netns exec "$NS_B" timeout 900 "$PY" "$WORK/udp_echo_server.py" "$IP_B" 5300 900 &
    # nwfx-a: a small HTTP server for requests in the other direction
    ip netns exec "$NS_A" timeout 900 "$PY" -m http.server 8000 --bind "$IP_A" \
        --directory "$WORK/www-a" >>"$WORK/http-a.log" 2>&1 &
    # wait until they accept connections
    for _ in $(seq 1 100); do
        if ip netns exec "$NS_A" curl -s -o /dev/null --noproxy '*' --max-time 1 "http://$IP_B:80/" &&
           ip netns exec "$NS_A" curl -s -o /dev/null --noproxy '*' --max-time 1 "http://$IP_B:443/" &&
           ip netns exec "$NS_A" curl -s -o /dev/null --noproxy '*' --max-time 1 "http://$IP_B:8080/" &&
           ip netns exec "$NS_B" curl -s -o /dev/null --noproxy '*' --max-time 1 "http://$IP_A:8000/"; then
            return 0
        fi
        sleep 0.1
    done
    echo "servers did not come up" >&2
    return 1
}

# -------------------------------------------------------------------------------------
# benign traffic generators (all bounded by count and by timeout)
# -------------------------------------------------------------------------------------
http_client_loop() {  # NS DST_IP COUNT DURATION SEED PORTS...   (runs curl in a loop)
    local ns=$1 dst=$2 count=$3 dur=$4 seed=$5
    shift 5
    # shellcheck disable=SC2016  # the inner script expands its own positional args
    ip netns exec "$ns" timeout $((dur + 15)) bash -c '
        dst=$1 count=$2 dur=$3 seed=$4; shift 4; ports=("$@")
        RANDOM=$seed
        agents=("curl/7.88.1" "Mozilla/5.0 (X11; Linux x86_64) nwfx" "netwarden-probe/0.1" "python-requests/2.31")
        big_at=$(( count / 2 ))
        for ((i = 1; i <= count && SECONDS < dur; i++)); do
            r=$((RANDOM % 100))
            if   ((r < 35)); then path=/
            elif ((r < 55)); then path=/index.html
            elif ((r < 70)); then path=/s.txt
            elif ((r < 84)); then path=/m.bin
            elif ((r < 93)); then path=/l.bin
            elif ((r < 97)); then path=/xl.bin
            else                  path=/nope-$i.html    # 404
            fi
            [[ $i -eq $big_at && " ${ports[*]} " == *" 80 "* ]] && path=/big.bin
            port=${ports[RANDOM % ${#ports[@]}]}
            ua=${agents[RANDOM % ${#agents[@]}]}
            curl -s -o /dev/null --noproxy "*" --max-time 5 -A "$ua" "http://$dst:$port$path" || true
            sleep "$(printf "0.%03d" $((RANDOM % 160)))"
        done
        echo "http_client_loop -> $dst: $((i - 1)) requests" >&2
    ' _ "$dst" "$count" "$dur" "$seed" "$@"
}

reverse_http_loop() {  # NS_B -> A:8000, a handful of slow requests
    local count=$1 dur=$2 seed=$3
    # shellcheck disable=SC2016
    ip netns exec "$NS_B" timeout $((dur + 15)) bash -c '
        dst=$1 count=$2 dur=$3; RANDOM=$4
        for ((i = 1; i <= count && SECONDS < dur; i++)); do
            if ((RANDOM % 3)); then path=/status.json; else path=/report.bin; fi
            curl -s -o /dev/null --noproxy "*" --max-time 5 "http://$dst:8000$path" || true
            sleep "$(printf "%d.%03d" $((RANDOM % 2)) $((RANDOM % 1000)))"
        done
    ' _ "$IP_A" "$count" "$dur" "$seed"
}

benign_traffic() {  # DURATION HTTP_COUNT UDP_COUNT SEED
    local dur=$1 nhttp=$2 nudp=$3 seed=$4
    local pids=()
    http_client_loop "$NS_A" "$IP_B" "$nhttp" "$dur" "$seed" 80 8080 443 & pids+=($!)
    reverse_http_loop $((dur / 2)) "$dur" $((seed + 1)) & pids+=($!)
    ip netns exec "$NS_A" timeout $((dur + 15)) "$PY" "$WORK/udp_client.py" "$IP_B" 5300 "$nudp" "$dur" $((seed + 2)) & pids+=($!)
    ip netns exec "$NS_A" timeout $((dur + 5)) ping -q -c $((dur * 2)) -i 0.5 -W 1 "$IP_B" >/dev/null & pids+=($!)
    ( sleep 3; ip netns exec "$NS_A" timeout 10 ping -q -c 4 -i 0.3 -s 1200 -W 1 "$IP_B" >/dev/null ) & pids+=($!)
    ( sleep 5; ip netns exec "$NS_B" timeout 15 ping -q -c 10 -i 1 -W 1 "$IP_A" >/dev/null ) & pids+=($!)
    local p rc=0
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    [[ $rc -eq 0 ]] || log "note: a traffic generator exited non-zero (ping loss / timeout); continuing"
}

# -------------------------------------------------------------------------------------
# capture helpers
# -------------------------------------------------------------------------------------
TCPDUMP_PID=
start_tcpdump() {  # ERRLOG ARGS...   (ARGS passed to tcpdump; may start with "ip netns exec NS")
    local errlog=$1; shift
    : >"$errlog"
    "$@" 2>"$errlog" &
    TCPDUMP_PID=$!
    tcpdump_wait_listening "$TCPDUMP_PID" "$errlog" || { cat "$errlog" >&2; return 1; }
    sleep 1
}
stop_tcpdump() {
    sleep 1
    kill -INT "$TCPDUMP_PID" 2>/dev/null || true
    wait "$TCPDUMP_PID" 2>/dev/null || true
    TCPDUMP_PID=
}

capture_benign() {
    local out=$WORK/out/pcap/benign.pcap
    log "capturing benign traffic -> pcap/benign.pcap"
    start_tcpdump "$WORK/tcpdump-benign.log" \
        ip netns exec "$NS_A" timeout 120 tcpdump -Z root -n -i "$VETH_A" -s "$SNAPLEN" -U -w "$out"
    benign_traffic 30 260 220 1001
    stop_tcpdump
    grep -E 'packets (captured|received|dropped)' "$WORK/tcpdump-benign.log" >&2 || true
}

capture_scan_mixed() {
    local out=$WORK/out/pcap/scan-mixed.pcap
    log "capturing benign traffic + nmap SYN scan -> pcap/scan-mixed.pcap"
    start_tcpdump "$WORK/tcpdump-scan.log" \
        ip netns exec "$NS_A" timeout 120 tcpdump -Z root -n -i "$VETH_A" -s "$SNAPLEN" -U -w "$out"
    benign_traffic 24 130 120 2002 &
    local benign_pid=$!
    sleep 9
    local t0 t1
    t0=$(date +%s.%N)
    # -n: no DNS lookups (nothing outside the namespaces is reachable or contacted)
    ip netns exec "$NS_A" timeout 120 nmap -n -sS -p 1-1000 -T4 --max-retries 1 "$IP_B" >"$WORK/nmap.txt" 2>&1
    t1=$(date +%s.%N)
    wait "$benign_pid"
    stop_tcpdump
    grep -E 'packets (captured|received|dropped)' "$WORK/tcpdump-scan.log" >&2 || true
    cat "$WORK/nmap.txt" >&2
    "$PY" "$WORK/scan_window.py" "$out" "$IP_A" "$IP_B" >"$WORK/scan-window.json"
    "$PY" - "$WORK/scan-window.json" "$t0" "$t1" "$WORK/out/pcap/scan-mixed.scan.json" "$WORK/nmap.txt" <<'EOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
first = d["capture_first_packet_epoch"]
d["nmap_command"] = "nmap -n -sS -p 1-1000 -T4 --max-retries 1 10.213.0.2"
d["nmap_wallclock_start_epoch"] = round(t0, 6)
d["nmap_wallclock_end_epoch"] = round(t1, 6)
d["nmap_wallclock_start_offset_s"] = round(t0 - first, 6)
d["nmap_wallclock_end_offset_s"] = round(t1 - first, 6)
d["nmap_open_ports"] = sorted(int(p) for p in re.findall(r"^(\d+)/tcp\s+open", open(sys.argv[5]).read(), re.M))
d["scanner_ip"], d["target_ip"] = "10.213.0.1", "10.213.0.2"
json.dump(d, open(sys.argv[4], "w"), indent=2)
open(sys.argv[4], "a").write("\n")
EOF
    cat "$WORK/out/pcap/scan-mixed.scan.json" >&2
}

# -------------------------------------------------------------------------------------
# exporters
# -------------------------------------------------------------------------------------
EXPORT_N=0
SINK_PID=
begin_export_capture() {  # OUT PORT
    local out=$1 port=$2
    "$PY" "$WORK/udp_sink.py" "$port" 2>>"$WORK/sink.log" &
    SINK_PID=$!
    start_tcpdump "$WORK/tcpdump-export.log" \
        timeout 300 tcpdump -Z root -n -i lo -s 0 -U -w "$out" udp and port "$port"
}
end_export_capture() {
    stop_tcpdump
    kill -TERM "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    grep -E 'packets captured' "$WORK/tcpdump-export.log" >&2 || true
    tail -n 1 "$WORK/sink.log" >&2 || true
}

export_softflowd() {  # TRAFFIC VERSION_ARG LABEL [EXTRA_ARGS...]
    local traffic=$1 ver=$2 label=$3
    shift 3
    local in=$PCAP_DIR/$traffic.pcap out=$WORK/out/netflow/softflowd-$label-$traffic.pcap
    local port=$((PORT_BASE + EXPORT_N)); EXPORT_N=$((EXPORT_N + 1))
    local ctl=$WORK/softflowd.ctl pidf=$WORK/softflowd.pid log=$WORK/softflowd-$label-$traffic.log
    log "softflowd -v $ver $traffic -> netflow/${out##*/} (127.0.0.1:$port)"
    rm -f "$ctl" "$pidf"
    begin_export_capture "$out" "$port"
    # -d foreground, -a flow times from the pcap timestamps, -c/-p private ctl socket/pidfile.
    log "  softflowd -d -a -r pcap/$traffic.pcap -n 127.0.0.1:$port -v $ver $*"
    # (run from pcap/ with a relative -r path: softflowd uses the -r argument as the
    # "interface name", which its v9/IPFIX option records carry - keep local paths out)
    (cd "$(dirname "$in")" && exec timeout 120 softflowd -d -a -r "$(basename "$in")" \
        -n "127.0.0.1:$port" -v "$ver" -c "$ctl" -p "$pidf" "$@") >"$log" 2>&1 &
    local sfpid=$!
    softflowd_wait_eof "$sfpid" "$ctl" "$log" "$WORK/sf-stats.txt" 120 || { cat "$log" >&2; return 1; }
    end_export_capture
    # softflowd's own accounting, to compare with what nfdump decodes later
    log "  softflowd: $(grep -E '^(Packets processed|Flows expired|Flows exported)' "$log" | tr '\n' ';')"
    grep -qE 'Flows exported: .*\(0 failures\)' "$log" || { echo "softflowd reported export failures" >&2; cat "$log" >&2; return 1; }
}

export_pmacct() {  # TRAFFIC VERSION LABEL
    local traffic=$1 ver=$2 label=$3
    local in=$PCAP_DIR/$traffic.pcap out=$WORK/out/netflow/pmacct-$label-$traffic.pcap
    local port=$((PORT_BASE + EXPORT_N)); EXPORT_N=$((EXPORT_N + 1))
    local conf=$WORK/pmacctd-$label-$traffic.conf log=$WORK/pmacctd-$label-$traffic.log
    log "pmacctd nfprobe v$ver $traffic -> netflow/${out##*/} (127.0.0.1:$port)"
    # pmacctd reads the savefile, then exits; the nfprobe plugin flushes its flow cache
    # on the way out ("Shutting down on user request").
    cat >"$conf" <<EOF
daemonize: false
pcap_savefile: $in
plugins: nfprobe
nfprobe_receiver: 127.0.0.1:$port
nfprobe_version: $ver
nfprobe_timeouts: $PMACCT_TIMEOUTS
pidfile: $WORK/pmacctd.pid
EOF
    begin_export_capture "$out" "$port"
    timeout 120 pmacctd -f "$conf" >"$log" 2>&1 &
    local pid=$!
    wait "$pid" || { cat "$log" >&2; return 1; }
    end_export_capture
    grep -q 'Shutting down on user request' "$log" || { echo "pmacctd nfprobe did not flush?" >&2; cat "$log" >&2; return 1; }
}

# -------------------------------------------------------------------------------------
main() {
    # optional argument: which stages to run (default: all)
    #   traffic  - namespaces + pcap/*.pcap
    #   export   - netflow/*.pcap from the existing pcap/*.pcap
    #   check    - check-fixtures.sh --update
    local stages=${1:-all}
    [[ $stages == all ]] && stages="traffic export check"
    # outputs are written under $WORK/out and only moved into tests/data/ once a stage
    # has completed, so an interrupted run leaves the committed fixtures untouched
    mkdir -p "$PCAP_DIR" "$NF_DIR" "$WORK/out/pcap" "$WORK/out/netflow"
    log "work dir $WORK, stages: $stages"
    if [[ " $stages " == *" traffic "* ]]; then
        ns_setup
        start_servers
        capture_benign
        capture_scan_mixed
        ns_teardown   # traffic done; the exporters only use 127.0.0.1
        mv -f "$WORK"/out/pcap/* "$PCAP_DIR/"
    fi
    if [[ " $stages " == *" export "* ]]; then
        local traffic
        for traffic in benign scan-mixed; do
            export_softflowd "$traffic" 5 v5
            export_softflowd "$traffic" 9 v9
            # -A milli: absolute flowStart/EndMilliseconds (IE 152/153). Without it softflowd
            # exports sysUpTime-relative times (IE 22/21) whose systemInitTimeMilliseconds is
            # wrong when reading a pcap with -a (flows land ~capture-length too late and
            # nfdump shows negative durations).
            export_softflowd "$traffic" 10 ipfix -A milli
            export_pmacct "$traffic" 9 v9
            export_pmacct "$traffic" 10 ipfix
        done
        mv -f "$WORK"/out/netflow/*.pcap "$NF_DIR/"
    fi
    # the files were written by root: hand them to the owner of tests/data
    chown -R --reference="$HERE" "$PCAP_DIR" "$NF_DIR"
    ls -l "$PCAP_DIR" "$NF_DIR" >&2
    if [[ " $stages " == *" check "* ]]; then
        log "verifying with nfcapd/nfdump"
        "$HERE/check-fixtures.sh" --update
    fi
    log "done"
}

main "$@"
