"""The ``site-train`` command: a site's samples to a signed site bundle.

1. Read the samples (CSV from the gateway, or Parquet) and split them, seeded: ``--holdout``
   of the rows are held out for the threshold, 10 % of the rest stop the training early. Their
   ``schema`` picks the kind: `flow-v1` rows make a ``flow_ae`` bundle, `flow-v2` rows a
   ``flow_ae`` bundle of schema `flow-v2` (kind ``flow_ae_v2``); rows of both are refused.
2. Fine-tune the fleet model (``--fleet-bundle``: its weights and its scaling), or train from
   scratch (scaling fitted on this site's rows) when there are ``--scratch-rows`` rows or more
   (``--mode`` forces either).
3. Export to ONNX (parity checked in onnxruntime and tract), optionally quantize through the
   export stage (``--quantize``: whatever ``export/quantize.py`` does), then ``bundle``: the
   threshold comes from the held-out rows' errors, scored with the file that ships: SPOT at
   ``--risk`` as the gateway's learning period fits it, or 1.5x the largest held-out error when
   there are fewer than 10 peaks (again as the gateway does). Signed, checked by
   `netwarden model check`.

Writes WORK/dataset, WORK/run and WORK/site.json (rows, mode, hardware and seconds per stage)
next to the bundle.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from .. import registry
from ..data import dataset as ds
from ..data.scaling import FeatureScaling
from ..evaluate.spot import Spot
from ..kinds.base import SPLIT_NAMES, TEST, TRAIN, VAL, Samples
from ..log import say
from ..train.run import RUN_JSON, WEIGHTS, _accelerator_name
from ..train.trainer import FitConfig, fit, seed_everything
from . import samples as site_samples
from .args import DEFAULT_FLEET_BUNDLE, DEFAULT_FLEET_BUNDLE_V2

KINDS = {"flow-v1": "flow_ae", "flow-v2": "flow_ae_v2"}
FLEET_BUNDLES = {"flow-v1": DEFAULT_FLEET_BUNDLE, "flow-v2": DEFAULT_FLEET_BUNDLE_V2}

MIN_ROWS = 50
MAX_RATIO = 1.5  # the gateway's rule when SPOT has too few peaks (pipeline/learning/mod.rs)


def site_version(now: dt.datetime | None = None) -> str:
    """Dotted and newer for every later training, even on the same day."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y.%m.%d}.{now.hour * 3600 + now.minute * 60 + now.second + 1}"


def site_threshold(risk: float):
    """The bundle's threshold from held-out errors: SPOT, else 1.5x the largest."""

    def pick(errors: np.ndarray, source: str) -> dict:
        try:
            s = Spot(q=risk, level=0.98).fit(errors)
            return {"value": float(s.z), "method": "spot", "n": int(len(errors)),
                    "source": source, "spot": {k: v for k, v in s.summary().items() if k != "z_q"}}
        except ValueError:
            top = float(np.max(errors))
            return {"value": top * MAX_RATIO, "method": "heldout_max_x1.5", "n": int(len(errors)),
                    "source": source}

    return pick


def split_rows(n: int, holdout: float, seed: int) -> np.ndarray:
    if not 0 < holdout < 0.9:
        raise ValueError("--holdout must be in (0, 0.9)")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * holdout)))
    n_val = max(1, int(round((n - n_test) * 0.1)))
    split = np.full(n, TRAIN, dtype=np.int8)
    split[order[:n_test]] = TEST
    split[order[n_test : n_test + n_val]] = VAL
    return split


def fleet_start(bundle: Path, kind) -> tuple[torch.nn.Module, FeatureScaling, dict]:
    """The fleet model's weights (the fp32 ONNX initializers carry the state dict's names) and
    its scaling."""
    import onnx
    from onnx import numpy_helper

    manifest = json.loads((bundle / "manifest.json").read_text())
    want = getattr(kind, "manifest_kind", kind.name)
    if manifest.get("kind") != want:
        raise ValueError(f"{bundle}: a {manifest.get('kind')} bundle, not {want}")
    schema = manifest.get("features", {}).get("schema")
    if schema != kind.schema:
        raise ValueError(f"{bundle}: the fleet bundle reads {schema} rows and the samples are "
                         f"{kind.schema}: fine-tune a {kind.schema} bundle (--fleet-bundle), or "
                         "--mode scratch")
    variant = manifest.get("training", {}).get("variant", kind.default_variant)
    model = kind.build(variant)
    state = model.state_dict()
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(bundle / "model.onnx")).graph.initializer}
    missing = [k for k in state if k not in inits or tuple(inits[k].shape) != tuple(state[k].shape)]
    if missing:
        raise ValueError(f"{bundle}: cannot read the fp32 weights {missing[:3]} from model.onnx "
                         "(an int8 bundle?); use --mode scratch")
    model.load_state_dict({k: torch.from_numpy(np.array(inits[k], dtype=np.float32)) for k in state})
    scaling = FeatureScaling.from_manifest(manifest["features"]["scaling"])
    return model, scaling, manifest


def hardware() -> dict:
    cuda = torch.cuda.is_available()
    return {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "cuda": torch.cuda.get_device_name(0) if cuda else None, "torch": torch.__version__}


