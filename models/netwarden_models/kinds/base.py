"""The kind interface: what the stages (dataset -> train -> evaluate -> export -> quantize ->
select -> bundle) need to know about one family of models. The registry of kinds is
``netwarden_models.registry``; this module imports no kind and not the registry.

A kind is the bundle's ``kind`` (the gateway loader that runs it). Everything in the pipeline
that is not specific to one kind is written once against ``ModelKind``: the training loop
(reconstruction MSE over every axis but the batch), scores, thresholds, metrics, plots, ONNX
parity and speed in tract, int8, golden vectors, signing and the gateway check. A kind says:

- which feature schema it reads and how (``read_dataset``: from `netwarden features` CSVs only)
  and the shape of one sample (``sample_shape``);
- how a raw sample is scaled (``scaling_rows``: the rows the per-feature min/max is fitted on);
- its variants and how to build one (``build``), and the training defaults;
- how to export it (``export``) and what its bundle's ``model`` section adds
  (``manifest_model``);
- which split its threshold comes from (``threshold_split``).

Adding the temporal graph model (issue: temporal graph) means one more subclass, listed in
``registry.BUILTIN``: its dataset reads the gateway's edge export, ``sample_shape`` is the K recent
interactions per endpoint, and a score that is not a reconstruction error overrides ``scores``.
See docs/models.md, "Adding a model kind".
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.scaling import FeatureScaling
from ..export.onnx_export import export_onnx
from ..export.runtimes import recon_mse

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}


@dataclass
class Samples:
    """Everything a dataset directory holds (``data.npz``), for any kind."""

    raw: np.ndarray  # [n, *sample_shape] raw (unscaled) features, as the gateway computed them
    labels: np.ndarray  # int8 [n]: 1 anomalous, 0 normal (or unknown when not ``labelled``)
    split: np.ndarray  # int8 [n]: TRAIN, VAL, TEST
    time_ms: np.ndarray  # int64 [n]: when the sample happened (flow first seen, window end)
    source: np.ndarray  # int32 [n]: index into the dataset's ``sources`` (flow) or interfaces
    labelled: bool
    info: dict = field(default_factory=dict)  # kind-specific, goes into dataset.json

    def __len__(self) -> int:
        return len(self.raw)

    def take(self, idx) -> "Samples":
        return Samples(self.raw[idx], self.labels[idx], self.split[idx], self.time_ms[idx],
                       self.source[idx], self.labelled, self.info)


@dataclass(frozen=True)
class TrainDefaults:
    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    clip_grad: float | None


class ModelKind:
    name: str = ""
    schema: str = ""
    feature_names: tuple[str, ...] = ()
    log1p: dict[str, bool] = {}
    variants: tuple[str, ...] = ()
    default_variant: str = ""
    sample_shape: tuple[int, ...] = ()
    threshold_split: int = TRAIN
    defaults = TrainDefaults(epochs=100, batch_size=64, learning_rate=1e-3, patience=10,
                             clip_grad=None)
    # The bundle's default ``name`` (``kind`` with dashes when empty).
    bundle_name: str = ""
    # A column of the raw sample that stands for "traffic volume" in the plots.
    traffic_feature: str = ""
    golden_typical, golden_worst = 4, 4

    # --- data -------------------------------------------------------------------------------
    def add_dataset_args(self, p: argparse.ArgumentParser) -> None:
        """Options of `dataset --kind NAME` (an argument group; names unique across kinds)."""

    def read_dataset(self, args: argparse.Namespace, work: Path) -> tuple[Samples, list[dict]]:
        """(samples with their split, sources [{file, sha256, ...}]) from gateway features."""
        raise ValueError(f"kind {self.name} cannot build a dataset from the command line yet "
                         "(write one with netwarden_models.dataset.write)")

    def scaling_rows(self, raw: np.ndarray) -> np.ndarray:
        """Rows of ``len(feature_names)`` values the scaling is fitted on / applied to."""
        return raw.reshape(-1, len(self.feature_names))

    def fit_scaling(self, raw_train: np.ndarray) -> FeatureScaling:
        return FeatureScaling.fit(self.scaling_rows(raw_train), names=self.feature_names,
                                  log1p=tuple(self.log1p[n] for n in self.feature_names))

    def scale(self, scaling: FeatureScaling, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        return scaling.transform(self.scaling_rows(raw)).reshape(raw.shape).astype(np.float32)

    def traffic(self, raw: np.ndarray) -> np.ndarray:
        """One volume figure per sample for the traffic plot."""
        i = self.feature_names.index(self.traffic_feature)
        r = raw.reshape(len(raw), -1, len(self.feature_names))
        return r[:, -1, i]

    # --- model ------------------------------------------------------------------------------
    def build(self, variant: str) -> nn.Module:
        raise NotImplementedError

    def check_variant(self, variant: str | None) -> str:
        v = variant or self.default_variant
        if v not in self.variants:
            raise ValueError(f"kind {self.name}: unknown variant {v!r}; expected one of {self.variants}")
        return v

    @torch.no_grad()
    def scores(self, model: nn.Module, x: np.ndarray, batch: int = 1024) -> np.ndarray:
        """Per-sample reconstruction MSE (float64) of a torch model on scaled samples."""
        model.eval()
        out = []
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch], dtype=np.float32))
            d = (model(xb) - xb).double()
            out.append((d * d).reshape(len(xb), -1).mean(dim=1).numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def score_outputs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample score of scaled samples ``x`` from an ONNX file's outputs ``y`` (what
        evaluate --onnx, quantize, select and bundle compare with the threshold, and what the
        gateway computes): reconstruction MSE by default, like ``scores``."""
        return recon_mse(x, y)

    # --- export / bundle --------------------------------------------------------------------
    forms: tuple[str, ...] = ("default",)

    def export(self, model: nn.Module, path: Path, variant: str, form: str) -> str:
        """Default: the dynamo exporter, ``input`` [batch, *sample_shape] -> ``reconstruction``."""
        return export_onnx(model, path, self.sample_shape)

    def manifest_model(self, variant: str, form: str) -> dict:
        """Extra fields of the bundle's ``model`` section."""
        return {}

    def default_bundle_name(self) -> str:
        return self.bundle_name or self.name.replace("_", "-")

    def golden_tolerance(self, precision: str) -> float:
        return 1e-4 if precision == "fp32" else 1e-3
