"""The ``train`` command, for every model kind: one model (or K cross-validation folds first)
from a dataset directory into a run directory, with the one training loop (``trainer``).

A *run directory* is what ``train`` writes and every later stage reads:

    RUN/run.json     kind, variant, dataset, scaling, training summary and history, config
    RUN/model.pt     trained weights (state dict)
    RUN/curves.png   training / validation loss
    RUN/cv/          with --folds K: report.json, report.csv (per fold, mean, std)
    RUN/eval/        evaluate: report.json, report.csv, error-histogram.png,
                     traffic-anomalies.png
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from .. import registry
from ..data import dataset as ds
from ..data.build import open_dataset
from ..data.scaling import FeatureScaling
from ..evaluate import metrics, plots
from ..evaluate.threshold import threshold_of
from ..kinds.base import SPLIT_NAMES, TRAIN, VAL, ModelKind, Samples
from ..log import say
from .trainer import (Dist, FitConfig, FitResult, dist_from_env, fit, seed_everything,
                      steady_seconds_per_epoch)

RUN_JSON = "run.json"
WEIGHTS = "model.pt"
REPORT_METRICS = ("accuracy", "precision", "recall", "f1", "macro_f1", "roc_auc",
                  "false_positive_rate")


def _round_or_none(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def _accelerator_name(device: str) -> str:
    """The GPU's name for a CUDA run ("cpu" otherwise), so run.json says what was measured."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


# --- training ----------------------------------------------------------------------------------
def fit_config(kind: ModelKind, args, label: str) -> FitConfig:
    d = kind.defaults
    return FitConfig(
        epochs=args.epochs or d.epochs, batch_size=args.batch_size or d.batch_size,
        learning_rate=args.lr or d.learning_rate, patience=args.patience or d.patience,
        clip_grad=d.clip_grad, seed=args.seed, device=args.device, threads=args.threads,
        quiet=args.quiet, log_every=args.log_every, label=label)


def train_on(kind: ModelKind, variant: str, raw_train: np.ndarray, raw_val: np.ndarray,
             cfg: FitConfig, dist: Dist) -> tuple[FitResult, FeatureScaling]:
    scaling = kind.fit_scaling(raw_train)
    seed_everything(cfg.seed)
    model = kind.build(variant)
    result = fit(model, kind.scale(scaling, raw_train), kind.scale(scaling, raw_val), cfg, dist)
    return result, scaling


def train(args) -> dict | None:
    manifest, kind, samples = open_dataset(args.dataset)
    variant = kind.check_variant(args.variant)
    dist = dist_from_env()
    out = Path(args.out)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
    cv_report = None
    try:
        if args.folds:
            cv_report = cross_validate(kind, variant, samples, args, dist, out / "cv")
        if args.cv_only:
            return cv_report
        train_idx = np.nonzero((samples.split == TRAIN) & (samples.labels == 0))[0]
        val_idx = np.nonzero((samples.split == VAL) & (samples.labels == 0))[0]
        cfg = fit_config(kind, args, f"{kind.name}/{variant}")
        result, scaling = train_on(kind, variant, samples.raw[train_idx], samples.raw[val_idx],
                                   cfg, dist)
    finally:
        if dist.world > 1:
            import torch.distributed as td

            if td.is_initialized():
                td.barrier()
                td.destroy_process_group()
    if not dist.main:
        return None
    torch.save(result.model.state_dict(), out / WEIGHTS)
    plots.curves(result.history, result.best_epoch, f"{kind.name}/{variant}", out / "curves.png")
    run = {
        "format": 1,
        "kind": kind.name,
        "variant": variant,
        "dataset": str(Path(args.dataset).resolve()),
        "dataset_sources": manifest["sources"],
        "scaling": scaling.to_manifest(),
        "training": {
            "samples": int(len(train_idx)), "validation_samples": int(len(val_idx)),
            "epochs": result.epochs_run, "max_epochs": cfg.epochs, "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss, "early_stopped": result.early_stopped,
            "seed": cfg.seed, "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate,
            "patience": cfg.patience, "device": result.device, "world_size": result.world_size,
            "threads": cfg.threads, "seconds": round(result.seconds, 3),
            "seconds_per_epoch": round(result.seconds_per_epoch, 4),
            "cpu_seconds_per_epoch": round(result.cpu_seconds_per_epoch, 4),
            "epoch_seconds": [round(t, 4) for t in result.epoch_seconds],
            "steady_seconds_per_epoch": _round_or_none(steady_seconds_per_epoch(result.epoch_seconds)),
            "accelerator": _accelerator_name(result.device),
        },
        "history": [[t, v] for t, v in result.history],
        "cv": None if cv_report is None else cv_report["summary"],
    }
    (out / RUN_JSON).write_text(json.dumps(run, indent=2) + "\n")
    say(args.quiet, f"wrote run {out}: {kind.name}/{variant}, {result.epochs_run} epochs, "
        f"{result.seconds_per_epoch:.3f} s/epoch on {result.device} x{result.world_size}")
    return run