def site_train(args) -> dict:
    t0 = time.monotonic()
    stages: dict[str, float] = {}
    out = Path(args.out)
    src = Path(args.samples)
    rows = site_samples.read(src)
    kind = registry.get(KINDS[rows.schema])
    if getattr(args, "fleet_bundle", None) is None:
        args.fleet_bundle = str(FLEET_BUNDLES[rows.schema])
    work = Path(args.work or f"{out}.work")
    work.mkdir(parents=True, exist_ok=True)
    n = len(rows)
    if n < MIN_ROWS:
        raise ValueError(f"{src}: {n} rows; a site model needs at least {MIN_ROWS}")
    split = split_rows(n, args.holdout, args.seed)
    samples = Samples(raw=rows.raw, labels=np.zeros(n, dtype=np.int8), split=split,
                      time_ms=rows.ts_ms, source=np.zeros(n, dtype=np.int32), labelled=False,
                      info={"label_rule": "site samples, all taken as normal",
                            "site": args.site})
    source = {"file": src.name, "sha256": ds.sha256_file(src), "rows": n, "label": "normal",
              "anomalous_rows": 0}
    ds.write(work / "dataset", kind, samples, [source], args.seed)

    mode = args.mode
    if mode == "auto":
        mode = "scratch" if n >= args.scratch_rows else "finetune"
    if mode == "finetune":
        model, scaling, fleet = fleet_start(Path(args.fleet_bundle), kind)
        start = {"from": f"{fleet['name']} {fleet['version']}"}
    else:
        seed_everything(args.seed)
        model, scaling = kind.build(kind.default_variant), kind.fit_scaling(rows.raw[split == TRAIN])
        start = {"from": "scratch"}
    stages["prepare_s"] = time.monotonic() - t0
    d = kind.defaults
    cfg = FitConfig(epochs=args.epochs or d.epochs, batch_size=args.batch_size or d.batch_size,
                    learning_rate=args.lr or d.learning_rate, patience=args.patience or d.patience,
                    clip_grad=d.clip_grad, seed=args.seed, device=args.device,
                    threads=args.threads, quiet=args.quiet, log_every=0,
                    label=f"site {args.site} ({mode})")
    t = time.monotonic()
    result = fit(model, kind.scale(scaling, rows.raw[split == TRAIN]),
                 kind.scale(scaling, rows.raw[split == VAL]), cfg)
    stages["train_s"] = time.monotonic() - t
    run_dir = work / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save(result.model.state_dict(), run_dir / WEIGHTS)
    run = {
        "format": 1, "kind": kind.name, "variant": kind.default_variant,
        "dataset": str((work / "dataset").resolve()), "dataset_sources": [source],
        "scaling": scaling.to_manifest(),
        "training": {
            "samples": int(np.sum(split == TRAIN)), "validation_samples": int(np.sum(split == VAL)),
            "epochs": result.epochs_run, "max_epochs": cfg.epochs, "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss, "early_stopped": result.early_stopped,
            "seed": cfg.seed, "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate,
            "patience": cfg.patience, "device": result.device, "world_size": result.world_size,
            "threads": cfg.threads, "seconds": round(result.seconds, 3),
            "seconds_per_epoch": round(result.seconds_per_epoch, 4),
            "accelerator": _accelerator_name(result.device), "site": args.site, "mode": mode,
            **start,
        },
        "history": [[a, b] for a, b in result.history], "cv": None,
    }
    (run_dir / RUN_JSON).write_text(json.dumps(run, indent=2) + "\n")

    from ..export.export import export

    t = time.monotonic()
    export(argparse.Namespace(run=str(run_dir), form=None, out=None, quiet=True))
    precision = "fp32"
    if args.quantize:
        from ..export.quantize import quantize

        # Every field the quantize command reads, before and after static int8 (the
        # export stage decides fp32 or int8 by its own rule).
        quantize(argparse.Namespace(run=str(run_dir), bundle=None, dataset=None, out=None,
                                    compare_bundles=None, calibration="minmax", rounds=5,
                                    budget_s=0.2, quiet=True))
        precision = "auto"
    stages["export_s"] = time.monotonic() - t

    from ..bundle.write import bundle

    t = time.monotonic()
    version = args.version or site_version()
    manifest = bundle(argparse.Namespace(
        run=str(run_dir), selection=None, out=str(out), precision=precision,
        name=f"flow-ae-site-{args.site}", version=version,
        data_note=f"site {args.site}: {n} sampled rows ({src.name}), {mode} from {start['from']}",
        sign_key=args.sign_key, no_gateway_check=args.no_gateway_check, quiet=args.quiet,
        threshold="spot", quantile=0.95, spot_q=args.risk, spot_level=0.98,
        threshold_split=TEST, threshold_fn=site_threshold(args.risk)))
    stages["bundle_s"] = time.monotonic() - t
    report = {
        "site": args.site, "samples": str(src), "rows": n, "schema": rows.schema,
        "split": {SPLIT_NAMES[s]: int(np.sum(split == s)) for s in (TRAIN, VAL, TEST)},
        "mode": mode, **start, "epochs": result.epochs_run, "device": result.device,
        "hardware": hardware(), "bundle": str(out), "version": manifest["version"],
        "precision": manifest["model"]["precision"], "threshold": manifest["threshold"],
        "seconds": {k: round(v, 3) for k, v in stages.items()}
        | {"total_s": round(time.monotonic() - t0, 3)},
    }
    (work / "site.json").write_text(json.dumps(report, indent=2) + "\n")
    say(args.quiet, f"site {args.site}: {n} {rows.schema} rows, {mode}, {result.epochs_run} epochs on "
        f"{result.device} ({report['hardware']['cuda'] or report['hardware']['cpu']}), threshold "
        f"{manifest['threshold']['value']:.6g} ({manifest['threshold']['method']} on "
        f"{manifest['threshold']['n']} held-out rows), {report['seconds']['total_s']:.1f} s: {out}")
    return report
