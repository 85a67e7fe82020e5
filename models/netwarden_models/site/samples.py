"""A site's samples: the reservoir rows a gateway kept for central training.

The gateway writes them as CSV (`netwarden samples export`, `GET /samples`,
`netwarden samples fetch`): ``ts_ms``, ``schema`` (the feature set each row carries: the
gateway's active flow model's, ``flow-v1`` or ``flow-v2``), optionally the identity columns
``src_addr, dst_addr, src_port, dst_port, protocol``, the schema's features (8 or 17), ``score``
(the gateway model's error). Files written before rows carried a schema (no ``schema`` column)
are `flow-v1`. A site model is trained on one schema: rows of both are refused, naming the
counts. Parquet files with the same columns are read too (written by ``to_parquet`` here; the
router build stays free of a Parquet writer).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..features import FEATURE_NAMES, FEATURE_NAMES_V2

IDENTITY = ("src_addr", "dst_addr", "src_port", "dst_port", "protocol")
SCHEMAS = {"flow-v1": FEATURE_NAMES, "flow-v2": FEATURE_NAMES_V2}


class SamplesError(ValueError):
    """Samples that do not follow the gateway's layout."""


@dataclass(frozen=True)
class SiteSamples:
    ts_ms: np.ndarray  # int64 [n]
    raw: np.ndarray  # float64 [n, width], the schema's features
    score: np.ndarray  # float64 [n], the gateway model's error (NaN when absent)
    schema: str = "flow-v1"

    def __len__(self) -> int:
        return len(self.raw)


def _layout(header: list[str]) -> tuple[list[str], str | None]:
    """The columns this header should have, and the schema its feature columns name."""
    tagged = len(header) > 1 and header[1] == "schema"
    lead = ["ts_ms", "schema"] if tagged else ["ts_ms"]
    identity = len(header) > len(lead) and header[len(lead)] == IDENTITY[0]
    feats = header[len(lead) + (len(IDENTITY) if identity else 0):-1]
    schema = next((k for k, names in SCHEMAS.items() if list(names) == feats), None)
    if not tagged and schema == "flow-v2":
        schema = None  # untagged files predate flow-v2 rows
    names = SCHEMAS[schema or "flow-v1"]
    return [*lead, *(IDENTITY if identity else ()), *names, "score"], schema


def _one_schema(counts: dict[str, int], name: str) -> str:
    if len(counts) > 1:
        mix = " and ".join(f"{k} ({v} rows)" for k, v in sorted(counts.items()))
        raise SamplesError(f"{name}: the samples mix {mix}; a site model trains on one feature "
                           "set: export one (`netwarden samples export --schema flow-v2`, "
                           "`GET /samples?schema=flow-v2`)")
    return next(iter(counts), "flow-v1")


def parse_csv(text: str, name: str = "samples") -> SiteSamples:
    """Rows of the gateway's samples CSV; a bad header or row is an error naming the line, rows
    of two schemas an error naming both."""
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    want, header_schema = _layout(header)
    if header != want:
        raise SamplesError(f"{name}: header {','.join(header)!r} is not the gateway's samples "
                           f"layout ({','.join(want)})")
    tagged = want[1] == "schema"
    header_schema = header_schema or "flow-v1"
    first = want.index(SCHEMAS[header_schema][0])
    rows = [(line, row) for line, row in enumerate(reader, start=2) if row]
    counts: dict[str, int] = {}
    for line, row in rows:
        if len(row) != len(want):
            raise SamplesError(f"{name}:{line}: {len(row)} columns, expected {len(want)}")
        sch = row[1] if tagged else "flow-v1"
        if sch not in SCHEMAS:
            raise SamplesError(f"{name}:{line}: schema {sch!r} is not one of {', '.join(SCHEMAS)}")
        counts[sch] = counts.get(sch, 0) + 1
    schema = _one_schema(counts, name)
    width = len(SCHEMAS[schema])
    if rows and schema != header_schema and width > len(SCHEMAS[header_schema]):
        raise SamplesError(f"{name}: {schema} rows under {header_schema} columns")
    ts, raw, score = [], [], []
    for line, row in rows:
        try:
            ts.append(int(row[0]))
            vals = [float(v) for v in row[first:first + width]]
            s = float(row[-1]) if row[-1] else math.nan
        except ValueError as e:
            raise SamplesError(f"{name}:{line}: {e}") from e
        if not all(math.isfinite(v) for v in vals):
            raise SamplesError(f"{name}:{line}: a feature is not finite")
        raw.append(vals)
        score.append(s)
    return SiteSamples(np.asarray(ts, dtype=np.int64),
                       np.asarray(raw, dtype=np.float64).reshape(-1, width),
                       np.asarray(score, dtype=np.float64), schema)


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
    cols = {"ts_ms": pa.array(samples.ts_ms, type=pa.int64()),
            "schema": pa.array([samples.schema] * len(samples), type=pa.string())}
    for i, n in enumerate(SCHEMAS[samples.schema]):
        cols[n] = pa.array(samples.raw[:, i], type=pa.float64())
    cols["score"] = pa.array(samples.score, type=pa.float64())
    pq.write_table(pa.table(cols), str(path))
    return Path(path)


def read_parquet(path: str | Path) -> SiteSamples:
    _, pq = _pyarrow()
    t = pq.read_table(str(path))
    counts: dict[str, int] = {}
    if "schema" in t.column_names:
        for v in t.column("schema").to_pylist():
            counts[v] = counts.get(v, 0) + 1
    bad = [k for k in counts if k not in SCHEMAS]
    if bad:
        raise SamplesError(f"{path}: schema {bad[0]!r} is not one of {', '.join(SCHEMAS)}")
    schema = _one_schema(counts, str(path))
    names = SCHEMAS[schema]
    missing = [c for c in ("ts_ms", *names, "score") if c not in t.column_names]
    if missing:
        raise SamplesError(f"{path}: columns missing: {', '.join(missing)}")
    raw = np.stack([t.column(n).to_numpy() for n in names], axis=1).astype(np.float64)
    return SiteSamples(t.column("ts_ms").to_numpy().astype(np.int64), raw,
                       t.column("score").to_numpy().astype(np.float64), schema)


def cmd_parquet(args) -> int:
    from ..log import say

    rows = read(args.csv)
    to_parquet(rows, args.out)
    say(args.quiet, f"wrote {args.out}: {len(rows)} {rows.schema} rows")
    return 0
