import csv
import os
import sys
from pathlib import Path

import numpy as np
import pytest

MODELS_DIR = Path(__file__).resolve().parents[1]
if str(MODELS_DIR) not in sys.path:
    sys.path.insert(0, str(MODELS_DIR))

# scripts/test.sh builds target/debug/netwarden right before pytest; a release binary left in
# target/ may be older, so the tests use the debug one unless NETWARDEN_BIN says otherwise.
_DEBUG_BIN = MODELS_DIR.parent / "target" / "debug" / "netwarden"
if _DEBUG_BIN.exists():
    os.environ.setdefault("NETWARDEN_BIN", str(_DEBUG_BIN))

# Spelled out here (not imported) so the tests also pin the contract in docs/bundle-format.md.
IDENTITY = [
    "exporter", "observation_domain", "src_addr", "dst_addr", "src_port", "dst_port",
    "protocol", "first_seen_ms", "last_seen_ms",
]
FEATURES = [
    "bidirectional_packets", "bidirectional_bytes", "bidirectional_duration_ms",
    "bidirectional_mean_ps", "tcp_syn_without_ack", "src_flows_window",
    "src_distinct_dst_ports_window", "src_distinct_dst_addrs_window",
]
HEADER = IDENTITY + FEATURES


def synthetic_rows(n: int, seed: int = 1234):
    """Benign-looking flow-v1 rows: (identity columns, raw features) from a fixed RNG."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        proto = int(rng.choice([6, 17], p=[0.7, 0.3]))
        packets = int(rng.geometric(0.15))
        mean_ps = float(np.clip(rng.lognormal(6.0, 0.6), 40, 1500)) if packets else 0.0
        nbytes = int(round(packets * mean_ps))
        mean_ps = nbytes / packets
        duration = int(rng.exponential(2000.0)) if packets > 1 else 0
        syn = int(proto == 6 and rng.random() < 0.03)
        flows = int(rng.integers(1, 12))
        ports = int(rng.integers(1, min(flows, 3) + 1))
        addrs = int(rng.integers(1, min(flows, 4) + 1))
        first = 1_700_000_000_000 + 10 * i
        ident = [
            "192.0.2.10:2055", 0, f"10.0.0.{rng.integers(2, 50)}", f"198.51.100.{rng.integers(1, 200)}",
            int(rng.integers(1024, 65535)), int(rng.choice([53, 80, 443, 123])), proto,
            first, first + duration,
        ]
        rows.append((ident, [packets, nbytes, duration, mean_ps, syn, flows, ports, addrs]))
    return rows


def write_csv(path: Path, rows, header=HEADER):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for ident, feats in rows:
            w.writerow(ident + feats)
    return path


@pytest.fixture
def flow_csv(tmp_path):
    return write_csv(tmp_path / "flows.csv", synthetic_rows(500))
