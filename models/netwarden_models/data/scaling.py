"""Feature scaling, exactly as docs/bundle-format.md ("Feeding the model") defines it:

    v      = log1p(max(x, 0)) if log1p else x
    range  = max - min, or 1.0 when that is below 1e-6
    scaled = (v - min) / range

No clipping: values outside the training range scale outside [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..features import FEATURE_NAMES

MIN_RANGE = 1e-6

# Which flow-v1 features are log1p-compressed: the heavy-tailed counters are, the
# 0/1 flag is not.
FLOW_V1_LOG1P: dict[str, bool] = {
    "bidirectional_packets": True,
    "bidirectional_bytes": True,
    "bidirectional_duration_ms": True,
    "bidirectional_mean_ps": True,
    "tcp_syn_without_ack": False,
    "src_flows_window": True,
    "src_distinct_dst_ports_window": True,
    "src_distinct_dst_addrs_window": True,
}
assert tuple(FLOW_V1_LOG1P) == FEATURE_NAMES

# flow-v2: flow-v1's, then the reverse direction's counters and the service's conversation
# count compressed; flags, shares and novelty are in [0, 1] already.
FLOW_V2_LOG1P: dict[str, bool] = FLOW_V1_LOG1P | {
    "reverse_seen": False,
    "reverse_packets": True,
    "reverse_bytes": True,
    "bytes_share": False,
    "reverse_syn_ack": False,
    "tcp_rst_either": False,
    "svc_conversations_window": True,
    "svc_failed_share_window": False,
    "svc_novel": False,
}


@dataclass(frozen=True)
class FeatureScaling:
    names: tuple[str, ...]
    log1p: tuple[bool, ...]
    min: tuple[float, ...]
    max: tuple[float, ...]

    @classmethod
    def fit(cls, raw: np.ndarray, names=FEATURE_NAMES, log1p=None) -> "FeatureScaling":
        """min/max of the (log1p'd) training values, per feature."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(names) or raw.shape[0] == 0:
            raise ValueError(f"expected raw features [rows>0, {len(names)}], got {raw.shape}")
        if log1p is None:
            log1p = tuple(FLOW_V2_LOG1P[n] for n in names)
        v = _pre(raw, np.asarray(log1p, dtype=bool))
        return cls(
            names=tuple(names),
            log1p=tuple(bool(b) for b in log1p),
            min=tuple(float(x) for x in v.min(axis=0)),
            max=tuple(float(x) for x in v.max(axis=0)),
        )

    @property
    def ranges(self) -> np.ndarray:
        r = np.asarray(self.max, dtype=np.float64) - np.asarray(self.min, dtype=np.float64)
        return np.where(r < MIN_RANGE, 1.0, r)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Scale raw features (float64 math); returns float64 [rows, width]."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(self.names):
            raise ValueError(f"expected raw features [rows, {len(self.names)}], got {raw.shape}")
        v = _pre(raw, np.asarray(self.log1p, dtype=bool))
        return (v - np.asarray(self.min, dtype=np.float64)) / self.ranges

    def to_manifest(self) -> list[dict]:
        return [
            {"name": n, "log1p": l, "min": lo, "max": hi}
            for n, l, lo, hi in zip(self.names, self.log1p, self.min, self.max)
        ]

    @classmethod
    def from_manifest(cls, entries: list[dict]) -> "FeatureScaling":
        return cls(
            names=tuple(e["name"] for e in entries),
            log1p=tuple(bool(e["log1p"]) for e in entries),
            min=tuple(float(e["min"]) for e in entries),
            max=tuple(float(e["max"]) for e in entries),
        )


def _pre(raw: np.ndarray, log1p: np.ndarray) -> np.ndarray:
    return np.where(log1p, np.log1p(np.maximum(raw, 0.0)), raw)
