"""A flow_ae bundle as make-default-bundle.sh makes it (dataset with no test split -> train ->
export -> bundle), checked against docs/bundle-format.md with the doc's formulas written out
independently of the package."""

import hashlib
import json
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import FEATURES, synthetic_rows, write_csv
from netwarden_models.cli import main

EPOCHS = 40
SEED = 3


def train_bundle(tmp, out_name, seed=SEED):
    rows = synthetic_rows(500)
    a = write_csv(tmp / "part-a.csv", rows[:400])
    b = write_csv(tmp / "part-b.csv", rows[400:])
    out, ds, run = tmp / out_name, tmp / f"{out_name}-ds", tmp / f"{out_name}-run"
    for argv in (
        ["dataset", "--kind", "flow_ae", "--out", str(ds), "--features", str(a), "--features",
         str(b), "--test-fraction", "0", "--seed", str(seed)],
        ["train", "--dataset", str(ds), "--out", str(run), "--epochs", str(EPOCHS), "--seed",
         str(seed), "--device", "cpu"],
        ["export", "--run", str(run)],
        ["bundle", "--run", str(run), "--out", str(out), "--version", "test.1",
         "--no-gateway-check"],
    ):
        assert main([*argv, "--quiet"]) == 0, argv
    raw = np.array([f for _, f in rows], dtype=np.float64)
    train_rows = np.load(ds / "data.npz")["split"] == 0
    return out, raw, train_rows


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out, raw, train_rows = train_bundle(tmp_path_factory.mktemp("train"), "flow-ae")
    manifest = json.loads((out / "manifest.json").read_text())
    return out, manifest, raw, train_rows


def doc_scale(manifest, raw):
    """The doc's formula, written independently of netwarden_models.scaling."""
    raw = np.asarray(raw, dtype=np.float64)
    out = np.empty_like(raw)
    for i, s in enumerate(manifest["features"]["scaling"]):
        v = np.log1p(np.maximum(raw[:, i], 0.0)) if s["log1p"] else raw[:, i]
        rng = s["max"] - s["min"]
        out[:, i] = (v - s["min"]) / (rng if rng >= 1e-6 else 1.0)
    return out.astype(np.float32)


def session(out, manifest):
    return ort.InferenceSession(str(out / manifest["model"]["file"]), providers=["CPUExecutionProvider"])


def run(sess, manifest, x):
    (y,) = sess.run([manifest["model"]["output_name"]], {manifest["model"]["input_name"]: x})
    return y


def errors(x, y):
    return ((x.astype(np.float64) - y.astype(np.float64)) ** 2).mean(axis=1)


def test_manifest_follows_the_doc(bundle):
    out, m, raw, train_rows = bundle
    assert set(m) == {"format", "name", "kind", "version", "created_utc", "model", "features",
                      "threshold", "severity", "training", "evaluation", "cross_validation",
                      "quantization", "golden"}
    # no test split, no quantize run: nothing to report there
    assert m["evaluation"] is None and m["cross_validation"] is None
    assert m["quantization"] == {"chosen": "fp32", "measured": False}
    assert (m["format"], m["name"], m["kind"], m["version"]) == (1, "flow-ae", "flow_ae", "test.1")
    assert len(m["created_utc"]) == 20 and m["created_utc"].endswith("Z")

    assert m["model"] == {
        "file": "model.onnx",
        "sha256": hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest(),
        "input_name": "input",
        "output_name": "reconstruction",
        "input_width": 8,
        "precision": "fp32",
    }
    assert m["features"]["schema"] == "flow-v1"
    assert m["features"]["names"] == FEATURES
    assert [s["name"] for s in m["features"]["scaling"]] == FEATURES
    for s in m["features"]["scaling"]:
        assert set(s) == {"name", "log1p", "min", "max"}
        assert isinstance(s["log1p"], bool) and s["min"] <= s["max"]

    t = m["threshold"]
    assert set(t) == {"value", "method", "quantile", "n", "source"}
    assert t["value"] > 0 and math.isfinite(t["value"])
    assert (t["method"], t["quantile"], t["source"]) == ("train_error_quantile", 0.95, "train")
    assert t["n"] == int(train_rows.sum()) == 450  # 10 % of the rows validate
    assert m["severity"] == {"high_ratio": 2.0}

    tr = m["training"]
    assert set(tr) == {"variant", "rows", "epochs", "best_epoch", "best_val_loss", "seed",
                       "device", "world_size", "sources", "source_sha256"}
    assert tr["rows"] == 450 and 1 <= tr["epochs"] <= EPOCHS and tr["seed"] == SEED
    assert 0 < tr["best_val_loss"] and 1 <= tr["best_epoch"] <= tr["epochs"]
    assert tr["sources"] == ["part-a.csv", "part-b.csv"]
    assert set(tr["source_sha256"]) == {"part-a.csv", "part-b.csv"}

    g = m["golden"]
    assert set(g) == {"inputs", "outputs", "errors", "tolerance"}
    k = len(g["inputs"])
    assert 4 <= k <= 12
    assert np.array(g["inputs"]).shape == (k, 8)
    assert np.array(g["outputs"]).shape == (k, 8)
    assert np.array(g["errors"]).shape == (k,)
    assert g["tolerance"] == 1e-4
    # golden inputs are raw rows of the training data, and include the worst one
    raw_rows = {tuple(r) for r in raw.tolist()}
    assert all(tuple(r) in raw_rows for r in g["inputs"])


