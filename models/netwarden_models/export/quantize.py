"""The ``quantize`` command: onnxruntime dynamic int8 of a run's fp32 file, measured in tract
(loads?, parity, µs/sample at batch 1 and 8, bytes, ranking, batch dependence), and the
fp32/int8 choice that ``bundle --precision auto`` ships.

    RUN/model-int8.onnx   dynamic int8, MatMul/Gemm only
    RUN/quantize.json     the figures, the rule and the choice with its reasons
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..evaluate import metrics
from ..log import say
from ..train.run import load_run
from . import runtimes as R
from .export import BATCHES, eval_samples
from .onnx_export import quantize_dynamic_int8

PARITY_INT8 = 1e-3
INT8_RANK_AUC_SLACK = 0.005
INT8_RANK_CORR_MIN = 0.99
INT8_FASTER = 0.10  # at least 10 % fewer µs/sample in tract at batch 8 ...
INT8_SMALLER = 0.25  # ... or at least 25 % fewer bytes and not slower (> 10 %)


def quantize(args) -> dict:
    run_dir = Path(args.run)
    run, kind, _, scaling = load_run(run_dir)
    fp32 = run_dir / "model-fp32.onnx"
    if not fp32.exists():
        raise ValueError(f"{fp32} is missing: run `export --run {run_dir}` first")
    int8 = quantize_dynamic_int8(fp32, run_dir / "model-int8.onnx")
    x, labels = eval_samples(kind, run, scaling)
    score = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        score[name] = kind.score_outputs(x, R.run_ort(path, x))
    info: dict = {
        "rule": (f"int8 only if tract loads and runs it at batches {list(BATCHES)}, tract matches "
                 f"onnxruntime within {PARITY_INT8:g}, ranking holds (ROC-AUC within "
                 f"{INT8_RANK_AUC_SLACK} of fp32 when labels exist, else Spearman >= "
                 f"{INT8_RANK_CORR_MIN}), a sample's int8 output does not move by more than "
                 f"{PARITY_INT8:g} with the rest of its batch (zero padding included), and in tract it is >= {INT8_FASTER:.0%} faster at batch 8 "
                 f"and not slower at batch 1, or the file is >= {INT8_SMALLER:.0%} smaller and "
                 f"not >10% slower at either batch"),
        "bytes": {"fp32": fp32.stat().st_size, "int8": int8.stat().st_size},
        "int8_ops": R.op_counts(int8),
        "ranking": {"samples": int(len(x)),
                    "spearman_fp32_int8": metrics.rank_correlation(score["fp32"], score["int8"])},
        "tract": {},
    }
    if labels is not None:
        info["ranking"]["roc_auc"] = {k: metrics.roc_auc(v, labels) for k, v in score.items()}
    reasons = []
    int8_plans = {}  # batch -> the int8 plan, reused below (optimising a plan takes seconds)
    for b in BATCHES:
        xb = x[:b] if len(x) >= b else np.resize(x, (b, *x.shape[1:]))
        row: dict = {}
        plans = {}
        for name, path in (("fp32", fp32), ("int8", int8)):
            try:
                plans[name] = R.TractPlan(path, b, kind.sample_shape)
                yt = plans[name].run(xb)
            except Exception as e:  # noqa: BLE001 - tract raises one Python type for all
                row[f"{name}_error"] = str(e).splitlines()[0][:300]
                continue
            row[f"{name}_tract_vs_ort_max_abs"] = float(np.abs(yt - R.run_ort(path, xb)).max())
        if "int8" in plans:
            int8_plans[b] = plans["int8"]
        if len(plans) == 2:
            row["us_per_sample"] = R.time_us_per_sample(
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
    if 1 in int8_plans and 8 in int8_plans:
        x8 = x[:8] if len(x) >= 8 else np.resize(x, (8, *x.shape[1:]))
        plan1, plan8 = int8_plans[1], int8_plans[8]
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
    say(args.quiet, f"quantize: chose {info['chosen']} ({info['why']})")
    return info
