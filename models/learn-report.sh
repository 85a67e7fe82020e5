#!/usr/bin/env bash
# The learning-period evaluation of one lab run (docs/evaluation.md section 7.3): `netwarden
# eval` with the built-in models (flow-v1 autoencoder, temporal graph, ARP rules) and with the
# flow-v2 bundle, each with the shipped threshold and with the threshold learnt on the run's
# benign lead-in (`--learn-lead-in`), on the three paths (v9, IPFIX, capture); the JSON reports
# go to OUT_DIR, the markdown table to standard output.
#
#   models/learn-report.sh RUN_DIR OUT_DIR
#
# Env: NETWARDEN_BIN (default: target/debug/netwarden, built if absent), FLOW_V2 (default
# models/bundles/flow-ae-v2).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -eq 2 ]] || { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }
run="$(realpath "$1")"
out="$(realpath -m "$2")"
mkdir -p "$out"
bin="${NETWARDEN_BIN:-$root/target/debug/netwarden}"
[[ -x $bin ]] || (cd "$root" && cargo build -p netwarden)
v2="${FLOW_V2:-$root/models/bundles/flow-ae-v2}"
name="$(basename "$run")"

labels=()
for mode in shipped learnt; do
    learn=(); [[ $mode == learnt ]] && learn=(--learn-lead-in)
    # Exit 1 means a target was missed; none is given here, so only 2 (cannot evaluate) fails.
    "$bin" eval "$run" --paths v9,ipfix,capture "${learn[@]}" --json > "$out/v1-graph-$mode.json"
    "$bin" eval "$run" --paths v9,ipfix,capture --no-graph --flow-model "$v2" "${learn[@]}" \
        --json > "$out/v2-$mode.json"
    labels+=("$name built-in, $mode=$out/v1-graph-$mode.json" "$name flow-v2, $mode=$out/v2-$mode.json")
done
(cd "$root/models" && .venv/bin/python -m netwarden_models.learn_table "${labels[@]}")
