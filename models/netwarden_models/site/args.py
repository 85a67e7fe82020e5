"""The site commands' arguments (imported by the CLI parser, so nothing heavy here)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_FLEET_BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "flow-ae"
DEFAULT_FLEET_BUNDLE_V2 = Path(__file__).resolve().parents[2] / "bundles" / "flow-ae-v2"


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", required=True, metavar="FILE",
                   help="the site's samples: CSV (`netwarden samples export|fetch`, GET /samples) "
                   "or .parquet")
    p.add_argument("--out", required=True, metavar="BUNDLE_DIR")
    p.add_argument("--work", metavar="DIR", help="dataset, run and site.json (default BUNDLE_DIR.work)")
    p.add_argument("--site", default="site", help="the site's name (manifest note, bundle name)")
    p.add_argument("--fleet-bundle", metavar="DIR", default=None,
                   help="the fleet flow bundle to fine-tune, of the samples' schema (default: "
                   "models/bundles/flow-ae for flow-v1 rows, models/bundles/flow-ae-v2 for flow-v2)")
    p.add_argument("--mode", choices=("auto", "finetune", "scratch"), default="auto")
    p.add_argument("--scratch-rows", type=int, default=20000,
                   help="auto: from scratch with at least this many rows (20000)")
    p.add_argument("--holdout", type=float, default=0.25,
                   help="share of rows held out for the threshold (0.25)")
    p.add_argument("--risk", type=float, default=1e-4,
                   help="SPOT risk for the threshold, as the gateway's [learning] risk (1e-4)")
    p.add_argument("--epochs", type=int, help="maximum epochs (default: the kind's, 200)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--patience", type=int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quantize", action="store_true",
                   help="run the export stage's quantize and ship what it chooses")
    p.add_argument("--version", help="bundle version (default: YYYY.MM.DD.<seconds of the day>, UTC)")
    p.add_argument("--sign-key", metavar="KEY", help="ed25519 PKCS#8 PEM private key")
    p.add_argument("--no-gateway-check", action="store_true")


def add_loop_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sites", required=True, metavar="SITES_TOML",
                   help="broker, signing key and the sites (docs/fleet.md, \"Site models\")")
    p.add_argument("--out", metavar="DIR", help="samples, work and bundles per site "
                   "(default: `out` of the file, else site-models/ beside it)")
    p.add_argument("--only", action="append", default=[], metavar="SITE",
                   help="only these sites (repeatable)")
    p.add_argument("--no-publish", action="store_true", help="train and bundle, publish nothing")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                   help="training device (default: the file's [train] device, else auto)")
