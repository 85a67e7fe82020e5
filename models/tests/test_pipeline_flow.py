"""The pipeline end to end on flow features: dataset -> train (+ k-fold) -> evaluate -> export
-> quantize -> bundle (signed, checked by the gateway when its binary is built) -> check."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import synthetic_rows, write_csv
from netwarden_models import gateway
from netwarden_models.bundle import signing
from netwarden_models.cli import main

ROOT = Path(__file__).resolve().parents[2]


def anomalous_rows(n):
    """Scan-like rows: one SYN packet each, a source touching many ports."""
    rows = synthetic_rows(n, seed=99)
    for i, (ident, f) in enumerate(rows):
        rows[i] = (ident, [1, 44, 0, 44.0, 1, 200 + i, 150 + i, 1])
    return rows


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipeline-flow")
    normal = write_csv(d / "normal.csv", synthetic_rows(600))
    scan = write_csv(d / "scan.csv", anomalous_rows(40))
    assert main(["dataset", "--kind", "flow_ae", "--out", str(d / "ds"), "--features", str(normal),
                 "--anomalous", str(scan), "--seed", "3", "--quiet"]) == 0
    assert main(["train", "--dataset", str(d / "ds"), "--out", str(d / "run"), "--epochs", "15",
                 "--folds", "2", "--seed", "3", "--quiet"]) == 0
    return d


def test_dataset_manifest_and_split(work):
    m = json.loads((work / "ds" / "dataset.json").read_text())
    assert (m["kind"], m["schema"], m["samples"], m["labelled"]) == ("flow_ae", "flow-v1", 640, True)
    assert m["split"] == {"train": 420, "val": 60, "test": 160}
    assert m["positives"] == {"train": 0, "val": 0, "test": 40}
    assert [s["label"] for s in m["sources"]] == ["normal", "anomalous"]
    z = np.load(work / "ds" / "data.npz")
    assert z["raw"].shape == (640, 8) and z["labels"].sum() == 40


def test_run_and_cross_validation(work):
    run = json.loads((work / "run" / "run.json").read_text())
    t = run["training"]
    assert (run["kind"], run["variant"], t["seed"], t["world_size"], t["device"]) == (
        "flow_ae", "seed", 3, 1, "cpu")
    assert 1 <= t["epochs"] <= 15 and t["seconds_per_epoch"] > 0
    assert len(t["epoch_seconds"]) == t["epochs"] and t["accelerator"] == "cpu"
    assert len(run["history"]) == t["epochs"] and (work / "run" / "curves.png").stat().st_size > 0
    cv = json.loads((work / "run" / "cv" / "report.json").read_text())
    assert len(cv["folds"]) == 2 and cv["summary"]["roc_auc"]["mean"] > 0.9
    assert sum(f["positives"] for f in cv["folds"]) == 40
    with (work / "run" / "cv" / "report.csv").open() as f:
        assert [r[0] for r in csv.reader(f)] == ["scope", "fold1", "fold2", "mean", "std"]


@pytest.mark.parametrize("method", ["quantile", "spot"])
def test_evaluate_writes_report_and_figures(work, method):
    out = work / f"eval-{method}"
    assert main(["evaluate", "--run", str(work / "run"), "--out", str(out), "--threshold", method,
                 "--spot-q", "0.01", "--spot-level", "0.95", "--quiet"]) == 0
    r = json.loads((out / "report.json").read_text())
    t = r["test"]
    assert t["samples"] == 160 and t["positives"] == 40
    assert t["roc_auc"] > 0.95 and t["recall"] > 0.9
    assert set(t) >= {"accuracy", "precision", "recall", "f1", "macro_f1", "roc_auc", "confusion_matrix"}
    assert r["threshold"]["method"] == ("spot" if method == "spot" else "train_error_quantile")
    assert r["figures"] == ["error-histogram.png", "traffic-anomalies.png"]
    for name in r["figures"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = dict(csv.reader((out / "report.csv").open()))
    assert float(rows["threshold"]) == pytest.approx(r["threshold"]["value"])


@pytest.fixture(scope="module")
def shipped(work):
    assert main(["export", "--run", str(work / "run"), "--quiet"]) == 0
    assert main(["quantize", "--run", str(work / "run"), "--rounds", "3", "--budget-s", "0.05",
                 "--quiet"]) == 0
    key, pub = signing.keygen(work / "keys" / "fleet")
    args = ["bundle", "--run", str(work / "run"), "--out", str(work / "bundle"), "--version", "t.1",
            "--sign-key", str(key), "--quiet"]
    if gateway.find_binary() is None:
        args.append("--no-gateway-check")
    assert main(args) == 0
    return work / "bundle", key, pub


def test_quantize_records_the_measured_choice(work, shipped):
    q = json.loads((work / "run" / "quantize.json").read_text())
    assert q["chosen"] in ("fp32", "int8") and q["why"]
    assert set(q["tract"]) == {"batch1", "batch8", "batch64"}
    assert q["method"] == "static" and q["format"] == "QDQ"
    assert "QuantizeLinear" in q["int8_ops"] and "roc_auc" in q["ranking"]
    assert q["batch_independence_max_abs"] == 0.0  # static scales: batch independent
    assert q["calibration"]["rows"] > 0
    m = json.loads((shipped[0] / "manifest.json").read_text())
    assert m["quantization"]["chosen"] == m["model"]["precision"] == q["chosen"]
    assert m["quantization"]["measured"] is True
    assert m["quantization"]["batch_independence_max_abs"] == 0.0
    assert m["quantization"]["ranking"] == q["ranking"]


def test_bundle_is_signed_and_follows_the_contract(shipped):
    bundle, key, pub = shipped
    assert sorted(p.name for p in bundle.iterdir()) == ["manifest.json", "manifest.sig", "model.onnx"]
    m = json.loads((bundle / "manifest.json").read_text())
    # the fields the gateway requires, as for the shipped bundle
    assert {"format", "name", "kind", "version", "model", "features", "threshold", "severity",
            "golden"} <= set(m)
    assert (m["format"], m["name"], m["kind"], m["version"]) == (1, "flow-ae", "flow_ae", "t.1")
    assert m["threshold"]["method"] == "train_error_quantile" and m["threshold"]["quantile"] == 0.95
    assert m["evaluation"]["roc_auc"] > 0.95 and m["cross_validation"]["folds"] == 2
    assert signing.verify_bundle_signature(bundle, [pub]) == 0
    assert main(["check", str(bundle), "--key", str(pub), "--quiet"]
                + ([] if gateway.find_binary() else ["--no-gateway-check"])) == 0
    other_key, other_pub = signing.keygen(bundle.parent / "keys" / "other")
    assert main(["check", str(bundle), "--key", str(other_pub), "--no-gateway-check"]) == 2


def test_no_gateway_binary_is_a_clear_error(work, shipped, monkeypatch, capsys):
    monkeypatch.setenv("NETWARDEN_BIN", str(work / "no-such-netwarden"))
    out = work / "not-written"
    assert main(["bundle", "--run", str(work / "run"), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no netwarden binary" in err and "NETWARDEN_BIN" in err
    assert not out.exists()
    assert not [p for p in work.iterdir() if p.name.startswith(".not-written")]


@pytest.mark.skipif(gateway.find_binary() is None, reason="gateway binary not built")
def test_gateway_check_refuses_a_tampered_bundle(shipped, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(shipped[0], bad)
    m = json.loads((bad / "manifest.json").read_text())
    m["golden"]["outputs"][0][0] += 0.5
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(gateway.GatewayError, match="model check"):
        gateway.model_check(bad)


@pytest.mark.skipif(gateway.find_binary() is None or not gateway.supports_key_flag(gateway.find_binary()),
                    reason="gateway binary without `model check --key`")
def test_gateway_verifies_the_python_signature(shipped, tmp_path):
    bundle, key, pub = shipped
    out = gateway.model_check(bundle, key=str(pub))
    assert "signature verified" in out
    assert "signature verified" in gateway.model_check(bundle, key=pub.read_text().strip())
    _, other_pub = signing.keygen(tmp_path / "other")
    with pytest.raises(gateway.GatewayError, match="does not verify"):
        gateway.model_check(bundle, key=str(other_pub))


@pytest.mark.parametrize("name", ["flow-ae", "series-ae"])
def test_the_shipped_bundles_pass_check(name):
    """`check` (Python: hash, golden vectors in onnxruntime and tract; then the gateway) on the
    bundles in models/bundles/, which predate the pipeline (value_info, no signature)."""
    args = ["check", str(ROOT / "models" / "bundles" / name), "--quiet"]
    assert main(args + ([] if gateway.find_binary() else ["--no-gateway-check"])) == 0


def test_steady_seconds_per_epoch_is_the_median_after_the_first():
    from netwarden_models.train.trainer import steady_seconds_per_epoch

    assert steady_seconds_per_epoch([]) is None
    assert steady_seconds_per_epoch([9.0]) is None
    assert steady_seconds_per_epoch([9.0, 1.0, 3.0, 2.0]) == 2.0
    assert steady_seconds_per_epoch([9.0, 1.0, 3.0]) == 2.0
