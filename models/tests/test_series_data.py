"""Series data: the synthetic generator, the feature CSV reader and window cutting."""

import csv

import numpy as np
import pytest

from netwarden_models.data import series_synth
from netwarden_models.series_data import (CSV_HEADER, SERIES_FEATURES, SeriesCsvError,
                                          label_windows, make_windows, read_series_csvs)
from netwarden_models.evaluate.metrics import roc_auc


def test_generator_is_seeded_and_keeps_anomalies_in_the_eval_days():
    a, an_a, start_a = series_synth.generate(days=0.5, seed=3, eval_days=0.25,
                                             anomalies_per_kind=1)
    b, an_b, start_b = series_synth.generate(days=0.5, seed=3, eval_days=0.25,
                                             anomalies_per_kind=1)
    c, _, _ = series_synth.generate(days=0.5, seed=4, eval_days=0.25, anomalies_per_kind=1)
    assert a == b and an_a == an_b and start_a == start_b
    assert a != c
    n_if = len(series_synth.INTERFACES)
    assert len(a) == 0.5 * 8640 * n_if
    assert {k for k in series_synth.ANOMALY_KINDS} == {x.kind for x in an_a}
    assert all(x.start_ms >= start_a and x.end_ms >= x.start_ms for x in an_a)
    # Steps are 10 s apart, rates positive, some polls unknown.
    ts = sorted({r[0] for r in a})
    assert set(np.diff(ts)) == {series_synth.STEP_MS}
    known = [r for r in a if r[4] is not None]
    assert all(r[4] > 0 and r[5] > 0 for r in known)
    assert len(known) < len(a)


def test_injected_anomalies_change_the_rates():
    clean, _, _ = series_synth.generate(days=0.5, seed=3, eval_days=0.25, anomalies_per_kind=0)
    dirty, anomalies, _ = series_synth.generate(days=0.5, seed=3, eval_days=0.25,
                                                anomalies_per_kind=1)
    assert len(clean) == len(dirty)
    for a in anomalies:
        rows = [(c, d) for c, d in zip(clean, dirty)
                if (d[1], d[3]) == (a.target, a.if_name) and a.start_ms <= d[0] <= a.end_ms]
        assert rows and all(d[4] is not None for _, d in rows)
        col = 5 if a.kind == "exfil" else 4
        ratio = np.median([d[col] / c[col] for c, d in rows if c[col]])
        assert (ratio < 0.05) if a.kind == "drop" else (ratio > 2.0), (a, ratio)


def test_labels_round_trip(tmp_path):
    _, anomalies, _ = series_synth.generate(days=0.5, seed=3, eval_days=0.25,
                                            anomalies_per_kind=1)
    series_synth.write_labels_csv(tmp_path / "l.csv", anomalies)
    assert series_synth.read_labels_csv(tmp_path / "l.csv") == anomalies


def write_features(path, rows, header=CSV_HEADER):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def feature_rows(n, target="r1", name="wan0", seg_at=None, gap_at=None):
    rows, ts, seg = [], 1_000_000, 0
    for i in range(n):
        if i == seg_at:
            seg += 1
        ts += 10_000 * (20 if i == gap_at else 1)
        rows.append([ts, target, 1, name, seg, 100.0 + i, 50.0, 1, 0, 100.0, 50.0, 1.0, 0.5])
    return rows


def test_reader_accepts_the_gateway_header_and_the_minimal_one(tmp_path):
    full = write_features(tmp_path / "a.csv", feature_rows(60))
    minimal = write_features(
        tmp_path / "b.csv", [[r[0], r[1], r[3], *r[5:]] for r in feature_rows(60, name="lan0")],
        header=("ts_ms", "target", "if_name") + SERIES_FEATURES)
    t = read_series_csvs([full, minimal])
    assert set(t.series) == {("r1", "wan0"), ("r1", "lan0")}
    assert t.rows == 120
    ts, raw, _ = t.series[("r1", "wan0")]
    assert raw.shape == (60, 8) and raw[3, 0] == 103.0 and np.all(np.diff(ts) == 10_000)


@pytest.mark.parametrize("header,row,message", [
    (("ts_ms", "target", "if_name", "in_bps"), None, "header does not match"),
    (CSV_HEADER, [1, "r", 1, "w", 0, "x", 1, 1, 1, 1, 1, 1, 1], "in_bps is 'x'"),
    (CSV_HEADER, [1, "r", 1, "w", 0, "nan", 1, 1, 1, 1, 1, 1, 1], "in_bps is 'nan'"),
    (CSV_HEADER, [1, "r", 1, "w", 0, 1, 1], "7 columns, expected 13"),
    (CSV_HEADER, ["soon", "r", 1, "w", 0, 1, 1, 1, 1, 1, 1, 1, 1], "not an integer"),
])
def test_reader_rejects_bad_files_with_the_reason(tmp_path, header, row, message):
    path = write_features(tmp_path / "bad.csv", [row] if row else [], header=header)
    with pytest.raises(SeriesCsvError, match=message):
        read_series_csvs([path])


def test_windows_never_span_a_restart_or_a_gap(tmp_path):
    # 130 rows: segment change at 60, then a long time gap at 100 (no segment column change).
    path = write_features(tmp_path / "f.csv", feature_rows(130, seg_at=60, gap_at=100))
    w = make_windows(read_series_csvs([path]), stride=1)
    # Segments [0,60) -> 11 windows, [60,100) -> 0, [100,130) -> 0.
    assert len(w) == 11
    assert w.raw.shape == (11, 50, 8)
    assert np.all(w.end_ms - w.start_ms == 49 * 10_000)
    w5 = make_windows(read_series_csvs([path]), stride=5)
    assert len(w5) == 3


def test_window_labels_follow_the_anomaly_interval(tmp_path):
    path = write_features(tmp_path / "f.csv", feature_rows(120))
    w = make_windows(read_series_csvs([path]), stride=1)
    start = int(w.start_ms[30])
    a = series_synth.Anomaly("r1", "wan0", "burst", start, start)
    other = series_synth.Anomaly("r1", "lan0", "burst", 0, 10**15)
    labels = label_windows(w, [a, other])
    # Windows whose 50 steps include `start`: those starting at index 30-49 .. 30.
    assert list(np.nonzero(labels)[0]) == list(range(max(0, 30 - 49), 31))


def test_roc_auc_matches_hand_computed_values():
    assert roc_auc([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == 0.875  # one tie counts half
    assert np.isnan(roc_auc([0.1, 0.2], [0, 0]))
