"""The bundle format (docs/bundle-format.md, manifest format 1): file names, constants and the
small pieces every bundle writer shares."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

FORMAT = 1
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
HIGH_RATIO = 2.0


class BundleError(RuntimeError):
    pass


def default_version(now: dt.datetime | None = None) -> str:
    now = now or now_utc()
    return now.strftime("%Y.%m.%d.1")


def now_utc() -> dt.datetime:
    # SOURCE_DATE_EPOCH makes `created_utc` reproducible.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


def pick_golden_rows(errors: np.ndarray, typical: int = 4, worst: int = 4) -> list[int]:
    """Indices of the largest-error rows plus rows at evenly spread error quantiles."""
    n = len(errors)
    order = np.argsort(errors, kind="stable")
    picked: list[int] = [int(i) for i in order[::-1][: min(worst, n)]]
    for q in np.linspace(0.1, 0.7, typical):
        pos = int(round(q * (n - 1)))
        # nearest not-yet-picked row at or below that quantile position
        for p in list(range(pos, -1, -1)) + list(range(pos + 1, n)):
            i = int(order[p])
            if i not in picked:
                picked.append(i)
                break
    return picked


_NUMBER_ARRAY = re.compile(r"\[\s*(-?[0-9][^\[\]{}\"]*?)\s*\]")


def dumps_manifest(obj: dict) -> str:
    """JSON indented by 2, but arrays of plain numbers on one line: golden vectors and
    scalers one number per line doubled the manifests the gateway embeds in the router binary
    (about 90 KB of its 10 MB budget, docs/install.md)."""
    text = json.dumps(obj, indent=2, allow_nan=False)
    return _NUMBER_ARRAY.sub(
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text
    )


def write_json_atomic(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dumps_manifest(obj))
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
