# shellcheck shell=bash
# Shell helpers sourced by tests/data/make-fixtures.sh and tests/lab/run.sh.
#
# softflowd_wait_eof PID CTL LOG STATS TRIES
#   Waits until softflowd (PID, a child of this shell, started with `-r FILE` and the control
#   socket CTL) has read its file, then returns softflowd's exit status. softflowd 1.1.0 here
#   reads the file, flushes every flow ("Shutting down after pcap EOF") and exits by itself.
#   Some builds instead keep waiting on the control socket after EOF; then it asks for
#   statistics every 0.5 s (written to STATS) until the processed packet count stops moving,
#   appends them to LOG and shuts softflowd down, which flushes all flows. Gives up waiting
#   for EOF after TRIES polls (the caller's own `timeout` bounds softflowd itself).
softflowd_wait_eof() {
    local pid=$1 ctl=$2 log=$3 stats=$4 tries=$5 prev=-1 cur
    for _ in $(seq 1 "$tries"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
        if [[ -S $ctl ]] && kill -0 "$pid" 2>/dev/null; then
            timeout 10 softflowctl -c "$ctl" statistics >"$stats" 2>&1 || true
            cur=$(awk -F': *' '/^Packets processed/ {print $2 + 0; exit}' "$stats")
            if [[ -n $cur && $cur == "$prev" ]]; then
                cat "$stats" >>"$log"
                timeout 10 softflowctl -c "$ctl" shutdown >/dev/null 2>&1 || true
                break
            fi
            prev=${cur:-$prev}
        fi
    done
    wait "$pid"
}

# netns_remove NS
#   Removes network namespace NS if it exists: first kills (by PID, TERM then KILL) whatever
#   still runs inside it, such as left-over generators and servers, then deletes it.
netns_remove() {
    local ns=$1 pids
    ip netns list | awk '{print $1}' | grep -qx "$ns" || return 0
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        kill $pids 2>/dev/null || true
        sleep 0.5
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [[ -z $pids ]] || kill -9 $pids 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
}

# tcpdump_wait_listening PID ERRLOG
#   Waits (up to 5 s) until the tcpdump PID, whose stderr goes to ERRLOG, says it is listening,
#   so no early packet is missed. Returns 1 at once if tcpdump exits first.
tcpdump_wait_listening() {
    local pid=$1 errlog=$2
    for _ in $(seq 1 100); do
        grep -q 'listening on' "$errlog" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
}
