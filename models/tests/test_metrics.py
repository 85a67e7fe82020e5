"""Metrics against hand-computed cases."""

import math

import numpy as np
import pytest

from netwarden_models.evaluate import metrics

# 10 samples: labels and scores; threshold 0.5 -> predicted = score > 0.5
LABELS = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
SCORES = [0.9, 0.8, 0.4, 0.6, 0.7, 0.1, 0.2, 0.3, 0.5, 0.05]
# predicted: 1 1 0 1 1 0 0 0 0(0.5 is not > 0.5) 0
# tp = 3, fn = 1, fp = 1, tn = 5


def test_confusion_and_ratios_by_hand():
    r = metrics.classification_report(SCORES, LABELS, 0.5)
    assert r["confusion_matrix"]["rows_true_cols_predicted"] == [[5, 1], [1, 3]]
    assert (r["confusion_matrix"]["tp"], r["confusion_matrix"]["fp"]) == (3, 1)
    assert r["accuracy"] == pytest.approx(8 / 10)
    assert r["precision"] == pytest.approx(3 / 4)
    assert r["recall"] == pytest.approx(3 / 4)
    assert r["f1"] == pytest.approx(0.75)
    # normal class: precision 5/6, recall 5/6 -> F1 5/6; macro = (0.75 + 5/6) / 2
    assert r["macro_f1"] == pytest.approx((0.75 + 5 / 6) / 2)
    assert r["false_positive_rate"] == pytest.approx(1 / 6)
    assert (r["samples"], r["positives"], r["threshold"]) == (10, 4, 0.5)


def test_roc_auc_by_hand():
    # pairs (pos, neg) = 4 * 6 = 24; positives 0.9 and 0.8 beat all 6 negatives (12),
    # 0.6 beats 5 (not 0.7), 0.4 beats 4 (0.1, 0.2, 0.3, 0.05): 12 + 5 + 4 = 21
    assert metrics.roc_auc(SCORES, LABELS) == pytest.approx(21 / 24)
    # ties count a half: one positive and one negative with the same score
    assert metrics.roc_auc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert metrics.roc_auc([0.1, 0.5, 0.5, 0.9], [0, 1, 0, 1]) == pytest.approx((2 + 0.5 + 1) / 4)
    assert metrics.roc_auc([1, 2, 3], [1, 0, 0]) == 0.0
    assert math.isnan(metrics.roc_auc([1, 2], [0, 0]))


def test_roc_curve_area_equals_auc():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    s = rng.normal(size=300) + y + np.round(rng.random(300), 1)  # some ties
    fpr, tpr = metrics.roc_curve(s, y)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc(s, y), abs=1e-12)


def test_zero_division_is_zero():
    r = metrics.classification_report([0.1, 0.2], [0, 0], 1.0)
    assert (r["precision"], r["recall"], r["f1"]) == (0.0, 0.0, 0.0)
    assert r["accuracy"] == 1.0 and r["macro_f1"] == pytest.approx(0.5)


def test_quantile_threshold_and_rank_correlation():
    assert metrics.quantile_threshold(np.arange(101), 0.95) == pytest.approx(95.0)
    assert metrics.quantile_threshold([1.0, 2.0], 0.5) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        metrics.quantile_threshold([], 0.95)
    assert metrics.rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert metrics.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # d = ranks differ by swapping 2 and 3: rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert metrics.rank_correlation([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
