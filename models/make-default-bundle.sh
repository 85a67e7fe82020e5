#!/usr/bin/env bash
# Regenerate the bundle the gateway ships (models/bundles/flow-ae/) from the benign NetFlow
# fixtures, with the stage commands (models/README.md): dataset (the gateway exports the
# flow-v1 features; no test split: 90 % train, 10 % validation) -> train -> export -> quantize
# (the measured fp32/int8 choice) -> bundle (threshold, golden vectors, signature, and the
# gateway's own `netwarden model check`).
#
#   models/make-default-bundle.sh [VERSION]      (VERSION defaults to YYYY.MM.DD.1, UTC)
#
# Env: SEED (default 7), EPOCHS (default 200), SOURCE_DATE_EPOCH (pins created_utc),
#      SIGN_KEY (ed25519 PKCS#8 PEM: sign the bundle, see docs/keys.md),
#      NETWARDEN_BIN (an already built netwarden; default: cargo build --release).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:-$(date -u +%Y.%m.%d).1}"
seed="${SEED:-7}"
epochs="${EPOCHS:-200}"
dest="$root/models/bundles/flow-ae"

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

shopt -s nullglob
pcaps=("$root"/tests/data/netflow/*-benign.pcap)
if (( ${#pcaps[@]} == 0 )); then
    echo "make-default-bundle: no tests/data/netflow/*-benign.pcap found" >&2
    exit 1
fi
args=()
for pcap in "${pcaps[@]}"; do args+=(--netflow-pcap "$pcap"); done

py dataset --kind flow_ae --out "$tmp/dataset" "${args[@]}" --test-fraction 0 --seed "$seed"
py train --dataset "$tmp/dataset" --out "$tmp/run" --seed "$seed" --epochs "$epochs"
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
    --data-note "the benign NetFlow fixtures tests/data/netflow/*-benign.pcap"

mkdir -p "$dest"
cp "$tmp/bundle/model.onnx" "$tmp/bundle/manifest.json" "$dest/"
if [[ -f "$tmp/bundle/manifest.sig" ]]; then cp "$tmp/bundle/manifest.sig" "$dest/"; fi
echo "make-default-bundle: wrote ${dest#"$root"/} (version $version)" >&2
