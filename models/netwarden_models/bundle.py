"""Writing (and re-checking) a model bundle per docs/bundle-format.md, manifest format 1."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .export import INPUT_NAME, OUTPUT_NAME, export_onnx, run_onnx
from .features import SCHEMA
from .scaling import FeatureScaling
from .train import TrainResult

FORMAT = 1
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
THRESHOLD_QUANTILE = 0.95
HIGH_RATIO = 2.0
GOLDEN_TOLERANCE = 1e-4
GOLDEN_TYPICAL = 4  # rows spread over the error distribution ...
GOLDEN_WORST = 4  # ... plus the rows with the largest errors
TORCH_ORT_PARITY = 1e-5


class BundleError(RuntimeError):
    pass


@dataclass(frozen=True)
class WrittenBundle:
    path: Path
    manifest: dict
    exporter: str  # "dynamo" or "legacy" (see export.py)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def row_errors(scaled: np.ndarray, output: np.ndarray) -> np.ndarray:
    """error = mean over features of (scaled_i - output_i)^2, per row (float64)."""
    d = np.asarray(scaled, dtype=np.float64) - np.asarray(output, dtype=np.float64)
    return (d * d).mean(axis=1)


def default_version(now: dt.datetime | None = None) -> str:
    now = now or _now()
    return now.strftime("%Y.%m.%d.1")


def _now() -> dt.datetime:
    # SOURCE_DATE_EPOCH makes `created_utc` reproducible.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


def pick_golden_rows(errors: np.ndarray, typical: int = GOLDEN_TYPICAL,
                     worst: int = GOLDEN_WORST) -> list[int]:
    """Indices of the largest-error rows plus rows at evenly spread error quantiles."""
    n = len(errors)
    order = np.argsort(errors, kind="stable")
    picked: list[int] = [int(i) for i in order[::-1][: min(worst, n)]]
    for q in np.linspace(0.1, 0.7, typical):
        pos = int(round(q * (n - 1)))
        # nearest not-yet-picked row at or below that quantile position
        for p in list(range(pos, -1, -1)) + list(range(pos + 1, n)):
            i = int(order[p])
            if i not in picked:
                picked.append(i)
                break
    return picked


def _write_json_atomic(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, allow_nan=False)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_flow_ae_bundle(
    out_dir: str | Path,
    *,
    result: TrainResult,
    scaling: FeatureScaling,
    raw: np.ndarray,
    seed: int,
    sources: list[str] | tuple[str, ...],
    version: str | None = None,
    name: str = "flow-ae",
) -> WrittenBundle:
    """Export the model and write `model.onnx` + `manifest.json` into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width = len(scaling.names)
    model_path = out / MODEL_FILE
    exporter = export_onnx(result.model, model_path, width)

    scaled = scaling.transform(raw).astype(np.float32)
    recon = run_onnx(model_path, scaled)
    with torch.no_grad():
        recon_torch = result.model.cpu().eval()(torch.from_numpy(scaled)).numpy()
    parity = float(np.max(np.abs(recon - recon_torch)))
    if parity > TORCH_ORT_PARITY:
        raise BundleError(f"exported model disagrees with torch by {parity:g} (> {TORCH_ORT_PARITY:g})")

    errors = row_errors(scaled, recon)
    threshold = float(np.quantile(errors[result.train_index], THRESHOLD_QUANTILE))
    if not threshold > 0.0:
        raise BundleError(f"threshold is {threshold!r}; expected > 0")

    golden = pick_golden_rows(errors)
    manifest = {
        "format": FORMAT,
        "name": name,
        "kind": "flow_ae",
        "version": version or default_version(),
        "created_utc": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {
            "file": MODEL_FILE,
            "sha256": sha256_file(model_path),
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "input_width": width,
            "precision": "fp32",
        },
        "features": {
            "schema": SCHEMA,
            "names": list(scaling.names),
            "scaling": scaling.to_manifest(),
        },
        "threshold": {
            "value": threshold,
            "method": "train_error_quantile",
            "quantile": THRESHOLD_QUANTILE,
        },
        "severity": {"high_ratio": HIGH_RATIO},
        "training": {
            "rows": int(len(raw)),
            "epochs": int(result.epochs_run),
            "seed": int(seed),
            "final_loss": float(result.final_loss),
            "sources": [Path(s).name for s in sources],
        },
        "golden": {
            "inputs": [[float(v) for v in raw[i]] for i in golden],
            "outputs": [[float(v) for v in recon[i]] for i in golden],
            "errors": [float(errors[i]) for i in golden],
            "tolerance": GOLDEN_TOLERANCE,
        },
    }
    _write_json_atomic(out / MANIFEST_FILE, manifest)
    verify_bundle(out)
    return WrittenBundle(path=out, manifest=manifest, exporter=exporter)


def verify_bundle(bundle_dir: str | Path) -> dict:
    """Re-check a written bundle the way the gateway will (sha256, golden vectors via ORT)."""
    d = Path(bundle_dir)
    manifest = json.loads((d / MANIFEST_FILE).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT or manifest.get("kind") != "flow_ae":
        raise BundleError(f"{d}: unexpected format/kind")
    model_path = d / manifest["model"]["file"]
    if sha256_file(model_path) != manifest["model"]["sha256"]:
        raise BundleError(f"{d}: sha256 of {model_path.name} does not match the manifest")
    scaling = FeatureScaling.from_manifest(manifest["features"]["scaling"])
    if list(scaling.names) != manifest["features"]["names"]:
        raise BundleError(f"{d}: scaling names differ from features.names")
    g = manifest["golden"]
    scaled = scaling.transform(np.asarray(g["inputs"], dtype=np.float64)).astype(np.float32)
    out = run_onnx(model_path, scaled)
    tol = g["tolerance"]
    if np.max(np.abs(out - np.asarray(g["outputs"]))) > tol:
        raise BundleError(f"{d}: golden outputs not reproduced within {tol}")
    if np.max(np.abs(row_errors(scaled, out) - np.asarray(g["errors"]))) > tol:
        raise BundleError(f"{d}: golden errors not reproduced within {tol}")
    return manifest
