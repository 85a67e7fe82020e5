"""Static int8 (QDQ): a row's output does not depend on the rest of its batch (unlike dynamic
int8), int8 stays close to fp32 and keeps the ranking, and the rule ships int8 only when it
holds its ranking, is batch independent and is not slower in tract. Runs on the shipped flow
and series models with seeded synthetic scaled rows (seconds)."""

import json
from pathlib import Path

import numpy as np
import pytest

from netwarden_models.export import runtimes as R
from netwarden_models.export import static_int8 as S
from netwarden_models.export.onnx_export import quantize_dynamic_int8

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


def rows(kind: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scaled benign-like rows in [0, 0.6) and anomalies shifted up by 0.5 (labels 1)."""
    rng = np.random.default_rng(seed)
    shape = (8,) if kind == "flow-ae" else (50, 8)
    x = (rng.random((n, *shape)) * 0.6).astype(np.float32)
    labels = (rng.random(n) < 0.2).astype(np.int8)
    x[labels == 1] += 0.5
    return x, labels


@pytest.mark.parametrize("bundle", ["flow-ae", "series-ae"])
def test_static_int8_is_batch_independent_and_close_to_fp32(bundle, tmp_path):
    fp32 = BUNDLES / bundle / "model.onnx"
    x, labels = rows(bundle, 200)
    int8 = S.quantize_static_int8(fp32, tmp_path / "int8.onnx", x[labels == 0])
    ops = R.op_counts(int8)
    assert ops["QuantizeLinear"] >= 2 and ops["DequantizeLinear"] >= 4
    # Exactly the same output alone and inside batches of 8 and 64 (samples, noise, zeros).
    assert S.batch_independence(int8, x, rows=4) == 0.0
    # Close to fp32 on rows inside the calibrated range, in tract as the gateway runs it
    # (anomalies beyond it are clipped by the input's QuantizeLinear).
    x = x[labels == 0]
    y8, y32 = R.run_tract(int8, x, 64), R.run_tract(fp32, x, 64)
    assert 0 < float(np.abs(y8 - y32).max()) < 0.15
    s8, s32 = R.recon_mse(x, y8), R.recon_mse(x, y32)
    from netwarden_models.evaluate import metrics
    assert metrics.rank_correlation(s8, s32) > 0.98


def test_dynamic_int8_is_not_batch_independent(tmp_path):
    """Why static: the dynamic int8 file's rows move with the rest of the batch."""
    fp32 = BUNDLES / "flow-ae" / "model.onnx"
    x, _ = rows("flow-ae", 200)
    dyn = quantize_dynamic_int8(fp32, tmp_path / "dyn.onnx")
    assert S.batch_independence(dyn, x, rows=4) > 1e-4


def test_quantize_model_measures_and_applies_the_rule(tmp_path, monkeypatch):
    fp32 = BUNDLES / "flow-ae" / "model.onnx"
    x, labels = rows("flow-ae", 300, seed=1)
    q = S.quantize_model(fp32, x[labels == 0], eval_x=x, labels=labels,
                         out=tmp_path / "m-int8.onnx", rounds=2, budget_s=0.02)
    f = q.figures
    json.dumps(f)  # goes into quantize.json and the manifest as it is
    assert set(f["tract"]) == {"batch1", "batch8", "batch64"}
    assert f["batch_independence_max_abs"] == 0.0
    assert f["parity"]["int8_vs_fp32_tract_max_abs_benign"] < 0.1
    assert abs(f["ranking"]["roc_auc"]["int8"] - f["ranking"]["roc_auc"]["fp32"]) < 0.005
    assert f["calibration"] == {"rows": int((labels == 0).sum()) // 64 * 64, "method": "minmax"}
    assert q.precision == f["chosen"] and q.int8_path.exists()
    assert q.path == (q.int8_path if q.precision == "int8" else fp32)
    slower = any(r["us_per_row"]["int8"] > r["us_per_row"]["fp32"] for r in f["tract"].values())
    assert (q.precision == "fp32") == slower, f["why"]

    # The rule itself, with the timing fixed: not slower -> int8; slower anywhere -> fp32.
    def timing(int8_us):
        return lambda fns, batch, **kw: {"fp32": 1.0, "int8": int8_us}
    monkeypatch.setattr(S.R, "time_us_per_sample", timing(1.0))
    q = S.quantize_model(fp32, x[labels == 0], eval_x=x, labels=labels, out=tmp_path / "a.onnx")
    assert (q.precision, q.path) == ("int8", tmp_path / "a.onnx"), q.figures["why"]
    monkeypatch.setattr(S.R, "time_us_per_sample", timing(1.01))
    q = S.quantize_model(fp32, x[labels == 0], eval_x=x, labels=labels, out=tmp_path / "b.onnx")
    assert q.precision == "fp32" and "slower in tract" in q.figures["why"]
    # Ranking lost -> fp32, whatever the speed.
    monkeypatch.setattr(S.R, "time_us_per_sample", timing(0.5))
    monkeypatch.setattr(S, "AUC_SLACK", -1.0)
    q = S.quantize_model(fp32, x[labels == 0], eval_x=x, labels=labels, out=tmp_path / "c.onnx")
    assert q.precision == "fp32" and "ROC-AUC" in q.figures["why"]


def test_percentile_calibration_and_no_rows(tmp_path):
    fp32 = BUNDLES / "flow-ae" / "model.onnx"
    x, labels = rows("flow-ae", 150)
    p = S.quantize_static_int8(fp32, tmp_path / "p.onnx", x, method="percentile")
    assert S.batch_independence(p, x, rows=2) == 0.0
    with pytest.raises(ValueError, match="calibration rows"):
        S.quantize_static_int8(fp32, tmp_path / "n.onnx", x[:0])
    with pytest.raises(ValueError, match="unknown calibration method"):
        S.quantize_static_int8(fp32, tmp_path / "n.onnx", x, method="entropy")


def test_a_model_the_quantizer_cannot_handle_gives_fp32_with_the_reason(tmp_path, monkeypatch):
    fp32 = BUNDLES / "flow-ae" / "model.onnx"
    x, labels = rows("flow-ae", 100)

    def broken(*a, **kw):
        raise RuntimeError("unsupported op\nmore detail")
    monkeypatch.setattr(S, "quantize_static_int8", broken)
    q = S.quantize_model(fp32, x, eval_x=x, labels=labels, out=tmp_path / "x.onnx")
    assert (q.precision, q.path, q.int8_path) == ("fp32", fp32, None)
    assert q.figures["why"] == "static int8 failed: unsupported op"
