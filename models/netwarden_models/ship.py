"""The pipeline's second half, for every model kind: export -> quantize -> bundle -> sign -> check.

    RUN/model-fp32.onnx   export (dynamo exporter, one file, opset 18)
    RUN/export.json       exporter, form, parity torch/onnxruntime/tract
    RUN/model-int8.onnx   quantize (dynamic int8, MatMul/Gemm only)
    RUN/quantize.json     measured in tract: loads?, parity, µs/sample fp32 vs int8 at batch 1
                          and 8, bytes, ranking (ROC-AUC or rank correlation); the choice

``bundle`` writes the bundle into a scratch directory next to ``--out``, checks it in Python
(hash, golden vectors in onnxruntime and tract), signs it (``--sign-key``), runs the gateway's
own `netwarden model check` on it and only then moves it into place.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import dataset as ds
from . import gateway, metrics, signing
from . import export_generic as G
from .bundle import (FORMAT, HIGH_RATIO, MANIFEST_FILE, MODEL_FILE, BundleError, _now,
                     _write_json_atomic, default_version, pick_golden_rows, sha256_file)
from .kinds import SPLIT_NAMES, TEST, ModelKind
from .pipeline import _say, load_run, threshold_of

PARITY_FP32 = 1e-4
PARITY_INT8 = 1e-3
INT8_RANK_AUC_SLACK = 0.005
INT8_RANK_CORR_MIN = 0.99
INT8_FASTER = 0.10  # at least 10 % fewer µs/sample in tract at batch 8 ...
INT8_SMALLER = 0.25  # ... or at least 25 % fewer bytes and not slower (> 10 %)
BATCHES = (1, 8)
DEFAULT_NAMES = {"flow_ae": "flow-ae", "series_lstm": "series-lstm"}


def _eval_samples(kind: ModelKind, run: dict, scaling, limit: int = 2000):
    """Scaled samples to compare files on: the test split (labels if any), else validation."""
    _, _, samples = ds.read(run["dataset"])
    part = ds.test_part(samples)
    labelled = samples.labelled and len(part) and 0 < part.labels.sum() < len(part)
    if not len(part):
        part = samples.take(np.nonzero(samples.split != TEST)[0])
    idx = np.random.default_rng(0).permutation(len(part))[:limit]
    part = part.take(np.sort(idx))
    return kind.scale(scaling, part.raw), (part.labels if labelled else None)


# --- export ---------------------------------------------------------------------------------
def export(args) -> dict:
    run, kind, model, scaling = load_run(args.run)
    form = args.form or kind.forms[0]
    if form not in kind.forms:
        raise ValueError(f"kind {kind.name}: unknown form {form!r}; expected one of {kind.forms}")
    out = Path(args.out or Path(args.run) / "model-fp32.onnx")
    exporter = kind.export(model, out, run["variant"], form)
    G.strip_value_info(out)
    x, _ = _eval_samples(kind, run, scaling, limit=256)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    y = G.run_ort(out, x)
    ort_vs_torch = float(np.abs(y - ref).max())
    tract = {}
    for b in BATCHES:
        yt = G.run_tract(out, x[: max(b, 16)], kind.tract_fact, b)
        tract[f"batch{b}"] = float(np.abs(yt - y[: len(yt)]).max())
    info = {"file": out.name, "exporter": exporter, "form": form, "bytes": out.stat().st_size,
            "ops": G.op_counts(out), "ort_vs_torch_max_abs": ort_vs_torch,
            "tract_vs_ort_max_abs": tract}
    if ort_vs_torch > PARITY_FP32 or max(tract.values()) > PARITY_FP32:
        raise BundleError(f"{out}: exported model disagrees (torch/ORT {ort_vs_torch:g}, "
                          f"tract/ORT {tract}) beyond {PARITY_FP32:g}")
    # export.json describes RUN/model-fp32.onnx (what quantize and bundle use); a file written
    # elsewhere gets its own FILE.json.
    default = out.resolve() == (Path(args.run) / "model-fp32.onnx").resolve()
    (Path(args.run) / "export.json" if default else out.with_suffix(".json")).write_text(
        json.dumps(info, indent=2) + "\n")
    _say(args.quiet, f"wrote {out} ({exporter}, form {form}); ORT-torch {ort_vs_torch:.1e}, "
         f"tract-ORT {max(tract.values()):.1e}")
    return info


# --- quantize -------------------------------------------------------------------------------
def quantize(args) -> dict:
    run_dir = Path(args.run)
    run, kind, _, scaling = load_run(run_dir)
    fp32 = run_dir / "model-fp32.onnx"
    if not fp32.exists():
        raise ValueError(f"{fp32} is missing: run `export --run {run_dir}` first")
    int8 = G.quantize_dynamic_int8(fp32, run_dir / "model-int8.onnx")
    x, labels = _eval_samples(kind, run, scaling)
    score = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        y = G.run_ort(path, x)
        d = x.astype(np.float64) - y.astype(np.float64)
        score[name] = (d * d).reshape(len(x), -1).mean(axis=1)
    info: dict = {
        "rule": (f"int8 only if tract loads and runs it at batches {list(BATCHES)}, tract matches "
                 f"onnxruntime within {PARITY_INT8:g}, ranking holds (ROC-AUC within "
                 f"{INT8_RANK_AUC_SLACK} of fp32 when labels exist, else Spearman >= "
                 f"{INT8_RANK_CORR_MIN}), a sample's int8 output does not move by more than "
                 f"{PARITY_INT8:g} with the rest of its batch (zero padding included), and in tract it is >= {INT8_FASTER:.0%} faster at batch 8 "
                 f"and not slower at batch 1, or the file is >= {INT8_SMALLER:.0%} smaller and "
                 f"not >10% slower at either batch"),
        "bytes": {"fp32": fp32.stat().st_size, "int8": int8.stat().st_size},
        "int8_ops": G.op_counts(int8),
        "ranking": {"samples": int(len(x)),
                    "spearman_fp32_int8": metrics.rank_correlation(score["fp32"], score["int8"])},
        "tract": {},
    }
    if labels is not None:
        info["ranking"]["roc_auc"] = {k: metrics.roc_auc(v, labels) for k, v in score.items()}
    reasons = []
    for b in BATCHES:
        xb = x[:b] if len(x) >= b else np.resize(x, (b, *x.shape[1:]))
        row: dict = {}
        plans = {}
        for name, path in (("fp32", fp32), ("int8", int8)):
            try:
                plans[name] = G.TractPlan(path, kind.tract_fact(b))
                yt = plans[name].run(xb)
            except Exception as e:  # noqa: BLE001 - tract raises one Python type for all
                row[f"{name}_error"] = str(e).splitlines()[0][:300]
                continue
            row[f"{name}_tract_vs_ort_max_abs"] = float(np.abs(yt - G.run_ort(path, xb)).max())
        if len(plans) == 2:
            row["us_per_sample"] = G.time_us_per_sample(
                {k: (lambda p=p: p.run(xb)) for k, p in plans.items()}, b,
                rounds=args.rounds, budget_s=args.budget_s)
        info["tract"][f"batch{b}"] = row
        if "int8_error" in row:
            reasons.append(f"tract cannot run int8 at batch {b}: {row['int8_error']}")
        elif row.get("int8_tract_vs_ort_max_abs", 0) > PARITY_INT8:
            reasons.append(f"int8 tract/ORT parity {row['int8_tract_vs_ort_max_abs']:.2g} at batch {b}")
    # Dynamic int8 takes each layer's activation scale from the whole batch, so a sample's
    # output can depend on the samples (or the zero padding) it runs with. The gateway runs
    # batches of whatever is due, padded, so such a file cannot reproduce fixed golden outputs.
    if "int8_error" not in info["tract"].get("batch1", {}) and "int8_error" not in info["tract"].get("batch8", {}):
        x8 = x[:8] if len(x) >= 8 else np.resize(x, (8, *x.shape[1:]))
        plan1, plan8 = G.TractPlan(int8, kind.tract_fact(1)), G.TractPlan(int8, kind.tract_fact(8))
        one = np.concatenate([plan1.run(x8[i : i + 1]) for i in range(8)])
        padded = np.concatenate([x8[:1], np.zeros_like(x8[1:])])
        dep = max(float(np.abs(plan8.run(x8) - one).max()),
                  float(np.abs(plan8.run(padded)[:1] - one[:1]).max()))
        info["int8_batch_dependence_max_abs"] = dep
        if dep > PARITY_INT8:
            reasons.append(f"int8 output depends on the rest of the batch by up to {dep:.2g} "
                           f"(> {PARITY_INT8:g}): dynamic activation scales")
    r = info["ranking"]
    if "roc_auc" in r and r["roc_auc"]["int8"] < r["roc_auc"]["fp32"] - INT8_RANK_AUC_SLACK:
        reasons.append(f"int8 ROC-AUC {r['roc_auc']['int8']:.4f} < fp32 {r['roc_auc']['fp32']:.4f}"
                       f" - {INT8_RANK_AUC_SLACK}")
    if "roc_auc" not in r and r["spearman_fp32_int8"] < INT8_RANK_CORR_MIN:
        reasons.append(f"int8 rank correlation {r['spearman_fp32_int8']:.4f} < {INT8_RANK_CORR_MIN}")
    if all("us_per_sample" in info["tract"].get(f"batch{b}", {}) for b in BATCHES):
        us = info["tract"]["batch8"]["us_per_sample"]
        us1 = info["tract"]["batch1"]["us_per_sample"]
        faster = us["int8"] <= (1 - INT8_FASTER) * us["fp32"] and us1["int8"] <= us1["fp32"]
        smaller = (info["bytes"]["int8"] <= (1 - INT8_SMALLER) * info["bytes"]["fp32"]
                   and us["int8"] <= 1.10 * us["fp32"] and us1["int8"] <= 1.10 * us1["fp32"])
        if not (faster or smaller):
            reasons.append(f"int8 not worth it in tract: {us['int8']} vs {us['fp32']} µs/sample "
                           f"at batch 8, {us1['int8']} vs {us1['fp32']} at batch 1, "
                           f"{info['bytes']['int8']} vs {info['bytes']['fp32']} bytes")
    info["chosen"] = "fp32" if reasons else "int8"
    info["why"] = "; ".join(reasons) if reasons else "int8 passes parity, ranking and is faster or smaller in tract"
    (run_dir / "quantize.json").write_text(json.dumps(info, indent=2) + "\n")
    _say(args.quiet, f"quantize: chose {info['chosen']} ({info['why']})")
    return info


# --- bundle ---------------------------------------------------------------------------------
def bundle(args) -> dict:
    run_dir = Path(args.run)
    run, kind, _, scaling = load_run(run_dir)
    qpath = run_dir / "quantize.json"
    quant = json.loads(qpath.read_text()) if qpath.exists() else None
    precision = args.precision
    if precision == "auto":
        precision = quant["chosen"] if quant else "fp32"
    src = run_dir / f"model-{precision}.onnx"
    if not src.exists():
        raise ValueError(f"{src} is missing: run `export` (and `quantize` for int8) first")
    export_info = json.loads((run_dir / "export.json").read_text()) if (run_dir / "export.json").exists() else {}
    _, _, samples = ds.read(run["dataset"])
    ref_idx = np.nonzero((samples.split == kind.threshold_split) & (samples.labels == 0))[0]
    raw_ref = samples.raw[ref_idx]
    x_ref = kind.scale(scaling, raw_ref)
    sess = G.ort_session(src)
    recon = G.run_ort(src, x_ref, sess=sess)
    errors = _errors(x_ref, recon)
    thr = threshold_of(errors, args, SPLIT_NAMES[kind.threshold_split])
    if not thr["value"] > 0:
        raise BundleError(f"threshold is {thr['value']!r}; expected > 0")
    golden = pick_golden_rows(errors, typical=kind.golden_typical, worst=kind.golden_worst)
    # The golden rows again, as one batch: that is how the gateway replays them, and dynamic
    # int8 takes its activation scale from the whole batch (zero padding does not move it).
    g_out = G.run_ort(src, x_ref[golden], sess=sess)
    g_err = _errors(x_ref[golden], g_out)
    evaluation = None
    test = ds.test_part(samples)
    if samples.labelled and len(test):
        t_err = _errors(kind.scale(scaling, test.raw), G.run_ort(src, kind.scale(scaling, test.raw), sess=sess))
        rep = metrics.classification_report(t_err, test.labels, thr["value"])
        evaluation = {k: rep[k] for k in ("samples", "positives", "accuracy", "precision",
                                          "recall", "f1", "macro_f1", "roc_auc",
                                          "false_positive_rate")}
        evaluation["confusion_matrix"] = rep["confusion_matrix"]["rows_true_cols_predicted"]
    tr = run["training"]
    manifest = {
        "format": FORMAT,
        "name": args.name or DEFAULT_NAMES.get(kind.name, kind.name.replace("_", "-")),
        "kind": kind.name,
        "version": args.version or default_version(),
        "created_utc": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {
            "file": MODEL_FILE,
            "sha256": sha256_file(src),
            "input_name": G.INPUT_NAME,
            "output_name": G.OUTPUT_NAME,
            "input_width": len(kind.feature_names),
            "precision": precision,
            **kind.manifest_model(run["variant"], export_info.get("form", kind.forms[0])),
        },
        "features": {"schema": kind.schema, "names": list(kind.feature_names),
                     "scaling": scaling.to_manifest()},
        "threshold": thr,
        "severity": {"high_ratio": HIGH_RATIO},
        "training": {
            "variant": run["variant"], "rows": tr["samples"], "epochs": tr["epochs"],
            "best_epoch": tr["best_epoch"], "best_val_loss": tr["best_val_loss"],
            "seed": tr["seed"], "device": tr["device"], "world_size": tr["world_size"],
            "sources": [s["file"] for s in run["dataset_sources"]],
            "source_sha256": {s["file"]: s["sha256"] for s in run["dataset_sources"]},
            **({"data": args.data_note} if args.data_note else {}),
        },
        "evaluation": evaluation,
        "cross_validation": run.get("cv"),
        "quantization": {"chosen": precision, "measured": quant is not None,
                         **({"why": quant["why"], "rule": quant["rule"], "tract": quant["tract"],
                             "bytes": quant["bytes"], "ranking": quant["ranking"]} if quant else {}),
                         **({"overridden_by": "--precision"} if quant and precision != quant["chosen"] else {})},
        "golden": {
            "inputs": [[float(v) for v in np.asarray(raw_ref[i], dtype=np.float64).reshape(-1)] for i in golden],
            "outputs": [[float(v) for v in row.reshape(-1)] for row in g_out],
            "errors": [float(e) for e in g_err],
            "tolerance": kind.golden_tolerance(precision),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    stage.chmod(0o755)
    try:
        shutil.copyfile(src, stage / MODEL_FILE)
        (stage / MODEL_FILE).chmod(0o644)
        _write_json_atomic(stage / MANIFEST_FILE, manifest)
        verify_python(stage, kind)
        pub = None
        if args.sign_key:
            signing.sign_bundle(stage, args.sign_key)
            pub = signing.public_key_b64(signing.load_private_key(args.sign_key).public_key())
            signing.verify_bundle_signature(stage, [pub])
        check_out = None
        if not args.no_gateway_check:
            check_out = gateway.model_check(stage, key=pub)
        _replace_dir(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
    _say(args.quiet, f"wrote bundle {out}: {kind.name}/{run['variant']} {precision}, threshold "
         f"{thr['value']:.6g} ({thr['method']})" + (", signed" if args.sign_key else ", unsigned")
         + ("" if check_out is None else "; gateway check passed"))
    if check_out and not args.quiet:
        print(check_out, file=sys.stderr)
    return manifest


def _errors(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = x.astype(np.float64) - y.astype(np.float64)
    return (d * d).reshape(len(x), -1).mean(axis=1)


def _replace_dir(stage: Path, out: Path) -> None:
    if out.exists():
        if not out.is_dir() or any(p.name not in (MODEL_FILE, MANIFEST_FILE, signing.SIGNATURE_FILE)
                                   for p in out.iterdir()):
            raise BundleError(f"{out} exists and holds more than a bundle; not replacing it")
        shutil.rmtree(out)
    stage.rename(out)


def verify_python(bundle_dir: Path, kind: ModelKind | None = None) -> dict:
    """Hash, schema and golden vectors in onnxruntime and in tract (fresh state, one batch)."""
    from . import kinds
    from .scaling import FeatureScaling

    m = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    kind = kind or kinds.get(m["kind"])
    if m["features"]["names"] != list(kind.feature_names):
        raise BundleError(f"{bundle_dir}: features are not {kind.schema}")
    path = bundle_dir / m["model"]["file"]
    if sha256_file(path) != m["model"]["sha256"]:
        raise BundleError(f"{bundle_dir}: sha256 of {path.name} does not match the manifest")
    scaling = FeatureScaling.from_manifest(m["features"]["scaling"])
    g = m["golden"]
    raw = np.asarray(g["inputs"], dtype=np.float32).reshape(-1, *kind.sample_shape)
    x = kind.scale(scaling, raw)
    want = np.asarray(g["outputs"], dtype=np.float32).reshape(x.shape)
    tol = g["tolerance"]
    for runtime, y in (("onnxruntime", G.run_ort(path, x)),
                       ("tract", G.run_tract(path, x, kind.tract_fact, len(x)))):
        diff = float(np.abs(y - want).max())
        ediff = float(np.abs(_errors(x, y) - np.asarray(g["errors"])).max())
        if not (diff <= tol and ediff <= tol):
            raise BundleError(f"{bundle_dir}: golden vectors differ in {runtime} by {max(diff, ediff):g} (> {tol})")
    return m


# --- keys, signatures, gateway check ----------------------------------------------------------
def keygen(args) -> int:
    key, pub = signing.keygen(args.out, force=args.force)
    print(pub.read_text().strip())
    _say(args.quiet, f"wrote {key} (private, mode 0600: keep it offline, never commit it) and "
         f"{pub} (public: goes in the gateways' [bundles] trusted_keys)")
    return 0


def sign(args) -> int:
    sig = signing.sign_bundle(args.bundle, args.key)
    pub = signing.public_key_b64(signing.load_private_key(args.key).public_key())
    signing.verify_bundle_signature(args.bundle, [pub])
    print(pub)
    _say(args.quiet, f"wrote {sig} (verifies with public key {pub})")
    return 0


def check(args) -> int:
    d = Path(args.bundle)
    if args.key:
        signing.verify_bundle_signature(d, [args.key])
    verify_python(d)
    if args.no_gateway_check:
        _say(args.quiet, f"{d}: Python checks passed (gateway check skipped: --no-gateway-check)")
        return 0
    out = gateway.model_check(d, key=args.key)
    print(out)
    return 0
