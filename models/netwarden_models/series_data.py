"""`series-v1` feature CSVs (from `netwarden features --series`) -> windows of 50 steps.

The CSV has identity columns (``ts_ms,target,if_name``, optionally ``if_index`` and
``segment``, in the order the gateway writes them) then the eight raw features in
``SERIES_FEATURES`` order.
The features are computed only by the gateway (firmware/src/series.rs); this module never
computes them, it only cuts windows.

A window is 50 consecutive rows of one interface. The gateway skips up to two unknown polls
in a row without restarting the series, and restarts it (new segment, 5 steps of warm-up)
after a longer gap. A window never spans two segments: the ``segment`` column says where they
change when present; rows more than ``SEGMENT_GAP_STEPS`` median steps apart are split too.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA = "series-v1"
SERIES_FEATURES: tuple[str, ...] = (
    "in_bps", "out_bps", "hour", "day_of_week", "in_bps_ma", "out_bps_ma", "in_bps_std",
    "out_bps_std",
)
IDENTITY_COLUMNS: tuple[str, ...] = ("ts_ms", "target", "if_name")
OPTIONAL_IDENTITY: tuple[str, ...] = ("if_index", "segment")
# What `netwarden features --series` writes.
CSV_HEADER = ("ts_ms", "target", "if_index", "if_name", "segment") + SERIES_FEATURES
WINDOW = 50
# Within a segment at most 2 polls are skipped (3 steps apart); a restart costs more than that
# plus 5 warm-up steps. Anything over 3.5 steps is a new segment.
SEGMENT_GAP_STEPS = 3.5
# Counters are log1p-compressed; hour and day of week are small bounded integers.
SERIES_LOG1P: dict[str, bool] = {
    "in_bps": True, "out_bps": True, "hour": False, "day_of_week": False,
    "in_bps_ma": True, "out_bps_ma": True, "in_bps_std": True, "out_bps_std": True,
}


class SeriesCsvError(ValueError):
    """A series feature CSV that does not follow the `series-v1` layout."""


@dataclass(frozen=True)
class SeriesTable:
    """Rows of every interface, grouped: ``series[key] = (ts_ms int64 [n], raw float64 [n, 8],
    segment id [n])``, key = (target, if_name), rows in time order."""

    series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]
    sources: tuple[str, ...]

    @property
    def rows(self) -> int:
        return sum(len(v[0]) for v in self.series.values())


@dataclass(frozen=True)
class Windows:
    """Raw windows [n, 50, 8] with where each came from (its last row's time, its interface)."""

    raw: np.ndarray
    end_ms: np.ndarray
    start_ms: np.ndarray
    key: np.ndarray  # index into ``keys``
    keys: tuple[tuple[str, str], ...]

    def __len__(self) -> int:
        return len(self.raw)

    def take(self, idx: np.ndarray) -> "Windows":
        return Windows(self.raw[idx], self.end_ms[idx], self.start_ms[idx], self.key[idx], self.keys)


def _identity(path: Path, header: list[str]) -> dict[str, int]:
    """Column index of each identity column; raises unless the features close the header."""
    got = [h.strip() for h in header]
    n_id = len(got) - len(SERIES_FEATURES)
    ident = got[:n_id] if n_id >= 0 else got
    ok = (
        n_id >= len(IDENTITY_COLUMNS)
        and tuple(got[n_id:]) == SERIES_FEATURES
        and all(c in ident for c in IDENTITY_COLUMNS)
        and all(c in IDENTITY_COLUMNS + OPTIONAL_IDENTITY for c in ident)
        and len(set(ident)) == len(ident)
    )
    if not ok:
        raise SeriesCsvError(
            f"{path}: header does not match feature schema {SCHEMA}.\n"
            f"  expected: {','.join(CSV_HEADER)}\n  got:      {','.join(got)}"
        )
    return {c: i for i, c in enumerate(ident)}


def read_series_csv(path: str | Path) -> dict[tuple[str, str], tuple[list, list, list]]:
    """Rows per (target, if_name): (ts_ms, segment (0 without the column), raw features)."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as e:
        raise SeriesCsvError(f"{path}: cannot open: {e.strerror or e}") from e
    out: dict[tuple[str, str], tuple[list, list, list]] = {}
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise SeriesCsvError(f"{path}: empty file (expected a {SCHEMA} CSV header)")
        cols = _identity(path, header)
        width = len(cols) + len(SERIES_FEATURES)
        c_ts, c_target, c_name = cols["ts_ms"], cols["target"], cols["if_name"]
        c_seg = cols.get("segment")
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if len(record) != width:
                raise SeriesCsvError(
                    f"{path}:{reader.line_num}: {len(record)} columns, expected {width}")
            try:
                ts = int(record[c_ts])
                seg = int(record[c_seg]) if c_seg is not None else 0
            except ValueError:
                raise SeriesCsvError(
                    f"{path}:{reader.line_num}: ts_ms or segment is not an integer") from None
            key = (record[c_target], record[c_name])
            values = []
            for name, text in zip(SERIES_FEATURES, record[len(cols):]):
                try:
                    v = float(text)
                except ValueError:
                    raise SeriesCsvError(
                        f"{path}:{reader.line_num}: {name} is {text!r}, not a number") from None
                if not math.isfinite(v):
                    raise SeriesCsvError(f"{path}:{reader.line_num}: {name} is {text!r}")
                values.append(v)
            ts_list, seg_list, rows = out.setdefault(key, ([], [], []))
            ts_list.append(ts)
            seg_list.append(seg)
            rows.append(values)
    if not out:
        raise SeriesCsvError(f"{path}: no data rows")
    return out


def read_series_csvs(paths: list[str | Path]) -> SeriesTable:
    """Read several CSVs; an interface seen in two files keeps both parts (time-sorted)."""
    if not paths:
        raise SeriesCsvError("no series feature CSV given")
    merged: dict[tuple[str, str], tuple[list, list, list]] = {}
    for n, p in enumerate(paths):
        for key, (ts, seg, rows) in read_series_csv(p).items():
            mts, mseg, mrows = merged.setdefault(key, ([], [], []))
            mts.extend(ts)
            mseg.extend((n, s) for s in seg)  # segments of different files never join
            mrows.extend(rows)
    series = {}
    for key in sorted(merged):
        ts, seg, rows = merged[key]
        ts_a = np.asarray(ts, dtype=np.int64)
        order = np.argsort(ts_a, kind="stable")
        seg_ids = np.unique(np.asarray(seg), axis=0, return_inverse=True)[1].reshape(-1)
        series[key] = (ts_a[order], np.asarray(rows, dtype=np.float64)[order], seg_ids[order])
    return SeriesTable(series=series, sources=tuple(Path(p).name for p in paths))


def segment_starts(ts: np.ndarray, seg: np.ndarray | None = None) -> np.ndarray:
    """Indices where a new segment begins (always includes 0): the segment id changes, or the
    time gap exceeds ``SEGMENT_GAP_STEPS`` median steps."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    d = np.diff(ts)
    step = float(np.median(d)) if len(d) else 1.0
    cut = d > SEGMENT_GAP_STEPS * max(step, 1.0)
    if seg is not None:
        cut |= np.diff(seg) != 0
    breaks = np.nonzero(cut)[0] + 1
    return np.concatenate([[0], breaks]).astype(np.int64)


def make_windows(table: SeriesTable, stride: int = 1, window: int = WINDOW) -> Windows:
    """Every ``stride``-th complete window of every segment of every interface."""
    if stride < 1:
        raise ValueError("stride must be >= 1")
    keys = tuple(table.series)
    raws, ends, starts, kidx = [], [], [], []
    for k, key in enumerate(keys):
        ts, raw, seg = table.series[key]
        bounds = list(segment_starts(ts, seg)) + [len(ts)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            if b - a < window:
                continue
            firsts = np.arange(a, b - window + 1, stride)
            idx = firsts[:, None] + np.arange(window)[None, :]
            raws.append(raw[idx])
            ends.append(ts[firsts + window - 1])
            starts.append(ts[firsts])
            kidx.append(np.full(len(firsts), k))
    if not raws:
        raise SeriesCsvError(f"no complete window of {window} consecutive rows in the input")
    return Windows(
        raw=np.concatenate(raws).astype(np.float64),
        end_ms=np.concatenate(ends),
        start_ms=np.concatenate(starts),
        key=np.concatenate(kidx),
        keys=keys,
    )


def label_windows(w: Windows, anomalies) -> np.ndarray:
    """1 where a window overlaps an injected anomaly of its interface, else 0."""
    labels = np.zeros(len(w), dtype=np.int8)
    for a in anomalies:
        key = (a.target, a.if_name)
        if key not in w.keys:
            continue
        k = w.keys.index(key)
        hit = (w.key == k) & (w.start_ms <= a.end_ms) & (w.end_ms >= a.start_ms)
        labels[hit] = 1
    return labels
