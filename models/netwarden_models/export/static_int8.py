"""Static int8 (QDQ) of an fp32 ONNX autoencoder, measured in tract, and the fp32/int8 choice.

The one entry point other stages call (``quantize``, the central site-model loop):

    q = quantize_model(fp32_path, calibration_rows, eval_x=..., labels=..., out=int8_path)
    q.path, q.precision, q.figures      # the file to ship, "int8" or "fp32", what was measured

Static quantisation takes every activation scale from calibration rows (benign training rows,
already scaled), once, and writes them into the graph as QuantizeLinear/DequantizeLinear pairs
(onnxruntime ``quantize_static``, QDQ format, per-channel weights by default). A row's output
therefore does not depend on the other rows of its batch, unlike dynamic int8 (docs/models.md),
so fixed golden outputs reproduce in the gateway's padded batches.

Rule (``RULE``): int8 ships only if tract loads and runs it at every measured batch, its
ranking holds (ROC-AUC within ``AUC_SLACK`` of fp32 when labels exist, else Spearman of the
scores >= ``SPEARMAN_MIN``), a row's output is the same alone and inside batches of 8 and 64
random other rows and zero padding (max abs difference <= ``BATCH_INDEPENDENCE``), and tract
is not slower (int8 µs/row <= fp32 µs/row at batches 1, 8 and 64, medians of interleaved
rounds); else fp32.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from ..evaluate import metrics
from . import runtimes as R
from .onnx_export import INPUT_NAME, strip_value_info

AUC_SLACK = 0.005
SPEARMAN_MIN = 0.99
BATCH_INDEPENDENCE = 1e-6
BATCHES = (1, 8, 64)
CALIBRATION_ROWS = 2000
METHODS = ("minmax", "percentile")
RULE = (f"static int8 (QDQ) ships only if tract runs it at batches {list(BATCHES)}, ROC-AUC is "
        f"within {AUC_SLACK} of fp32 (without labels: score Spearman >= {SPEARMAN_MIN}), a row's "
        f"output alone and inside batches of 8 and 64 other rows differs by <= "
        f"{BATCH_INDEPENDENCE:g}, and tract is not slower (int8 us/row <= fp32 at every batch); "
        "else fp32")

Score = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Quantized:
    """What ships (``path``, ``precision``) and everything measured (``figures``, JSON-ready:
    ``chosen``, ``why``, ``rule``, ``bytes``, ``ranking``, ``tract``, ``parity``,
    ``batch_independence_max_abs``, ``calibration``, ``int8_ops``)."""
    path: Path
    precision: str
    int8_path: Path | None
    figures: dict = field(default_factory=dict)


def quantize_static_int8(src: str | Path, dst: str | Path, calibration: np.ndarray, *,
                         per_channel: bool = True, method: str = "minmax") -> Path:
    """Write the static int8 QDQ copy of ``src`` to ``dst``; ``calibration`` is scaled rows
    ``[n, *sample_shape]`` (benign training rows). Activations and weights are signed int8
    (symmetric weights), ``method`` is MinMax or the 99.999th percentile of |activation|."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod,
                                          QuantFormat, QuantType, quantize_static)

    class Rows(CalibrationDataReader):  # the calibration rows, in batches of 64
        def __init__(self, x: np.ndarray):
            self._it = iter([{INPUT_NAME: x[i : i + 64]} for i in range(0, len(x), 64)])

        def get_next(self):
            return next(self._it, None)

    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")
    x = np.ascontiguousarray(calibration, dtype=np.float32)
    if not len(x):
        raise ValueError("static int8 needs calibration rows; got none")
    if len(x) > 64:  # whole batches only: the percentile collector stacks them
        x = x[: len(x) // 64 * 64]
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing" advice on every call
    try:
        quantize_static(
            str(src), str(dst), Rows(x), quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=(CalibrationMethod.MinMax if method == "minmax"
                              else CalibrationMethod.Percentile),
            extra_options={"CalibPercentile": 99.999} if method == "percentile" else None)
    finally:
        root.setLevel(level)
    strip_value_info(dst)
    onnx.checker.check_model(onnx.load(str(dst)))
    os.chmod(dst, 0o644)
    return dst


def batch_independence(path: str | Path, x: np.ndarray, *, rows: int = 8, seed: int = 0,
                       plans: dict | None = None) -> float:
    """Max abs difference, in tract, between ``rows`` rows run alone (batch 1) and the same
    rows inside batches of 8 and 64 filled with random other rows (other samples of ``x``,
    uniform noise in [0, 1.5)) or zero padding. 0.0 means exactly batch independent."""
    shape = tuple(x.shape[1:])
    plans = plans if plans is not None else {}
    plan = lambda b: plans.setdefault(b, R.TractPlan(path, b, shape))  # noqa: E731
    rng = np.random.default_rng(seed)
    x = np.ascontiguousarray(x, dtype=np.float32)
    probe = x[:rows]
    alone = np.concatenate([plan(1).run(probe[i : i + 1]) for i in range(len(probe))])
    worst = 0.0
    for b in (8, 64):
        for fill in ("samples", "noise", "zeros"):
            for i in range(len(probe)):
                if fill == "samples":
                    batch = x[rng.integers(0, len(x), b)].copy()
                elif fill == "noise":
                    batch = (rng.random((b, *shape)) * 1.5).astype(np.float32)
                else:
                    batch = np.zeros((b, *shape), np.float32)
                pos = int(rng.integers(0, b))
                batch[pos] = probe[i]
                y = plan(b).run(batch)[pos]
                worst = max(worst, float(np.abs(y - alone[i]).max()))
    return worst


def quantize_model(fp32: str | Path, calibration: np.ndarray, *, eval_x: np.ndarray,
                   labels: np.ndarray | None = None, out: str | Path | None = None,
                   score: Score = R.recon_mse, per_channel: bool = True, method: str = "minmax",
                   rounds: int = 5, budget_s: float = 0.2, seed: int = 0) -> Quantized:
    """Static int8 of ``fp32`` calibrated on ``calibration`` (scaled benign rows), measured on
    ``eval_x`` (scaled; ``labels`` 0/1 when known) in tract, and the choice by ``RULE``.
    ``out`` is the int8 file (default: ``model-int8.onnx`` next to ``fp32``)."""
    fp32 = Path(fp32)
    int8 = Path(out) if out else fp32.with_name("model-int8.onnx")
    rng = np.random.default_rng(seed)
    calib = np.asarray(calibration, dtype=np.float32)
    if len(calib) > CALIBRATION_ROWS:
        calib = calib[np.sort(rng.permutation(len(calib))[:CALIBRATION_ROWS])]
    if len(calib) > 64:  # whole batches of 64, as quantize_static_int8 reads them
        calib = calib[: len(calib) // 64 * 64]
    fig: dict = {
        "method": "static",
        "format": "QDQ",
        "weights": "per-channel" if per_channel else "per-tensor",
        "calibration": {"rows": int(len(calib)), "method": method},
        "rule": RULE,
    }
    try:
        quantize_static_int8(fp32, int8, calib, per_channel=per_channel, method=method)
    except Exception as e:  # noqa: BLE001 - onnxruntime's quantizer raises many types
        fig["bytes"] = {"fp32": fp32.stat().st_size}
        return _decide(fp32, None, fig, [f"static int8 failed: {str(e).splitlines()[0][:300]}"])
    x = np.ascontiguousarray(eval_x, dtype=np.float32)
    shape = tuple(x.shape[1:])
    files = {"fp32": fp32, "int8": int8}
    fig.update({"bytes": {k: p.stat().st_size for k, p in files.items()},
                "int8_ops": R.op_counts(int8), "tract": {}})
    reasons: list[str] = []
    plans: dict[str, dict[int, R.TractPlan]] = {"fp32": {}, "int8": {}}
    for b in BATCHES:
        xb = x[:b] if len(x) >= b else np.resize(x, (b, *shape))
        row: dict = {}
        for name, path in files.items():
            try:
                plans[name][b] = R.TractPlan(path, b, shape)
                plans[name][b].run(xb)
            except Exception as e:  # noqa: BLE001 - tract raises one Python type for all
                row[f"{name}_error"] = str(e).splitlines()[0][:300]
        if not any(k.endswith("_error") for k in row):
            row["us_per_row"] = R.time_us_per_sample(
                {k: (lambda p=plans[k][b]: p.run(xb)) for k in files}, b, rounds=rounds,
                budget_s=budget_s)
        fig["tract"][f"batch{b}"] = row
        if "int8_error" in row:
            reasons.append(f"tract cannot run int8 at batch {b}: {row['int8_error']}")
        if "fp32_error" in row:
            reasons.append(f"tract cannot run fp32 at batch {b}: {row['fp32_error']}")
    if reasons:
        return _decide(fp32, int8, fig, reasons)
    # Every eval row through both files in tract (batch 64, zero-padded), and int8 in ORT.
    y = {k: _run(plans[k][64], x) for k in files}
    s = {k: score(x, y[k]) for k in files}
    fig["parity"] = {
        "int8_vs_fp32_tract_max_abs": float(np.abs(y["int8"] - y["fp32"]).max()),
        "int8_tract_vs_ort_max_abs": float(np.abs(y["int8"] - R.run_ort(int8, x, batch=64)).max()),
        "score_int8_vs_fp32_max_abs": float(np.abs(s["int8"] - s["fp32"]).max()),
        "rows": int(len(x)),
    }
    if labels is not None and np.any(np.asarray(labels) == 0):
        benign = np.asarray(labels) == 0  # inside the calibrated range, mostly
        fig["parity"]["int8_vs_fp32_tract_max_abs_benign"] = float(
            np.abs(y["int8"][benign] - y["fp32"][benign]).max())
    rank: dict = {"rows": int(len(x)),
                  "spearman_fp32_int8": metrics.rank_correlation(s["fp32"], s["int8"])}
    if labels is not None and 0 < int(np.sum(labels != 0)) < len(labels):
        lab = (np.asarray(labels) != 0).astype(np.int8)
        rank["roc_auc"] = {k: metrics.roc_auc(v, lab) for k, v in s.items()}
        rank["positives"] = int(lab.sum())
    fig["ranking"] = rank
    dep = batch_independence(int8, x, seed=seed, plans=plans["int8"])
    fig["batch_independence_max_abs"] = dep
    if "roc_auc" in rank:
        a = rank["roc_auc"]
        if a["int8"] < a["fp32"] - AUC_SLACK:
            reasons.append(f"int8 ROC-AUC {a['int8']:.4f} < fp32 {a['fp32']:.4f} - {AUC_SLACK}")
    elif rank["spearman_fp32_int8"] < SPEARMAN_MIN:
        reasons.append(f"int8 score Spearman {rank['spearman_fp32_int8']:.4f} < {SPEARMAN_MIN}")
    if dep > BATCH_INDEPENDENCE:
        reasons.append(f"int8 output moves by {dep:.2g} with the rest of its batch "
                       f"(> {BATCH_INDEPENDENCE:g})")
    slower = [f"batch {b}: {u['int8']} vs {u['fp32']}" for b in BATCHES
              if (u := fig["tract"][f"batch{b}"]["us_per_row"])["int8"] > u["fp32"]]
    if slower:
        reasons.append("int8 is slower in tract (us/row int8 vs fp32, " + "; ".join(slower) + ")")
    return _decide(fp32, int8, fig, reasons)


def _run(plan: R.TractPlan, x: np.ndarray) -> np.ndarray:
    outs = []
    for i in range(0, len(x), plan.batch):
        xb = x[i : i + plan.batch]
        n = len(xb)
        if n < plan.batch:
            xb = np.concatenate([xb, np.zeros((plan.batch - n, *xb.shape[1:]), np.float32)])
        outs.append(plan.run(xb)[:n])
    return np.concatenate(outs)


def _decide(fp32: Path, int8: Path | None, fig: dict, reasons: list[str]) -> Quantized:
    fig["chosen"] = "fp32" if reasons else "int8"
    fig["why"] = ("; ".join(reasons) if reasons else
                  "static int8 keeps the ranking, is batch independent and not slower in tract")
    return Quantized(path=int8 if not reasons else fp32, precision=fig["chosen"],
                     int8_path=int8, figures=fig)
