"""Thresholds: the score above which a sample is anomalous, from reference errors (the
normal samples of the kind's ``threshold_split``). The manifest's ``threshold`` section."""

from __future__ import annotations

import numpy as np

from . import metrics
from .spot import Spot


def add_threshold_args(p) -> None:
    g = p.add_argument_group("threshold")
    g.add_argument("--threshold", choices=("quantile", "spot"), default="quantile",
                   help="quantile of the reference errors (default), or SPOT (extreme values)")
    g.add_argument("--quantile", type=float, default=0.95, help="for --threshold quantile (0.95)")
    g.add_argument("--spot-q", type=float, default=1e-3,
                   help="SPOT risk: probability that a normal score exceeds the threshold (1e-3)")
    g.add_argument("--spot-level", type=float, default=0.98,
                   help="SPOT initial threshold: this quantile of the reference errors (0.98)")


def threshold_of(scores: np.ndarray, args, split_name: str) -> dict:
    """The manifest's ``threshold`` section for these reference scores."""
    method_for_split = {"train": "train_error_quantile",
                        "val": "heldout_normal_window_quantile"}
    if args.threshold == "spot":
        s = Spot(q=args.spot_q, level=args.spot_level).fit(scores)
        return {"value": s.z, "method": "spot", "n": int(len(scores)), "source": split_name,
                "spot": {k: v for k, v in s.summary().items() if k != "z_q"}}
    return {"value": metrics.quantile_threshold(scores, args.quantile),
            "method": method_for_split.get(split_name, f"{split_name}_error_quantile"),
            "quantile": args.quantile, "n": int(len(scores)), "source": split_name}
