"""One training run of the series family: data split, training, export, quality evaluation.

A run directory holds everything the bench and the bundle step need:

    curves.png                      training/validation loss of each trained variant
    <variant>-<form>-<precision>.onnx   every exported file (forms onnx/unrolled, fp32/int8)
    <variant>.pt                    trained weights (state dict, LSTM form independent)
    data.npz                        scaled validation windows and raw golden candidates
    report.json                     scaling, training summary, ROC-AUC of every file

Split, by time (windows never straddle two parts):
- evaluation: windows that start at or after ``eval_start_ms`` (the generator's injected
  anomalies live there), labelled from the labels CSV;
- validation: the ``val_days`` before that (held-out normal windows: early stopping and the
  threshold);
- training: everything before; the scaling is fitted on its rows.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import series_ae, series_export
from .scaling import FeatureScaling
from .series_data import (SERIES_FEATURES, SERIES_LOG1P, SeriesTable, Windows, label_windows,
                          make_windows)
from .series_train import SeriesTrainConfig, save_curves, train_variant

DAY_MS = 86_400_000


@dataclass
class RunConfig:
    variants: tuple[str, ...] = series_ae.VARIANTS
    forms: tuple[str, ...] = series_ae.LSTM_FORMS
    train_stride: int = 10
    eval_stride: int = 20
    max_train_windows: int = 3000
    max_val_windows: int = 600
    val_days: float = 1.0
    train: SeriesTrainConfig | None = None


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC by the rank-sum (Mann-Whitney) formula, ties averaged."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def split(table: SeriesTable, eval_start_ms: int | None, cfg: RunConfig):
    """(train windows, validation windows, evaluation windows | None, training row mask)."""
    all_w = make_windows(table, stride=1)
    end_all = int(all_w.end_ms.max())
    eval_from = eval_start_ms if eval_start_ms is not None else end_all + 1
    val_from = eval_from - int(cfg.val_days * DAY_MS)
    train_idx = np.nonzero(all_w.end_ms < val_from)[0][:: cfg.train_stride]
    val_idx = np.nonzero((all_w.start_ms >= val_from) & (all_w.end_ms < eval_from))[0]
    eval_idx = np.nonzero(all_w.start_ms >= eval_from)[0][:: cfg.eval_stride]
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError(
            f"not enough data: {len(train_idx)} training and {len(val_idx)} validation windows "
            f"(validation is the {cfg.val_days} day(s) before {eval_from})")
    rng = np.random.default_rng(12345)
    if len(train_idx) > cfg.max_train_windows:
        train_idx = np.sort(rng.choice(train_idx, cfg.max_train_windows, replace=False))
    val_idx = val_idx[:: max(1, len(val_idx) // cfg.max_val_windows)][: cfg.max_val_windows]
    ev = all_w.take(eval_idx) if len(eval_idx) else None
    return all_w.take(train_idx), all_w.take(val_idx), ev, val_from


def fit_scaling(table: SeriesTable, before_ms: int) -> FeatureScaling:
    rows = [raw[ts < before_ms] for ts, raw, _ in table.series.values()]
    rows = np.concatenate([r for r in rows if len(r)])
    return FeatureScaling.fit(rows, names=SERIES_FEATURES,
                              log1p=tuple(SERIES_LOG1P[n] for n in SERIES_FEATURES))


def scale_windows(scaling: FeatureScaling, raw: np.ndarray) -> np.ndarray:
    n, t, w = raw.shape
    return scaling.transform(raw.reshape(n * t, w)).reshape(n, t, w).astype(np.float32)


def file_name(variant: str, form: str, precision: str) -> str:
    return f"{variant}-{form}-{precision}.onnx"


def run(table: SeriesTable, out_dir: str | Path, *, eval_start_ms: int | None,
        anomalies=None, cfg: RunConfig | None = None, log=True) -> dict:
    """Train, export and evaluate; returns (and writes) the report."""
    cfg = cfg or RunConfig()
    tcfg = cfg.train or SeriesTrainConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if log else (lambda m: None)

    w_train, w_val, w_eval, val_from = split(table, eval_start_ms, cfg)
    scaling = fit_scaling(table, val_from)
    x_train = scale_windows(scaling, w_train.raw)
    x_val = scale_windows(scaling, w_val.raw)
    labels = None
    if w_eval is not None and anomalies is not None:
        labels = label_windows(w_eval, anomalies)
    say(f"series run: {table.rows} rows, {len(w_train)} train / {len(w_val)} validation / "
        f"{0 if w_eval is None else len(w_eval)} evaluation windows"
        + ("" if labels is None else f" ({int(labels.sum())} overlap an injected anomaly)"))

    results = {}
    trained: dict[str, torch.nn.Module] = {}
    for variant in cfg.variants:
        r = train_variant(variant, x_train, x_val, tcfg, members=trained)
        results[variant] = r
        trained[variant] = r.model
        torch.save(r.model.state_dict(), out / f"{variant}.pt")
    curves = save_curves(list(results.values()), out / "curves.png")

    x_eval = None if w_eval is None else scale_windows(scaling, w_eval.raw)
    files = {}
    for variant, r in results.items():
        for form in series_ae.forms_of(variant, cfg.forms):
            model = series_ae.convert_form(r.model, variant, form)
            fp32 = out / file_name(variant, form, "fp32")
            series_export.export_series(model, fp32, form)
            int8 = series_export.quantize_int8(fp32, out / file_name(variant, form, "int8"))
            with torch.no_grad():
                ref = model(torch.from_numpy(x_val[:64])).numpy()
            for precision, path in (("fp32", fp32), ("int8", int8)):
                entry = {"variant": variant, "form": form, "precision": precision,
                         "file": path.name, "bytes": path.stat().st_size}
                y_val = series_export.run_ort(path, x_val)
                entry["val_mse_mean"] = float(series_export.window_mse(x_val, y_val).mean())
                entry["ort_vs_torch_max_abs"] = float(np.abs(y_val[:64] - ref).max())
                # Parity in tract itself, on the validation windows (batch 16 plan, fresh
                # state), against onnxruntime on the same batches: dynamic int8 takes its
                # scales from the whole batch.
                try:
                    y_tract = series_export.run_tract(path, x_val[:64], batch=16)
                except Exception as e:  # noqa: BLE001 - tract's errors are one Python type
                    # Recorded, not fatal: such a file is simply not a candidate to ship.
                    entry["tract_error"] = str(e).split("\n")[0] + " " + " ".join(
                        line.strip() for line in str(e).split("\n")[1:5] if line.strip())
                    entry["tract_vs_ort_max_abs"] = None
                else:
                    y_same = series_export.run_ort(path, x_val[:64], batch=16)
                    entry["tract_vs_ort_max_abs"] = float(np.abs(y_tract - y_same).max())
                if x_eval is not None and labels is not None:
                    err = series_export.window_mse(x_eval, series_export.run_ort(path, x_eval))
                    entry["roc_auc"] = roc_auc(err, labels)
                    threshold = float(np.quantile(series_export.window_mse(x_val, y_val), 0.95))
                    entry["recall_at_threshold"] = float((err[labels == 1] > threshold).mean())
                    entry["false_positive_rate"] = float((err[labels == 0] > threshold).mean())
                files[path.name] = entry
                parity = entry["tract_vs_ort_max_abs"]
                say(f"  {path.name}: val mse {entry['val_mse_mean']:.6f}, tract-ORT "
                    + (f"{parity:.1e}" if parity is not None else "tract cannot load it")
                    + (f", ROC-AUC {entry['roc_auc']:.4f}" if "roc_auc" in entry else ""))

    np.savez_compressed(out / "data.npz", x_val=x_val, raw_val=w_val.raw.astype(np.float32))
    report = {
        "rows": table.rows,
        "sources": list(table.sources),
        "interfaces": [f"{t}/{n}" for t, n in table.series],
        "split": {
            "train_windows": len(w_train), "validation_windows": len(w_val),
            "evaluation_windows": 0 if w_eval is None else len(w_eval),
            "evaluation_positive": None if labels is None else int(labels.sum()),
            "validation_from_ms": int(val_from), "evaluation_from_ms": eval_start_ms,
            "train_stride": cfg.train_stride, "eval_stride": cfg.eval_stride,
        },
        "scaling": scaling.to_manifest(),
        "training": {
            v: {"epochs": r.epochs_run, "best_epoch": r.best_epoch,
                "best_val_loss": r.best_val_loss, "early_stopped": r.early_stopped,
                "seconds": round(r.seconds, 1), "seed": tcfg.seed, "max_epochs": tcfg.epochs,
                "patience": tcfg.patience}
            for v, r in results.items()
        },
        "files": files,
        "curves": curves.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def windows_for_bench(n: int, seed: int = 0) -> np.ndarray:
    """Scaled-looking random windows, for latency only."""
    return np.random.default_rng(seed).random((n, series_ae.WINDOW, series_ae.WIDTH),
                                              dtype=np.float32)


__all__ = ["RunConfig", "run", "roc_auc", "file_name", "Windows"]
