"""The ``export`` command: a run's model to ONNX, with its parity checked against torch in
onnxruntime and in tract at batch 1 and 8.

    RUN/model-fp32.onnx   the kind's export (default: dynamo exporter, one file, opset 18)
    RUN/export.json       exporter, form, ops, parity torch/onnxruntime/tract
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..data import dataset as ds
from ..data.build import open_dataset
from ..kinds.base import TEST, ModelKind
from ..log import say
from ..train.run import load_run
from . import runtimes as R
from .onnx_export import ExportError, strip_value_info

PARITY_FP32 = 1e-4
BATCHES = (1, 8)


def eval_samples(kind: ModelKind, run: dict, scaling, limit: int = 2000):
    """Scaled samples to compare files on: the test split (labels if any), else validation."""
    _, _, samples = open_dataset(run["dataset"])
    part = ds.test_part(samples)
    labelled = samples.labelled and len(part) and 0 < part.labels.sum() < len(part)
    if not len(part):
        part = samples.take(np.nonzero(samples.split != TEST)[0])
    idx = np.random.default_rng(0).permutation(len(part))[:limit]
    part = part.take(np.sort(idx))
    return kind.scale(scaling, part.raw), (part.labels if labelled else None)


def export(args) -> dict:
    run, kind, model, scaling = load_run(args.run)
    form = args.form or kind.forms[0]
    if form not in kind.forms:
        raise ValueError(f"kind {kind.name}: unknown form {form!r}; expected one of {kind.forms}")
    out = Path(args.out or Path(args.run) / "model-fp32.onnx")
    exporter = kind.export(model, out, run["variant"], form)
    strip_value_info(out)
    x, _ = eval_samples(kind, run, scaling, limit=256)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    y = R.run_ort(out, x)
    ort_vs_torch = float(np.abs(y - ref).max())
    tract = {}
    for b in BATCHES:
        yt = R.run_tract(out, x[: max(b, 16)], b)
        tract[f"batch{b}"] = float(np.abs(yt - y[: len(yt)]).max())
    info = {"file": out.name, "exporter": exporter, "form": form, "bytes": out.stat().st_size,
            "ops": R.op_counts(out), "ort_vs_torch_max_abs": ort_vs_torch,
            "tract_vs_ort_max_abs": tract}
    if ort_vs_torch > PARITY_FP32 or max(tract.values()) > PARITY_FP32:
        raise ExportError(f"{out}: exported model disagrees (torch/ORT {ort_vs_torch:g}, "
                          f"tract/ORT {tract}) beyond {PARITY_FP32:g}")
    # export.json describes RUN/model-fp32.onnx (what quantize and bundle use); a file written
    # elsewhere gets its own FILE.json.
    default = out.resolve() == (Path(args.run) / "model-fp32.onnx").resolve()
    (Path(args.run) / "export.json" if default else out.with_suffix(".json")).write_text(
        json.dumps(info, indent=2) + "\n")
    say(args.quiet, f"wrote {out} ({exporter}, form {form}); ORT-torch {ort_vs_torch:.1e}, "
        f"tract-ORT {max(tract.values()):.1e}")
    return info