def test_onnx_graph_is_simple_with_dynamic_batch(bundle):
    out, m, _, _ = bundle
    model = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert {n.op_type for n in model.graph.node} <= {"Gemm", "MatMul", "Add", "Relu", "Sigmoid", "Transpose"}
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["reconstruction"]
    for vi in (model.graph.input[0], model.graph.output[0]):
        d0, d1 = vi.type.tensor_type.shape.dim
        assert d0.dim_param and not d0.HasField("dim_value")
        assert d1.dim_value == 8
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def test_runs_at_batch_1_and_37(bundle):
    out, m, raw, train_rows = bundle
    sess = session(out, m)
    x = doc_scale(m, raw[:37])
    y37 = run(sess, m, x)
    assert y37.shape == (37, 8) and y37.dtype == np.float32
    y1 = np.concatenate([run(sess, m, x[i : i + 1]) for i in range(37)])
    np.testing.assert_allclose(y1, y37, rtol=0, atol=1e-6)


def test_golden_vectors_reproduce(bundle):
    out, m, _, _ = bundle
    g = m["golden"]
    x = doc_scale(m, g["inputs"])
    y = run(session(out, m), m, x)
    np.testing.assert_allclose(y, np.array(g["outputs"]), rtol=0, atol=1e-5)
    np.testing.assert_allclose(errors(x, y), np.array(g["errors"]), rtol=0, atol=1e-5)
    # ... and hence within the manifest's own tolerance
    assert np.max(np.abs(y - np.array(g["outputs"]))) <= g["tolerance"]


def test_threshold_is_the_95th_percentile_of_training_errors(bundle):
    out, m, raw, train_rows = bundle
    x = doc_scale(m, raw)
    e = errors(x, run(session(out, m), m, x))
    # the quantile is over the training split (90% of rows), so ~5% of all rows lie above it
    above = float(np.mean(e > m["threshold"]["value"]))
    assert 0.02 <= above <= 0.10
    assert m["threshold"]["value"] == pytest.approx(np.quantile(e[train_rows], 0.95), rel=1e-6)
    # the golden vectors include the worst-reconstructed training row
    assert max(m["golden"]["errors"]) == pytest.approx(e[train_rows].max(), abs=1e-9)


def test_far_out_rows_score_above_threshold(bundle):
    out, m, raw, train_rows = bundle
    sess = session(out, m)
    typical = raw[:20]
    e_typical = errors(doc_scale(m, typical), run(sess, m, doc_scale(m, typical)))
    assert np.median(e_typical) < m["threshold"]["value"]
    weird = typical * 1000.0
    e_weird = errors(doc_scale(m, weird), run(sess, m, doc_scale(m, weird)))
    assert np.all(e_weird > m["threshold"]["value"])


def test_same_seed_same_model(bundle, tmp_path):
    out, m, _, _ = bundle
    out2, _, _ = train_bundle(tmp_path, "again")
    m2 = json.loads((out2 / "manifest.json").read_text())
    assert m2["model"]["sha256"] == m["model"]["sha256"]
    assert m2["threshold"] == m["threshold"]
    assert m2["golden"] == m["golden"]
