#!/usr/bin/env bash
# Make the lab dataset: N runs of tests/lab/run.sh with different seeds, lead-ins, attack
# orders and intensities (what the temporal-graph model trains on). Not run in CI.
#
#   sudo tests/lab/dataset.sh DIR [N] [FIRST_SEED]      (defaults: N=12, FIRST_SEED=100)
#
# Run i (seed s = FIRST_SEED + i) goes to DIR/run-<s>/; a run whose params.json exists is
# skipped, so an interrupted dataset can be resumed by re-running the same command.
# Per run (all drawn from the seed, so the dataset is reproducible):
#   lead-in  5m, 10m, 20m or 45m       (site learning needs long benign stretches)
#   order    shuffled (run.sh --attacks shuffle)
#   intensity low, medium or high
#   gap      30s .. 180s, tail 2m .. 5m
# Expected size (estimated from the knob tables, not measured): a run is lead-in (20 min
# on average) + 10 gaps (~18 min) + attacks (~3 / 8 / 20 min at low / medium / high) +
# tail, ~50 min on average plus ~1 min of exports, so 12 runs are ~10 hours of traffic:
# ~7,000 graph snapshots at 5 s windows (the issue asks for >= 5,000; use N=16 for 10 s
# windows). Full-frame captures: seed1-short (6 min, all attacks low) is 54 MB, 20 MB of
# it the exfiltration, the rest mostly benign downloads, so ~5 MB per benign minute:
# budget 3-6 GB; LAB_EXTRA="--snaplen 128" cuts that several times (payloads are the
# bulk). Extra run.sh arguments go in $LAB_EXTRA.
# DIR/index.csv lists seed, lead-in, intensity, order, status and duration per run.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${1:?usage: dataset.sh DIR [N] [FIRST_SEED]}
N=${2:-12}
FIRST=${3:-100}
mkdir -p "$DIR"
[[ -f $DIR/index.csv ]] || echo "seed,lead_in,intensity,gap,tail,status,seconds,dir" >"$DIR/index.csv"
LEADS=(5m 10m 20m 45m)
LEVELS=(low medium high)
for i in $(seq 0 $((N - 1))); do
    s=$((FIRST + i))
    RANDOM=$s
    lead=${LEADS[RANDOM % 4]}
    lvl=${LEVELS[RANDOM % 3]}
    gap=$((30 + RANDOM % 151))s
    tail=$((2 + RANDOM % 4))m
    out=$DIR/run-$s
    if [[ -f $out/params.json ]]; then
        echo "dataset: run-$s exists, skipped"
        continue
    fi
    echo "dataset: run-$s: lead-in $lead, intensity $lvl, gap $gap, tail $tail"
    t0=$(date +%s)
    # shellcheck disable=SC2086
    if "$HERE/run.sh" --out "$out" --seed "$s" --lead-in "$lead" --attacks shuffle \
            --intensity "$lvl" --gap "$gap" --tail "$tail" ${LAB_EXTRA:-} >"$DIR/run-$s.log" 2>&1; then
        st=ok
    else
        st=failed
    fi
    echo "$s,$lead,$lvl,$gap,$tail,$st,$(( $(date +%s) - t0 )),run-$s" >>"$DIR/index.csv"
done
