#!/usr/bin/env bash
# flow-v1 vs flow-v2 (issue 18), in one command (docs/evaluation.md section 7, "flow-v2"):
#   1. dataset (kind flow_ae and flow_ae_v2) from the training lab runs' NetFlow v9 exports,
#      labelled by each run's flow-labels.csv (benign records normal, malicious ones test-only;
#      flow-v2 novelty learnt on each run's benign lead-in), train, export, bundle;
#   2. `netwarden eval` on the unseen runs, three NetFlow/capture paths, with the shipped
#      threshold and with the threshold (and flow-v2 novelty) learnt on the lead-in, for the
#      fixture-trained flow-v1 bundle models/bundles/flow-ae (built in until issue 18 made
#      flow-ae-v2 the built-in one) and both new bundles; prints the markdown table.
#
#   models/flow-v2-report.sh [OUT_DIR]        (default models/runs/flow-v2-<time>)
#
# Env: LAB_RUNS (default /work/lab-runs), TRAIN (default "seed1-short seed2 seed3 small-seed11"),
#      TEST (default "seed21 seed22"), NETWARDEN_BIN (default: a debug build; the features and
#      eval figures do not depend on the profile).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lab="${LAB_RUNS:-/work/lab-runs}"
read -r -a train <<< "${TRAIN:-seed1-short seed2 seed3 small-seed11}"
read -r -a test <<< "${TEST:-seed21 seed22}"
out="$(realpath -m "${1:-$root/models/runs/flow-v2-$(date -u +%Y%m%dT%H%M%SZ)}")"
mkdir -p "$out/eval"

"$root/models/setup-venv.sh"
if [[ -z "${NETWARDEN_BIN:-}" ]]; then
    (cd "$root" && cargo build -p netwarden)
    NETWARDEN_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/netwarden"
fi
NETWARDEN_BIN="$(realpath "$NETWARDEN_BIN")"
export NETWARDEN_BIN
py() { (cd "$root/models" && .venv/bin/python -m netwarden_models "$@"); }

runs=()
for r in "${train[@]}"; do runs+=(--lab-run "$lab/$r"); done
for v in v1 v2; do
    kind=flow_ae; [[ $v == v2 ]] && kind=flow_ae_v2
    py dataset --kind "$kind" --out "$out/$v-ds" "${runs[@]}"
    py train --dataset "$out/$v-ds" --out "$out/$v" --quiet
    py export --run "$out/$v"
    py bundle --run "$out/$v" --out "$out/$v-bundle" \
        --data-note "lab runs ${train[*]} (benign records by flow-labels.csv)"
done

for run in "${test[@]}"; do
    for m in shipped v1 v2; do
        model=(--flow-model "$root/models/bundles/flow-ae")
        [[ $m != shipped ]] && model=(--flow-model "$out/$m-bundle")
        for mode in shipped learn; do
            learn=(); [[ $mode == learn ]] && learn=(--learn-lead-in)
            "$NETWARDEN_BIN" eval "$lab/$run" --no-graph --paths v9,ipfix,capture \
                "${model[@]}" "${learn[@]}" --json > "$out/eval/$run-$m-$mode.json"
        done
    done
done
(cd "$root/models" && .venv/bin/python -m netwarden_models.flow_v2_table "$out/eval" "${test[@]}")
