"""ONNX export, int8 quantisation and the two runtimes (onnxruntime, tract) for series models.

Contract (docs/bundle-format.md, kind ``series_lstm``): input ``input`` [batch, 50, 8] float32
(batch dynamic, already scaled), output ``reconstruction`` of the same shape, one file.

- The ``onnx`` LSTM form is exported with the dynamo exporter (what tract 0.23 reads well).
- The ``unrolled`` form is exported with the TorchScript exporter: the dynamo exporter needs
  about five minutes for one 50-step unrolled layer stack on this machine, TorchScript four
  seconds, and tract loads and matches both (checked by ``check_parity``).
- ``value_info`` is dropped from every written file: it carries the example batch, which
  tract's Python loader cannot be told to ignore (the gateway ignores it anyway).
- int8 is onnxruntime's dynamic quantisation of MatMul/Gemm only: the default also rewrites
  LSTM into a com.microsoft op that tract lacks. Whether int8 ships is measured in tract
  (models/bench/series_bench.py); parity is checked in tract itself before that.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from .series_ae import WIDTH, WINDOW

INPUT_NAME = "input"
OUTPUT_NAME = "reconstruction"
OPSET = 18


class SeriesExportError(RuntimeError):
    pass


def _strip_value_info(path: Path) -> None:
    m = onnx.load(str(path))
    del m.graph.value_info[:]
    onnx.save(m, str(path))


def _check(path: Path) -> None:
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    g = m.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in g.output] != [OUTPUT_NAME]:
        raise SeriesExportError(
            f"{path.name}: inputs {[i.name for i in inputs]}, outputs {[o.name for o in g.output]}; "
            f"expected [{INPUT_NAME!r}] and [{OUTPUT_NAME!r}]")
    for vi in (inputs[0], g.output[0]):
        dims = vi.type.tensor_type.shape.dim
        if (len(dims) != 3 or dims[0].HasField("dim_value") or dims[1].dim_value != WINDOW
                or dims[2].dim_value != WIDTH):
            raise SeriesExportError(f"{vi.name} has shape {dims}, expected [batch, {WINDOW}, {WIDTH}]")
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise SeriesExportError(f"{vi.name} is not float32")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in g.initializer):
        raise SeriesExportError("model has external data; the bundle needs one file")


def export_series(model: torch.nn.Module, path: str | Path, form: str) -> Path:
    """Write ``model`` (in LSTM form ``form``) to ``path`` atomically and check it."""
    path = Path(path)
    model = model.cpu().eval()
    example = torch.rand(3, WINDOW, WIDTH, generator=torch.Generator().manual_seed(0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if form == "onnx":
                program = torch.onnx.export(
                    model, (example,), dynamo=True, external_data=False,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                    opset_version=OPSET, optimize=True, verbose=False)
                program.save(str(tmp), external_data=False)
            elif form == "unrolled":
                torch.onnx.export(
                    model, (example,), str(tmp), dynamo=False,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                    opset_version=OPSET)
            else:
                raise SeriesExportError(f"unknown LSTM form {form!r}")
        _strip_value_info(tmp)
        _check(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def quantize_int8(src: str | Path, dst: str | Path) -> Path:
    """Dynamic int8 (MatMul/Gemm weights int8, activations quantised at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs "consider pre-processing" advice
    try:
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"],
                         weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    _strip_value_info(dst)
    _check(dst)
    os.chmod(dst, 0o644)
    return dst


def ort_session(path: str | Path, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_ort(path: str | Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    sess = ort_session(path)
    x = np.ascontiguousarray(x, dtype=np.float32)
    outs = [sess.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + batch]})[0]
            for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros_like(x)


class TractPlan:
    """A tract plan optimised once for one fixed batch, as the gateway loads it.

    ``run`` starts from a fresh state every time (what the gateway's series detector does);
    ``run_reused`` keeps one state across runs, which is only correct for graphs without
    recurrent ops: tract keeps an ONNX LSTM's hidden state in the run state."""

    def __init__(self, path: str | Path, batch: int):
        import tract

        model = tract.onnx().load(str(path))
        model.set_input_fact(0, f"{batch},{WINDOW},{WIDTH},f32")
        model.set_output_fact(0, None)
        self.batch = batch
        self.runnable = model.into_model().into_runnable()
        self.state = self.runnable.spawn_state()

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.runnable.run([np.ascontiguousarray(x, dtype=np.float32)])[0].to_numpy()

    def run_reused(self, x: np.ndarray) -> np.ndarray:
        return self.state.run([np.ascontiguousarray(x, dtype=np.float32)])[0].to_numpy()


def run_tract(path: str | Path, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Run every window through tract in fixed batches (the last one zero-padded), each run
    from a fresh state."""
    return run_in_batches(TractPlan(path, batch).run, x, batch)


def run_in_batches(run, x: np.ndarray, batch: int) -> np.ndarray:
    """``run`` over ``x`` in fixed batches of ``batch`` samples, the last one zero-padded (tract
    plans have a fixed batch size); only the real samples' outputs are returned."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    outs = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        n = len(xb)
        if n < batch:
            xb = np.concatenate([xb, np.zeros((batch - n, *xb.shape[1:]), np.float32)])
        outs.append(run(xb)[:n])
    return np.concatenate(outs) if outs else np.zeros_like(x)


def window_mse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return (d * d).mean(axis=(1, 2))
