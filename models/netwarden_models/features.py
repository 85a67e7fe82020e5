"""Reading the flow feature CSV written by the gateway's `netwarden features`.

The layout is fixed by docs/bundle-format.md: nine identity columns, then the eight
raw features of schema `flow-v1`, in order; or, for `--set flow-v2`, its seventeen (the eight
of `flow-v1`, then the conversation's reverse direction and its service's context).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA = "flow-v1"

IDENTITY_COLUMNS: tuple[str, ...] = (
    "exporter",
    "observation_domain",
    "src_addr",
    "dst_addr",
    "src_port",
    "dst_port",
    "protocol",
    "first_seen_ms",
    "last_seen_ms",
)

FEATURE_NAMES: tuple[str, ...] = (
    "bidirectional_packets",
    "bidirectional_bytes",
    "bidirectional_duration_ms",
    "bidirectional_mean_ps",
    "tcp_syn_without_ack",
    "src_flows_window",
    "src_distinct_dst_ports_window",
    "src_distinct_dst_addrs_window",
)

CSV_HEADER: tuple[str, ...] = IDENTITY_COLUMNS + FEATURE_NAMES

SCHEMA_V2 = "flow-v2"

# firmware/src/features_v2.rs FLOW_V2_FEATURES, in order.
FEATURE_NAMES_V2: tuple[str, ...] = FEATURE_NAMES + (
    "reverse_seen",
    "reverse_packets",
    "reverse_bytes",
    "bytes_share",
    "reverse_syn_ack",
    "tcp_rst_either",
    "svc_conversations_window",
    "svc_failed_share_window",
    "svc_novel",
)

FEATURE_SETS: dict[str, tuple[str, ...]] = {SCHEMA: FEATURE_NAMES, SCHEMA_V2: FEATURE_NAMES_V2}


class FeatureCsvError(ValueError):
    """A feature CSV that does not follow the `flow-v1` layout."""


@dataclass(frozen=True)
class FeatureTable:
    """Raw feature rows (float64, shape [rows, 8]) and the files they came from."""

    raw: np.ndarray
    sources: tuple[str, ...]


def _check_header(path: Path, header: list[str], schema: str = SCHEMA) -> None:
    got = [h.strip() for h in header]
    want_header = IDENTITY_COLUMNS + FEATURE_SETS[schema]
    if got == list(want_header):
        return
    problems = []
    for i in range(max(len(got), len(want_header))):
        want = want_header[i] if i < len(want_header) else "<nothing>"
        have = got[i] if i < len(got) else "<missing>"
        if want != have:
            problems.append(f"column {i + 1} is {have!r}, expected {want!r}")
    raise FeatureCsvError(
        f"{path}: header does not match feature schema {schema} "
        f"({'; '.join(problems[:3])}{'; ...' if len(problems) > 3 else ''}).\n"
        f"  expected: {','.join(want_header)}\n"
        f"  got:      {','.join(got)}"
    )


def read_feature_csv(path: str | Path) -> np.ndarray:
    """Read one `netwarden features` CSV; returns the raw features, float64 [rows, 8]."""
    return read_feature_rows(path)[0]


def read_feature_rows(path: str | Path, schema: str = SCHEMA) -> tuple[np.ndarray, list[list[str]]]:
    """Raw features float64 [rows, features of ``schema``] and each row's identity columns
    (as text)."""
    names = FEATURE_SETS[schema]
    ncols = len(IDENTITY_COLUMNS) + len(names)
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as e:
        raise FeatureCsvError(f"{path}: cannot open: {e.strerror or e}") from e
    first = len(IDENTITY_COLUMNS)
    rows: list[list[float]] = []
    identity: list[list[str]] = []
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise FeatureCsvError(f"{path}: empty file (expected a {schema} CSV header)")
        _check_header(path, header, schema)
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if len(record) != ncols:
                raise FeatureCsvError(
                    f"{path}:{reader.line_num}: {len(record)} columns, expected {ncols}"
                )
            values = []
            for name, text in zip(names, record[first:]):
                try:
                    v = float(text)
                except ValueError:
                    raise FeatureCsvError(
                        f"{path}:{reader.line_num}: {name} is {text!r}, not a number"
                    ) from None
                if not math.isfinite(v):
                    raise FeatureCsvError(f"{path}:{reader.line_num}: {name} is {text!r}")
                values.append(v)
            rows.append(values)
            identity.append(record[:first])
    if not rows:
        raise FeatureCsvError(f"{path}: no data rows")
    return np.asarray(rows, dtype=np.float64), identity


def read_feature_csvs(paths: list[str | Path]) -> FeatureTable:
    """Read and concatenate several feature CSVs (in the order given)."""
    if not paths:
        raise FeatureCsvError("no feature CSV given")
    tables = [read_feature_csv(p) for p in paths]
    return FeatureTable(
        raw=np.concatenate(tables, axis=0),
        sources=tuple(Path(p).name for p in paths),
    )
