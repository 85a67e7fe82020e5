#!/usr/bin/env bash
# Regenerate the default series bundle (models/bundles/series-ae/) from scratch, with the stage
# commands (models/README.md):
#   1. synth-series-rates: synthetic NORMAL interface rates with injected anomalies in the last
#      days (netwarden_models/data/series_synth.py, seeded);
#   2. dataset --kind series_ae --rates: the gateway exports their series-v1 features
#      (`netwarden features --series`), split by time, windows labelled;
#   3. per variant (conv, seed, edge, attention, ensemble): train (early stopping, curves),
#      evaluate (metrics and plots in RUN/eval), export (the `onnx` LSTM form; with FORMS also `unrolled`, from the same weights),
#      quantize (int8 copy, measured in tract);
#   4. select: ROC-AUC, tract parity and tract speed of every file; the rule in
#      netwarden_models/select/rule.py picks variant, form and precision;
#   5. bundle --selection: threshold, golden vectors, signature (SIGN_KEY) and the gateway's own
#      `netwarden model check`.
#
#   models/make-series-bundle.sh [VERSION]      (VERSION defaults to YYYY.MM.DD.1, UTC)
#
# Env: SEED (training, default 7), DATA_SEED (rates, default 11), DAYS (default 14),
#      EPOCHS (default 40), VARIANTS (default "conv seed edge attention ensemble"),
#      FORMS (default "onnx unrolled"; conv has one form), RUN_DIR (default
#      models/runs/series-<UTC time>; kept: dataset, one run per variant and form with curves
#      and ONNX files, selection.json, bench.md, model-check.txt), SOURCE_DATE_EPOCH (pins
#      created_utc), SIGN_KEY (ed25519 PKCS#8 PEM: sign the bundle, see docs/keys.md),
#      NETWARDEN_BIN (an already built netwarden; default: cargo build -p netwarden, debug:
#      the features are the same in any build).
# The per-kind commands this replaces took 21 minutes on the 2-core VM (2026-11-23); CPU only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:-$(date -u +%Y.%m.%d).1}"
seed="${SEED:-7}"
data_seed="${DATA_SEED:-11}"
days="${DAYS:-14}"
epochs="${EPOCHS:-40}"
read -r -a variants <<< "${VARIANTS:-conv seed edge attention ensemble}"
read -r -a forms <<< "${FORMS:-onnx unrolled}"
run_dir="${RUN_DIR:-$root/models/runs/series-$(date -u +%Y%m%dT%H%M%S)}"
dest="$root/models/bundles/series-ae"

"$root/models/setup-venv.sh"

if [[ -n "${NETWARDEN_BIN:-}" ]]; then
    netwarden="$(realpath "$NETWARDEN_BIN")"
else
    (cd "$root" && cargo build -p netwarden)
    netwarden="${CARGO_TARGET_DIR:-$root/target}/debug/netwarden"
fi
export NETWARDEN_BIN="$netwarden"  # dataset and bundle call the gateway

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
py() { (cd "$root/models" && .venv/bin/python -m netwarden_models "$@"); }
mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"

echo "make-series-bundle: synthetic rates ($days days, seed $data_seed)" >&2
eval_start="$(py synth-series-rates --out "$run_dir/rates.csv" --labels "$run_dir/labels.csv" \
    --days "$days" --eval-days 3 --seed "$data_seed")"
py dataset --kind series_ae --out "$run_dir/dataset" --rates "$run_dir/rates.csv" \
    --labels "$run_dir/labels.csv" --eval-start-ms "$eval_start"

runs=()
for v in "${variants[@]}"; do
    py train --dataset "$run_dir/dataset" --out "$run_dir/$v" --variant "$v" --seed "$seed" \
        --epochs "$epochs" --device cpu
    py evaluate --run "$run_dir/$v"  # RUN/eval: metrics, error histogram, traffic plot
    for form in "${forms[@]}"; do
        run="$run_dir/$v"
        if [[ "$form" != "${forms[0]}" ]]; then
            [[ "$v" == conv ]] && continue  # not recurrent: its forms are one graph
            # Same weights, another LSTM form: a run directory of its own.
            run="$run_dir/$v-$form"
            mkdir -p "$run" && cp "$run_dir/$v"/{run.json,model.pt} "$run/"
        fi
        py export --run "$run" --form "$form"
        py quantize --run "$run"
        runs+=("$run")
    done
done

echo "make-series-bundle: select (quality, tract parity and speed next to onnxruntime)" >&2
py select "${runs[@]}" --out "$run_dir/selection.json" | tee "$run_dir/bench.md"

# Into a scratch directory, so a failure never leaves a half-written shipped bundle. `bundle`
# runs `netwarden model check` (with the key when signing) and fails if it fails.
sign=()
if [[ -n "${SIGN_KEY:-}" ]]; then
    sign=(--sign-key "$(realpath "$SIGN_KEY")")
else
    rm -f "$dest/manifest.sig"  # a signature of an older manifest would no longer verify
fi
py bundle --selection "$run_dir/selection.json" --out "$tmp/bundle" --version "$version" \
    "${sign[@]}" --data-note "synthetic interface rates (series_synth.py) through \
\`netwarden features --series\`; no real branch SNMP history yet"
"$netwarden" model check "$tmp/bundle" > "$run_dir/model-check.txt"

mkdir -p "$dest"
cp "$tmp/bundle/model.onnx" "$tmp/bundle/manifest.json" "$dest/"
if [[ -f "$tmp/bundle/manifest.sig" ]]; then cp "$tmp/bundle/manifest.sig" "$dest/"; fi
echo "make-series-bundle: wrote ${dest#"$root"/} (version $version); run kept in $run_dir" >&2
