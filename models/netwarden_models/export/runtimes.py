"""Running ONNX files: onnxruntime and tract, the one helper every stage uses (export parity,
quantize, evaluate --onnx, select, bundle verification).

tract is the ``tract`` Python package pinned to 0.23.9, the crate version the gateway links,
so a plan that loads, optimises and matches here behaves the same in the gateway; the
gateway's own `netwarden model check` is still run on every bundle.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from .onnx_export import INPUT_NAME, OUTPUT_NAME


# Ops of a quantized file (static QDQ or dynamic int8).
QUANT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
                       "MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv"})


def is_quantized(path: str | Path) -> bool:
    return any(n.op_type in QUANT_OPS for n in onnx.load(str(path)).graph.node)


def ort_session(path: str | Path, threads: int = 1, *, fused: bool = False):
    """An onnxruntime session on the CPU provider: the reference the other runtimes are
    checked against.

    For a quantized file the reference runs the graph as written (no graph optimisations:
    QuantizeLinear, DequantizeLinear and the float op between them), which is what the file
    means on every CPU. With optimisations on, ORT fuses QDQ pairs into int8 kernels that,
    on x86 CPUs without VNNI, multiply u8 by s8 with VPMADDUBSW, whose 16-bit pair sums
    saturate (onnxruntime's quantization docs): on such a CPU the series kind's conv and
    edge int8 files came out 4.4e-2 and 8.0e-3 off, while tract (32-bit sums) matched the
    graph as written to 0.0. ``fused=True`` keeps ORT's optimisations (the bench times ORT at
    its fastest). fp32 files get every optimisation either way."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads  # tiny models: threads only add overhead
    opts.inter_op_num_threads = 1
    if not fused and is_quantized(path):
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_ort(path: str | Path, x: np.ndarray, batch: int = 256, sess=None) -> np.ndarray:
    sess = sess or ort_session(path)
    x = np.ascontiguousarray(x, dtype=np.float32)
    outs = [sess.run(None, {INPUT_NAME: x[i : i + batch]})[0]
            for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros_like(x)


def tract_fact(batch: int, sample_shape: tuple[int, ...]) -> str:
    """tract's input fact for a fixed batch, e.g. ``"8,50,8,f32"``."""
    return ",".join(str(d) for d in (batch, *sample_shape)) + ",f32"


class TractPlan:
    """A tract plan optimised once for one fixed batch, as the gateway loads it.

    ``run`` starts from a fresh state every time (what the gateway's series detector does);
    ``run_reused`` keeps one state across runs, which is only correct for graphs without
    recurrent ops: tract keeps an ONNX LSTM's hidden state in the run state."""

    def __init__(self, path: str | Path, batch: int, sample_shape: tuple[int, ...]):
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
        model.set_input_fact(0, tract_fact(batch, sample_shape))
        model.set_output_fact(0, None)
        self.batch = batch
        self.runnable = model.into_model().into_runnable()
        self._state = None

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.runnable.run([np.ascontiguousarray(x, dtype=np.float32)])[0].to_numpy()

    def run_reused(self, x: np.ndarray) -> np.ndarray:
        if self._state is None:
            self._state = self.runnable.spawn_state()
        return self._state.run([np.ascontiguousarray(x, dtype=np.float32)])[0].to_numpy()


def run_tract(path: str | Path, x: np.ndarray, batch: int) -> np.ndarray:
    """Every sample through tract in fixed batches (the last one zero-padded), each run from a
    fresh state; only the real samples' outputs are returned."""
    plan = TractPlan(path, batch, tuple(x.shape[1:]))
    x = np.ascontiguousarray(x, dtype=np.float32)
    outs = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        n = len(xb)
        if n < batch:
            xb = np.concatenate([xb, np.zeros((batch - n, *xb.shape[1:]), np.float32)])
        outs.append(plan.run(xb)[:n])
    return np.concatenate(outs) if outs else np.zeros_like(x)


def recon_mse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample reconstruction MSE (float64) over every axis but the batch: the score the
    gateway computes and the threshold is compared with."""
    d = np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return (d * d).reshape(len(d), -1).mean(axis=1)


def op_counts(path: str | Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in onnx.load(str(path)).graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return dict(sorted(counts.items()))


def time_us_per_sample(fns: dict, batch: int, rounds: int = 5, budget_s: float = 0.2) -> dict:
    """Median over interleaved rounds of µs per sample for each callable (same input): each
    round runs a block of calls per callable, so a neighbour's load slows them alike."""
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
