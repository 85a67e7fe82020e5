"""The same pipeline for the series kind, with the gateway's own features (`--rates` runs
`netwarden features --series`): dataset -> train -> evaluate -> export -> bundle -> gateway
check. The kind is given by its old name, series_lstm, which is read as series_ae. Skipped
without the gateway binary (scripts/test.sh builds it)."""

import json

import pytest

from netwarden_models import gateway
from netwarden_models.cli import main

pytestmark = pytest.mark.skipif(gateway.find_binary() is None, reason="gateway binary not built")


def test_series_pipeline_end_to_end(tmp_path):
    rates, labels = tmp_path / "rates.csv", tmp_path / "labels.csv"
    assert main(["synth-series-rates", "--out", str(rates), "--labels", str(labels), "--days", "0.75",
                 "--eval-days", "0.25", "--anomalies-per-kind", "1", "--seed", "5"]) == 0
    eval_start = 1_767_571_200_000 + int(0.5 * 86_400_000)
    ds = tmp_path / "ds"
    assert main(["dataset", "--kind", "series_lstm", "--out", str(ds), "--rates", str(rates),
                 "--labels", str(labels), "--eval-start-ms", str(eval_start), "--val-days", "0.15",
                 "--max-train-windows", "200", "--max-val-windows", "80", "--eval-stride", "25",
                 "--quiet"]) == 0
    m = json.loads((ds / "dataset.json").read_text())
    assert m["kind"] == "series_ae" and m["sample_shape"] == [50, 8]
    assert m["split"]["train"] == 200 and m["positives"]["test"] > 0
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(ds), "--out", str(run), "--variant", "edge",
                 "--epochs", "2", "--quiet"]) == 0
    assert main(["evaluate", "--run", str(run), "--quiet"]) == 0
    r = json.loads((run / "eval" / "report.json").read_text())
    assert r["threshold"]["method"] == "heldout_normal_window_quantile"
    assert r["threshold"]["source"] == "val" and 0.0 <= r["test"]["roc_auc"] <= 1.0
    assert main(["export", "--run", str(run), "--quiet"]) == 0
    out = tmp_path / "bundle"
    assert main(["bundle", "--run", str(run), "--out", str(out), "--precision", "fp32",
                 "--version", "t.1", "--quiet"]) == 0  # includes `netwarden model check`
    b = json.loads((out / "manifest.json").read_text())
    assert (b["kind"], b["name"], b["model"]["window"], b["model"]["variant"]) == (
        "series_ae", "series-ae", 50, "edge")
    assert len(b["golden"]["inputs"][0]) == 400 and b["quantization"]["measured"] is False
    assert "ok:" in gateway.model_check(out)
