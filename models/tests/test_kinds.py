"""The model-kind registry: a new kind (here a toy with [2, 4] samples, the shape of a tiny
"two endpoints x recent interactions" tensor) plugs into train, evaluate, export, quantize and
bundle without touching the pipeline. The temporal graph model will come in the same way."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from netwarden_models import registry
from netwarden_models.bundle.verify import verify_python
from netwarden_models.cli import main
from netwarden_models.data import dataset as ds
from netwarden_models.kinds.base import TEST, TRAIN, VAL, ModelKind, Samples, TrainDefaults


class ToyKind(ModelKind):
    name = "toy_pairs"
    schema = "toy-v1"
    feature_names = ("dt_ms", "bytes", "packets", "port")
    log1p = {"dt_ms": True, "bytes": True, "packets": True, "port": False}
    variants = ("tiny",)
    default_variant = "tiny"
    sample_shape = (2, 4)
    defaults = TrainDefaults(epochs=10, batch_size=32, learning_rate=5e-3, patience=5, clip_grad=None)
    traffic_feature = "bytes"

    def build(self, variant):
        self.check_variant(variant)
        return nn.Sequential(nn.Flatten(), nn.Linear(8, 3), nn.ReLU(), nn.Linear(3, 8),
                             nn.Sigmoid(), nn.Unflatten(1, (2, 4)))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    try:
        kind = registry.register(ToyKind())
    except ValueError:
        kind = registry.get("toy_pairs")
    d = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    n = 400
    raw = np.stack([rng.exponential(1000, (n, 2)), rng.lognormal(6, 0.5, (n, 2)),
                    rng.integers(1, 20, (n, 2)), rng.choice([80, 443], (n, 2))], axis=2)
    labels = np.zeros(n, dtype=np.int8)
    labels[-20:] = 1
    raw[-20:, :, 1] *= 200  # exfiltration-sized
    split = np.array([TRAIN] * 300 + [VAL] * 40 + [TEST] * 60, dtype=np.int8)
    samples = Samples(raw=raw, labels=labels, split=split, time_ms=np.arange(n, dtype=np.int64) * 1000,
                      source=np.zeros(n, dtype=np.int32), labelled=True)
    ds.write(d / "ds", kind, samples, [{"file": "toy.csv", "sha256": "0" * 64}], seed=1)
    return d


def test_registry_names_and_errors(toy):
    assert {"flow_ae", "series_ae", "toy_pairs"} <= set(registry.names())
    with pytest.raises(ValueError, match="unknown model kind 'nope'"):
        registry.get("nope")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(ToyKind())


def test_a_new_kind_goes_through_the_whole_pipeline(toy):
    run, out = toy / "run", toy / "bundle"
    assert main(["train", "--dataset", str(toy / "ds"), "--out", str(run), "--quiet"]) == 0
    assert main(["evaluate", "--run", str(run), "--quiet"]) == 0
    r = json.loads((run / "eval" / "report.json").read_text())
    assert r["test"]["positives"] == 20 and r["test"]["roc_auc"] > 0.9
    assert main(["export", "--run", str(run), "--quiet"]) == 0
    assert main(["quantize", "--run", str(run), "--rounds", "2", "--budget-s", "0.02", "--quiet"]) == 0
    assert main(["bundle", "--run", str(run), "--out", str(out), "--no-gateway-check", "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert (m["kind"], m["name"], m["features"]["schema"]) == ("toy_pairs", "toy-pairs", "toy-v1")
    assert len(m["golden"]["inputs"][0]) == 8
    verify_python(out)  # golden vectors replay in onnxruntime and tract


def test_series_lstm_is_an_alias_of_series_ae_on_input(tmp_path):
    """The series kind was renamed (it is a convolutional autoencoder now); the old name is read
    everywhere a kind is read, and what is written says series_ae."""
    assert registry.get("series_lstm") is registry.get("series_ae")
    assert "series_lstm" in registry.names(aliases=True)
    assert "series_lstm" not in registry.names()
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(type("Old", (ToyKind,), {"name": "series_lstm"})())
    # A dataset directory written before the rename (kind series_lstm in dataset.json).
    kind = registry.get("series_ae")
    n = 6
    samples = Samples(raw=np.ones((n, 50, 8), dtype=np.float32), labels=np.zeros(n, dtype=np.int8),
                      split=np.zeros(n, dtype=np.int8), time_ms=np.arange(n, dtype=np.int64),
                      source=np.zeros(n, dtype=np.int32), labelled=False)
    m = ds.write(tmp_path / "ds", kind, samples, [], seed=1)
    assert m["kind"] == "series_ae"
    path = tmp_path / "ds" / "dataset.json"
    path.write_text(path.read_text().replace('"series_ae"', '"series_lstm"'))
    _, old_kind, _ = ds.read(tmp_path / "ds", registry.get)
    assert old_kind is kind
