#!/usr/bin/env bash
# The built-in flow model before and after issue 18 (docs/evaluation.md section 7.4), in one
# command: `netwarden eval` on the unseen lab runs, flow detector only (--no-graph), three
# paths, with the shipped threshold and with the threshold (and flow-v2 novelty) learnt on the
# run's benign lead-in (--learn-lead-in), for three flow bundles:
#   old     models/bundles/flow-ae       flow-v1, NetFlow fixtures only (built in until issue 18)
#   lab     the lab-only flow-ae-v2 2026.12.02.2 (flow-v2, lab training runs only; taken from
#           git commit 6ebf23b, or LAB_V2=DIR; models/flow-v2-report.sh retrains it)
#   new     models/bundles/flow-ae-v2    flow-v2, fixtures + lab training runs (built in now;
#           models/make-default-bundle.sh)
# The JSON reports go to OUT_DIR/RUN-MODEL-MODE.json, the markdown table to standard output.
#
#   models/default-report.sh [OUT_DIR]        (default models/runs/default-<time>)
#
# Env: LAB_RUNS (default /work/lab-runs), RUNS (default "seed21 seed22 seed31-long"),
#      LAB_V2 (a directory holding the lab-only bundle), NETWARDEN_BIN (default: a debug build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lab="${LAB_RUNS:-/work/lab-runs}"
read -r -a runs <<< "${RUNS:-seed21 seed22 seed31-long}"
out="$(realpath -m "${1:-$root/models/runs/default-$(date -u +%Y%m%dT%H%M%SZ)}")"
mkdir -p "$out"

bin="${NETWARDEN_BIN:-$root/target/debug/netwarden}"
[[ -x $bin ]] || (cd "$root" && cargo build -p netwarden)
if [[ -n "${LAB_V2:-}" ]]; then
    labv2="$(realpath "$LAB_V2")"
else
    labv2="$out/lab-flow-ae-v2"
    mkdir -p "$labv2"
    git -C "$root" archive 6ebf23b models/bundles/flow-ae-v2 | tar -x -C "$labv2" --strip-components 3
fi
models=("old=$root/models/bundles/flow-ae" "lab=$labv2" "new=$root/models/bundles/flow-ae-v2")

labels=()
for run in "${runs[@]}"; do
    for m in "${models[@]}"; do
        name="${m%%=*}"
        for mode in shipped learnt; do
            learn=(); [[ $mode == learnt ]] && learn=(--learn-lead-in)
            json="$out/$run-$name-$mode.json"
            # Exit 1 means a target was missed; none is given here, so only 2 fails.
            "$bin" eval "$lab/$run" --paths v9,ipfix,capture --no-graph --flow-model "${m#*=}" \
                "${learn[@]}" --json > "$json" || [[ $? -eq 1 ]]
            labels+=("$run $name, $mode=$json")
        done
    done
done
(cd "$root/models" && .venv/bin/python -m netwarden_models.learn_table "${labels[@]}")
