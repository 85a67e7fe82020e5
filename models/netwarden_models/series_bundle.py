"""`series_lstm` bundles (docs/bundle-format.md, "Series bundles"), written from a run directory.

The threshold is the 95th percentile of per-window MSE on the run's held-out normal
(validation) windows, computed with the very file that ships (so an int8 model gets its own
threshold). Golden vectors are raw windows (flattened row-major, 400 floats), the shipped file's
reconstruction in scaled space and the per-window MSE; ``verify_series_bundle`` replays them
through onnxruntime *and* tract before the bundle is accepted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from . import series_export as E
from .bundle import (FORMAT, HIGH_RATIO, MANIFEST_FILE, MODEL_FILE, THRESHOLD_QUANTILE,
                     BundleError, _now, _write_json_atomic, default_version, pick_golden_rows,
                     sha256_file)
from .scaling import FeatureScaling
from .series_ae import WIDTH, WINDOW
from .series_data import SCHEMA, SERIES_FEATURES

KIND = "series_lstm"
TOLERANCE = {"fp32": 1e-4, "int8": 1e-3}
THRESHOLD_METHOD = "heldout_normal_window_quantile"


def write_series_bundle(run_dir: str | Path, out_dir: str | Path, *, variant: str, form: str,
                        precision: str, selection: dict, data_note: str,
                        version: str | None = None, name: str = "series-lstm") -> dict:
    run = Path(run_dir)
    report = json.loads((run / "report.json").read_text())
    src = run / f"{variant}-{form}-{precision}.onnx"
    if not src.exists():
        raise BundleError(f"{src} does not exist (variant/form/precision not in this run)")
    data = np.load(run / "data.npz")
    x_val, raw_val = data["x_val"], data["raw_val"]
    scaling = FeatureScaling.from_manifest(report["scaling"])
    # Re-scale from the raw windows as the gateway will (raw f32 -> scaled), not the stored copy.
    scaled = scaling.transform(raw_val.reshape(-1, WIDTH).astype(np.float64)).reshape(
        raw_val.shape).astype(np.float32)
    if np.abs(scaled - x_val).max() > 1e-5:
        raise BundleError("run data.npz: scaled windows disagree with the scaling in report.json")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_FILE
    shutil.copyfile(src, model_path)
    model_path.chmod(0o644)

    recon = E.run_ort(model_path, scaled)
    errors = E.window_mse(scaled, recon)
    threshold = float(np.quantile(errors, THRESHOLD_QUANTILE))
    if not threshold > 0.0:
        raise BundleError(f"threshold is {threshold!r}; expected > 0")
    golden = pick_golden_rows(errors, typical=3, worst=3)
    training = report["training"]
    t = training.get(variant, {})
    members = {k: v for k, v in training.items() if k != "ensemble"} if variant == "ensemble" else None
    manifest = {
        "format": FORMAT,
        "name": name,
        "kind": KIND,
        "version": version or default_version(),
        "created_utc": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {
            "file": MODEL_FILE,
            "sha256": sha256_file(model_path),
            "input_name": E.INPUT_NAME,
            "output_name": E.OUTPUT_NAME,
            "input_width": WIDTH,
            "window": WINDOW,
            "precision": precision,
            "variant": variant,
        },
        "features": {
            "schema": SCHEMA,
            "names": list(SERIES_FEATURES),
            "scaling": scaling.to_manifest(),
        },
        "threshold": {
            "value": threshold,
            "method": THRESHOLD_METHOD,
            "quantile": THRESHOLD_QUANTILE,
            "windows": int(len(scaled)),
        },
        "severity": {"high_ratio": HIGH_RATIO},
        "training": {
            "data": data_note,
            "sources": report["sources"],
            "rows": report["rows"],
            "interfaces": report["interfaces"],
            "windows": report["split"]["train_windows"],
            "validation_windows": report["split"]["validation_windows"],
            "train_stride": report["split"]["train_stride"],
            "epochs": t.get("epochs"),
            "max_epochs": t.get("max_epochs"),
            "best_epoch": t.get("best_epoch"),
            "best_val_loss": t.get("best_val_loss"),
            "early_stop_epoch": t.get("epochs") if t.get("early_stopped") else None,
            "seed": t.get("seed"),
            "members": members,
        },
        "evaluation": {
            k: report["files"][src.name].get(k)
            for k in ("roc_auc", "recall_at_threshold", "false_positive_rate")
        } | {"windows": report["split"]["evaluation_windows"],
             "anomalous_windows": report["split"]["evaluation_positive"],
             "anomalies": "injected bursts, drops, exfil-like upload ramps (synthetic)"},
        "selection": selection,
        "golden": {
            "inputs": [[float(v) for v in raw_val[i].reshape(-1)] for i in golden],
            "outputs": [[float(v) for v in recon[i].reshape(-1)] for i in golden],
            "errors": [float(errors[i]) for i in golden],
            "tolerance": TOLERANCE[precision],
        },
    }
    _write_json_atomic(out / MANIFEST_FILE, manifest)
    verify_series_bundle(out)
    return manifest


def verify_series_bundle(bundle_dir: str | Path) -> dict:
    """Check hash, shapes and golden vectors in onnxruntime and in tract (fresh state)."""
    d = Path(bundle_dir)
    m = json.loads((d / MANIFEST_FILE).read_text(encoding="utf-8"))
    if m.get("format") != FORMAT or m.get("kind") != KIND:
        raise BundleError(f"{d}: format/kind is {m.get('format')}/{m.get('kind')}, expected 1/{KIND}")
    if m["features"]["schema"] != SCHEMA or m["features"]["names"] != list(SERIES_FEATURES):
        raise BundleError(f"{d}: features are not {SCHEMA}")
    if (m["model"]["window"], m["model"]["input_width"]) != (WINDOW, WIDTH):
        raise BundleError(f"{d}: model.window/input_width are not {WINDOW}/{WIDTH}")
    model_path = d / m["model"]["file"]
    if sha256_file(model_path) != m["model"]["sha256"]:
        raise BundleError(f"{d}: sha256 of {model_path.name} does not match the manifest")
    scaling = FeatureScaling.from_manifest(m["features"]["scaling"])
    g = m["golden"]
    raw = np.asarray(g["inputs"], dtype=np.float32).reshape(-1, WINDOW, WIDTH)
    scaled = scaling.transform(raw.reshape(-1, WIDTH).astype(np.float64)).reshape(
        raw.shape).astype(np.float32)
    want = np.asarray(g["outputs"], dtype=np.float32).reshape(raw.shape)
    tol = g["tolerance"]
    for runtime, out in (("onnxruntime", E.run_ort(model_path, scaled)),
                         ("tract", E.run_tract(model_path, scaled, batch=len(scaled)))):
        diff = float(np.abs(out - want).max())
        if not diff <= tol:
            raise BundleError(f"{d}: golden outputs differ by {diff:g} in {runtime} (> {tol})")
        ediff = float(np.abs(E.window_mse(scaled, out) - np.asarray(g["errors"])).max())
        if not ediff <= tol:
            raise BundleError(f"{d}: golden errors differ by {ediff:g} in {runtime} (> {tol})")
    return m
