"""Detection metrics in plain numpy, as the seed notebooks report them.

Labels are 0 (normal) / 1 (anomalous); a sample is *predicted* anomalous when its score
(reconstruction error) is strictly above the threshold, the same rule the gateway applies
(`error > threshold.value`). Ratios whose denominator is zero are 0.0 (scikit-learn's
``zero_division=0``), except ROC-AUC, which is NaN when only one class is present.
"""

from __future__ import annotations

import numpy as np


def confusion(labels, predicted) -> dict[str, int]:
    """Counts of true/false positives/negatives: {"tp", "fp", "tn", "fn"}."""
    y = np.asarray(labels).astype(bool)
    p = np.asarray(predicted).astype(bool)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and predictions {p.shape} differ in shape")
    return {
        "tp": int(np.sum(y & p)),
        "fp": int(np.sum(~y & p)),
        "tn": int(np.sum(~y & ~p)),
        "fn": int(np.sum(y & ~p)),
    }


def _div(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def _f1(p: float, r: float) -> float:
    return _div(2 * p * r, p + r)


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney U) formula, ties averaged."""
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # Average rank of each group of tied scores (1-based).
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) at every distinct score, from (0,0) to (1,1)."""
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    order = np.argsort(-scores, kind="mergesort")
    s, yy = scores[order], y[order]
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(yy)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fps / n_neg], np.r_[0.0, tps / n_pos]


def classification_report(scores, labels, threshold: float) -> dict:
    """Every figure the evaluation report holds, for one threshold."""
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    pred = scores > threshold
    c = confusion(y, pred)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    precision, recall = _div(tp, tp + fp), _div(tp, tp + fn)
    # The "normal" class, for macro F1: its precision/recall with the roles swapped.
    npv, specificity = _div(tn, tn + fn), _div(tn, tn + fp)
    f1_pos, f1_neg = _f1(precision, recall), _f1(npv, specificity)
    return {
        "samples": int(len(y)),
        "positives": int(y.sum()),
        "threshold": float(threshold),
        "accuracy": _div(tp + tn, len(y)),
        "precision": precision,
        "recall": recall,
        "f1": f1_pos,
        "macro_f1": (f1_pos + f1_neg) / 2.0,
        "false_positive_rate": _div(fp, fp + tn),
        "roc_auc": roc_auc(scores, y),
        "confusion_matrix": {"labels": ["normal", "anomalous"],
                             "rows_true_cols_predicted": [[tn, fp], [fn, tp]], **c},
    }


def quantile_threshold(train_scores, quantile: float = 0.95) -> float:
    """The ``quantile`` of the training scores (numpy's default linear interpolation)."""
    s = np.asarray(train_scores, dtype=np.float64)
    if s.size == 0:
        raise ValueError("no training scores to take a quantile of")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return float(np.quantile(s, quantile))


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation (ties by average rank): how much two scorers agree on order."""
    def ranks(x):
        x = np.asarray(x, dtype=np.float64)
        order = np.argsort(x, kind="mergesort")
        _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
        r = np.empty(len(x))
        r[order] = np.repeat(first + (counts - 1) / 2.0, counts)
        return r

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den else 1.0
