#!/usr/bin/env bash
# Regenerate the bundle the gateway ships (models/bundles/flow-ae/) from the benign NetFlow
# fixtures: export their flow-v1 features with the gateway itself, then train on all of them.
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
    netwarden="$NETWARDEN_BIN"
else
    (cd "$root" && cargo build --release -p netwarden)
    netwarden="${CARGO_TARGET_DIR:-$root/target}/release/netwarden"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

shopt -s nullglob
pcaps=("$root"/tests/data/netflow/*-benign.pcap)
if (( ${#pcaps[@]} == 0 )); then
    echo "make-default-bundle: no tests/data/netflow/*-benign.pcap found" >&2
    exit 1
fi

args=()
for pcap in "${pcaps[@]}"; do
    csv="$tmp/$(basename "$pcap" .pcap).csv"
    echo "make-default-bundle: features from ${pcap#"$root"/}" >&2
    "$netwarden" features --netflow-pcap "$pcap" --out "$csv"
    args+=(--features "$csv")
done

# Train into a scratch directory so a failure never leaves a half-written shipped bundle.
(cd "$root/models" && .venv/bin/python -m netwarden_models train-flow-ae \
    "${args[@]}" --out "$tmp/bundle" --seed "$seed" --epochs "$epochs" --version "$version")

# The gateway's own check (tract load, golden vectors); with SIGN_KEY also sign the bundle and
# have the gateway verify the signature (docs/keys.md). Nothing is copied unless this passes.
if [[ -n "${SIGN_KEY:-}" ]]; then
    key="$(realpath "$SIGN_KEY")"
    pub="$(cd "$root/models" && .venv/bin/python -m netwarden_models sign --key "$key" "$tmp/bundle" --quiet)"
    "$netwarden" model check "$tmp/bundle" --key "$pub"
else
    rm -f "$dest/manifest.sig"  # a signature of an older manifest would no longer verify
    "$netwarden" model check "$tmp/bundle"
fi

mkdir -p "$dest"
cp "$tmp/bundle/model.onnx" "$tmp/bundle/manifest.json" "$dest/"
if [[ -f "$tmp/bundle/manifest.sig" ]]; then cp "$tmp/bundle/manifest.sig" "$dest/"; fi
echo "make-default-bundle: wrote ${dest#"$root"/} (version $version)" >&2
