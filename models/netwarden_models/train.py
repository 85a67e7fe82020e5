"""Training loop: Adam on MSE, mini-batches, 10% validation split, early stop on patience.

Deterministic for a given seed on CPU (seeded torch + numpy, deterministic algorithms).
Uses CUDA when available (then bitwise repeatability is not promised).
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .dense_ae import DenseAutoencoder


@dataclass
class TrainConfig:
    epochs: int = 200
    seed: int = 7
    batch_size: int = 64
    learning_rate: float = 1e-3
    validation_fraction: float = 0.1
    patience: int = 20
    min_delta: float = 1e-7
    log_every: int = 10
    log: bool = True


@dataclass
class TrainResult:
    model: DenseAutoencoder  # on CPU, eval mode, best-validation weights restored
    epochs_run: int
    final_loss: float  # train-split MSE of the returned model
    best_val_loss: float | None
    train_index: np.ndarray  # rows (of the input) used for fitting
    val_index: np.ndarray  # rows held out for early stopping
    history: list[tuple[float, float | None]] = field(default_factory=list)
    device: str = "cpu"


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _log(cfg: TrainConfig, msg: str) -> None:
    if cfg.log:
        print(msg, file=sys.stderr, flush=True)


@torch.no_grad()
def _mse(model: nn.Module, x: torch.Tensor, batch: int = 8192) -> float:
    if len(x) == 0:
        return float("nan")
    total = 0.0
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        total += float(((model(xb) - xb) ** 2).sum())
    return total / x.numel()


def train(scaled: np.ndarray, cfg: TrainConfig) -> TrainResult:
    """Fit a DenseAutoencoder to reconstruct the scaled rows."""
    scaled = np.asarray(scaled, dtype=np.float32)
    if scaled.ndim != 2 or len(scaled) == 0:
        raise ValueError(f"expected scaled features [rows>0, width], got {scaled.shape}")
    if cfg.epochs < 1:
        raise ValueError("epochs must be at least 1")

    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = pick_device()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
        # The ops are tiny (8-wide): intra-op threads only add overhead, and on a busy
        # machine OpenMP spinning made an epoch ~10x slower.
        torch.set_num_threads(1)
    try:
        n = len(scaled)
        order = rng.permutation(n)
        n_val = int(round(n * cfg.validation_fraction)) if n >= 10 else 0
        val_index = np.sort(order[:n_val])
        train_index = np.sort(order[n_val:])

        x_train = torch.from_numpy(scaled[train_index]).to(device)
        x_val = torch.from_numpy(scaled[val_index]).to(device)

        model = DenseAutoencoder(scaled.shape[1]).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
        loss_fn = nn.MSELoss()

        best_val = float("inf")
        best_state = copy.deepcopy(model.state_dict())
        since_best = 0
        history: list[tuple[float, float | None]] = []
        started = time.monotonic()
        n_train = len(x_train)
        epoch = 0
        _log(cfg, f"train: {n_train} rows, {n_val} validation, device {device.type}, "
                  f"up to {cfg.epochs} epochs, seed {cfg.seed}")
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            perm = torch.from_numpy(rng.permutation(n_train)).to(device)
            running = 0.0
            for i in range(0, n_train, cfg.batch_size):
                xb = x_train[perm[i : i + cfg.batch_size]]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), xb)
                loss.backward()
                opt.step()
                running += float(loss.detach()) * len(xb)
            train_loss = running / n_train
            model.eval()
            val_loss = _mse(model, x_val) if n_val else None
            history.append((train_loss, val_loss))

            stop = False
            if val_loss is not None:
                if val_loss < best_val - cfg.min_delta:
                    best_val, since_best = val_loss, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    since_best += 1
                    stop = since_best >= cfg.patience
            if cfg.log_every and (epoch % cfg.log_every == 0 or epoch == 1 or stop):
                v = f" val {val_loss:.6f}" if val_loss is not None else ""
                _log(cfg, f"epoch {epoch:4d} loss {train_loss:.6f}{v}")
            if stop:
                _log(cfg, f"early stop at epoch {epoch} (no val improvement for "
                          f"{cfg.patience} epochs; best val {best_val:.6f})")
                break

        if n_val:
            model.load_state_dict(best_state)
        model = model.cpu().eval()
        final = _mse(model, torch.from_numpy(scaled[train_index]))
        _log(cfg, f"trained {epoch} epochs in {time.monotonic() - started:.1f}s, "
                  f"final train loss {final:.6f}")
        return TrainResult(
            model=model,
            epochs_run=epoch,
            final_loss=final,
            best_val_loss=best_val if n_val else None,
            train_index=train_index,
            val_index=val_index,
            history=history,
            device=device.type,
        )
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)
