"""Kind ``series_ae`` (old name ``series_lstm``, still accepted): autoencoders over 50-step
`series-v1` windows, convolutional (``conv``, what ships) or LSTM (``seed``, ``edge``,
``attention``, ``ensemble``); the networks are in ``series_nets``.

Data: `netwarden features --series` CSVs (or ``--rates``: the gateway exports them here).
Split by time (``time_split``, as issue 3): training windows before the validation days,
validation = the ``--val-days`` before ``--eval-start-ms``, test = windows from
``--eval-start-ms`` on, labelled from ``--labels`` (the synthetic generator's labels.csv: a
window is anomalous when it overlaps an injected anomaly of its interface). The threshold
comes from the validation windows (held-out normal), as in issue 3.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import gateway
from ..data.dataset import sha256_file
from ..data.series_synth import read_labels_csv
from ..export.onnx_export import export_onnx
from ..series_data import (SCHEMA, SERIES_FEATURES, SERIES_LOG1P, SeriesTable, label_windows,
                           make_windows, read_series_csvs)
from . import series_nets
from .base import TEST, TRAIN, VAL, ModelKind, Samples, TrainDefaults

DAY_MS = 86_400_000


class SeriesAeKind(ModelKind):
    name = "series_ae"
    schema = SCHEMA
    feature_names = SERIES_FEATURES
    log1p = SERIES_LOG1P
    variants = series_nets.VARIANTS
    default_variant = "edge"
    sample_shape = (series_nets.WINDOW, series_nets.WIDTH)
    threshold_split = VAL
    defaults = TrainDefaults(epochs=40, batch_size=64, learning_rate=2e-3, patience=5,
                             clip_grad=1.0)
    traffic_feature = "in_bps"
    bundle_name = "series-ae"
    golden_typical, golden_worst = 3, 3
    forms = series_nets.LSTM_FORMS

    def add_dataset_args(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("series_ae data (time split)")
        g.add_argument("--series-features", action="append", default=[], metavar="CSV",
                       help="series-v1 CSV from `netwarden features --series` (repeatable)")
        g.add_argument("--rates", action="append", default=[], metavar="RATES_CSV",
                       help="interface rates; the gateway binary exports their features")
        g.add_argument("--labels", metavar="LABELS_CSV",
                       help="anomalies (synth-series-rates --labels): test windows get labels")
        g.add_argument("--eval-start-ms", type=int,
                       help="windows from here on are test only (default: no test split)")
        g.add_argument("--val-days", type=float, default=1.0)
        g.add_argument("--train-stride", type=int, default=10)
        g.add_argument("--eval-stride", type=int, default=20)
        g.add_argument("--max-train-windows", type=int, default=3000)
        g.add_argument("--max-val-windows", type=int, default=600)

    def read_dataset(self, args, work: Path):
        csvs = [Path(f) for f in args.series_features]
        for rates in args.rates:
            out = work / (Path(rates).stem + "-series.csv")
            gateway.export_features(out, series_rates=rates)
            csvs.append(out)
        if not csvs:
            raise ValueError("no series data: give --series-features CSVs or --rates")
        table = read_series_csvs(csvs)
        w_train, w_val, w_eval, val_from = time_split(
            table, args.eval_start_ms, val_days=args.val_days, train_stride=args.train_stride,
            eval_stride=args.eval_stride, max_train_windows=args.max_train_windows,
            max_val_windows=args.max_val_windows)
        parts = [(w_train, TRAIN), (w_val, VAL)] + ([(w_eval, TEST)] if w_eval is not None else [])
        anomalies = read_labels_csv(args.labels) if args.labels else None
        raws, labels, splits, times, keys = [], [], [], [], []
        for w, s in parts:
            raws.append(w.raw.astype(np.float32))
            labels.append(label_windows(w, anomalies) if anomalies is not None
                          else np.zeros(len(w), dtype=np.int8))
            splits.append(np.full(len(w), s, dtype=np.int8))
            times.append(w.end_ms.astype(np.int64))
            keys.append(w.key.astype(np.int32))
        sources = [{"file": p.name, "sha256": sha256_file(p)} for p in csvs]
        samples = Samples(
            raw=np.concatenate(raws), labels=np.concatenate(labels), split=np.concatenate(splits),
            time_ms=np.concatenate(times), source=np.concatenate(keys),
            labelled=anomalies is not None,
            info={"rows": table.rows, "interfaces": [f"{t}/{n}" for t, n in w_train.keys],
                  "validation_from_ms": int(val_from), "evaluation_from_ms": args.eval_start_ms,
                  "train_stride": args.train_stride, "eval_stride": args.eval_stride,
                  "label_rule": "window overlaps an anomaly in --labels" if anomalies else "none"})
        return samples, sources

    def build(self, variant: str):
        return series_nets.build(self.check_variant(variant), "onnx")

    def export(self, model, path: Path, variant: str, form: str) -> str:
        # The unrolled form goes through the TorchScript exporter: dynamo needs about five
        # minutes for one 50-step unrolled layer stack, TorchScript seconds, and tract loads
        # and matches both (export checks the parity).
        converted = series_nets.convert_form(model, variant, form)
        return export_onnx(converted, path, self.sample_shape,
                           exporter="dynamo" if form == "onnx" else "torchscript")

    def manifest_model(self, variant: str, form: str) -> dict:
        return {"window": series_nets.WINDOW, "variant": variant, "form": form}



def time_split(table: SeriesTable, eval_start_ms: int | None, *, val_days: float,
               train_stride: int, eval_stride: int, max_train_windows: int,
               max_val_windows: int):
    """(train windows, validation windows, test windows | None, validation start in ms).

    Windows never straddle two parts. The training subsample uses a fixed seed (12345, as in
    issue 3), so datasets do not depend on the training seed."""
    all_w = make_windows(table, stride=1)
    end_all = int(all_w.end_ms.max())
    eval_from = eval_start_ms if eval_start_ms is not None else end_all + 1
    val_from = eval_from - int(val_days * DAY_MS)
    train_idx = np.nonzero(all_w.end_ms < val_from)[0][::train_stride]
    val_idx = np.nonzero((all_w.start_ms >= val_from) & (all_w.end_ms < eval_from))[0]
    eval_idx = np.nonzero(all_w.start_ms >= eval_from)[0][::eval_stride]
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError(
            f"not enough data: {len(train_idx)} training and {len(val_idx)} validation windows "
            f"(validation is the {val_days} day(s) before {eval_from})")
    rng = np.random.default_rng(12345)
    if len(train_idx) > max_train_windows:
        train_idx = np.sort(rng.choice(train_idx, max_train_windows, replace=False))
    val_idx = val_idx[:: max(1, len(val_idx) // max_val_windows)][:max_val_windows]
    ev = all_w.take(eval_idx) if len(eval_idx) else None
    return all_w.take(train_idx), all_w.take(val_idx), ev, val_from
