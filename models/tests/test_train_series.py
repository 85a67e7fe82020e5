"""End to end with the gateway's own features, as make-series-bundle.sh runs it: synthetic rates
-> `netwarden features --series` -> dataset -> train, export, quantize (conv and the edge LSTM)
-> select -> bundle --selection, checked against docs/bundle-format.md, onnxruntime and tract.
(The unrolled LSTM form is exported and run in tract by test_series_models.py: its tract plans
take seconds each to optimise, too slow to go through every stage here.)

Needs the gateway binary (scripts/test.sh builds it before pytest): NETWARDEN_BIN, else
target/debug/netwarden. The Python feature formulas below exist only to cross-check the Rust
output; training never uses them.
"""

import csv
import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from netwarden_models.cli import main
from netwarden_models.series_data import SERIES_FEATURES, read_series_csvs

ROOT = Path(__file__).resolve().parents[2]


def netwarden_bin() -> Path:
    p = Path(os.environ.get("NETWARDEN_BIN", ROOT / "target" / "debug" / "netwarden"))
    if not p.exists():
        pytest.skip(f"gateway binary {p} not built (cargo build -p netwarden)")
    return p


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("series-e2e")
    rates, labels = d / "rates.csv", d / "labels.csv"
    assert main(["synth-series-rates", "--out", str(rates), "--labels", str(labels),
                 "--days", "0.75", "--eval-days", "0.25", "--anomalies-per-kind", "1",
                 "--seed", "5"]) == 0
    with labels.open() as f:
        assert len(list(csv.reader(f))) > 1
    feats = d / "features.csv"
    subprocess.run([str(netwarden_bin()), "features", "--series", str(rates), "--out", str(feats)],
                   check=True, capture_output=True, timeout=120)
    return d, rates, labels, feats


def test_rust_features_match_the_series_v1_definition(data):
    """Cross-check: rows recomputed here from the rates must equal the gateway's."""
    _, rates, _, feats = data
    table = read_series_csvs([feats])
    with rates.open() as f:
        r = list(csv.DictReader(f))
    key = ("branch-a", "wan0")
    known = [(int(x["ts_ms"]), float(x["in_bps"]), float(x["out_bps"]))
             for x in r if (x["target"], x["if_name"]) == key and x["in_bps"]]
    ts, raw, _ = table.series[key]
    index = {k[0]: i for i, k in enumerate(known)}
    checked = 0
    for t, row in zip(ts[:400], raw[:400]):
        i = index[int(t)]
        assert i >= 5  # a row needs 6 known steps behind it
        last6 = np.array(known[i - 5 : i + 1])[:, 1:]
        secs = t // 1000
        want = [known[i][1], known[i][2], (secs % 86400) // 3600, (secs // 86400 + 3) % 7,
                *last6.mean(axis=0), *last6.std(axis=0)]
        np.testing.assert_allclose(row, want, rtol=2e-6, atol=1e-2)
        checked += 1
    assert checked == 400


@pytest.fixture(scope="module")
def bundle(data, tmp_path_factory):
    d, rates, labels, feats = data
    eval_start = 1_767_571_200_000 + int(0.5 * 86_400_000)
    ds, sel, out = d / "ds", d / "selection.json", d / "bundle"
    steps = [["dataset", "--kind", "series_ae", "--out", str(ds), "--series-features", str(feats),
              "--labels", str(labels), "--eval-start-ms", str(eval_start), "--val-days", "0.15",
              "--max-train-windows", "300", "--max-val-windows", "120", "--eval-stride", "25"]]
    for variant in ("conv", "edge"):
        run = str(d / variant)
        steps += [["train", "--dataset", str(ds), "--out", run, "--variant", variant, "--epochs",
                   "3", "--patience", "2", "--device", "cpu"],
                  ["export", "--run", run],
                  ["quantize", "--run", run, "--rounds", "2", "--budget-s", "0.02"]]
    for argv in (
        *steps,
        ["select", str(d / "conv"), str(d / "edge"), "--out", str(sel), "--batches", "1,8",
         "--rounds", "2", "--budget-s", "0.02"],
        # The gateway check is test_pipeline_series' job.
        ["bundle", "--selection", str(sel), "--out", str(out), "--version", "test.1",
         "--data-note", "synthetic interface rates", "--no-gateway-check"],
    ):
        assert main([*argv, "--quiet"]) == 0, argv
    return d, out, json.loads((out / "manifest.json").read_text())


