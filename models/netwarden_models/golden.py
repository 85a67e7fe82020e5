"""The Rust/Python golden feature files: committed inputs, the gateway's features for them.

    tests/data/netflow/softflowd-v5-scan-mixed.pcap      (input, the shared NetFlow fixture)
      -> models/tests/data/golden-flow-features.csv       `netwarden features --netflow-pcap`
    models/tests/data/golden-series-rates.csv             (input: 2 interfaces, 160 steps,
                                                           lost polls and one restart)
      -> models/tests/data/golden-series-features.csv     `netwarden features --series`
    tests/data/netflow/softflowd-v5-scan-mixed.pcap      (the same input, novelty learnt until
      -> models/tests/data/golden-flow-v2-features.csv    just before the scan)
                                                          `netwarden features --set flow-v2
                                                           --learn-until 1795396942000`
    tests/data/netflow/softflowd-v9-benign.pcap          (input: 796 records, 403 endpoints)
      -> models/tests/data/golden-graph-features.csv      `netwarden features --set graph-v1`

pytest (tests/test_golden_features.py) re-runs the gateway on the inputs and checks that what
the Python loaders read equals the golden files value by value; the Rust side compares its own
output with the same files. Regenerate (after an intended feature change, and say so in the
commit) with ``python -m netwarden_models golden``; the rates input is only written when it is
missing (``make_series_rates``), so the two sides keep one input.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from . import gateway

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "models" / "tests" / "data"
FLOW_PCAP = ROOT / "tests" / "data" / "netflow" / "softflowd-v5-scan-mixed.pcap"
FLOW_GOLDEN = DATA / "golden-flow-features.csv"
SERIES_RATES = DATA / "golden-series-rates.csv"
SERIES_GOLDEN = DATA / "golden-series-features.csv"
FLOW_V2_GOLDEN = DATA / "golden-flow-v2-features.csv"
# The scan in scan-mixed starts at 1795396942.62 (scan-mixed.scan.json): what came before is
# the learning period, so the scan's services are novel.
FLOW_V2_LEARN_UNTIL = 1_795_396_942_000
GRAPH_PCAP = ROOT / "tests" / "data" / "netflow" / "softflowd-v9-benign.pcap"
GRAPH_GOLDEN = DATA / "golden-graph-features.csv"

# Columns compared exactly (integers, identity); every other feature is a float compared with
# a relative tolerance of 1e-9.
FLOW_EXACT = ("exporter", "observation_domain", "src_addr", "dst_addr", "src_port", "dst_port",
              "protocol", "first_seen_ms", "last_seen_ms", "bidirectional_packets",
              "bidirectional_bytes", "bidirectional_duration_ms", "tcp_syn_without_ack",
              "src_flows_window")
SERIES_EXACT = ("ts_ms", "target", "if_index", "if_name", "segment", "hour", "day_of_week")


def make_series_rates(path: Path = SERIES_RATES) -> Path:
    """A small deterministic rates CSV: 2 interfaces x 160 steps of 10 s (2026-01-05 23:50
    UTC onwards, so hour and day of week roll over), integer and fractional rates, single
    lost polls (skipped) and one run of 4 (restarts the series: a new segment)."""
    rng = np.random.default_rng(20261123)
    start = 1_767_657_000_000  # Monday 2026-01-05 23:50:00 UTC
    rows = []
    for if_index, target, name, base in ((1, "branch-a", "wan0", 4.0e6), (3, "branch-a", "lan0", 2.5e7)):
        for step in range(160):
            ts = start + step * 10_000
            lost = step in (20, 57, 58) or 100 <= step < 104
            if lost:
                rows.append((ts, target, if_index, name, "", ""))
                continue
            wave = 1.0 + 0.3 * np.sin(step / 9.0)
            in_bps = round(float(base * wave * rng.lognormal(0, 0.2)), 1)
            out_bps = float(int(base * 0.4 * wave * rng.lognormal(0, 0.3)))
            if step == 130:
                in_bps *= 20  # one burst
            rows.append((ts, target, if_index, name, in_bps, out_bps))
    rows.sort(key=lambda r: (r[0], r[2]))
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["ts_ms", "target", "if_index", "if_name", "in_bps", "out_bps"])
        w.writerows(rows)
    return path


def regenerate(out_dir: Path = DATA) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rates = out_dir / SERIES_RATES.name
    if not rates.exists():
        make_series_rates(rates)
    flow = gateway.export_features(out_dir / FLOW_GOLDEN.name, netflow_pcaps=[FLOW_PCAP])
    flow_v2 = gateway.export_features(out_dir / FLOW_V2_GOLDEN.name, netflow_pcaps=[FLOW_PCAP],
                                      feature_set="flow-v2", learn_until=FLOW_V2_LEARN_UNTIL)
    series = gateway.export_features(out_dir / SERIES_GOLDEN.name, series_rates=rates)
    graph = gateway.export_features(out_dir / GRAPH_GOLDEN.name, netflow_pcaps=[GRAPH_PCAP],
                                    feature_set="graph-v1")
    return [rates, flow, flow_v2, series, graph]


def compare_rows(got: list[dict], want: list[dict], exact: tuple[str, ...], rel: float = 1e-9,
                 what: str = "") -> None:
    """Raise AssertionError at the first value that differs (exact, or relative ``rel``)."""
    if len(got) != len(want):
        raise AssertionError(f"{what}: {len(got)} rows, golden has {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        if list(g) != list(w):
            raise AssertionError(f"{what}: columns {list(g)} != golden {list(w)}")
        for col, wv in w.items():
            gv = g[col]
            if col in exact:
                if str(gv) != str(wv):
                    raise AssertionError(f"{what} row {i + 1} {col}: {gv!r} != golden {wv!r}")
            else:
                a, b = float(gv), float(wv)
                if not abs(a - b) <= rel * max(abs(a), abs(b)):
                    raise AssertionError(f"{what} row {i + 1} {col}: {a!r} != golden {b!r} (rel {rel})")


def main(args) -> int:
    for p in regenerate():
        print(f"wrote {p.relative_to(ROOT)}", file=sys.stderr)
    return 0