def load_run(run_dir: str | Path) -> tuple[dict, ModelKind, torch.nn.Module, FeatureScaling]:
    """(run.json, kind, the trained model in eval mode, its scaling)."""
    d = Path(run_dir)
    try:
        run = json.loads((d / RUN_JSON).read_text())
    except OSError as e:
        raise ValueError(f"{d}: not a run directory (no {RUN_JSON}; `train` writes one)") from e
    kind = registry.get(run["kind"])
    model = kind.build(run["variant"])
    model.load_state_dict(torch.load(d / WEIGHTS, map_location="cpu", weights_only=True))
    return run, kind, model.eval(), FeatureScaling.from_manifest(run["scaling"])


# --- k-fold cross-validation ----------------------------------------------------------------
def cross_validate(kind: ModelKind, variant: str, samples: Samples, args, dist: Dist,
                   out: Path) -> dict:
    """Stratified K folds over every sample of the dataset: fold k is the test set, the normal
    samples of the other folds train (10 % of them, seeded, for early stopping); threshold and
    metrics as ``evaluate``. Windows of a series overlap, so neighbouring windows can fall in
    different folds: the CV figures are a little optimistic for series (docs/models.md)."""
    if not samples.labelled:
        raise ValueError("--folds needs labelled data (anomalous files or --labels)")
    fold = ds.kfold_assign(samples.labels, args.folds, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    rows = []
    for k in range(args.folds):
        pool = rng.permutation(np.nonzero((fold != k) & (samples.labels == 0))[0])
        n_val = max(1, int(round(0.1 * len(pool))))
        val_idx, train_idx = np.sort(pool[:n_val]), np.sort(pool[n_val:])
        test_idx = np.nonzero(fold == k)[0]
        cfg = fit_config(kind, args, f"{kind.name}/{variant} fold {k + 1}/{args.folds}")
        result, scaling = train_on(kind, variant, samples.raw[train_idx], samples.raw[val_idx],
                                   cfg, dist)
        ref_idx = train_idx if kind.threshold_split == TRAIN else val_idx
        ref = kind.scores(result.model, kind.scale(scaling, samples.raw[ref_idx]))
        thr = threshold_of(ref, args, SPLIT_NAMES[kind.threshold_split])
        test_scores = kind.scores(result.model, kind.scale(scaling, samples.raw[test_idx]))
        r = metrics.classification_report(test_scores, samples.labels[test_idx], thr["value"])
        r.update(fold=k + 1, train_samples=int(len(train_idx)), epochs=result.epochs_run)
        rows.append(r)
    summary = {"folds": args.folds, "seed": args.seed, "threshold": args.threshold}
    for name in REPORT_METRICS:
        vals = np.array([r[name] for r in rows], dtype=np.float64)
        summary[name] = {"mean": float(np.nanmean(vals)), "std": float(np.nanstd(vals))}
    report = {"kind": kind.name, "variant": variant, "summary": summary, "folds": rows}
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
        with (out / "report.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["scope", *REPORT_METRICS, "tp", "fp", "tn", "fn", "threshold"])
            for r in rows:
                c = r["confusion_matrix"]
                w.writerow([f"fold{r['fold']}", *[r[m] for m in REPORT_METRICS],
                            c["tp"], c["fp"], c["tn"], c["fn"], r["threshold"]])
            w.writerow(["mean", *[summary[m]["mean"] for m in REPORT_METRICS], "", "", "", "", ""])
            w.writerow(["std", *[summary[m]["std"] for m in REPORT_METRICS], "", "", "", "", ""])
        say(args.quiet, f"{args.folds}-fold CV: " + ", ".join(
            f"{m} {summary[m]['mean']:.4f}±{summary[m]['std']:.4f}"
            for m in ("f1", "macro_f1", "roc_auc")))
    return report