def test_runs_have_curves_files_and_the_selection(bundle):
    d, _, m = bundle
    for variant in ("conv", "edge"):
        run = d / variant
        assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert json.loads((run / "export.json").read_text())["form"] == "onnx"
        t = json.loads((run / "run.json").read_text())["training"]
        assert 1 <= t["best_epoch"] <= t["epochs"] <= 3
    sel = json.loads((d / "selection.json").read_text())
    cands = {c["file"]: c for c in sel["candidates"]}
    assert set(cands) == {f"{v}-onnx-{p}.onnx" for v in ("conv", "edge") for p in ("fp32", "int8")}
    for c in cands.values():
        assert 0.0 <= c["roc_auc"] <= 1.0 and c["batch1"] > 0 and c["batch8"] > 0
    chosen = sel["chosen"]
    assert chosen["run"] == str((d / chosen["variant"]).resolve())
    assert cands[f"{chosen['variant']}-onnx-{chosen['precision']}.onnx"]["rejected"] is None
    # The bench runs tract with a fresh state: it matches onnxruntime for every file.
    assert all(r["tract_vs_ort_max_abs"] < 1e-3 for r in sel["bench"])


def test_manifest_follows_the_series_contract(bundle):
    _, out, m = bundle
    assert (m["format"], m["kind"], m["name"], m["version"]) == (1, "series_ae", "series-ae", "test.1")
    chosen = m["selection"]["chosen"]
    assert chosen["form"] == "onnx" and "run" not in chosen
    assert m["model"] == {
        "file": "model.onnx",
        "sha256": hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest(),
        "input_name": "input", "output_name": "reconstruction", "input_width": 8,
        "window": 50, "precision": chosen["precision"], "variant": chosen["variant"],
        "form": "onnx",
    }
    assert m["features"]["schema"] == "series-v1"
    assert m["features"]["names"] == list(SERIES_FEATURES)
    logs = {s["name"]: s["log1p"] for s in m["features"]["scaling"]}
    assert logs == {n: n not in ("hour", "day_of_week") for n in SERIES_FEATURES}
    assert m["threshold"]["method"] == "heldout_normal_window_quantile"
    assert m["threshold"]["quantile"] == 0.95 and m["threshold"]["value"] > 0
    assert m["threshold"]["n"] == 120
    assert m["severity"] == {"high_ratio": 2.0}
    for k in ("rows", "epochs", "best_val_loss", "best_epoch", "data"):
        assert k in m["training"]
    assert "synthetic" in m["training"]["data"]
    assert 0.0 <= m["evaluation"]["roc_auc"] <= 1.0
    g = m["golden"]
    assert len(g["inputs"]) == len(g["outputs"]) == len(g["errors"]) >= 4
    assert all(len(v) == 400 for v in g["inputs"] + g["outputs"])
    assert g["tolerance"] == (1e-4 if chosen["precision"] == "fp32" else 1e-3)


def test_golden_vectors_replay_in_onnxruntime_and_tract_by_the_doc(bundle):
    from netwarden_models.export import runtimes

    _, out, m = bundle
    raw = np.asarray(m["golden"]["inputs"], dtype=np.float64).reshape(-1, 50, 8)
    scaled = np.empty_like(raw)
    for i, s in enumerate(m["features"]["scaling"]):  # the doc's formula, written out
        v = np.log1p(np.maximum(raw[..., i], 0.0)) if s["log1p"] else raw[..., i]
        rng = s["max"] - s["min"]
        scaled[..., i] = (v - s["min"]) / (rng if rng >= 1e-6 else 1.0)
    scaled = scaled.astype(np.float32)
    want = np.asarray(m["golden"]["outputs"]).reshape(raw.shape)
    # One batch, as the gateway replays them (dynamic int8 scales depend on the batch).
    for y in (runtimes.run_ort(out / "model.onnx", scaled),
              runtimes.run_tract(out / "model.onnx", scaled, len(scaled))):
        assert np.abs(y - want).max() <= m["golden"]["tolerance"]
        err = ((scaled.astype(np.float64) - y) ** 2).mean(axis=(1, 2))
        assert np.abs(err - m["golden"]["errors"]).max() <= m["golden"]["tolerance"]


def test_bad_inputs_are_clear_errors(tmp_path, capsys, bundle):
    bad = tmp_path / "bad.csv"
    bad.write_text("ts_ms,target\n1,a\n")
    assert main(["dataset", "--kind", "series_ae", "--out", str(tmp_path / "d"),
                 "--series-features", str(bad)]) == 2
    assert "header does not match" in capsys.readouterr().err
    d, _, _ = bundle
    assert main(["bundle", "--run", str(d / "edge"), "--out", str(tmp_path / "b"), "--precision",
                 "int8", "--selection", "x.json"]) == 2
    assert "exactly one of --run" in capsys.readouterr().err
    assert main(["train-series", "--features", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "replaced by the stage commands" in capsys.readouterr().err
