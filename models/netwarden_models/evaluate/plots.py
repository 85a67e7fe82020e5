"""PNG figures of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves(history, best_epoch: int, title: str, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ep = np.arange(1, len(history) + 1)
    ax.plot(ep, [h[0] for h in history], label="train")
    if history and history[0][1] is not None:
        ax.plot(ep, [h[1] for h in history], label="validation")
    if best_epoch:
        ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
    ax.set_yscale("log")
    ax.set(title=title, xlabel="epoch", ylabel="MSE (scaled)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def error_histogram(train_err, test_err, test_labels, threshold: float, method: str,
                    path: Path) -> Path:
    """Reconstruction errors (log x axis) of training samples and of normal / anomalous test
    samples, with the threshold."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    pos = [np.asarray(v, dtype=np.float64) for v in (train_err, test_err) if len(v)]
    allv = np.concatenate(pos) if pos else np.array([threshold])
    lo = max(float(allv[allv > 0].min()) if np.any(allv > 0) else 1e-9, 1e-12)
    hi = max(float(allv.max()), threshold) * 1.05
    bins = np.geomspace(lo, hi, 60)
    ax.hist(np.clip(train_err, lo, None), bins=bins, alpha=0.5, density=True, label="train")
    if len(test_err):
        labels = np.asarray(test_labels).astype(bool)
        if np.any(~labels):
            ax.hist(np.clip(test_err[~labels], lo, None), bins=bins, alpha=0.5, density=True,
                    label="test normal")
        if np.any(labels):
            ax.hist(np.clip(test_err[labels], lo, None), bins=bins, alpha=0.6, density=True,
                    label="test anomalous")
    ax.axvline(threshold, color="red", linestyle="--", label=f"threshold ({method})")
    ax.set_xscale("log")
    ax.set(xlabel="reconstruction error (MSE)", ylabel="density", title="error histogram")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def traffic_with_anomalies(time_ms, traffic, errors, labels, threshold: float, traffic_name: str,
                           path: Path) -> Path:
    """Top: traffic over time, detected anomalies in red, labelled ones circled.
    Bottom: the error over time against the threshold."""
    plt = _plt()
    t = (np.asarray(time_ms, dtype=np.float64) - float(np.min(time_ms))) / 1000.0 if len(time_ms) else np.zeros(0)
    order = np.argsort(t, kind="stable")
    t, traffic, errors = t[order], np.asarray(traffic)[order], np.asarray(errors)[order]
    labels = np.asarray(labels)[order].astype(bool)
    flagged = errors > threshold
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    a.plot(t, traffic, ".", markersize=2, color="tab:blue", label=traffic_name)
    a.plot(t[flagged], traffic[flagged], "o", markersize=3, color="red", label="detected")
    if labels.any():
        a.plot(t[labels], traffic[labels], "o", markersize=6, mfc="none", color="black",
               label="labelled anomalous")
    a.set_yscale("symlog")
    a.set(ylabel=traffic_name, title="traffic with anomalies (test split)")
    a.legend(fontsize=8, loc="upper right")
    b.plot(t, errors, ".", markersize=2, color="tab:gray")
    b.axhline(threshold, color="red", linestyle="--", label="threshold")
    b.set_yscale("log")
    b.set(xlabel="seconds from the first test sample", ylabel="error")
    b.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
