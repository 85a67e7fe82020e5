#!/usr/bin/env bash
# SNMP polling cost: netwarden's client + interface state (nw-snmp-bench, the daemon's code)
# polling net-snmp's snmpd back to back, with the agent holding N dummy interfaces.
#
#   tests/bench/snmp_poll.sh [INTERFACES] [POLLS]        (as root; defaults 1000 and 20)
#
# Everything runs inside a network namespace the script creates (and removes on exit): N dummy
# interfaces (or N/2 veth pairs where the kernel has no dummy module), snmpd on the namespace's 127.0.0.1:1161 pinned to core 1, and the poller pinned to
# core 0 (`taskset`). Figures for v2c and v3 authPriv (SHA/AES), at GetBulk max-repetitions 20
# (the default) and 50. The poller's CPU per poll, divided by a 10 s interval, is the share of
# one core that polling this target every 10 s costs; wall time per poll is mostly the agent.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
n="${1:-1000}"
polls="${2:-20}"
[[ $(id -u) -eq 0 ]] || { echo "bench: needs root (ip netns)" >&2; exit 1; }
for tool in ip snmpd snmpget taskset; do command -v "$tool" >/dev/null || { echo "bench: $tool missing (scripts/test.sh installs it)" >&2; exit 1; }; done

cd "$root"
cargo build --release --locked -q -p netwarden-e2e --bin nw-snmp-bench
bench="$root/target/release/nw-snmp-bench"

ns="nwbench$$"
work="$(mktemp -d)"
snmpd_pid=""
cleanup() {
    [[ -n "$snmpd_pid" ]] && kill "$snmpd_pid" 2>/dev/null && wait "$snmpd_pid" 2>/dev/null
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
# Dummy interfaces where the kernel has the module, else veth pairs (two interfaces each).
if ip -n "$ns" link add probe0 type dummy 2>/dev/null; then
    ip -n "$ns" link del probe0
    for ((i = 0; i < n; i++)); do echo "link add d$i type dummy"; echo "link set d$i up"; done
else
    for ((i = 0; i < n / 2; i++)); do
        echo "link add va$i type veth peer name vb$i"
        echo "link set va$i up"
        echo "link set vb$i up"
    done
fi >"$work/links"
ip -n "$ns" -batch "$work/links"

cat >"$work/snmpd.conf" <<CONF
rocommunity nwtest default
createUser nwuser SHA "nw-auth-pass" AES "nw-priv-pass"
rouser nwuser priv
CONF
mkdir -p "$work/persist"
SNMP_PERSISTENT_DIR="$work/persist" MIBS="" MIBDIRS="$work" \
    ip netns exec "$ns" taskset -c 1 snmpd -f -Lo -C -r -c "$work/snmpd.conf" udp:127.0.0.1:1161 \
    >"$work/snmpd.log" 2>&1 &
snmpd_pid=$!
for _ in $(seq 50); do
    MIBS="" MIBDIRS="$work" ip netns exec "$ns" snmpget -v2c -c nwtest -r0 -t0.3 127.0.0.1:1161 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1 && break
    sleep 0.2
done

echo "snmpd $(snmpd -v | awk '/version/ {print $NF; exit}') with $(($(ip -n "$ns" -o link | wc -l) - 1)) interfaces (+lo); $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for version in v2c v3; do
    for rep in 20 50; do
        ip netns exec "$ns" taskset -c 0 "$bench" 127.0.0.1:1161 "$version" "$polls" "$rep"
    done
done
