"""models/make-default-bundle.sh refuses, before any work, to train the built-in bundle on the
unseen evaluation runs (docs/evaluation.md section 7.4), and an unknown SCHEMA; and the committed
built-in bundle's manifest records what it was trained on."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "models" / "make-default-bundle.sh"
UNSEEN = ("seed21", "seed22", "seed31-long")


def run(tmp_path, **env):
    e = dict(os.environ, LAB_RUNS=str(tmp_path), **env)
    e.pop("NETWARDEN_BIN", None)  # never reached: the checks come first
    return subprocess.run([str(SCRIPT), "0.0.0.1"], env=e, capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("run_name", UNSEEN)
def test_an_evaluation_run_is_refused(tmp_path, run_name):
    r = run(tmp_path, TRAIN=f"seed2 {run_name}")
    assert r.returncode == 2, r
    assert f"{run_name} is an evaluation run" in r.stderr


def test_an_unknown_schema_is_refused(tmp_path):
    r = run(tmp_path, SCHEMA="flow-v9")
    assert r.returncode == 2, r
    assert "SCHEMA must be flow-v2 or flow-v1" in r.stderr


def test_a_missing_lab_run_is_named(tmp_path):
    r = run(tmp_path, TRAIN="seed2")
    assert r.returncode == 1, r
    assert f"{tmp_path}/seed2 is not a lab run" in r.stderr


def test_the_built_in_bundle_names_its_training_inputs():
    m = json.loads((ROOT / "models/bundles/flow-ae-v2/manifest.json").read_text())
    assert m["features"]["schema"] == "flow-v2"
    t = m["training"]
    sources = set(t["sources"])
    fixtures = {f"{e}-benign.csv" for e in ("softflowd-v5", "softflowd-v9", "softflowd-ipfix",
                                              "pmacct-v9", "pmacct-ipfix")}
    assert fixtures <= sources
    assert {"seed1-short.csv", "seed2.csv", "seed3.csv", "small-seed11.csv"} <= sources
    assert not any(s.startswith(UNSEEN) for s in sources)
    assert "not seed21 seed22 seed31-long" in t["data"]
