#!/usr/bin/env bash
# Opt-in smoke test of the attack lab (not in CI: it installs and starts services).
#
#   sudo tests/lab/smoke.sh [--netwarden PATH] [--out DIR] [--keep]
#
# 1. runs a short lab (about 5 minutes: 30 s lead-in, every attack at low intensity,
#    5 MB exfiltration) into DIR (default: a temp dir, removed at the end unless --keep);
# 2. checks the output layout: capture.pcap, netflow-v9.pcap, netflow-ipfix.pcap,
#    labels.csv (header, one row per phase, every attack phase present), flow-labels.csv
#    (header, malicious flows for every attack whose traffic has IP flows), params.json;
# 3. if a netwarden binary is given (--netwarden, $NETWARDEN) or found (target/release,
#    target/debug, PATH), runs `netwarden eval DIR --json` and checks that it exits 0 and
#    that the JSON names every phase of labels.csv. If `netwarden eval --help` fails
#    (the eval command is not in that build), the eval step is skipped with a message.
# Exit status 0 = all checks that ran passed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
NW=${NETWARDEN:-}
OUT=
KEEP=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --netwarden) NW=$2; shift 2;;
        --out) OUT=$2; shift 2;;
        --keep) KEEP=1; shift;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
        *) echo "smoke.sh: unknown argument $1" >&2; exit 2;;
    esac
done
[[ $EUID -eq 0 ]] || { echo "smoke.sh: must be run as root" >&2; exit 2; }
if [[ -z $OUT ]]; then
    OUT=$(mktemp -d /tmp/nwlab-smoke.XXXXXX)
    [[ $KEEP -eq 1 ]] || trap 'rm -rf "$OUT"' EXIT
fi
fail() { echo "smoke.sh: FAIL: $*" >&2; exit 1; }

"$HERE/run.sh" --out "$OUT" --seed 4242 --lead-in 30s --gap 5s --tail 15s --intensity low --exfil-mb 5

for f in capture.pcap netflow-v9.pcap netflow-ipfix.pcap labels.csv flow-labels.csv params.json; do
    [[ -s $OUT/$f ]] || fail "$f missing or empty"
done
"$PY" - "$OUT" <<'PYEOF' || fail "layout checks"
import csv, json, sys
d = sys.argv[1]
rows = list(csv.reader(open(d + "/labels.csv")))
assert rows[0] == "phase,kind,label,attacker_ip,victim_ip,start_ms,end_ms,notes".split(","), rows[0]
phases = [dict(zip(rows[0], r)) for r in rows[1:]]
kinds = {p["kind"] for p in phases if p["label"] == "malicious"}
want = set("scan_syn scan_connect scan_udp scan_slow bruteforce_ssh reverse_shell flood_syn flood_udp arp_spoof exfiltration".split())
assert kinds == want, "attack phases: %s" % sorted(kinds)
for a, b in zip(phases, phases[1:]):
    assert int(a["end_ms"]) == int(b["start_ms"]), "phases not contiguous at %s" % b["phase"]
fl = list(csv.DictReader(open(d + "/flow-labels.csv")))
assert list(fl[0].keys()) == "src,dst,sport,dport,proto,first_ms,last_ms,packets,bytes,label,phase,kind".split(",")
mal = {}
for r in fl:
    if r["label"] == "malicious":
        mal[r["kind"]] = mal.get(r["kind"], 0) + 1
# arp_spoof is ARP frames (plus at most a probe or two): it may have no IP flow at all
missing = want - {"arp_spoof"} - set(mal)
assert not missing, "attacks without malicious flows: %s" % sorted(missing)
p = json.load(open(d + "/params.json"))
assert p["seed"] == 4242 and len(p["phases"]) == len(phases)
print("smoke: layout ok, %d phases, %d flows, malicious per kind %s" % (len(phases), len(fl), json.dumps(mal, sort_keys=True)))
PYEOF

# ---- netwarden eval ------------------------------------------------------------------
if [[ -z $NW ]]; then
    for c in "$ROOT/target/release/netwarden" "$ROOT/target/debug/netwarden" "$(command -v netwarden || true)"; do
        [[ -n $c && -x $c ]] && { NW=$c; break; }
    done
fi
if [[ -z $NW ]]; then
    echo "smoke.sh: SKIP eval: no netwarden binary (build it or pass --netwarden PATH)"
    exit 0
fi
if ! "$NW" eval --help >/dev/null 2>&1; then
    echo "smoke.sh: SKIP eval: '$NW eval --help' fails (this build has no eval command)"
    exit 0
fi
"$NW" eval "$OUT" --json >"$OUT.eval.json" || fail "netwarden eval exited $?"
"$PY" - "$OUT" "$OUT.eval.json" <<'PYEOF' || fail "eval output does not report every phase"
import csv, sys
phases = [r["phase"] for r in csv.DictReader(open(sys.argv[1] + "/labels.csv"))]
text = open(sys.argv[2]).read()
missing = [p for p in phases if p not in text]
assert not missing, "phases not in eval output: %s" % missing
print("smoke: netwarden eval ok, all %d phases reported" % len(phases))
PYEOF
rm -f "$OUT.eval.json"
