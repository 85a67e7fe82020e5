"""The ``quantize`` command: static int8 (QDQ, calibrated on the run's benign training rows) of
a run's fp32 file, measured in tract, and the fp32/int8 choice that ``bundle --precision auto``
ships (``static_int8.quantize_model`` does the work and holds the rule).

    RUN/model-int8.onnx   static int8, QDQ, per-channel weights
    RUN/quantize.json     the figures, the rule and the choice with its reasons

``quantize --bundle DIR --dataset DS`` measures a bundle's model instead (calibration: the
dataset's benign training rows, scaled by the bundle's own scaling; evaluation: its test split)
and records the figures in the manifest's ``quantization`` section, model untouched. It does
not swap the model: if int8 wins, rebuild the bundle through its script (threshold and golden
vectors must come from the file that ships).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from .. import registry
from ..data import dataset as ds
from ..data.build import open_dataset
from ..data.scaling import FeatureScaling
from ..kinds.base import TRAIN
from ..log import say
from ..train.run import load_run
from .export import eval_samples
from .static_int8 import CALIBRATION_ROWS, quantize_model


def calibration_rows(kind, samples, scaling, limit: int = CALIBRATION_ROWS) -> np.ndarray:
    """Scaled benign training rows (a seeded sample of at most ``limit``): what static int8
    takes its activation ranges from."""
    idx = np.nonzero((samples.split == TRAIN) & (samples.labels == 0))[0]
    if not len(idx):
        raise ValueError("the dataset has no benign training rows to calibrate int8 on")
    idx = np.sort(np.random.default_rng(0).permutation(idx)[:limit])
    return kind.scale(scaling, samples.raw[idx])


def _compat(fig: dict) -> dict:
    """Keys readers of older quantize.json files use (graph report)."""
    for row in fig.get("tract", {}).values():
        if "us_per_row" in row:
            row["us_per_sample"] = row["us_per_row"]
    if "batch_independence_max_abs" in fig:
        fig["int8_batch_dependence_max_abs"] = fig["batch_independence_max_abs"]
    return fig


def quantize(args) -> dict:
    if getattr(args, "bundle", None):
        return quantize_bundle(args)
    if not args.run:
        raise ValueError("give --run RUN_DIR (or --bundle DIR --dataset DS)")
    run_dir = Path(args.run)
    run, kind, _, scaling = load_run(run_dir)
    fp32 = run_dir / "model-fp32.onnx"
    if not fp32.exists():
        raise ValueError(f"{fp32} is missing: run `export --run {run_dir}` first")
    _, _, samples = open_dataset(run["dataset"])
    x, labels = eval_samples(kind, run, scaling)
    q = quantize_model(fp32, calibration_rows(kind, samples, scaling), eval_x=x, labels=labels,
                       out=run_dir / "model-int8.onnx", score=kind.score_outputs,
                       method=args.calibration, rounds=args.rounds, budget_s=args.budget_s)
    info = _compat(q.figures)
    (run_dir / "quantize.json").write_text(json.dumps(info, indent=2) + "\n")
    say(args.quiet, f"quantize: chose {info['chosen']} ({info['why']})")
    return info


def quantize_bundle(args) -> dict:
    from ..bundle.format import MANIFEST_FILE, write_json_atomic
    from ..bundle.signing import SIGNATURE_FILE

    bdir = Path(args.bundle)
    if not args.dataset:
        raise ValueError("--bundle needs --dataset DS (calibration and evaluation rows)")
    if (bdir / SIGNATURE_FILE).exists():
        raise ValueError(f"{bdir} is signed: recording figures would void {SIGNATURE_FILE}; "
                         "rebuild it through its script instead")
    m = json.loads((bdir / MANIFEST_FILE).read_text())
    kind = registry.get(m["kind"])
    scaling = FeatureScaling.from_manifest(m["features"]["scaling"])
    meta, dkind, samples = open_dataset(args.dataset)
    if dkind.name != kind.name:
        raise ValueError(f"dataset kind {dkind.name} does not match the bundle's {kind.name}")
    test = ds.test_part(samples)
    if not len(test):
        raise ValueError(f"{args.dataset} has no test split to measure ranking on")
    idx = np.sort(np.random.default_rng(0).permutation(len(test))[:10000])
    part = test.take(idx)
    labelled = samples.labelled and 0 < part.labels.sum() < len(part)
    with tempfile.TemporaryDirectory() as d:
        out = Path(args.out or Path(d) / "model-int8.onnx")
        q = quantize_model(bdir / m["model"]["file"], calibration_rows(kind, samples, scaling),
                           eval_x=kind.scale(scaling, part.raw),
                           labels=part.labels if labelled else None,
                           out=out, score=kind.score_outputs, method=args.calibration,
                           rounds=args.rounds, budget_s=args.budget_s)
        if args.compare_bundles:
            for precision, f in (("fp32", bdir / m["model"]["file"]), ("int8", out)):
                _comparison_bundle(m, kind, scaling, samples, precision, f,
                                   Path(args.compare_bundles) / precision)
    fig = dict(q.figures)
    shipped = m["model"]["precision"]
    fig["measured_on"] = {"sources": [s.get("file") for s in meta.get("sources", [])],
                          "rows": int(len(part)), "positives": int((part.labels != 0).sum())}
    if q.precision != shipped:
        fig["note"] = (f"the rule chose {q.precision}, the bundle ships {shipped}: rebuild it "
                       "through its script to ship the choice")
    m["quantization"] = {"chosen": shipped, "measured": True, **{k: v for k, v in fig.items()
                                                                 if k != "chosen"},
                         "rule_chose": q.precision}
    write_json_atomic(bdir / MANIFEST_FILE, m)
    say(args.quiet, f"quantize: {bdir}: the rule chose {q.precision} ({fig['why']}); "
        f"recorded in {MANIFEST_FILE}")
    return m["quantization"]



def _comparison_bundle(m: dict, kind, scaling, samples, precision: str, model: Path,
                       dest: Path) -> None:
    """A copy of the bundle holding ``model``, for comparing precisions (``netwarden eval
    --flow-model``), never shipped: the threshold is re-taken with that file by the bundle's
    quantile on the dataset's benign threshold-split rows (the same rows for fp32 and int8),
    golden outputs and errors recomputed."""
    import shutil

    from .. import gateway
    from ..bundle.format import MANIFEST_FILE, MODEL_FILE, write_json_atomic
    from ..export import runtimes as R

    thr = m["threshold"]
    if "quantile" not in thr:
        raise ValueError(f"--compare-bundles needs a quantile threshold, not {thr['method']}")
    ref = np.nonzero((samples.split == kind.threshold_split) & (samples.labels == 0))[0]
    x_ref = kind.scale(scaling, samples.raw[ref])
    errors = kind.score_outputs(x_ref, R.run_ort(model, x_ref))
    golden_in = np.asarray(m["golden"]["inputs"], dtype=np.float32)
    xg = kind.scale(scaling, golden_in.reshape(len(golden_in), *kind.sample_shape))
    yg = R.run_ort(model, xg)
    new = json.loads(json.dumps(m))
    new["version"] = f"{m['version']}-{precision}-compare"
    new["model"]["precision"] = precision
    new["model"]["sha256"] = ds.sha256_file(model)
    new["threshold"] = {**thr, "value": float(np.quantile(errors, thr["quantile"])),
                        "n": int(len(ref)), "note": "comparison copy: re-taken with this file "
                        "on the dataset's benign threshold-split rows"}
    new["golden"]["outputs"] = [[float(v) for v in row.reshape(-1)] for row in yg]
    new["golden"]["errors"] = [float(e) for e in kind.score_outputs(xg, yg)]
    new["golden"]["tolerance"] = kind.golden_tolerance(precision)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, dest / MODEL_FILE)
    write_json_atomic(dest / MANIFEST_FILE, new)
    gateway.model_check(dest)
