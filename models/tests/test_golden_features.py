"""Golden test across the Rust/Python boundary: the gateway's feature code on committed inputs
must give, as read by the Python loaders, exactly the committed golden vectors (integers and
identity exactly, floats within 1e-9 relative). The Rust side (cargo test) compares its own
output with the same files. Regenerate: `python -m netwarden_models golden`.
"""

import csv
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from netwarden_models import golden
from netwarden_models.features import (FEATURE_NAMES, FEATURE_NAMES_V2, IDENTITY_COLUMNS,
                                       read_feature_rows)
from netwarden_models.series_data import SERIES_FEATURES, read_series_csvs

ROOT = Path(__file__).resolve().parents[2]


def netwarden_bin() -> Path:
    p = Path(os.environ.get("NETWARDEN_BIN", ROOT / "target" / "debug" / "netwarden"))
    if not p.exists():
        pytest.skip(f"gateway binary {p} not built: run `cargo build -p netwarden` "
                    "(scripts/test.sh does) for the Rust/Python golden test")
    return p


def read_golden(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def run_features(tmp_path, *args) -> Path:
    out = tmp_path / "features.csv"
    subprocess.run([str(netwarden_bin()), "features", *args, "--out", str(out)], check=True,
                   capture_output=True, timeout=120)
    return out


def test_flow_features_match_the_golden_file(tmp_path):
    out = run_features(tmp_path, "--netflow-pcap", str(golden.FLOW_PCAP))
    raw, ident = read_feature_rows(out)  # what training reads
    want = read_golden(golden.FLOW_GOLDEN)
    got = [dict(zip(IDENTITY_COLUMNS, i)) | dict(zip(FEATURE_NAMES, r.tolist()))
           for i, r in zip(ident, raw)]
    # Counters read as floats must still be the exact integers.
    for g in got:
        for c in golden.FLOW_EXACT:
            if isinstance(g[c], float):
                assert g[c].is_integer(), (c, g[c])
                g[c] = str(int(g[c]))
    golden.compare_rows(got, want, golden.FLOW_EXACT, what="flow-v1")
    assert len(got) == 2446 and raw[:, FEATURE_NAMES.index("tcp_syn_without_ack")].sum() > 900


def test_flow_v2_features_match_the_golden_file(tmp_path):
    out = run_features(tmp_path, "--set", "flow-v2", "--learn-until",
                       str(golden.FLOW_V2_LEARN_UNTIL), "--netflow-pcap", str(golden.FLOW_PCAP))
    raw, ident = read_feature_rows(out, "flow-v2")  # what training reads
    want = read_golden(golden.FLOW_V2_GOLDEN)
    got = [dict(zip(IDENTITY_COLUMNS, i)) | dict(zip(FEATURE_NAMES_V2, r.tolist()))
           for i, r in zip(ident, raw)]
    exact = golden.FLOW_EXACT + ("reverse_seen", "reverse_packets", "reverse_bytes",
                                 "reverse_syn_ack", "tcp_rst_either", "svc_conversations_window",
                                 "svc_novel")
    for g in got:
        for c in exact:
            if isinstance(g[c], float):
                assert g[c].is_integer(), (c, g[c])
                g[c] = str(int(g[c]))
    golden.compare_rows(got, want, exact, rel=1e-7, what="flow-v2")
    col = {n: raw[:, FEATURE_NAMES_V2.index(n)] for n in FEATURE_NAMES_V2}
    assert len(got) == 2446
    # Both directions of most conversations were paired; the scan's probes are novel services
    # that mostly failed (refused or unanswered).
    assert col["reverse_seen"].sum() > 2000
    novel = col["svc_novel"] == 1
    assert novel.sum() > 900 and col["svc_failed_share_window"][novel].mean() > 0.9
    # The flow-v1 part is flow-v1 (rows come out in pairing order, so compare as sets).
    v1 = read_feature_rows(golden.FLOW_GOLDEN)[0]
    key = lambda a: sorted(map(tuple, np.round(a, 3).tolist()))  # noqa: E731
    assert key(raw[:, :len(FEATURE_NAMES)]) == key(v1)


def test_series_features_match_the_golden_file(tmp_path):
    out = run_features(tmp_path, "--series", str(golden.SERIES_RATES))
    table = read_series_csvs([out])  # what training reads: per interface, time-sorted
    want = read_golden(golden.SERIES_GOLDEN)
    by_key: dict = {}
    for w in want:
        by_key.setdefault((w["target"], w["if_name"]), []).append(w)
    assert sorted(table.series) == sorted(by_key)
    for key, rows in by_key.items():
        ts, raw, seg = table.series[key]
        got = [{"ts_ms": str(int(t)), **dict(zip(SERIES_FEATURES, r.tolist()))} for t, r in zip(ts, raw)]
        for g in got:
            g["hour"], g["day_of_week"] = str(int(g["hour"])), str(int(g["day_of_week"]))
        want_rows = [{k: w[k] for k in ("ts_ms", *SERIES_FEATURES)} for w in rows]
        golden.compare_rows(got, want_rows, golden.SERIES_EXACT, what=f"series-v1 {key}")
        # Segment boundaries (the loader renumbers segments) fall where the golden file's do.
        want_seg = np.array([int(w["segment"]) for w in rows])
        assert np.array_equal(np.diff(seg) != 0, np.diff(want_seg) != 0)
    assert {w["segment"] for w in want} == {"0", "1"}  # the 4-poll gap restarts the series


def test_graph_features_match_the_golden_file(tmp_path):
    from netwarden_models.graph import data as gd

    out = run_features(tmp_path, "--set", "graph-v1", "--netflow-pcap", str(golden.GRAPH_PCAP))
    table = gd.read_edge_csv(out)  # what training reads
    want = read_golden(golden.GRAPH_GOLDEN)
    got = [dict(zip(IDENTITY_COLUMNS, i)) | dict(zip(gd.COLUMNS, r.tolist()))
           for i, r in zip(table.ident, table.x)]
    # float32 in the gateway, printed shortest-round-trip: read back as float32 they are equal.
    golden.compare_rows(got, want, golden.FLOW_EXACT[:9], rel=1e-7, what="graph-v1")
    assert table.x.shape == (796, gd.INPUT_WIDTH)
    valid = table.x[:, [c for c, n in enumerate(gd.COLUMNS) if n.endswith("_valid")]]
    assert valid.sum() > 1000 and valid.max() == 1.0  # endpoints with history


def test_compare_rows_catches_a_difference():
    a = [{"x": "1", "f": 1.0}]
    golden.compare_rows(a, [{"x": "1", "f": "1.0000000000001"}], ("x",))
    with pytest.raises(AssertionError, match="row 1 f"):
        golden.compare_rows(a, [{"x": "1", "f": "1.00000001"}], ("x",))
    with pytest.raises(AssertionError, match="row 1 x"):
        golden.compare_rows(a, [{"x": "2", "f": "1"}], ("x",))
