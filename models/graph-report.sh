#!/usr/bin/env bash
# The temporal graph model's report and bundle, in one command (docs/graph-model.md):
#   1. graph-report: every lab run's v9 export -> `netwarden features --set graph-v1`, labels
#      from flow-labels.csv, and the training runs' capture.pcap metered by the gateway
#      (`--pcap`), labelled by phase; 5-fold CV of TGAT and the GCN baseline on the training runs;
#      train on the training runs, test on the unseen ones; writes docs/graph-model.md,
#      RUN/report.json and the final TGAT's run directory;
#   2. export (ONNX, dynamo, parity in onnxruntime and tract), quantize (int8 measured, kept
#      only when it wins in tract), bundle (threshold 0.5 = the classifier's own boundary,
#      golden vectors, `netwarden model check` unless the binary cannot load graph bundles)
#      into models/bundles/graph-tgat/ (the built-in graph bundle).
#
#   models/graph-report.sh [VERSION]
#
# Env: LAB_RUNS (default /work/lab-runs), TRAIN (default "seed1-short seed2 seed3 small-seed11"),
#      TEST (default "seed21 seed22"), SEED (7), THREADS (1), NETWARDEN_BIN (default: a debug
#      build; the features do not depend on the profile), RUN_DIR (default models/runs/graph-<time>).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:-$(date -u +%Y.%m.%d).1}"
lab="${LAB_RUNS:-/work/lab-runs}"
read -r -a train <<< "${TRAIN:-seed1-short seed2 seed3 small-seed11}"
read -r -a test <<< "${TEST:-seed21 seed22}"
run_dir="${RUN_DIR:-$root/models/runs/graph-$(date -u +%Y%m%dT%H%M%SZ)}"

"$root/models/setup-venv.sh"
if [[ -z "${NETWARDEN_BIN:-}" ]]; then
    (cd "$root" && cargo build -p netwarden)
    NETWARDEN_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/netwarden"
fi
export NETWARDEN_BIN
py() { (cd "$root/models" && .venv/bin/python -m netwarden_models "$@"); }

py graph-report --lab-runs "$lab" --train "${train[@]}" --test "${test[@]}" \
    --capture-train --seed "${SEED:-7}" --threads "${THREADS:-1}" --work "$run_dir" --run-out "$run_dir/tgat" \
    --out "$root/docs/graph-model.md" --quiet
py export --run "$run_dir/tgat"
py quantize --run "$run_dir/tgat"
py bundle --run "$run_dir/tgat" --out "$run_dir/bundle" --version "$version" \
    --data-note "lab runs ${train[*]} (test: ${test[*]}), docs/graph-model.md"
py graph-report --render-only "$run_dir/report.json" --export-from "$run_dir/tgat" \
    --out "$root/docs/graph-model.md"
mkdir -p "$root/models/reports"
cp "$run_dir/report.json" "$root/models/reports/graph-report.json"
rm -rf "$root/models/bundles/graph-tgat"
mkdir -p "$root/models/bundles/graph-tgat"
cp "$run_dir/bundle/manifest.json" "$run_dir/bundle/model.onnx" "$root/models/bundles/graph-tgat/"
echo "graph-report: docs/graph-model.md, models/bundles/graph-tgat/ ($version); run $run_dir"
