"""Command line: `python -m netwarden_models <subcommand> ...`."""

from __future__ import annotations

import argparse
import sys
import time

from .features import FeatureCsvError
from .series_data import SeriesCsvError


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
    _add_series_commands(sub)
    _add_pipeline_commands(sub)
    return p


def _common(p: argparse.ArgumentParser, seed: int | None = 7) -> None:
    if seed is not None:
        p.add_argument("--seed", type=int, default=seed, help=f"random seed (default {seed})")
    p.add_argument("--quiet", action="store_true", help="no progress bars or progress lines")


def _add_pipeline_commands(sub) -> None:
    """The pipeline for every model kind (see models/README.md, "The pipeline")."""
    from . import kinds

    d = sub.add_parser(
        "dataset", help="build a dataset directory from gateway feature CSVs (split, labels)",
        description="Read `netwarden features` output (or run the gateway on captures/rates), "
        "label it, split it into train/val/test and write DIR/dataset.json + DIR/data.npz.")
    d.add_argument("--kind", required=True, choices=kinds.names())
    d.add_argument("--out", required=True, metavar="DATASET_DIR")
    _common(d)
    for name in kinds.names():
        kinds.get(name).add_dataset_args(d)
    d.set_defaults(func=_pipeline("build_dataset"))

    t = sub.add_parser(
        "train", help="train one model of a dataset's kind into a run directory (DDP with torchrun)",
        description="Train (reconstruction MSE, Adam, early stopping on the validation split) and "
        "write RUN/run.json, RUN/model.pt, RUN/curves.png. Under `torchrun --nproc_per_node N "
        "-m netwarden_models train ...` the processes train one model with DDP (gloo on CPU, "
        "nccl on CUDA). --folds K first runs stratified K-fold cross-validation (RUN/cv/).")
    t.add_argument("--dataset", required=True, metavar="DATASET_DIR")
    t.add_argument("--out", required=True, metavar="RUN_DIR")
    t.add_argument("--variant", help="model variant (flow_ae: seed; series_lstm: seed, edge, "
                   "attention, ensemble; default: the kind's)")
    t.add_argument("--epochs", type=_positive_int, help="maximum epochs (default: the kind's)")
    t.add_argument("--batch-size", type=_positive_int, help="global mini-batch size")
    t.add_argument("--lr", type=float, help="Adam learning rate")
    t.add_argument("--patience", type=_positive_int, help="early-stop patience in epochs")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--threads", type=_positive_int, default=1, help="CPU intra-op threads (1)")
    t.add_argument("--log-every", type=int, default=10,
                   help="without a progress bar: a line every N epochs (0: none)")
    t.add_argument("--folds", type=int, default=0, help="K-fold cross-validation first (K >= 2)")
    t.add_argument("--cv-only", action="store_true", help="with --folds: no final model")
    _common(t)
    from .pipeline import add_threshold_args
    add_threshold_args(t)
    t.set_defaults(func=_pipeline("train"))

    e = sub.add_parser(
        "evaluate", help="metrics, threshold, error histogram and traffic plot of a run",
        description="Score the dataset's threshold split and test split; write report.json, "
        "report.csv, error-histogram.png, traffic-anomalies.png to --out (default RUN/eval).")
    e.add_argument("--run", required=True, metavar="RUN_DIR")
    e.add_argument("--dataset", help="another dataset of the same kind (default: the run's)")
    e.add_argument("--onnx", metavar="FILE", help="score with this ONNX file (onnxruntime)")
    e.add_argument("--out", metavar="DIR")
    _common(e, seed=None)
    add_threshold_args(e)
    e.set_defaults(func=_pipeline("evaluate"))

    x = sub.add_parser("export", help="export a run's model to ONNX (RUN/model-fp32.onnx)",
                       description="dynamo exporter, one file, dynamic batch; parity checked "
                       "against torch (onnxruntime) and in tract at batch 1 and 8.")
    x.add_argument("--run", required=True, metavar="RUN_DIR")
    x.add_argument("--form", help="series_lstm: onnx (default) or unrolled")
    x.add_argument("--out", metavar="ONNX")
    _common(x, seed=None)
    x.set_defaults(func=_ship("export"))

    q = sub.add_parser("quantize", help="dynamic int8 (MatMul/Gemm) and the measured fp32/int8 choice",
                       description="Write RUN/model-int8.onnx and RUN/quantize.json: tract load, "
                       "parity, speed at batch 1 and 8, size and ranking; the choice that "
                       "`bundle --precision auto` ships.")
    q.add_argument("--run", required=True, metavar="RUN_DIR")
    q.add_argument("--rounds", type=_positive_int, default=5)
    q.add_argument("--budget-s", type=float, default=0.2, help="timing seconds per case")
    _common(q, seed=None)
    q.set_defaults(func=_ship("quantize"))

    b = sub.add_parser(
        "bundle", help="write a bundle from a run (threshold, golden vectors), sign and check it",
        description="Write model.onnx + manifest.json (docs/bundle-format.md), verify in "
        "onnxruntime and tract, sign with --sign-key, run `netwarden model check` (unless "
        "--no-gateway-check) and only then move it to --out.")
    b.add_argument("--run", required=True, metavar="RUN_DIR")
    b.add_argument("--out", required=True, metavar="BUNDLE_DIR")
    b.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto",
                   help="auto: what quantize chose (fp32 without quantize.json)")
    b.add_argument("--name", help="bundle name (default flow-ae / series-lstm)")
    b.add_argument("--version", help="bundle version (default YYYY.MM.DD.1, UTC)")
    b.add_argument("--data-note", help="a line about the training data for the manifest")
    b.add_argument("--sign-key", metavar="KEY", help="ed25519 PKCS#8 PEM private key")
    b.add_argument("--no-gateway-check", action="store_true",
                   help="skip `netwarden model check` (no gateway binary at hand)")
    _common(b, seed=None)
    add_threshold_args(b)
    b.set_defaults(func=_ship("bundle"))

    k = sub.add_parser("keygen", help="new ed25519 signing key: OUT.key (0600) and OUT.pub",
                       description="Prints the public key (base64) for the gateways' "
                       "[bundles] trusted_keys. See docs/keys.md.")
    k.add_argument("--out", required=True, metavar="DIR/NAME")
    k.add_argument("--force", action="store_true", help="overwrite existing files")
    _common(k, seed=None)
    k.set_defaults(func=_ship("keygen"))

    s = sub.add_parser("sign", help="sign a bundle's manifest.json (writes manifest.sig)")
    s.add_argument("--key", required=True, metavar="KEY")
    s.add_argument("bundle", metavar="BUNDLE_DIR")
    _common(s, seed=None)
    s.set_defaults(func=_ship("sign"))

    c = sub.add_parser("check", help="check a bundle: Python (hash, golden, signature) and "
                       "`netwarden model check` (fails if it fails)")
    c.add_argument("bundle", metavar="BUNDLE_DIR")
    c.add_argument("--key", metavar="PUB", help="public key: .pub file or base64; the "
                   "signature must verify with it")
    c.add_argument("--no-gateway-check", action="store_true")
    _common(c, seed=None)
    c.set_defaults(func=_ship("check"))

    g = sub.add_parser("golden", help="regenerate the Rust/Python golden feature files "
                       "(models/tests/data/golden-*.csv) with the gateway binary")
    _common(g, seed=None)
    g.set_defaults(func=cmd_golden)


