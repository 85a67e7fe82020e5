import math

import numpy as np
import pytest

from netwarden_models.features import FEATURE_NAMES
from netwarden_models.data.scaling import FeatureScaling


def test_fit_and_transform_match_the_doc_formula():
    # a: log1p, varies; b: no log1p, constant; c: log1p, constant.
    raw = np.array([[0.0, 5.0, 3.0], [math.e - 1.0, 5.0, 3.0]])
    s = FeatureScaling.fit(raw, names=("a", "b", "c"), log1p=(True, False, True))
    assert s.min == pytest.approx((0.0, 5.0, math.log(4.0)))
    assert s.max == pytest.approx((1.0, 5.0, math.log(4.0)))

    out = s.transform(np.array([
        [0.0, 5.0, 3.0],
        [math.e - 1.0, 6.0, 3.0],
        [math.e**2 - 1.0, 7.0, -2.0],  # above the training range; negative input to log1p
    ]))
    expected = np.array([
        [0.0, 0.0, 0.0],
        [1.0, 1.0, 0.0],  # constant feature: range 1.0, so (6 - 5) / 1
        [2.0, 2.0, -math.log(4.0)],  # no clipping; log1p(max(-2, 0)) = 0
    ])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_range_rule_threshold_is_1e_minus_6():
    wide = FeatureScaling(names=("x",), log1p=(False,), min=(5.0,), max=(5.0 + 2e-6,))
    assert wide.transform(np.array([[5.0 + 1e-6]]))[0, 0] == pytest.approx(0.5, rel=1e-6)
    narrow = FeatureScaling(names=("x",), log1p=(False,), min=(5.0,), max=(5.0 + 5e-7,))
    assert narrow.transform(np.array([[7.0]]))[0, 0] == pytest.approx(2.0, rel=1e-12)


def test_flow_v1_defaults_and_manifest_roundtrip():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 100, size=(50, 8)).astype(float)
    s = FeatureScaling.fit(raw)
    assert s.names == FEATURE_NAMES
    # every counter is log1p'd; the 0/1 SYN flag is not
    assert s.log1p == tuple(n != "tcp_syn_without_ack" for n in FEATURE_NAMES)
    entries = s.to_manifest()
    assert [set(e) for e in entries] == [{"name", "log1p", "min", "max"}] * 8
    assert FeatureScaling.from_manifest(entries) == s
    scaled = s.transform(raw)
    assert scaled.min() == pytest.approx(0.0) and scaled.max() == pytest.approx(1.0)
