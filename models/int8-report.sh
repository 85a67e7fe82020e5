#!/usr/bin/env bash
# Static int8 (QDQ) of the shipped flow and series autoencoders: measure it, record the figures
# and the rule's choice in each bundle's manifest (`quantization`, model untouched), compare fp32
# and int8 copies with `netwarden eval` on unseen lab runs, and print the tables of
# docs/models.md ("Static int8").
#
#   models/int8-report.sh
#
# Env: RUN_DIR (default models/runs/int8-<UTC time>: datasets, comparison bundles, eval JSON,
#      report.md), LAB_RUNS (default /work/lab-runs; runs seed21 and seed22 are used when
#      present), NETWARDEN_BIN (default: cargo build -p netwarden, debug: features and eval are
#      the same in any build). Takes about 3 minutes on the 2-core VM.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="${RUN_DIR:-$root/models/runs/int8-$(date -u +%Y%m%dT%H%M%S)}"
lab="${LAB_RUNS:-/work/lab-runs}"
"$root/models/setup-venv.sh"
if [[ -n "${NETWARDEN_BIN:-}" ]]; then
    netwarden="$(realpath "$NETWARDEN_BIN")"
else
    (cd "$root" && cargo build -p netwarden)
    netwarden="${CARGO_TARGET_DIR:-$root/target}/debug/netwarden"
fi
export NETWARDEN_BIN="$netwarden"
mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"
py() { (cd "$root/models" && .venv/bin/python -m netwarden_models "$@"); }

# Flow: the shipped bundle's benign NetFlow fixtures plus the scan-mixed capture (scan flows
# labelled), split 70/10/20 with seed 7 (docs/models.md "Flow autoencoder on the NetFlow fixtures").
args=()
for p in "$root"/tests/data/netflow/*-benign.pcap; do args+=(--netflow-pcap "$p"); done
py dataset --kind flow_ae --out "$run_dir/flow-ds" "${args[@]}" --seed 7 \
    --anomalous-pcap "$root/tests/data/netflow/softflowd-v5-scan-mixed.pcap" \
    --scan-json "$root/tests/data/pcap/scan-mixed.scan.json"
# Series: the shipped bundle's synthetic rates (make-series-bundle.sh defaults).
eval_start="$(py synth-series-rates --out "$run_dir/rates.csv" --labels "$run_dir/labels.csv" \
    --days 14 --eval-days 3 --seed 11)"
py dataset --kind series_ae --out "$run_dir/series-ds" --rates "$run_dir/rates.csv" \
    --labels "$run_dir/labels.csv" --eval-start-ms "$eval_start"

py quantize --bundle "$root/models/bundles/flow-ae" --dataset "$run_dir/flow-ds" \
    --out "$run_dir/flow-ae-int8.onnx" --compare-bundles "$run_dir/flow-compare" --rounds 7
py quantize --bundle "$root/models/bundles/series-ae" --dataset "$run_dir/series-ds" \
    --out "$run_dir/series-ae-int8.onnx" --rounds 7

evals=()
for seed in seed21 seed22; do
    [[ -d "$lab/$seed" ]] || { echo "int8-report: no $lab/$seed, eval skipped" >&2; continue; }
    "$netwarden" eval "$lab/$seed" --no-graph --json > "$run_dir/eval-$seed-shipped.json"
    evals+=(--eval "shipped=$run_dir/eval-$seed-shipped.json")
    for p in fp32 int8; do
        "$netwarden" eval "$lab/$seed" --no-graph --json --flow-model "$run_dir/flow-compare/$p" \
            > "$run_dir/eval-$seed-$p.json"
        evals+=(--eval "$p=$run_dir/eval-$seed-$p.json")
    done
done
(cd "$root/models" && .venv/bin/python -m netwarden_models.export.int8_report \
    --bundle bundles/flow-ae --bundle bundles/series-ae "${evals[@]}") | tee "$run_dir/report.md"
"$netwarden" model check "$root/models/bundles/flow-ae" | tee "$run_dir/model-check.txt"
"$netwarden" model check "$root/models/bundles/series-ae" | tee -a "$run_dir/model-check.txt"
echo "int8-report: run kept in $run_dir" >&2
