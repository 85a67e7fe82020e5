"""Distributed training: `torchrun --nproc_per_node 2 -m netwarden_models train` on CPU (gloo).

With the same seed and global batch, DDP over 2 processes sees the same batches as one process
(rank r takes every other sample of the shared permutation, so the two half-batches of a step
make up the single process's batch, and DDP averages their gradients), so the weights agree
with a single-process run up to float summation order.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import synthetic_rows, write_csv
from netwarden_models.cli import main

MODELS = Path(__file__).resolve().parents[1]
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")


@pytest.mark.skipif(TORCHRUN is None, reason="torchrun not installed")
def test_torchrun_two_processes_on_cpu_match_one_process(tmp_path):
    csv_path = write_csv(tmp_path / "normal.csv", synthetic_rows(600))
    ds = tmp_path / "ds"
    assert main(["dataset", "--kind", "flow_ae", "--out", str(ds), "--features", str(csv_path),
                 "--quiet"]) == 0
    common = ["train", "--dataset", str(ds), "--epochs", "2", "--seed", "5", "--device", "cpu",
              "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(MODELS), OMP_NUM_THREADS="1")
    r = subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m",
                        "netwarden_models", *common, "--out", str(tmp_path / "ddp")],
                       cwd=MODELS, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    run = json.loads((tmp_path / "ddp" / "run.json").read_text())
    t = run["training"]
    assert (t["world_size"], t["device"], t["epochs"], t["samples"]) == (2, "cpu", 2, 420)

    assert main([*common, "--out", str(tmp_path / "single")]) == 0
    history = json.loads((tmp_path / "single" / "run.json").read_text())["history"]
    for (a, av), (b, bv) in zip(run["history"], history):
        assert a == pytest.approx(b, rel=1e-4) and av == pytest.approx(bv, rel=1e-4)
    single = torch.load(tmp_path / "single" / "model.pt", weights_only=True)
    ddp = torch.load(tmp_path / "ddp" / "model.pt", weights_only=True)
    assert single.keys() == ddp.keys()
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=0, atol=1e-5)
