"""The training loop every kind shares: reconstruction MSE, Adam, mini-batches, early stopping
on the validation split (best weights restored), optional gradient clipping. A supervised
kind (the temporal graph's edge classifier) passes targets and its loss; everything else
(devices, DDP, early stopping, timing) is the same loop.

- Device: ``auto`` is CUDA when available, else CPU. On CPU the run is seeded and deterministic
  (``torch.use_deterministic_algorithms``, ``--threads`` intra-op threads, 1 by default: the
  models are small and spinning OpenMP threads only slowed them down on a busy machine).
- Distributed (DDP): started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), every
  process builds the same seeded model, DDP averages the gradients (backend ``nccl`` on CUDA,
  ``gloo`` on CPU). Each epoch the same seeded permutation is dealt round-robin to the ranks,
  cut to equal length so every rank runs the same number of steps; the per-process batch is
  ``batch_size / world`` so the global batch stays ``batch_size``. Every rank computes the
  validation loss on the whole validation split (cheap) and rank 0's stop decision is
  broadcast, so all ranks stop together. Only rank 0 writes files and shows progress.
- Progress: a tqdm bar per model on stderr, off with ``quiet`` or when stderr is not a
  terminal (then a log line every ``log_every`` epochs unless ``quiet``).
"""

from __future__ import annotations

import copy
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


@dataclass
class FitConfig:
    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 10
    min_delta: float = 1e-7
    clip_grad: float | None = None
    seed: int = 7
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 1
    quiet: bool = False
    log_every: int = 10
    label: str = "model"


@dataclass
class FitResult:
    model: nn.Module  # CPU, eval mode, best validation weights
    epochs_run: int
    best_epoch: int
    best_val_loss: float | None
    early_stopped: bool
    history: list[tuple[float, float | None]] = field(default_factory=list)
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    cpu_seconds_per_epoch: float = 0.0  # process CPU time (this rank), per epoch
    # Wall seconds of each epoch (training pass + validation). The first one carries the
    # one-off costs (CUDA context, cuDNN/cuBLAS plans, allocator growth), so speed comparisons
    # between devices use the median of the later ones (steady_seconds_per_epoch).
    epoch_seconds: list[float] = field(default_factory=list)
    device: str = "cpu"
    world_size: int = 1