def cmd_golden(args: argparse.Namespace) -> int:
    from . import golden

    return golden.main(args)


def _pipeline(name: str):
    def run(args: argparse.Namespace) -> int:
        from . import pipeline

        getattr(pipeline, name)(args)
        return 0
    return run


def _ship(name: str):
    def run(args: argparse.Namespace) -> int:
        from . import ship

        rc = getattr(ship, name)(args)
        return rc if isinstance(rc, int) else 0
    return run


def _add_series_commands(sub) -> None:
    """Subcommands of the series (LSTM autoencoder) family; see docs/models.md."""
    g = sub.add_parser(
        "synth-series-rates",
        help="write synthetic NORMAL interface rates (and injected anomalies) as a rates CSV",
        description="Seeded synthetic interface rates (ts_ms,target,if_index,if_name,in_bps,"
        "out_bps; empty = unknown) for `netwarden features --series`. Anomalies are injected "
        "only into the last --eval-days and listed in --labels. Prints the evaluation start "
        "(ms) on stdout.",
    )
    g.add_argument("--out", required=True, metavar="RATES_CSV")
    g.add_argument("--labels", metavar="LABELS_CSV", help="where to list injected anomalies")
    g.add_argument("--days", type=float, default=14.0, help="days of 10 s steps (default 14)")
    g.add_argument("--eval-days", type=float, default=3.0,
                   help="final days that may hold injected anomalies (default 3; 0: none)")
    g.add_argument("--anomalies-per-kind", type=int, default=3,
                   help="per interface and kind (burst, drop, exfil) (default 3)")
    g.add_argument("--seed", type=int, default=11)
    g.set_defaults(func=cmd_synth_series_rates)

    t = sub.add_parser(
        "train-series",
        help="train the series LSTM family, export fp32/int8 ONNX and evaluate into a run dir",
        description="Train the series autoencoders (seed, edge, attention; ensemble = their "
        "average; conv, the convolutional one) on `netwarden features --series` CSVs, with "
        "early stopping, curves as PNG, ONNX export in both LSTM forms (one file for conv), "
        "int8 copies, tract parity and ROC-AUC on labelled evaluation windows. Writes everything to --out (see series_run.py).",
    )
    t.add_argument("--features", action="append", required=True, metavar="CSV")
    t.add_argument("--out", required=True, metavar="RUN_DIR")
    t.add_argument("--labels", metavar="LABELS_CSV", help="injected anomalies (for ROC-AUC)")
    t.add_argument("--eval-start-ms", type=int, default=None,
                   help="windows from here on are evaluation only (default: none)")
    t.add_argument("--val-days", type=float, default=1.0,
                   help="days before the evaluation part held out for validation (default 1)")
    t.add_argument("--variants", default="seed,edge,attention,ensemble,conv",
                   help="series_ae.VARIANTS to train (default: all)")
    t.add_argument("--forms", default="onnx,unrolled", help="LSTM forms to export")
    t.add_argument("--epochs", type=_positive_int, default=40)
    t.add_argument("--patience", type=_positive_int, default=5)
    t.add_argument("--seed", type=int, default=7)
    t.add_argument("--max-train-windows", type=_positive_int, default=3000)
    t.add_argument("--max-val-windows", type=_positive_int, default=600)
    t.add_argument("--train-stride", type=_positive_int, default=10)
    t.add_argument("--eval-stride", type=_positive_int, default=20)
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_train_series)

    b = sub.add_parser(
        "bench-series",
        help="per-window latency of series ONNX files: tract next to onnxruntime",
        description="See netwarden_models/series_bench.py.",
    )
    b.add_argument("files", nargs="+", help="ONNX files or a run directory")
    b.add_argument("--batches", default="1,8,32", help="comma-separated (default 1,8,32)")
    b.add_argument("--rounds", type=_positive_int, default=7)
    b.add_argument("--json", metavar="FILE")
    b.set_defaults(func=cmd_bench_series)

    u = sub.add_parser(
        "bundle-series",
        help="write a series_lstm bundle from a run dir (variant/precision chosen by the bench)",
        description="Write model.onnx + manifest.json for one file of a run. With --bench, the "
        "variant, LSTM form and precision are chosen by the rule in series_select.py from the "
        "run's ROC-AUC and the bench's tract figures; otherwise name them.",
    )
    u.add_argument("--run", required=True, metavar="RUN_DIR")
    u.add_argument("--out", required=True, metavar="BUNDLE_DIR")
    u.add_argument("--bench", metavar="BENCH_JSON", help="bench-series --json output")
    u.add_argument("--variant")
    u.add_argument("--form", default="onnx")
    u.add_argument("--precision", default="fp32")
    u.add_argument("--version", default=None)
    u.add_argument("--data-note", default="synthetic interface rates (series_synth.py) through "
                   "`netwarden features --series`; no real branch SNMP history yet")
    u.set_defaults(func=cmd_bundle_series)


