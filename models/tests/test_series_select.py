"""The rule that picks the shipped series file (series_select.py), on hand-made figures."""

import pytest

from netwarden_models.select.rule import SelectionError, select


def entry(variant, form, precision, auc, parity=0.0, error=None):
    e = {"variant": variant, "form": form, "precision": precision, "roc_auc": auc,
         "tract_vs_ort_max_abs": parity}
    if error:
        e["tract_error"], e["tract_vs_ort_max_abs"] = error, None
    return f"{variant}-{form}-{precision}.onnx", e


def bench_rows(file, b1, b8, reuse_ok=False):
    return [{"file": file, "batch": b, "ort_us_per_window": 100.0,
             "tract_fresh_us_per_window": t, "tract_reuse_us_per_window": t * 0.9,
             "tract_reuse_correct": reuse_ok} for b, t in ((1, b1), (8, b8))]


def test_fastest_file_within_the_quality_bar_wins():
    files = dict([
        entry("seed", "onnx", "fp32", 0.980),
        entry("edge", "onnx", "fp32", 0.975),       # within 0.01: eligible, fastest
        entry("edge", "onnx", "int8", 0.960),       # int8 lost ranking quality
        entry("attention", "onnx", "fp32", 0.985, parity=0.3),  # tract disagrees
        entry("attention", "onnx", "int8", 0.985, error="Failed analyse"),
        entry("ensemble", "onnx", "fp32", 0.960),   # below the bar
    ])
    rows = []
    speeds = {"seed": (900, 300), "edge": (300, 60), "attention": (200, 40), "ensemble": (50, 10)}
    for f, e in files.items():
        rows += bench_rows(f, *speeds[e["variant"]])
    sel = select({"files": files}, {"rows": rows, "machine": {}})
    assert sel["chosen"] == {"variant": "edge", "form": "onnx", "precision": "fp32"}
    # The bar is set by the best fp32 ranking of the run, even one tract cannot ship.
    assert sel["best_fp32_roc_auc"] == 0.985
    why = {c["file"]: c["rejected"] for c in sel["candidates"]}
    assert why["edge-onnx-int8.onnx"].startswith("ROC-AUC 0.9600 below")
    assert why["edge-onnx-fp32.onnx"] is None and why["seed-onnx-fp32.onnx"] is None
    assert "tract differs" in why["attention-onnx-fp32.onnx"]
    assert "cannot run" in why["attention-onnx-int8.onnx"]
    assert "below" in why["ensemble-onnx-fp32.onnx"]
    # The gateway runs from a fresh state: that figure is the one recorded.
    assert sel["tract"]["batch8"]["tract_us_per_window"] == 60


def test_no_eligible_file_is_an_error():
    files = dict([entry("seed", "onnx", "fp32", 0.9, parity=0.5)])
    with pytest.raises(SelectionError, match="no file passes"):
        select({"files": files}, {"rows": bench_rows("seed-onnx-fp32.onnx", 1, 1)})
    with pytest.raises(SelectionError, match="no ROC-AUC"):
        select({"files": dict([entry("seed", "onnx", "fp32", None)])}, {"rows": []})


def test_int8_must_keep_its_own_fp32_ranking():
    files = dict([entry("edge", "onnx", "fp32", 0.990), entry("edge", "onnx", "int8", 0.984)])
    rows = bench_rows("edge-onnx-fp32.onnx", 300, 60) + bench_rows("edge-onnx-int8.onnx", 200, 40)
    sel = select({"files": files}, {"rows": rows})
    assert sel["chosen"]["precision"] == "fp32"
    why = {c["file"]: c["rejected"] for c in sel["candidates"]}
    assert why["edge-onnx-int8.onnx"].startswith("int8 ROC-AUC 0.9840 below its fp32")


def test_int8_ships_only_when_clearly_faster():
    files = dict([entry("edge", "onnx", "fp32", 0.990), entry("edge", "onnx", "int8", 0.990)])
    close = bench_rows("edge-onnx-fp32.onnx", 300, 60) + bench_rows("edge-onnx-int8.onnx", 290, 58)
    assert select({"files": files}, {"rows": close})["chosen"]["precision"] == "fp32"
    clear = bench_rows("edge-onnx-fp32.onnx", 300, 60) + bench_rows("edge-onnx-int8.onnx", 200, 40)
    assert select({"files": files}, {"rows": clear})["chosen"]["precision"] == "int8"
