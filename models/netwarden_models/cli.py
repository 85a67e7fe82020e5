"""Command line: `python -m netwarden_models <subcommand> ...`."""

from __future__ import annotations

import argparse
import sys
import time

from .features import FeatureCsvError


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netwarden_models",
        description="Train, export and bundle netwarden's anomaly models.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "train-flow-ae",
        help="train the dense flow autoencoder and write a bundle",
        description="Train the dense flow autoencoder (schema flow-v1) on `netwarden features` "
        "CSVs and write model.onnx + manifest.json (docs/bundle-format.md) to --out.",
    )
    t.add_argument("--features", action="append", required=True, metavar="CSV",
                   help="feature CSV from `netwarden features` (repeatable)")
    t.add_argument("--out", required=True, metavar="BUNDLE_DIR", help="bundle directory to write")
    t.add_argument("--epochs", type=_positive_int, default=200, help="maximum epochs (default 200)")
    t.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    t.add_argument("--version", default=None, help="bundle version (default: YYYY.MM.DD.1, UTC)")
    t.add_argument("--batch-size", type=_positive_int, default=64, help="mini-batch size (default 64)")
    t.add_argument("--patience", type=_positive_int, default=20,
                   help="early-stop patience in epochs (default 20)")
    t.add_argument("--log-every", type=int, default=10, help="log every N epochs (0: quiet)")
    t.set_defaults(func=cmd_train_flow_ae)
    return p


def cmd_train_flow_ae(args: argparse.Namespace) -> int:
    # Imported here so `--help` and CSV errors stay fast.
    from .bundle import write_flow_ae_bundle
    from .features import read_feature_csvs
    from .scaling import FeatureScaling
    from .train import TrainConfig, train

    started = time.monotonic()
    table = read_feature_csvs(args.features)
    print(f"read {len(table.raw)} rows from {len(table.sources)} file(s)", file=sys.stderr)
    scaling = FeatureScaling.fit(table.raw)
    cfg = TrainConfig(
        epochs=args.epochs,
        seed=args.seed,
        batch_size=args.batch_size,
        patience=args.patience,
        log_every=max(args.log_every, 0),
        log=args.log_every > 0,
    )
    result = train(scaling.transform(table.raw), cfg)
    written = write_flow_ae_bundle(
        args.out,
        result=result,
        scaling=scaling,
        raw=table.raw,
        seed=args.seed,
        sources=table.sources,
        version=args.version,
    )
    manifest = written.manifest
    print(
        f"wrote {args.out}: version {manifest['version']}, threshold "
        f"{manifest['threshold']['value']:.6g}, {manifest['training']['epochs']} epochs, "
        f"exporter {written.exporter}, {time.monotonic() - started:.1f}s",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FeatureCsvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