def cmd_synth_series_rates(args: argparse.Namespace) -> int:
    from . import series_synth

    rows, anomalies, eval_start = series_synth.generate(
        days=args.days, seed=args.seed, eval_days=args.eval_days,
        anomalies_per_kind=args.anomalies_per_kind)
    series_synth.write_rates_csv(args.out, rows)
    if args.labels:
        series_synth.write_labels_csv(args.labels, anomalies)
    print(f"wrote {args.out}: {len(rows)} samples, {len(anomalies)} injected anomalies",
          file=sys.stderr)
    print(eval_start)
    return 0


def cmd_train_series(args: argparse.Namespace) -> int:
    from . import series_ae
    from .series_data import read_series_csvs
    from .series_run import RunConfig, run
    from .series_synth import read_labels_csv
    from .series_train import SeriesTrainConfig

    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    forms = tuple(f.strip() for f in args.forms.split(",") if f.strip())
    bad = [v for v in variants if v not in series_ae.VARIANTS]
    bad += [f for f in forms if f not in series_ae.LSTM_FORMS]
    if bad or not variants or not forms:
        print(f"error: unknown variant/form {bad}; variants {series_ae.VARIANTS}, "
              f"forms {series_ae.LSTM_FORMS}", file=sys.stderr)
        return 2
    if "ensemble" in variants and not set(series_ae.MEMBERS) <= set(variants):
        print(f"error: the ensemble needs its members {series_ae.MEMBERS}", file=sys.stderr)
        return 2
    # Members first, the ensemble last.
    variants = tuple(v for v in series_ae.VARIANTS if v in variants)
    started = time.monotonic()
    table = read_series_csvs(args.features)
    anomalies = read_labels_csv(args.labels) if args.labels else None
    cfg = RunConfig(
        variants=variants, forms=forms, train_stride=args.train_stride,
        eval_stride=args.eval_stride, max_train_windows=args.max_train_windows,
        max_val_windows=args.max_val_windows, val_days=args.val_days,
        train=SeriesTrainConfig(epochs=args.epochs, patience=args.patience, seed=args.seed,
                                log=not args.quiet),
    )
    run(table, args.out, eval_start_ms=args.eval_start_ms, anomalies=anomalies, cfg=cfg,
        log=not args.quiet)
    print(f"wrote run {args.out} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return 0


def cmd_bench_series(args: argparse.Namespace) -> int:
    from . import series_bench

    argv = [*args.files, "--batches", args.batches, "--rounds", str(args.rounds)]
    if args.json:
        argv += ["--json", args.json]
    return series_bench.main(argv)


def cmd_bundle_series(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .bundle import BundleError
    from .series_bundle import write_series_bundle
    from .series_select import SelectionError, manual_selection, select

    try:
        report = json.loads((Path(args.run) / "report.json").read_text())
        if args.bench:
            bench = json.loads(Path(args.bench).read_text())
            selection = select(report, bench)
        elif args.variant:
            selection = manual_selection(report, args.variant, args.form, args.precision)
        else:
            print("error: give --bench BENCH_JSON or --variant", file=sys.stderr)
            return 2
        chosen = selection["chosen"]
        m = write_series_bundle(args.run, args.out, variant=chosen["variant"],
                                form=chosen["form"], precision=chosen["precision"],
                                selection=selection, data_note=args.data_note,
                                version=args.version)
    except (OSError, ValueError, BundleError, SelectionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {chosen['variant']} {chosen['form']} {chosen['precision']}, "
          f"threshold {m['threshold']['value']:.6g}", file=sys.stderr)
    return 0


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
    from .bundle import BundleError
    from .gateway import GatewayError
    from .signing import SigningError

    try:
        return args.func(args)
    except (FeatureCsvError, SeriesCsvError, ValueError, BundleError, GatewayError,
            SigningError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def entry() -> None:
    """Console script `netwarden-models` (pyproject.toml)."""
    sys.exit(main())
