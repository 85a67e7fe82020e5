"""The ``bundle`` command: a bundle from a run (or from the run a ``select`` chose).

The threshold is computed with the very file that ships (an int8 file gets its own). The
bundle is written into a scratch directory next to ``--out``, checked in Python (hash, golden
vectors in onnxruntime and tract), signed (``--sign-key``), checked by the gateway's own
`netwarden model check`, and only then moved into place.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from .. import gateway
from ..data import dataset as ds
from ..data.build import open_dataset
from ..evaluate import metrics
from ..evaluate.threshold import threshold_of
from ..export import runtimes as R
from ..export.onnx_export import INPUT_NAME, OUTPUT_NAME
from ..kinds.base import SPLIT_NAMES
from ..log import say
from ..train.run import load_run
from . import signing
from .format import (FORMAT, HIGH_RATIO, MANIFEST_FILE, MODEL_FILE, BundleError, default_version,
                     now_utc, pick_golden_rows, write_json_atomic)
from .verify import verify_python


# What the manifest's `quantization` records of RUN/quantize.json (docs/bundle-format.md).
QUANT_FIELDS = ("why", "rule", "method", "format", "weights", "calibration", "tract", "bytes",
                "ranking", "parity", "batch_independence_max_abs", "int8_ops")


def _source(args) -> tuple[Path, str, dict | None]:
    """(run directory, precision, the selection to record) from --run or --selection."""
    if bool(args.run) == bool(args.selection):
        raise ValueError("give exactly one of --run RUN_DIR and --selection SELECTION_JSON")
    if args.run:
        return Path(args.run), args.precision, None
    sel = json.loads(Path(args.selection).read_text())
    chosen = sel["chosen"]
    if args.precision not in ("auto", chosen["precision"]):
        raise ValueError(f"--precision {args.precision} contradicts the selection "
                         f"({chosen['precision']}); leave it at auto")
    # What the manifest records: the rule, the candidates and the chosen file, not this
    # machine's paths or every bench row.
    record = {k: v for k, v in sel.items() if k != "bench"}
    record["chosen"] = {k: v for k, v in chosen.items() if k != "run"}
    return Path(chosen["run"]), chosen["precision"], record


def bundle(args) -> dict:
    run_dir, precision, selection = _source(args)
    run, kind, _, scaling = load_run(run_dir)
    qpath = run_dir / "quantize.json"
    quant = json.loads(qpath.read_text()) if qpath.exists() else None
    if precision == "auto":
        precision = quant["chosen"] if quant else "fp32"
    src = run_dir / f"model-{precision}.onnx"
    if not src.exists():
        raise ValueError(f"{src} is missing: run `export` (and `quantize` for int8) first")
    export_info = json.loads((run_dir / "export.json").read_text()) if (run_dir / "export.json").exists() else {}
    _, _, samples = open_dataset(run["dataset"])
    # A caller may take the threshold from another split (site models: held-out site rows)
    # with its own rule (``threshold_fn(errors, split_name) -> dict``).
    split = getattr(args, "threshold_split", None)
    split = kind.threshold_split if split is None else split
    ref_idx = np.nonzero((samples.split == split) & (samples.labels == 0))[0]
    raw_ref = samples.raw[ref_idx]
    x_ref = kind.scale(scaling, raw_ref)
    sess = R.ort_session(src)
    recon = R.run_ort(src, x_ref, sess=sess)
    errors = kind.score_outputs(x_ref, recon)
    fixed = getattr(kind, "fixed_threshold", None)
    custom = getattr(args, "threshold_fn", None)
    if custom is not None:
        thr = custom(errors, SPLIT_NAMES[split])
    elif fixed is None:
        thr = threshold_of(errors, args, SPLIT_NAMES[split])
    else:  # a classifier: its own decision boundary, not a quantile of benign errors
        thr = {"value": float(fixed), "method": "classifier", "n": int(len(errors)),
               "source": SPLIT_NAMES[split]}
    if not thr["value"] > 0:
        raise BundleError(f"threshold is {thr['value']!r}; expected > 0")
    golden = pick_golden_rows(errors, typical=kind.golden_typical, worst=kind.golden_worst)
    # The golden rows again, as one batch: that is how the gateway replays them (static int8
    # is batch independent; an older dynamic int8 file took its scale from the whole batch).
    g_out = R.run_ort(src, x_ref[golden], sess=sess)
    g_err = kind.score_outputs(x_ref[golden], g_out)
    evaluation = None
    test = ds.test_part(samples)
    if samples.labelled and len(test):
        x_test = kind.scale(scaling, test.raw)
        t_err = kind.score_outputs(x_test, R.run_ort(src, x_test, sess=sess))
        rep = metrics.classification_report(t_err, (test.labels != 0).astype(np.int8), thr["value"])
        evaluation = {k: rep[k] for k in ("samples", "positives", "accuracy", "precision",
                                          "recall", "f1", "macro_f1", "roc_auc",
                                          "false_positive_rate")}
        evaluation["confusion_matrix"] = rep["confusion_matrix"]["rows_true_cols_predicted"]
    tr = run["training"]
    manifest = {
        "format": FORMAT,
        "name": args.name or kind.default_bundle_name(),
        "kind": getattr(kind, "manifest_kind", kind.name),
        "version": args.version or default_version(),
        "created_utc": now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {
            "file": MODEL_FILE,
            "sha256": ds.sha256_file(src),
            "input_name": INPUT_NAME,
            "output_name": getattr(kind, "output_name", OUTPUT_NAME),
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
                         **({k: quant[k] for k in QUANT_FIELDS if k in quant} if quant else {}),
                         **({"overridden_by": "--precision"} if quant and precision != quant["chosen"] else {})},
        **({"selection": selection} if selection else {}),
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
        write_json_atomic(stage / MANIFEST_FILE, manifest)
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
    say(args.quiet, f"wrote bundle {out}: {kind.name}/{run['variant']} {precision}, threshold "
        f"{thr['value']:.6g} ({thr['method']})" + (", signed" if args.sign_key else ", unsigned")
        + ("" if check_out is None else "; gateway check passed"))
    if check_out and not args.quiet:
        print(check_out, file=sys.stderr)
    return manifest


def _replace_dir(stage: Path, out: Path) -> None:
    if out.exists():
        if not out.is_dir() or any(p.name not in (MODEL_FILE, MANIFEST_FILE, signing.SIGNATURE_FILE)
                                   for p in out.iterdir()):
            raise BundleError(f"{out} exists and holds more than a bundle; not replacing it")
        shutil.rmtree(out)
    stage.rename(out)
