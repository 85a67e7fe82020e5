#!/usr/bin/env bash
# Seconds per training epoch of every model kind/variant, on the data the shipped bundles use:
#   flow_ae/seed        the 5 benign NetFlow fixtures (+ the softflowd v5 scan capture as test)
#   series_ae/*         14 days of synthetic rates (seed 11), 3000 training / 600 validation
#                       windows, as make-series-bundle.sh
# Prints a Markdown table (wall and process CPU seconds per epoch, device, threads) and keeps
# every run.json under OUT (default models/runs/bench-epochs-<UTC time>).
#
#   models/bench-epochs.sh [--device auto|cpu|cuda] [--threads N] [--epochs N] [--datasets DIR]
#
# --datasets DIR: use DIR/flow-ds and DIR/series-ds made earlier by this script (kept in its
#   OUT) instead of building them, e.g. on a GPU server that has no netwarden binary.
# Env: NETWARDEN_BIN (default: target/debug/netwarden, built by cargo build -p netwarden);
#   PYTHON: an interpreter that already has torch and the package's needs (default: the venv
#   made by models/setup-venv.sh).
# "steady s/epoch" is the median of the epochs after the first, which carries one-off costs
# (CUDA context, cuDNN plans); compare devices on it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device=cpu threads=1 epochs=3 datasets=""
while (( $# )); do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --epochs) epochs="$2"; shift 2 ;;
        --datasets) datasets="$(cd "$2" && pwd)"; shift 2 ;;
        *) echo "bench-epochs: unknown argument $1" >&2; exit 2 ;;
    esac
done
out="${OUT:-$root/models/runs/bench-epochs-$(date -u +%Y%m%dT%H%M%S)}"
export NETWARDEN_BIN="${NETWARDEN_BIN:-$root/target/debug/netwarden}"
if [[ -z "${PYTHON:-}" ]]; then
    "$root/models/setup-venv.sh"
    PYTHON="$root/models/.venv/bin/python"
fi
py() { (cd "$root/models" && "$PYTHON" -m netwarden_models "$@"); }
mkdir -p "$out"

if [[ -n "$datasets" ]]; then
    ln -sfn "$datasets/flow-ds" "$out/flow-ds"
    ln -sfn "$datasets/series-ds" "$out/series-ds"
else
    benign=()
    for p in "$root"/tests/data/netflow/*-benign.pcap; do benign+=(--netflow-pcap "$p"); done
    py dataset --kind flow_ae --out "$out/flow-ds" "${benign[@]}" \
        --anomalous-pcap "$root/tests/data/netflow/softflowd-v5-scan-mixed.pcap" \
        --scan-json "$root/tests/data/pcap/scan-mixed.scan.json" --quiet
    eval_start="$(py synth-series-rates --out "$out/rates.csv" --labels "$out/labels.csv" --seed 11)"
    py dataset --kind series_ae --out "$out/series-ds" --rates "$out/rates.csv" \
        --labels "$out/labels.csv" --eval-start-ms "$eval_start" --quiet
fi

runs=("flow-ds seed" "series-ds conv" "series-ds edge" "series-ds attention" "series-ds seed"
      "series-ds ensemble")
for r in "${runs[@]}"; do
    set -- $r
    py train --dataset "$out/$1" --out "$out/run-$1-$2" --variant "$2" --epochs "$epochs" \
        --patience 1000 --device "$device" --threads "$threads" --quiet
done

echo "| model | samples | epochs | wall s/epoch | steady s/epoch | CPU s/epoch | device | threads |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
for r in "${runs[@]}"; do
    set -- $r
    "$PYTHON" - "$out/run-$1-$2/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = r["training"]
steady = t.get("steady_seconds_per_epoch")
steady = "-" if steady is None else f"{steady:.3f}"
dev = t["device"] if t.get("accelerator", "cpu") == "cpu" else f"{t['device']} ({t['accelerator']})"
print(f"| {r['kind']}/{r['variant']} | {t['samples']} | {t['epochs']} | {t['seconds_per_epoch']:.3f} "
      f"| {steady} | {t['cpu_seconds_per_epoch']:.3f} | {dev} | {t['threads']} |")
PY
done
echo "bench-epochs: runs kept in $out" >&2
