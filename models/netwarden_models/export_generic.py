"""Kind-independent ONNX helpers: onnxruntime and tract runners, dynamic int8, timing.

tract is the ``tract`` Python package pinned to 0.23.9, the crate version the gateway links,
so a plan that loads, optimises and matches here behaves the same in the gateway; the
gateway's own `netwarden model check` is still run on every bundle (``ship.py``).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from pathlib import Path

import numpy as np
import onnx

INPUT_NAME = "input"
OUTPUT_NAME = "reconstruction"


def ort_session(path: str | Path, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_ort(path: str | Path, x: np.ndarray, batch: int = 256, sess=None) -> np.ndarray:
    sess = sess or ort_session(path)
    x = np.ascontiguousarray(x, dtype=np.float32)
    outs = [sess.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + batch]})[0]
            for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros_like(x)


class TractPlan:
    """A tract plan optimised once for a fixed input fact (``"8,50,8,f32"``); each ``run``
    starts from a fresh state (right for recurrent graphs too)."""

    def __init__(self, path: str | Path, fact: str):
        import tempfile

        import tract

        m = onnx.load(str(path))
        if len(m.graph.value_info):
            # Older exports (the shipped flow-ae bundle) carry value_info with the export's
            # example batch, which makes tract's Python loader fail on another batch; the
            # gateway ignores it. Load a copy without it.
            del m.graph.value_info[:]
            with tempfile.TemporaryDirectory() as d:
                onnx.save(m, str(Path(d) / "model.onnx"))
                model = tract.onnx().load(str(Path(d) / "model.onnx"))
        else:
            model = tract.onnx().load(str(path))
        model.set_input_fact(0, fact)
        model.set_output_fact(0, None)
        self.runnable = model.into_model().into_runnable()

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.runnable.run([np.ascontiguousarray(x, dtype=np.float32)])[0].to_numpy()


def run_tract(path: str | Path, x: np.ndarray, fact_for_batch, batch: int) -> np.ndarray:
    """Every sample through tract in fixed batches (the last one zero-padded)."""
    from .series_export import run_in_batches

    return run_in_batches(TractPlan(path, fact_for_batch(batch)).run, x, batch)


def export_dynamo(model, path: str | Path, sample_shape: tuple[int, ...], opset: int = 18) -> Path:
    """The default export of a new kind: torch.onnx dynamo exporter, one file (no external
    data), input ``input`` [batch, *sample_shape] with a dynamic batch, output
    ``reconstruction``; value_info stripped, checked by onnx."""
    import tempfile
    import warnings

    import torch

    path = Path(path)
    model = model.cpu().eval()
    example = torch.rand(3, *sample_shape, generator=torch.Generator().manual_seed(0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (example,), dynamo=True, external_data=False,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                opset_version=opset, optimize=True, verbose=False)
            program.save(str(tmp), external_data=False)
        strip_value_info(tmp)
        onnx.checker.check_model(onnx.load(str(tmp)))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def strip_value_info(path: Path) -> None:
    """Drop ``value_info`` (it carries the export's example batch; tract's Python loader
    cannot be told to ignore it, the gateway ignores it anyway)."""
    m = onnx.load(str(path))
    del m.graph.value_info[:]
    onnx.save(m, str(path))


def quantize_dynamic_int8(src: str | Path, dst: str | Path) -> Path:
    """onnxruntime dynamic quantisation of MatMul/Gemm weights to int8 (activations quantised
    at run time). Only those two op types: the default list also rewrites ops (LSTM, ...)
    into com.microsoft ops that tract lacks."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"],
                         weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    strip_value_info(dst)
    onnx.checker.check_model(onnx.load(str(dst)))
    os.chmod(dst, 0o644)
    return dst


def op_counts(path: str | Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in onnx.load(str(path)).graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return dict(sorted(counts.items()))


def time_us_per_sample(fns: dict, batch: int, rounds: int = 5, budget_s: float = 0.2) -> dict:
    """Median over interleaved rounds of µs per sample for each callable (same input)."""
    calls = {}
    for name, fn in fns.items():
        t = time.perf_counter()
        for _ in range(3):
            fn()
        per = (time.perf_counter() - t) / 3
        calls[name] = max(3, min(5000, int(budget_s / rounds / max(per, 1e-7))))
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            samples[name].append((time.perf_counter() - t) / calls[name] / batch * 1e6)
    return {k: round(statistics.median(v), 2) for k, v in samples.items()}
