"""The temporal graph edge classifier (kind ``graph_tgat``): one ``graph-v1`` row per new edge
(the gateway gathers each endpoint's K recent interactions), a TGAT-style attention model, a
multi-class head naming the pattern (``graph.data.CLASSES``). Supervised: trained with
class-weighted cross-entropy on lab-run labels through the shared loop (``trainer.fit`` with
targets). Its score is ``1 - P(benign)``; an edge is anomalous over 0.5 (the classifier's own
boundary: the pattern with the highest probability is not benign, or benign is under half).
The network is in ``graph/nets.py``, the data in ``graph/data.py``, the report in
``graph/report.py`` (docs/graph-model.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.scaling import FeatureScaling
from ..export.onnx_export import export_onnx
from ..graph import data as gd
from ..graph.fast import TgatFast
from ..graph.nets import Tgat
from .base import TRAIN, ModelKind, Samples, TrainDefaults

PROBS = "probs"


def class_weights(y: np.ndarray, classes: int) -> torch.Tensor:
    """Inverse square root of each class's frequency, mean 1 over the classes present."""
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)
    w = w / w[counts > 0].mean()
    return torch.tensor(w, dtype=torch.float32)


class GraphTgatKind(ModelKind):
    name = "graph_tgat"
    schema = gd.SCHEMA
    feature_names = gd.COLUMNS
    log1p = {n: False for n in gd.COLUMNS}
    variants = ("tgat",)
    default_variant = "tgat"
    sample_shape = (gd.INPUT_WIDTH,)
    supervised = True
    classes = gd.CLASSES
    defaults = TrainDefaults(epochs=30, batch_size=256, learning_rate=3e-3, patience=5,
                             clip_grad=1.0)
    bundle_name = "graph-tgat"
    traffic_feature = "e_ln_bytes"
    fixed_threshold = 0.5
    output_name = PROBS
    output_shape = (len(gd.CLASSES),)

    def add_dataset_args(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("graph_tgat")
        g.add_argument("--lab-run", action="append", default=[], metavar="DIR",
                       help="a lab run (netflow-v9.pcap, flow-labels.csv); repeat")

    def read_dataset(self, args, work: Path) -> tuple[Samples, list[dict]]:
        from .. import gateway
        from ..data.dataset import sha256_file

        if not args.lab_run:
            raise ValueError("dataset --kind graph_tgat needs --lab-run DIR (repeatable)")
        binary = gateway.require_binary()
        xs, ys, ts, srcs, sources = [], [], [], [], []
        for i, d in enumerate(Path(p) for p in args.lab_run):
            run = gd.load_lab_run(binary, d, work)
            xs.append(run.x)
            ys.append(run.y)
            ts.append(run.first_ms)
            srcs.append(np.full(len(run.y), i, np.int32))
            sources.append({"file": str(d / "netflow-v9.pcap"),
                            "sha256": sha256_file(d / "netflow-v9.pcap"), "rows": int(len(run.y)),
                            "unlabelled": run.unlabelled,
                            "classes": np.bincount(run.y, minlength=len(gd.CLASSES)).tolist()})
        y = np.concatenate(ys)
        rng = np.random.default_rng(args.seed)
        split = np.where(rng.random(len(y)) < 0.1, 1, TRAIN).astype(np.int8)
        samples = Samples(raw=np.concatenate(xs), labels=y.astype(np.int8), split=split,
                          time_ms=np.concatenate(ts), source=np.concatenate(srcs), labelled=True,
                          info={"classes": list(gd.CLASSES)})
        return samples, sources

    # No scaling: the gateway's values are logs, fractions and flags already.
    def fit_scaling(self, raw_train: np.ndarray) -> FeatureScaling:
        n = len(self.feature_names)
        return FeatureScaling(names=self.feature_names, log1p=(False,) * n, min=[0.0] * n,
                              max=[1.0] * n)

    def scale(self, scaling: FeatureScaling, raw: np.ndarray) -> np.ndarray:
        return np.asarray(raw, dtype=np.float32)

    def build(self, variant: str) -> nn.Module:
        self.check_variant(variant)
        return Tgat(len(self.classes))

    def loss(self, y_train: np.ndarray):
        """Class-weighted cross-entropy on the model's probabilities."""
        nll = nn.NLLLoss(weight=class_weights(y_train, len(self.classes)))
        return lambda probs, y: nll(torch.log(probs.clamp_min(1e-7)), y)

    @torch.no_grad()
    def probabilities(self, model: nn.Module, x: np.ndarray, batch: int = 4096) -> np.ndarray:
        model.eval()
        out = [model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch], dtype=np.float32)))
               .double().numpy() for i in range(0, len(x), batch)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)))

    def scores(self, model: nn.Module, x: np.ndarray, batch: int = 4096) -> np.ndarray:
        return 1.0 - self.probabilities(model, x, batch)[:, 0]

    def score_outputs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 1.0 - np.asarray(y, dtype=np.float64)[:, 0]

    def export(self, model: nn.Module, path: Path, variant: str, form: str) -> str:
        """The folded form (``graph/fast.py``): the trained function in fewer, cheaper tract
        ops; ``export`` checks it against the trained module."""
        return export_onnx(TgatFast(model.cpu().eval()), path, self.sample_shape,
                           output_name=PROBS, output_shape=(len(self.classes),))

    def manifest_model(self, variant: str, form: str) -> dict:
        return {"variant": variant, "classes": list(self.classes), "k": gd.K}

    def golden_tolerance(self, precision: str) -> float:
        return 1e-4 if precision == "fp32" else 2e-2
