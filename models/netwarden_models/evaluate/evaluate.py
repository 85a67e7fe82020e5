"""The ``evaluate`` command: threshold and test metrics of a run (torch, or an ONNX file in
onnxruntime), report.json/report.csv and figures in RUN/eval/."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..data import dataset as ds
from ..data.build import open_dataset
from ..export.runtimes import run_ort
from ..kinds.base import SPLIT_NAMES
from ..log import say
from ..train.run import REPORT_METRICS, load_run
from . import metrics, plots
from .threshold import threshold_of


def onnx_scorer(kind, path: str | Path):
    def score(x: np.ndarray) -> np.ndarray:
        return kind.score_outputs(x, run_ort(path, x))

    return score


def evaluate(args) -> dict:
    run, kind, model, scaling = load_run(args.run)
    _, dkind, samples = open_dataset(args.dataset or run["dataset"])
    if dkind.name != kind.name:
        raise ValueError(f"dataset is {dkind.name}, run is {kind.name}")
    if args.onnx:
        score = onnx_scorer(kind, args.onnx)
    else:
        def score(x):
            return kind.scores(model, x)
    ref_split = kind.threshold_split
    ref_idx = np.nonzero((samples.split == ref_split) & (samples.labels == 0))[0]
    ref = score(kind.scale(scaling, samples.raw[ref_idx]))
    thr = threshold_of(ref, args, SPLIT_NAMES[ref_split])
    test = ds.test_part(samples)
    test_scores = score(kind.scale(scaling, test.raw)) if len(test) else np.zeros(0)
    out = Path(args.out or Path(args.run) / "eval")
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "kind": kind.name, "variant": run["variant"], "scored_with": args.onnx or "torch (model.pt)",
        "threshold": thr,
        "reference_errors": _stats(ref),
        "test": None,
    }
    if len(test):
        report["test_errors"] = _stats(test_scores)
        if samples.labelled:
            report["test"] = metrics.classification_report(test_scores, test.labels, thr["value"])
        else:
            report["test"] = {"samples": int(len(test)), "flagged": int(np.sum(test_scores > thr["value"])),
                              "note": "unlabelled: no accuracy/precision/recall"}
    plots.error_histogram(ref, test_scores, test.labels if len(test) else [], thr["value"],
                          thr["method"], out / "error-histogram.png")
    if len(test):
        plots.traffic_with_anomalies(test.time_ms, kind.traffic(test.raw), test_scores, test.labels,
                                     thr["value"], kind.traffic_feature, out / "traffic-anomalies.png")
    report["figures"] = sorted(p.name for p in out.glob("*.png"))
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    with (out / "report.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", "value"])
        w.writerow(["threshold", thr["value"]])
        w.writerow(["threshold_method", thr["method"]])
        t = report["test"] or {}
        for name in ("samples", "positives", "flagged", *REPORT_METRICS):
            if name in t:
                w.writerow([name, t[name]])
        for name in ("tp", "fp", "tn", "fn"):
            if "confusion_matrix" in t:
                w.writerow([name, t["confusion_matrix"][name]])
    t = report["test"]
    say(args.quiet, f"wrote {out}: threshold {thr['value']:.6g} ({thr['method']})" + (
        f", F1 {t['f1']:.4f}, macro F1 {t['macro_f1']:.4f}, ROC-AUC {t['roc_auc']:.4f}"
        if t and "f1" in t else ""))
    return report


def _stats(x: np.ndarray) -> dict:
    if not len(x):
        return {"n": 0}
    return {"n": int(len(x)), "mean": float(np.mean(x)), "p50": float(np.quantile(x, 0.5)),
            "p95": float(np.quantile(x, 0.95)), "p99": float(np.quantile(x, 0.99)),
            "max": float(np.max(x))}
