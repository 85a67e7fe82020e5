"""Command line: `python -m netwarden_models <command> ...` (console script `netwarden-models`).

One command per stage, for every model kind (models/README.md has the reference):

    data      dataset, synth-series-rates
    train     train                      (torchrun for DDP)
    evaluate  evaluate
    export    export, quantize
    select    bench, select              (optional: which of several runs ships)
    bundle    bundle, keygen, sign, check
    golden    golden                     (the Rust/Python golden feature files)
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Commands of the per-kind route that the stages replaced (issue 14), and what to run instead.
REMOVED = {
    "train-flow-ae": "dataset --kind flow_ae, train, export, bundle",
    "train-series": "dataset --kind series_ae, then train/export/quantize per variant",
    "bench-series": "bench BUNDLE_OR_RUN_DIR...",
    "bundle-series": "select RUN_DIR... --out SELECTION_JSON, then bundle --selection",
}


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _command(sub, name: str, target: str, help: str, description: str | None = None,
             seed: int | None = None) -> argparse.ArgumentParser:
    """A subcommand that runs ``module:function`` (imported only when it runs, so `--help` and
    argument errors stay fast), with the options every command has."""
    p = sub.add_parser(name, help=help, description=description or help)
    if seed is not None:
        p.add_argument("--seed", type=int, default=seed, help=f"random seed (default {seed})")
    p.add_argument("--quiet", action="store_true", help="no progress bars or progress lines")
    p.set_defaults(func=target)
    return p


def build_parser() -> argparse.ArgumentParser:
    from . import registry
    from .evaluate.threshold import add_threshold_args

    p = argparse.ArgumentParser(prog="netwarden_models",
                                description="Train, export and bundle netwarden's anomaly models.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # --- data ------------------------------------------------------------------------------
    d = _command(sub, "dataset", "data.build:build_dataset", seed=7,
                 help="build a dataset directory from gateway feature CSVs (split, labels)",
                 description="Read `netwarden features` output (or run the gateway on "
                 "captures/rates), label it, split it into train/val/test and write "
                 "DIR/dataset.json + DIR/data.npz.")
    d.add_argument("--kind", required=True, choices=registry.names(aliases=True),
                   help="model kind (series_lstm: old name of series_ae)")
    d.add_argument("--out", required=True, metavar="DATASET_DIR")
    for name in registry.names():
        registry.get(name).add_dataset_args(d)

    g = _command(sub, "synth-series-rates", "data.series_synth:cmd_synth", seed=11,
                 help="write synthetic NORMAL interface rates (and injected anomalies) as a rates CSV",
                 description="Seeded synthetic interface rates (ts_ms,target,if_index,if_name,"
                 "in_bps,out_bps; empty = unknown) for `netwarden features --series` or "
                 "`dataset --rates`. Anomalies are injected only into the last --eval-days and "
                 "listed in --labels. Prints the evaluation start (ms) on stdout.")
    g.add_argument("--out", required=True, metavar="RATES_CSV")
    g.add_argument("--labels", metavar="LABELS_CSV", help="where to list injected anomalies")
    g.add_argument("--days", type=float, default=14.0, help="days of 10 s steps (default 14)")
    g.add_argument("--eval-days", type=float, default=3.0,
                   help="final days that may hold injected anomalies (default 3; 0: none)")
    g.add_argument("--anomalies-per-kind", type=int, default=3,
                   help="per interface and kind (burst, drop, exfil) (default 3)")

    # --- train -----------------------------------------------------------------------------
    t = _command(sub, "train", "train.run:train", seed=7,
                 help="train one model of a dataset's kind into a run directory (DDP with torchrun)",
                 description="Train (reconstruction MSE, Adam, early stopping on the validation "
                 "split) and write RUN/run.json, RUN/model.pt, RUN/curves.png. Under `torchrun "
                 "--nproc_per_node N -m netwarden_models train ...` the processes train one model "
                 "with DDP (gloo on CPU, nccl on CUDA). --folds K first runs stratified K-fold "
                 "cross-validation (RUN/cv/).")
    t.add_argument("--dataset", required=True, metavar="DATASET_DIR")
    t.add_argument("--out", required=True, metavar="RUN_DIR")
    t.add_argument("--variant", help="model variant (flow_ae: seed; series_ae: conv, seed, edge, "
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
    add_threshold_args(t)

    # --- evaluate --------------------------------------------------------------------------
    e = _command(sub, "evaluate", "evaluate.evaluate:evaluate",
                 help="metrics, threshold, error histogram and traffic plot of a run",
                 description="Score the dataset's threshold split and test split; write "
                 "report.json, report.csv, error-histogram.png, traffic-anomalies.png to --out "
                 "(default RUN/eval).")
    e.add_argument("--run", required=True, metavar="RUN_DIR")
    e.add_argument("--dataset", help="another dataset of the same kind (default: the run's)")
    e.add_argument("--onnx", metavar="FILE", help="score with this ONNX file (onnxruntime)")
    e.add_argument("--out", metavar="DIR")
    add_threshold_args(e)

    # --- export, quantize ------------------------------------------------------------------
    x = _command(sub, "export", "export.export:export",
                 help="export a run's model to ONNX (RUN/model-fp32.onnx)",
                 description="One file, dynamic batch; parity checked against torch "
                 "(onnxruntime) and in tract at batch 1 and 8.")
    x.add_argument("--run", required=True, metavar="RUN_DIR")
    x.add_argument("--form", help="series_ae LSTM variants: onnx (default) or unrolled")
    x.add_argument("--out", metavar="ONNX")

    q = _command(sub, "quantize", "export.quantize:quantize",
                 help="static int8 (QDQ, calibrated) and the measured fp32/int8 choice",
                 description="Write RUN/model-int8.onnx and RUN/quantize.json: tract load, "
                 "parity, batch independence, speed at batch 1, 8 and 64, size and ranking; "
                 "the choice that `bundle --precision auto` ships. With --bundle and "
                 "--dataset: measure a bundle's model and record the figures in its manifest.")
    q.add_argument("--run", metavar="RUN_DIR")
    q.add_argument("--bundle", metavar="BUNDLE_DIR",
                   help="instead of --run: an unsigned bundle whose manifest gets the figures")
    q.add_argument("--dataset", metavar="DS", help="with --bundle: calibration and test rows")
    q.add_argument("--out", metavar="ONNX", help="with --bundle: keep the int8 file here")
    q.add_argument("--compare-bundles", metavar="DIR",
                   help="with --bundle: also write DIR/fp32 and DIR/int8, copies holding each "
                   "file with the threshold re-taken on the same rows (for eval; never shipped)")
    q.add_argument("--calibration", choices=("minmax", "percentile"), default="minmax",
                   help="activation ranges: min/max or the 99.999th percentile")
    q.add_argument("--rounds", type=_positive_int, default=5)
    q.add_argument("--budget-s", type=float, default=0.2, help="timing seconds per case")

    # --- select ----------------------------------------------------------------------------
    bn = _command(sub, "bench", "select.bench:bench",
                  help="per-sample latency of bundles or runs: tract next to onnxruntime",
                  description="Times each bundle's model.onnx or each run's model-*.onnx in "
                  "onnxruntime and tract (fresh and reused state); prints a Markdown table.")
    _bench_args(bn)
    bn.add_argument("dirs", nargs="+", metavar="BUNDLE_OR_RUN_DIR")
    bn.add_argument("--json", metavar="FILE", help="write the rows here too")

    s = _command(sub, "select", "select.select:select",
                 help="pick the run (and precision) to ship from several candidates",
                 description="ROC-AUC, tract parity and tract speed of every exported file of "
                 "the runs; the rule in select/rule.py picks one. Writes SELECTION_JSON for "
                 "`bundle --selection` and prints the bench table.")
    s.add_argument("runs", nargs="+", metavar="RUN_DIR")
    s.add_argument("--out", required=True, metavar="SELECTION_JSON")
    _bench_args(s)

    # --- bundle, sign, check ---------------------------------------------------------------
    b = _command(sub, "bundle", "bundle.write:bundle",
                 help="write a bundle from a run (threshold, golden vectors), sign and check it",
                 description="Write model.onnx + manifest.json (docs/bundle-format.md), verify in "
                 "onnxruntime and tract, sign with --sign-key, run `netwarden model check` "
                 "(unless --no-gateway-check) and only then move it to --out.")
    b.add_argument("--run", metavar="RUN_DIR")
    b.add_argument("--selection", metavar="SELECTION_JSON",
                   help="instead of --run: the run and precision `select` chose (recorded)")
    b.add_argument("--out", required=True, metavar="BUNDLE_DIR")
    b.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto",
                   help="auto: what quantize (or select) chose; fp32 without quantize.json")
    b.add_argument("--name", help="bundle name (default flow-ae / series-ae)")
    b.add_argument("--version", help="bundle version (default YYYY.MM.DD.1, UTC)")
    b.add_argument("--data-note", help="a line about the training data for the manifest")
    b.add_argument("--sign-key", metavar="KEY", help="ed25519 PKCS#8 PEM private key")
    b.add_argument("--no-gateway-check", action="store_true",
                   help="skip `netwarden model check` (no gateway binary at hand)")
    add_threshold_args(b)

    k = _command(sub, "keygen", "bundle.signing:cmd_keygen",
                 help="new ed25519 signing key: OUT.key (0600) and OUT.pub",
                 description="Prints the public key (base64) for the gateways' [bundles] "
                 "trusted_keys. See docs/keys.md.")
    k.add_argument("--out", required=True, metavar="DIR/NAME")
    k.add_argument("--force", action="store_true", help="overwrite existing files")

    sg = _command(sub, "sign", "bundle.signing:cmd_sign",
                  help="sign a bundle's manifest.json (writes manifest.sig)")
    sg.add_argument("--key", required=True, metavar="KEY")
    sg.add_argument("bundle", metavar="BUNDLE_DIR")

    c = _command(sub, "check", "bundle.verify:check",
                 help="check a bundle: Python (hash, golden, signature) and `netwarden model "
                 "check` (fails if it fails)")
    c.add_argument("bundle", metavar="BUNDLE_DIR")
    c.add_argument("--key", metavar="PUB", help="public key: .pub file or base64; the "
                   "signature must verify with it")
    c.add_argument("--no-gateway-check", action="store_true")

    g = _command(sub, "graph-report", "graph.report:main", seed=7,
                 help="the temporal graph model (TGAT) against the GCN baseline on lab runs: "
                 "5-fold CV and unseen runs, into docs/graph-model.md")
    from .graph.report import add_arguments

    add_arguments(g)
    rf = _command(sub, "graph-refold", "graph.refold:main",
                  help="a graph bundle's trained-form ONNX rewritten in the folded form tract "
                  "runs faster (same weights, parity checked), as a new bundle version")
    from .graph.refold import add_arguments as refold_args

    refold_args(rf)
    st = _command(sub, "site-train", "site.train:site_train", seed=7,
                  help="a site model from a site's samples: fine-tune (or train), threshold on "
                  "held-out site rows, export, sign, check",
                  description="Read a site's samples (`netwarden samples export|fetch`, GET "
                  "/samples; CSV or Parquet), fine-tune the fleet flow model on them (from "
                  "scratch with enough rows), pick the threshold on held-out rows and write a "
                  "signed bundle for `netwarden fleet publish --site` (docs/fleet.md).")
    from .site.args import add_train_arguments as site_train_args

    site_train_args(st)
    sp = _command(sub, "samples-parquet", "site.samples:cmd_parquet",
                  help="a site's samples CSV (`netwarden samples export|fetch`) as Parquet",
                  description="Checks the gateway's samples CSV and writes the same columns "
                  "(ts_ms, schema, the flow-v1 or flow-v2 features, score) as a Parquet file "
                  "(pyarrow); "
                  "`site-train --samples` reads either.")
    sp.add_argument("csv", metavar="SAMPLES_CSV")
    sp.add_argument("--out", required=True, metavar="FILE.parquet")
    sl = _command(sub, "site-loop", "site.loop:site_loop", seed=7,
                  help="for every site of a sites.toml: fetch samples, train, publish",
                  description="The central loop (docs/fleet.md, \"Site models\"): per site, "
                  "fetch its samples (HTTP API with token, or MQTT), `site-train`, then "
                  "`netwarden fleet publish --site`.")
    from .site.args import add_loop_arguments as site_loop_args

    site_loop_args(sl)
    _command(sub, "golden", "golden:main",
             help="regenerate the Rust/Python golden feature files "
             "(models/tests/data/golden-*.csv) with the gateway binary")
    return p


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batches", default="1,8,32", help="comma-separated (default 1,8,32)")
    p.add_argument("--rounds", type=_positive_int, default=7)
    p.add_argument("--budget-s", type=float, default=0.25, help="timing seconds per case")


def _run(target: str, args: argparse.Namespace) -> int:
    module, func = target.split(":")
    rc = getattr(importlib.import_module(f"{__package__}.{module}"), func)(args)
    return rc if isinstance(rc, int) else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in REMOVED:
        print(f"error: `{argv[0]}` was replaced by the stage commands: {REMOVED[argv[0]]} "
              "(models/README.md)", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    from .bundle.format import BundleError
    from .bundle.signing import SigningError
    from .export.onnx_export import ExportError
    from .gateway import GatewayError

    try:
        return _run(args.func, args)
    except (OSError, ValueError, BundleError, ExportError, GatewayError, SigningError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def entry() -> None:
    """Console script `netwarden-models` (pyproject.toml)."""
    sys.exit(main())
