#!/usr/bin/env bash
# The learning-period evaluation of one lab run (docs/evaluation.md section 7.3): `netwarden
# eval` with the built-in models (flow autoencoder, temporal graph, ARP rules) and with another
# flow bundle, each with the shipped threshold and with the threshold learnt on the run's
# benign lead-in (`--learn-lead-in`), on the three paths (v9, IPFIX, capture); the JSON reports
# go to OUT_DIR, the markdown table to standard output.
#
#   models/learn-report.sh RUN_DIR OUT_DIR
#
# Env: NETWARDEN_BIN (default: target/debug/netwarden, built if absent), FLOW_MODEL (the other
# flow bundle; default models/bundles/flow-ae, the flow-v1 bundle built in until issue 18 made
# flow-ae-v2 the built-in one; section 7.3's table was made then, with FLOW_MODEL the lab-only
# flow-ae-v2 2026.12.02.2).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -eq 2 ]] || { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }
run="$(realpath "$1")"
out="$(realpath -m "$2")"
mkdir -p "$out"
bin="${NETWARDEN_BIN:-$root/target/debug/netwarden}"
[[ -x $bin ]] || (cd "$root" && cargo build -p netwarden)
other="${FLOW_MODEL:-$root/models/bundles/flow-ae}"
other_name="$(basename "$other")"
name="$(basename "$run")"

labels=()
for mode in shipped learnt; do
    learn=(); [[ $mode == learnt ]] && learn=(--learn-lead-in)
    # Exit 1 means a target was missed; none is given here, so only 2 (cannot evaluate) fails.
    "$bin" eval "$run" --paths v9,ipfix,capture "${learn[@]}" --json > "$out/builtin-graph-$mode.json"
    "$bin" eval "$run" --paths v9,ipfix,capture --no-graph --flow-model "$other" "${learn[@]}" \
        --json > "$out/other-$mode.json"
    labels+=("$name built-in, $mode=$out/builtin-graph-$mode.json" "$name $other_name, $mode=$out/other-$mode.json")
done
(cd "$root/models" && .venv/bin/python -m netwarden_models.learn_table "${labels[@]}")
