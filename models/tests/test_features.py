import numpy as np
import pytest

from conftest import FEATURES, HEADER, synthetic_rows, write_csv
from netwarden_models.cli import main
from netwarden_models.features import CSV_HEADER, FEATURE_NAMES, FeatureCsvError, read_feature_csv


def test_schema_matches_the_doc():
    assert list(CSV_HEADER) == HEADER
    assert list(FEATURE_NAMES) == FEATURES


def test_reads_raw_features(tmp_path):
    rows = synthetic_rows(20)
    raw = read_feature_csv(write_csv(tmp_path / "f.csv", rows))
    assert raw.shape == (20, 8) and raw.dtype == np.float64
    np.testing.assert_array_equal(raw, np.array([f for _, f in rows], dtype=float))


def test_wrong_header_fails_clearly(tmp_path, capsys):
    header = list(HEADER)
    header[11], header[12] = header[12], header[11]  # swap duration and mean_ps
    path = write_csv(tmp_path / "bad.csv", synthetic_rows(5), header=header)
    with pytest.raises(FeatureCsvError) as e:
        read_feature_csv(path)
    msg = str(e.value)
    assert "bad.csv" in msg and "flow-v1" in msg
    assert "column 12 is 'bidirectional_mean_ps', expected 'bidirectional_duration_ms'" in msg

    rc = main(["train-flow-ae", "--features", str(path), "--out", str(tmp_path / "b")])
    assert rc == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_missing_column_and_bad_value(tmp_path):
    with pytest.raises(FeatureCsvError, match="column 17 is '<missing>'"):
        read_feature_csv(write_csv(tmp_path / "short.csv", [], header=HEADER[:-1]))
    rows = synthetic_rows(3)
    rows[1][1][3] = "n/a"
    with pytest.raises(FeatureCsvError, match=r"v\.csv:3: bidirectional_mean_ps is 'n/a'"):
        read_feature_csv(write_csv(tmp_path / "v.csv", rows))
    with pytest.raises(FeatureCsvError, match="no data rows"):
        read_feature_csv(write_csv(tmp_path / "empty.csv", []))