@dataclass(frozen=True)
class Dist:
    """Where this process stands in a torchrun job (world 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(want: str, dist: Dist) -> torch.device:
    if want not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {want!r}")
    if want == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device available")
    if want == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", dist.local_rank % torch.cuda.device_count())


def init_distributed(device: torch.device, dist: Dist) -> None:
    import torch.distributed as td

    if dist.world > 1 and not td.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        td.init_process_group(backend=backend)


def progress_enabled(quiet: bool, dist: Dist) -> bool:
    return not quiet and dist.main and sys.stderr.isatty()


@torch.no_grad()
def _mse(model: nn.Module, x: torch.Tensor, batch: int = 1024) -> float:
    total, count = 0.0, 0
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        total += float(((model(xb) - xb) ** 2).double().sum())
        count += xb.numel()
    return total / count if count else float("nan")


@torch.no_grad()
def _supervised_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss,
                     batch: int = 4096) -> float:
    total = 0.0
    for i in range(0, len(x), batch):
        total += float(loss(model(x[i : i + batch]), y[i : i + batch])) * len(x[i : i + batch])
    return total / len(x) if len(x) else float("nan")


def fit(model: nn.Module, x_train: np.ndarray, x_val: np.ndarray, cfg: FitConfig,
        dist: Dist | None = None, y_train: np.ndarray | None = None,
        y_val: np.ndarray | None = None, loss=None) -> FitResult:
    """Train ``model`` to reconstruct ``x_train`` (scaled samples of any shape), or, with
    targets ``y_train``/``y_val`` and ``loss(outputs, targets)``, to predict them."""
    dist = dist or dist_from_env()
    if len(x_train) == 0:
        raise ValueError("no training samples")
    device = pick_device(cfg.device, dist)
    init_distributed(device, dist)
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(max(1, cfg.threads))
    try:
        return _fit(model, x_train, x_val, cfg, dist, device, y_train, y_val, loss)
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def _fit(model, x_train, x_val, cfg: FitConfig, dist: Dist, device, y_train=None, y_val=None,
         loss=None) -> FitResult:
    from tqdm import tqdm

    rng = np.random.default_rng(cfg.seed)
    model = model.to(device)
    trained: nn.Module = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        trained = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.Adam(trained.parameters(), lr=cfg.learning_rate)
    xt = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32)).to(device)
    xv = torch.from_numpy(np.ascontiguousarray(x_val, dtype=np.float32)).to(device)
    supervised = y_train is not None
    if supervised:
        yt = torch.from_numpy(np.ascontiguousarray(y_train)).to(device)
        yv = torch.from_numpy(np.ascontiguousarray(y_val)).to(device)
    per_rank_batch = max(1, cfg.batch_size // dist.world)
    per_rank_rows = len(xt) // dist.world
    if per_rank_rows == 0:
        raise ValueError(f"{len(xt)} training samples cannot be shared by {dist.world} processes")

    best_val, best_epoch, since = float("inf"), 0, 0
    best_state = copy.deepcopy(model.state_dict())
    history: list[tuple[float, float | None]] = []
    epoch_seconds: list[float] = []
    stopped = False
    epoch = 0
    show = progress_enabled(cfg.quiet, dist)
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if (dist.main and not cfg.quiet) else (lambda m: None)
    say(f"train {cfg.label}: {len(xt)} samples, {len(xv)} validation, device {device}, "
        f"{dist.world} process(es), up to {cfg.epochs} epochs, seed {cfg.seed}")
    started, cpu_started = time.monotonic(), time.process_time()
    bar = tqdm(total=cfg.epochs, desc=cfg.label, unit="epoch", file=sys.stderr, disable=not show,
               leave=False, dynamic_ncols=True)
    try:
        for epoch in range(1, cfg.epochs + 1):
            epoch_started = time.monotonic()
            trained.train()
            perm = rng.permutation(len(xt))[: per_rank_rows * dist.world]
            mine = torch.from_numpy(perm[dist.rank :: dist.world]).to(device)
            running = 0.0
            for i in range(0, len(mine), per_rank_batch):
                rows = mine[i : i + per_rank_batch]
                xb = xt[rows]
                opt.zero_grad(set_to_none=True)
                if supervised:
                    batch_loss = loss(trained(xb), yt[rows])
                else:
                    batch_loss = ((trained(xb) - xb) ** 2).mean()
                batch_loss.backward()
                if cfg.clip_grad:
                    nn.utils.clip_grad_norm_(trained.parameters(), cfg.clip_grad)
                opt.step()
                running += float(batch_loss.detach()) * len(xb)
            seen = len(mine)
            if dist.world > 1:  # the epoch's loss over every rank's samples
                import torch.distributed as td

                tot = torch.tensor([running, float(seen)], dtype=torch.float64, device=device)
                td.all_reduce(tot)
                running, seen = float(tot[0]), int(tot[1])
            train_loss = running / max(1, seen)
            model.eval()
            if not len(xv):
                val_loss = None
            elif supervised:
                val_loss = _supervised_loss(model, xv, yv, loss)
            else:
                val_loss = _mse(model, xv)
            history.append((train_loss, val_loss))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            epoch_seconds.append(time.monotonic() - epoch_started)
            improved = False
            if val_loss is not None:
                if val_loss < best_val - cfg.min_delta:
                    best_val, best_epoch, since, improved = val_loss, epoch, 0, True
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    since += 1
            else:
                best_epoch = epoch
            stop = val_loss is not None and since >= cfg.patience
            if dist.world > 1:
                import torch.distributed as td

                flag = torch.tensor([1 if stop else 0], device=device)
                td.broadcast(flag, src=0)
                stop = bool(flag.item())
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.3g}", val=f"{val_loss:.3g}" if val_loss is not None else "-")
            if not show and cfg.log_every and (epoch % cfg.log_every == 0 or epoch in (1, cfg.epochs) or stop):
                v = f" val {val_loss:.6f}" if val_loss is not None else ""
                say(f"  {cfg.label} epoch {epoch:4d} loss {train_loss:.6f}{v}{' *' if improved else ''}"
                    f" ({time.monotonic() - started:.0f}s)")
            if stop:
                stopped = True
                say(f"  {cfg.label}: early stop at epoch {epoch}, best epoch {best_epoch} "
                    f"(val {best_val:.6f})")
                break
    finally:
        bar.close()
    seconds = time.monotonic() - started
    cpu_seconds = time.process_time() - cpu_started
    if len(xv):
        model.load_state_dict(best_state)
    model = model.cpu().eval()
    say(f"  {cfg.label}: {epoch} epochs in {seconds:.1f}s ({seconds / max(epoch, 1):.3f} s/epoch)")
    return FitResult(model=model, epochs_run=epoch, best_epoch=best_epoch,
                     best_val_loss=best_val if len(xv) else None, early_stopped=stopped,
                     history=history, seconds=seconds, seconds_per_epoch=seconds / max(epoch, 1),
                     cpu_seconds_per_epoch=cpu_seconds / max(epoch, 1),
                     epoch_seconds=epoch_seconds, device=str(device), world_size=dist.world)


def steady_seconds_per_epoch(epoch_seconds: list[float]) -> float | None:
    """Median wall seconds of the epochs after the first (None with fewer than two epochs)."""
    later = sorted(epoch_seconds[1:])
    if not later:
        return None
    mid = len(later) // 2
    return later[mid] if len(later) % 2 else (later[mid - 1] + later[mid]) / 2


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
