"""Writing ONNX files: the export of a trained model and its dynamic int8 copy.

Contract (docs/bundle-format.md): input ``input`` [batch, *sample_shape] float32 (batch
dynamic, already scaled), output ``reconstruction`` of the same shape, one file (no external
data), opset 18. ``value_info`` is dropped from every written file: it carries the export's
example batch, which tract's Python loader cannot be told to ignore (the gateway ignores it).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import onnx
import torch

INPUT_NAME = "input"
OUTPUT_NAME = "reconstruction"
OPSET = 18
EXPORTERS = ("dynamo", "torchscript")


class ExportError(RuntimeError):
    pass


def export_onnx(model: torch.nn.Module, path: str | Path, sample_shape: tuple[int, ...],
                exporter: str = "dynamo", output_name: str = OUTPUT_NAME,
                output_shape: tuple[int, ...] | None = None) -> str:
    """Write ``model`` (moved to CPU, eval mode) to ``path`` atomically, checked against the
    contract; returns the exporter used. ``dynamo`` is the default; ``torchscript`` is for
    graphs dynamo is slow on (the unrolled LSTM form). A classifier names its output and gives its
shape (``output_name``, ``output_shape``: [batch, *output_shape]); the default is the
autoencoders' ``reconstruction`` of the input's shape."""
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}; expected one of {EXPORTERS}")
    path = Path(path)
    model = model.cpu().eval()
    example = torch.rand(3, *sample_shape, generator=torch.Generator().manual_seed(0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # The exporters log a line per missing optional op library and warn about tracing.
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                program = torch.onnx.export(
                    model, (example,), dynamo=True, external_data=False,
                    input_names=[INPUT_NAME], output_names=[output_name],
                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                    opset_version=OPSET, optimize=True, verbose=False)
                program.save(str(tmp), external_data=False)
            else:
                torch.onnx.export(
                    model, (example,), str(tmp), dynamo=False,
                    input_names=[INPUT_NAME], output_names=[output_name],
                    dynamic_axes={INPUT_NAME: {0: "batch"}, output_name: {0: "batch"}},
                    opset_version=OPSET)
        strip_value_info(tmp)
        check_contract(tmp, sample_shape, output_name, output_shape)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return exporter


def check_contract(path: Path, sample_shape: tuple[int, ...], output_name: str = OUTPUT_NAME,
                   output_shape: tuple[int, ...] | None = None) -> onnx.ModelProto:
    """The structure the gateway relies on: names, [batch, *sample_shape] float32, one file."""
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    g = m.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in g.output] != [output_name]:
        raise ExportError(
            f"{path.name}: inputs {[i.name for i in inputs]}, outputs {[o.name for o in g.output]}; "
            f"expected [{INPUT_NAME!r}] and [{output_name!r}]")
    out_shape = tuple(sample_shape if output_shape is None else output_shape)
    for vi, shape in ((inputs[0], tuple(sample_shape)), (g.output[0], out_shape)):
        dims = vi.type.tensor_type.shape.dim
        if (len(dims) != 1 + len(shape) or dims[0].HasField("dim_value")
                or tuple(d.dim_value for d in dims[1:]) != shape):
            raise ExportError(f"{vi.name} has shape {dims}, expected [batch, {shape}]")
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise ExportError(f"{vi.name} is not float32")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in g.initializer):
        raise ExportError(f"{path.name} has external data; the bundle needs one file")
    return m


def strip_value_info(path: Path) -> None:
    m = onnx.load(str(path))
    del m.graph.value_info[:]
    onnx.save(m, str(path))


def quantize_dynamic_int8(src: str | Path, dst: str | Path) -> Path:
    """onnxruntime dynamic quantisation of MatMul/Gemm weights to int8 (activations quantised
    at run time). Only those two op types: the default list also rewrites ops (LSTM, ...)
    into com.microsoft ops that tract lacks. Weights use 7 bits (``reduce_range``): ORT runs
    MatMulInteger with u8 x s8 kernels whose 16-bit pair sums saturate on x86 CPUs without
    VNNI (1.2e-2 off on the edge series model, against 6e-4 for tract's 32-bit sums), with
    or without graph optimisations; 7-bit weights cannot saturate, so ORT stays a reference."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs "consider pre-processing" advice
    try:
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul", "Gemm"],
                         weight_type=QuantType.QInt8, reduce_range=True)
    finally:
        root.setLevel(level)
    strip_value_info(dst)
    onnx.checker.check_model(onnx.load(str(dst)))
    os.chmod(dst, 0o644)
    return dst
