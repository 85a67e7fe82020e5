"""Training of the series autoencoders: Adam on window MSE, early stopping on a held-out
validation split (best weights restored), training curves as PNG.

CPU-friendly by design: the seed LSTM is ~30 MFLOP per window forward, so training uses a
seeded subsample of the windows (``max_windows``) and few epochs with patience. Seeded and
deterministic on CPU with one thread; CUDA is used when available.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import series_ae


@dataclass
class SeriesTrainConfig:
    epochs: int = 40
    seed: int = 7
    batch_size: int = 64
    learning_rate: float = 2e-3
    patience: int = 5
    min_delta: float = 1e-6
    log: bool = True
    threads: int = 1


@dataclass
class SeriesTrainResult:
    variant: str
    model: nn.Module  # CPU, eval mode, best validation weights
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    early_stopped: bool
    history: list[tuple[float, float]] = field(default_factory=list)  # (train, val) per epoch
    seconds: float = 0.0


def _log(cfg: SeriesTrainConfig, msg: str) -> None:
    if cfg.log:
        print(msg, file=sys.stderr, flush=True)


@torch.no_grad()
def window_errors(model: nn.Module, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """Per-window MSE (float64) of a torch model on scaled windows [n, 50, 8]."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch], dtype=np.float32))
        d = (model(xb) - xb).double()
        out.append((d * d).mean(dim=(1, 2)).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def train_variant(variant: str, x_train: np.ndarray, x_val: np.ndarray,
                  cfg: SeriesTrainConfig, members: dict[str, nn.Module] | None = None
                  ) -> SeriesTrainResult:
    """Train one variant on scaled windows. ``ensemble`` is not trained: it averages the
    already trained ``members`` (its validation loss is reported for the record)."""
    torch.manual_seed(cfg.seed)
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads)
        torch.use_deterministic_algorithms(True)
    started = time.monotonic()
    try:
        if variant == "ensemble":
            if not members or any(m not in members for m in series_ae.MEMBERS):
                raise ValueError(f"the ensemble needs trained members {series_ae.MEMBERS}")
            model = series_ae.EnsembleAE([members[m] for m in series_ae.MEMBERS]).eval()
            val = float(window_errors(model, x_val).mean())
            return SeriesTrainResult(variant, model, 0, 0, val, False, [], 0.0)

        rng = np.random.default_rng(cfg.seed)
        model = series_ae.build(variant, "onnx").to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
        xt = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32)).to(device)
        best_val, best_epoch, since = float("inf"), 0, 0
        best_state = copy.deepcopy(model.state_dict())
        history: list[tuple[float, float]] = []
        stopped = False
        epoch = 0
        _log(cfg, f"train {variant}: {len(x_train)} windows, {len(x_val)} validation, "
                  f"device {device.type}, up to {cfg.epochs} epochs, seed {cfg.seed}")
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            perm = torch.from_numpy(rng.permutation(len(xt))).to(device)
            running = 0.0
            for i in range(0, len(xt), cfg.batch_size):
                xb = xt[perm[i : i + cfg.batch_size]]
                opt.zero_grad(set_to_none=True)
                loss = ((model(xb) - xb) ** 2).mean()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                running += float(loss.detach()) * len(xb)
            train_loss = running / len(xt)
            val_loss = float(window_errors(model, x_val).mean())
            history.append((train_loss, val_loss))
            if val_loss < best_val - cfg.min_delta:
                best_val, best_epoch, since = val_loss, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                since += 1
            _log(cfg, f"  {variant} epoch {epoch:3d} loss {train_loss:.6f} val {val_loss:.6f}"
                      f"{' *' if since == 0 else ''} ({time.monotonic() - started:.0f}s)")
            if since >= cfg.patience:
                stopped = True
                _log(cfg, f"  {variant}: early stop at epoch {epoch}, best epoch {best_epoch} "
                          f"(val {best_val:.6f})")
                break
        model.load_state_dict(best_state)
        model = model.cpu().eval()
        return SeriesTrainResult(variant, model, epoch, best_epoch, best_val, stopped, history,
                                 time.monotonic() - started)
    finally:
        if device.type == "cpu":
            torch.set_num_threads(prev_threads)
            torch.use_deterministic_algorithms(prev_det)


def save_curves(results: list[SeriesTrainResult], path: str | Path) -> Path:
    """Training and validation loss per epoch, one panel per trained variant (PNG, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [r for r in results if r.history]
    fig, axes = plt.subplots(1, max(1, len(trained)), figsize=(4.2 * max(1, len(trained)), 3.4),
                             squeeze=False)
    for ax, r in zip(axes[0], trained):
        epochs = np.arange(1, len(r.history) + 1)
        ax.plot(epochs, [h[0] for h in r.history], label="train")
        ax.plot(epochs, [h[1] for h in r.history], label="validation")
        ax.axvline(r.best_epoch, color="grey", linestyle=":", label=f"best (epoch {r.best_epoch})")
        ax.set_yscale("log")
        ax.set_title(f"{r.variant}" + (" (early stop)" if r.early_stopped else ""))
        ax.set_xlabel("epoch")
        ax.set_ylabel("window MSE (scaled)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
