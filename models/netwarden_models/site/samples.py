"""A site's samples: the reservoir rows a gateway kept for central training.

The gateway writes them as CSV (`netwarden samples export`, `GET /samples`,
`netwarden samples fetch`): ``ts_ms``, optionally the identity columns ``src_addr, dst_addr,
src_port, dst_port, protocol``, the eight `flow-v1` features, ``score`` (the gateway model's
error). Parquet files with the same columns are read too (written by ``to_parquet`` here; the
router build stays free of a Parquet writer).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..features import FEATURE_NAMES

IDENTITY = ("src_addr", "dst_addr", "src_port", "dst_port", "protocol")


class SamplesError(ValueError):
    """Samples that do not follow the gateway's layout."""


@dataclass(frozen=True)
class SiteSamples:
    ts_ms: np.ndarray  # int64 [n]
    raw: np.ndarray  # float64 [n, 8], flow-v1 features
    score: np.ndarray  # float64 [n], the gateway model's error (NaN when absent)

    def __len__(self) -> int:
        return len(self.raw)


def _expected(header: list[str]) -> list[str]:
    identity = len(header) > 1 and header[1] == IDENTITY[0]
    return ["ts_ms", *(IDENTITY if identity else ()), *FEATURE_NAMES, "score"]


def parse_csv(text: str, name: str = "samples") -> SiteSamples:
    """Rows of the gateway's samples CSV; a bad header or row is an error naming the line."""
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    want = _expected(header)
    if header != want:
        raise SamplesError(f"{name}: header {','.join(header)!r} is not the gateway's samples "
                           f"layout ({','.join(want)})")
    feat = [want.index(f) for f in FEATURE_NAMES]
    ts, raw, score = [], [], []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(want):
            raise SamplesError(f"{name}:{line}: {len(row)} columns, expected {len(want)}")
        try:
            ts.append(int(row[0]))
            vals = [float(row[i]) for i in feat]
            s = float(row[-1]) if row[-1] else math.nan
        except ValueError as e:
            raise SamplesError(f"{name}:{line}: {e}") from e
        if not all(math.isfinite(v) for v in vals):
            raise SamplesError(f"{name}:{line}: a feature is not finite")
        raw.append(vals)
        score.append(s)
    return SiteSamples(np.asarray(ts, dtype=np.int64),
                       np.asarray(raw, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)),
                       np.asarray(score, dtype=np.float64))


def read(path: str | Path) -> SiteSamples:
    """A samples file: CSV, or Parquet by its suffix."""
    p = Path(path)
    if p.suffix == ".parquet":
        return read_parquet(p)
    return parse_csv(p.read_text(), str(p))


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq
    except ImportError as e:
        raise SamplesError("Parquet needs pyarrow (pip install pyarrow); CSV works without") from e
    return pyarrow, pq


def to_parquet(samples: SiteSamples, path: str | Path) -> Path:
    pa, pq = _pyarrow()
    cols = {"ts_ms": pa.array(samples.ts_ms, type=pa.int64())}
    for i, n in enumerate(FEATURE_NAMES):
        cols[n] = pa.array(samples.raw[:, i], type=pa.float64())
    cols["score"] = pa.array(samples.score, type=pa.float64())
    pq.write_table(pa.table(cols), str(path))
    return Path(path)


def read_parquet(path: str | Path) -> SiteSamples:
    _, pq = _pyarrow()
    t = pq.read_table(str(path))
    missing = [c for c in ("ts_ms", *FEATURE_NAMES, "score") if c not in t.column_names]
    if missing:
        raise SamplesError(f"{path}: columns missing: {', '.join(missing)}")
    raw = np.stack([t.column(n).to_numpy() for n in FEATURE_NAMES], axis=1).astype(np.float64)
    return SiteSamples(t.column("ts_ms").to_numpy().astype(np.int64), raw,
                       t.column("score").to_numpy().astype(np.float64))


def cmd_parquet(args) -> int:
    from ..log import say

    rows = read(args.csv)
    to_parquet(rows, args.out)
    say(args.quiet, f"wrote {args.out}: {len(rows)} rows")
    return 0
