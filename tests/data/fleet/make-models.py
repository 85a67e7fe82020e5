#!/usr/bin/env python3
"""Writes the broken flow models the fleet e2e tests deliver (tests/e2e/fleet.rs), each an edit
of the shipped models/bundles/flow-ae/model.onnx:

    models/.venv/bin/python tests/data/fleet/make-models.py

- wide.onnx: the last layer has 10 outputs instead of 8 (wrong output shape);
- nan.onnx: NaN added to the first output (every output row has a NaN);
- flood.onnx: the last layer's biases are +20, so every reconstruction is ~1 and every flow
  is anomalous (an alert flood);
- late-nan.onnx: the shipped model's output plus (x[1] - x[1]) * log(1.3 - x[1]): identical outputs until a flow's
  scaled byte count passes 1.3 (about 50 MB; training data stays below 1), then NaN. It passes
  verification and shadowing on ordinary traffic and turns bad after promotion.

The tests sign their own bundles around these models (golden vectors recomputed in tract).
"""
import os

import numpy as np
import onnx
from onnx import helper, numpy_helper

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
src = os.path.join(root, "models", "bundles", "flow-ae", "model.onnx")
out = os.path.dirname(os.path.abspath(__file__))


def load():
    return onnx.load(src)


def init(m, name):
    return next(i for i in m.graph.initializer if i.name == name)


def replace(m, name, array):
    t = init(m, name)
    t.CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))


def save(m, name):
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, name))


m = load()
w = numpy_helper.to_array(init(m, "net.8.weight"))
b = numpy_helper.to_array(init(m, "net.8.bias"))
replace(m, "net.8.weight", np.vstack([w, w[:2]]))
replace(m, "net.8.bias", np.concatenate([b, b[:2]]))
m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 10
save(m, "wide.onnx")

def after_sigmoid(m, extra_nodes, term):
    """Adds `term` to the Sigmoid's output: tract computes the sigmoid on a clamped input, so
    a NaN before it comes out finite."""
    g = m.graph
    sig = next(n for n in g.node if n.op_type == "Sigmoid")
    sig.output[0] = "late.sig"
    g.node.extend(extra_nodes)
    g.node.extend([helper.make_node("Add", ["late.sig", term], ["reconstruction"])])


m = load()
nan = np.zeros(8, dtype=np.float32)
nan[0] = np.nan
m.graph.initializer.extend([numpy_helper.from_array(nan, "late.nan")])
after_sigmoid(m, [], "late.nan")
save(m, "nan.onnx")

m = load()
replace(m, "net.8.bias", b + 20.0)
save(m, "flood.onnx")

m = load()
sel = np.zeros((8, 1), dtype=np.float32)
sel[1, 0] = 1.0
m.graph.initializer.extend([
    numpy_helper.from_array(sel, "late.select"),
    numpy_helper.from_array(np.array([1.3], dtype=np.float32), "late.limit"),
])
after_sigmoid(m, [
    helper.make_node("MatMul", ["input", "late.select"], ["late.bytes"]),
    helper.make_node("Sub", ["late.limit", "late.bytes"], ["late.room"]),
    helper.make_node("Log", ["late.room"], ["late.log"]),
    # A zero tract cannot fold away (it would drop `log * 0` with a constant 0).
    helper.make_node("Sub", ["late.bytes", "late.bytes"], ["late.zeros"]),
    helper.make_node("Mul", ["late.log", "late.zeros"], ["late.nothing"]),
], "late.nothing")
save(m, "late-nan.onnx")
