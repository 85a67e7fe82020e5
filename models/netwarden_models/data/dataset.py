"""Dataset directories: the gateway's features, split and labelled, ready to train on.

    DIR/dataset.json   small manifest: kind, schema, feature names, sources (file, sha256,
                       rows, label), sample counts per split, positives, seed, how labels
                       were set; kind-specific facts (series: interfaces, split times)
    DIR/data.npz       raw (unscaled) samples and, per sample: label, split, time, source

Scaling is *not* part of a dataset: it is fitted on the training split by ``train`` and
travels in the run and the bundle. The features are only ever the gateway's
(`netwarden features`); nothing here computes one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np

from ..kinds.base import SPLIT_NAMES, TEST, ModelKind, Samples

FORMAT = 1
MANIFEST = "dataset.json"
DATA = "data.npz"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write(out: str | Path, kind: ModelKind, samples: Samples, sources: list[dict],
          seed: int) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / DATA, raw=samples.raw, labels=samples.labels, split=samples.split,
                        time_ms=samples.time_ms, source=samples.source)
    counts = {name: int(np.sum(samples.split == s)) for s, name in SPLIT_NAMES.items()}
    positives = {name: int(np.sum((samples.split == s) & (samples.labels == 1)))
                 for s, name in SPLIT_NAMES.items()} if samples.labelled else None
    manifest = {
        "format": FORMAT,
        "kind": kind.name,
        "schema": kind.schema,
        "feature_names": list(kind.feature_names),
        "sample_shape": list(kind.sample_shape),
        "samples": int(len(samples)),
        "split": counts,
        "labelled": samples.labelled,
        "positives": positives,
        "seed": seed,
        "sources": sources,
        "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **samples.info,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read(path: str | Path, kind_of) -> tuple[dict, ModelKind, Samples]:
    """(dataset.json, its kind, the samples); ``kind_of`` is ``registry.get`` (passed in: the
    kinds import this module, so it cannot import the registry)."""
    d = Path(path)
    try:
        manifest = json.loads((d / MANIFEST).read_text())
    except OSError as e:
        raise ValueError(f"{d}: not a dataset directory (no {MANIFEST}; build one with "
                         f"`netwarden_models dataset`)") from e
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{d}/{MANIFEST}: format {manifest.get('format')}, expected {FORMAT}")
    kind = kind_of(manifest["kind"])
    if manifest["feature_names"] != list(kind.feature_names):
        raise ValueError(f"{d}: feature names differ from kind {kind.name}'s schema {kind.schema}")
    z = np.load(d / DATA)
    samples = Samples(raw=z["raw"], labels=z["labels"], split=z["split"], time_ms=z["time_ms"],
                      source=z["source"], labelled=bool(manifest["labelled"]))
    return manifest, kind, samples


def kfold_assign(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Stratified fold number (0..folds-1) per sample: positives and negatives are each
    shuffled (seeded) and dealt round-robin, so every fold gets its share of both."""
    if folds < 2:
        raise ValueError("--folds must be at least 2")
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype=np.int32)
    for cls in (0, 1):
        idx = rng.permutation(np.nonzero(labels == cls)[0])
        out[idx] = np.arange(len(idx)) % folds
    if int(np.sum(labels == 1)) < folds:
        raise ValueError(f"{int(np.sum(labels == 1))} anomalous samples cannot fill {folds} folds")
    return out


def test_part(samples: Samples) -> Samples:
    return samples.take(np.nonzero(samples.split == TEST)[0])
