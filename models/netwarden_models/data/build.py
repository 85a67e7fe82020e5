"""The ``dataset`` command: a kind reads the gateway's features, labels and splits them, and
the result becomes a dataset directory (``dataset.py``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .. import registry
from ..log import say
from . import dataset as ds


def build_dataset(args) -> dict:
    kind = registry.get(args.kind)
    with tempfile.TemporaryDirectory(prefix="netwarden-dataset-") as work:
        samples, sources = kind.read_dataset(args, Path(work))
    m = ds.write(args.out, kind, samples, sources, args.seed)
    say(args.quiet, f"wrote dataset {args.out}: {m['samples']} samples of {kind.name} "
        f"(train {m['split']['train']}, val {m['split']['val']}, test {m['split']['test']}"
        + (f"; {m['positives']['test']} anomalous in test" if m["labelled"] else "; unlabelled")
        + ")")
    return m


def open_dataset(path):
    """(dataset.json, kind, samples) of a dataset directory; old kind names accepted."""
    return ds.read(path, registry.get)
