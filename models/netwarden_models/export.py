"""ONNX export of the dense autoencoder: input `input` [batch, width] (batch dynamic),
output `reconstruction` [batch, width], one self-contained file (no external data).

Uses the dynamo exporter; falls back to the legacy TorchScript exporter (with a warning on
stderr) only if dynamo fails. Exported graphs are checked to hold only ops that tract
handles well for this model.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

INPUT_NAME = "input"
OUTPUT_NAME = "reconstruction"
OPSET = 18
ALLOWED_OPS = {"Gemm", "MatMul", "Add", "Relu", "Sigmoid", "Transpose", "Identity"}


class ExportError(RuntimeError):
    pass


def _export_dynamo(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    # The exporter logs a line per missing optional op library (torchvision ...).
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            external_data=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            optimize=True,
            verbose=False,
        )
    program.save(str(path), external_data=False)


def _export_legacy(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=False,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=OPSET,
    )


def check_onnx(path: Path, width: int) -> onnx.ModelProto:
    """Structural checks the gateway relies on."""
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in g.output] != [OUTPUT_NAME]:
        raise ExportError(
            f"exported graph has inputs {[i.name for i in inputs]} and outputs "
            f"{[o.name for o in g.output]}, expected [{INPUT_NAME!r}] and [{OUTPUT_NAME!r}]"
        )
    for vi in (inputs[0], g.output[0]):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) != 2 or dims[0].HasField("dim_value") or dims[1].dim_value != width:
            raise ExportError(f"{vi.name} has shape {dims}, expected [batch, {width}]")
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise ExportError(f"{vi.name} is not float32")
    ops = {n.op_type for n in g.node}
    if not ops <= ALLOWED_OPS:
        raise ExportError(f"exported graph uses ops {sorted(ops - ALLOWED_OPS)} beyond {sorted(ALLOWED_OPS)}")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in g.initializer):
        raise ExportError("exported graph references external data")
    return m


def export_onnx(model: torch.nn.Module, path: str | Path, width: int) -> str:
    """Export `model` (moved to CPU, eval mode) to `path`; returns the exporter used."""
    path = Path(path)
    model = model.cpu().eval()
    example = torch.rand(3, width, generator=torch.Generator().manual_seed(0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            _export_dynamo(model, example, tmp)
            check_onnx(tmp, width)
            used = "dynamo"
        except Exception as e:  # noqa: BLE001 - report and fall back
            print(f"warning: dynamo ONNX export failed ({type(e).__name__}: {e}); "
                  f"falling back to the legacy exporter", file=sys.stderr)
            _export_legacy(model, example, tmp)
            check_onnx(tmp, width)
            used = "legacy"
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return used


def run_onnx(path: str | Path, x: np.ndarray) -> np.ndarray:
    """Run the exported model with onnxruntime on CPU (float32 in, float32 out)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1  # tiny model; threads only add overhead
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    (out,) = sess.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})
    return out
