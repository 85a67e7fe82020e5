#!/usr/bin/env bash
# Per-window latency of a series bundle, both sides in one run:
#   1. Python: onnxruntime next to tract 0.23 (Python bindings of the same crate) on the bundle's
#      model.onnx, batches 1/8/32, fresh and reused tract state (`netwarden_models bench`,
#      netwarden_models/select/bench.py);
#   2. Rust: `netwarden model check BUNDLE`, the gateway's own loader, golden check and timing.
# Optionally also every ONNX file of a run directory (or of a directory of runs, as
# make-series-bundle.sh keeps them).
#
#   models/series-bench.sh [BUNDLE_DIR] [RUN_DIR]     (BUNDLE_DIR: models/bundles/series-ae)
#
# Env: NETWARDEN_BIN (default: cargo build -p netwarden, debug; pass a release build for
# figures comparable with a router build). Figures go to stdout; see docs/models.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="$(cd "${1:-$root/models/bundles/series-ae}" && pwd)"
run_dir="${2:-}"

"$root/models/setup-venv.sh"
if [[ -n "${NETWARDEN_BIN:-}" ]]; then
    netwarden="$NETWARDEN_BIN"
else
    (cd "$root" && cargo build -p netwarden)
    netwarden="${CARGO_TARGET_DIR:-$root/target}/debug/netwarden"
fi

dirs=("$bundle")
[[ -n "$run_dir" ]] && dirs+=("$(cd "$run_dir" && pwd)")

echo "== onnxruntime and tract (Python), same file, same run" >&2
(cd "$root/models" && .venv/bin/python -m netwarden_models bench "${dirs[@]}")
echo "== gateway: netwarden model check ${bundle#"$root"/}" >&2
"$netwarden" model check "$bundle"
