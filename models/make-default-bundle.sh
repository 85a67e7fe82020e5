#!/usr/bin/env bash
# Regenerate the flow bundle the gateway ships (built in), with the stage commands
# (models/README.md): dataset -> train -> export -> quantize (the measured fp32/int8 choice) ->
# bundle (threshold, golden vectors, signature, and the gateway's own `netwarden model check`).
#
#   models/make-default-bundle.sh [VERSION]      (VERSION defaults to YYYY.MM.DD.1, UTC)
#
# Default (SCHEMA=flow-v2): the built-in bundle since issue 18, models/bundles/flow-ae-v2/.
#   Trained on the benign NetFlow fixtures tests/data/netflow/*-benign.pcap (5 exporters, the
#   captures gateway/tests/detection.rs checks) PLUS the benign records (by flow-labels.csv) of
#   the training lab runs' NetFlow v9 exports, flow-v2 novelty learnt on each run's lead-in;
#   the runs' malicious records are test rows only (the manifest's `evaluation`). Split: 70 %
#   train, 10 % validation, 20 % test of the benign rows. The unseen evaluation runs (seed21,
#   seed22, seed31-long; docs/evaluation.md section 7.4) are refused.
# SCHEMA=flow-v1: the flow-v1 bundle models/bundles/flow-ae/ (built in before issue 18; fleet
#   tests and `--flow-model` use it), from the benign fixtures only, no test split.
#
# Env: SCHEMA (flow-v2 or flow-v1), LAB_RUNS (default /work/lab-runs), TRAIN (default
#      "seed1-short seed2 seed3 small-seed11"), SEED (default 7), EPOCHS (default 200),
#      SIGN_KEY (ed25519 PKCS#8 PEM: sign the bundle, see docs/keys.md),
#      NETWARDEN_BIN (an already built netwarden; default: cargo build --release).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:-$(date -u +%Y.%m.%d).1}"
seed="${SEED:-7}"
epochs="${EPOCHS:-200}"
schema="${SCHEMA:-flow-v2}"
lab="${LAB_RUNS:-/work/lab-runs}"
read -r -a train <<< "${TRAIN:-seed1-short seed2 seed3 small-seed11}"
unseen=(seed21 seed22 seed31-long)  # never trained on: docs/evaluation.md measures on them

case "$schema" in
    flow-v2) kind=flow_ae_v2; dest="$root/models/bundles/flow-ae-v2" ;;
    flow-v1) kind=flow_ae; dest="$root/models/bundles/flow-ae" ;;
    *) echo "make-default-bundle: SCHEMA must be flow-v2 or flow-v1, not '$schema'" >&2; exit 2 ;;
esac

shopt -s nullglob
pcaps=("$root"/tests/data/netflow/*-benign.pcap)
if (( ${#pcaps[@]} == 0 )); then
    echo "make-default-bundle: no tests/data/netflow/*-benign.pcap found" >&2
    exit 1
fi
args=()
for pcap in "${pcaps[@]}"; do args+=(--netflow-pcap "$pcap"); done
if [[ $schema == flow-v2 ]]; then
    for r in "${train[@]}"; do
        for u in "${unseen[@]}"; do
            if [[ $(basename "$r") == "$u" ]]; then
                echo "make-default-bundle: $r is an evaluation run; it must stay unseen" >&2
                exit 2
            fi
        done
    done
    for r in "${train[@]}"; do
        [[ -f $lab/$r/netflow-v9.pcap && -f $lab/$r/flow-labels.csv ]] || {
            echo "make-default-bundle: $lab/$r is not a lab run (netflow-v9.pcap, flow-labels.csv)" >&2
            exit 1
        }
        args+=(--lab-run "$lab/$r")
    done
    note="the benign NetFlow fixtures tests/data/netflow/*-benign.pcap (${#pcaps[@]} exporters) and the benign records (flow-labels.csv) of lab runs ${train[*]} (NetFlow v9, novelty learnt on each lead-in); not ${unseen[*]} (evaluation runs)"
    split=()  # the kind's default: 10 % validation, 20 % test (benign rows; malicious: test)
else
    note="the benign NetFlow fixtures tests/data/netflow/*-benign.pcap"
    split=(--test-fraction 0)
fi

"$root/models/setup-venv.sh"

# NETWARDEN_BIN skips the release build (any build computes the same features).
if [[ -n "${NETWARDEN_BIN:-}" ]]; then
    netwarden="$(realpath "$NETWARDEN_BIN")"
else
    (cd "$root" && cargo build --release -p netwarden)
    netwarden="${CARGO_TARGET_DIR:-$root/target}/release/netwarden"
fi

export NETWARDEN_BIN="$netwarden"  # dataset and bundle call the gateway
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
py() { (cd "$root/models" && .venv/bin/python -m netwarden_models "$@"); }

py dataset --kind "$kind" --out "$tmp/dataset" "${args[@]}" "${split[@]}" --seed "$seed" --quiet
py train --dataset "$tmp/dataset" --out "$tmp/run" --seed "$seed" --epochs "$epochs" --quiet
py export --run "$tmp/run"
py quantize --run "$tmp/run"

# Into a scratch directory, so a failure never leaves a half-written shipped bundle. `bundle`
# runs `netwarden model check` (with the key when signing) and fails if it fails.
sign=()
if [[ -n "${SIGN_KEY:-}" ]]; then
    sign=(--sign-key "$(realpath "$SIGN_KEY")")
else
    rm -f "$dest/manifest.sig"  # a signature of an older manifest would no longer verify
fi
py bundle --run "$tmp/run" --out "$tmp/bundle" --version "$version" "${sign[@]}" \
    --data-note "$note"

mkdir -p "$dest"
cp "$tmp/bundle/model.onnx" "$tmp/bundle/manifest.json" "$dest/"
if [[ -f "$tmp/bundle/manifest.sig" ]]; then cp "$tmp/bundle/manifest.sig" "$dest/"; fi
echo "make-default-bundle: wrote ${dest#"$root"/} ($schema, version $version)" >&2
