#!/usr/bin/env bash
# Regenerate the default series bundle (models/bundles/series-lstm/) from scratch:
#   1. synthetic NORMAL interface rates with injected anomalies in the last days
#      (netwarden_models/series_synth.py, seeded);
#   2. their series-v1 features from the gateway itself (`netwarden features --series`);
#   3. train-series: seed, edge, attention, the ensemble and conv, early stopping, curves, ONNX in
#      both LSTM forms, int8 copies, tract parity, ROC-AUC on the injected anomalies;
#   4. bench-series: tract next to onnxruntime on every file (per-window latency);
#   5. bundle-series --bench: the variant/form/precision the rule in series_select.py picks;
#   6. `netwarden model check` on the result (the gateway's own load, golden check and timing).
#
#   models/make-series-bundle.sh [VERSION]      (VERSION defaults to YYYY.MM.DD.1, UTC)
#
# Env: SEED (training, default 7), DATA_SEED (rates, default 11), DAYS (default 14),
#      EPOCHS (default 40), RUN_DIR (default models/runs/series-<UTC time>; kept: curves,
#      report.json, bench.json, every ONNX file), SOURCE_DATE_EPOCH (pins created_utc),
#      SIGN_KEY (ed25519 PKCS#8 PEM: sign the bundle, see docs/keys.md),
#      NETWARDEN_BIN (an already built netwarden; default: cargo build -p netwarden, debug:
#      the features are the same in any build).
# Took 21 minutes on the 2-core VM on 2026-11-23 (train + export + evaluation 9 min, bench
# 11); CPU only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:-$(date -u +%Y.%m.%d).1}"
seed="${SEED:-7}"
data_seed="${DATA_SEED:-11}"
days="${DAYS:-14}"
epochs="${EPOCHS:-40}"
run_dir="${RUN_DIR:-$root/models/runs/series-$(date -u +%Y%m%dT%H%M%S)}"
dest="$root/models/bundles/series-lstm"

"$root/models/setup-venv.sh"

if [[ -n "${NETWARDEN_BIN:-}" ]]; then
    netwarden="$NETWARDEN_BIN"
else
    (cd "$root" && cargo build -p netwarden)
    netwarden="${CARGO_TARGET_DIR:-$root/target}/debug/netwarden"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
py() { (cd "$root/models" && .venv/bin/python -m netwarden_models "$@"); }

echo "make-series-bundle: synthetic rates ($days days, seed $data_seed)" >&2
eval_start="$(py synth-series-rates --out "$tmp/rates.csv" --labels "$tmp/labels.csv" \
    --days "$days" --eval-days 3 --seed "$data_seed")"

echo "make-series-bundle: features from the gateway" >&2
"$netwarden" features --series "$tmp/rates.csv" --out "$tmp/series-features.csv"

mkdir -p "$run_dir"
cp "$tmp/labels.csv" "$run_dir/labels.csv"
py train-series --features "$tmp/series-features.csv" --labels "$tmp/labels.csv" \
    --eval-start-ms "$eval_start" --out "$run_dir" --seed "$seed" --epochs "$epochs"

echo "make-series-bundle: bench (tract next to onnxruntime)" >&2
py bench-series "$run_dir" --json "$run_dir/bench.json" | tee "$run_dir/bench.md"

# Write into a scratch directory so a failure never leaves a half-written shipped bundle.
py bundle-series --run "$run_dir" --bench "$run_dir/bench.json" --out "$tmp/bundle" \
    --version "$version"
"$netwarden" model check "$tmp/bundle" | tee "$run_dir/model-check.txt"

# With SIGN_KEY, sign the bundle and have the gateway verify the signature (docs/keys.md).
if [[ -n "${SIGN_KEY:-}" ]]; then
    key="$(realpath "$SIGN_KEY")"
    pub="$(cd "$root/models" && .venv/bin/python -m netwarden_models sign --key "$key" "$tmp/bundle" --quiet)"
    "$netwarden" model check "$tmp/bundle" --key "$pub"
else
    rm -f "$dest/manifest.sig"  # a signature of an older manifest would no longer verify
fi

mkdir -p "$dest"
cp "$tmp/bundle/model.onnx" "$tmp/bundle/manifest.json" "$dest/"
if [[ -f "$tmp/bundle/manifest.sig" ]]; then cp "$tmp/bundle/manifest.sig" "$dest/"; fi
echo "make-series-bundle: wrote ${dest#"$root"/} (version $version); run kept in $run_dir" >&2
