"""The ``graph-refold`` command: a graph bundle whose ONNX is the trained form (``nets.Tgat`` as
exported before ``fast.TgatFast`` existed) rewritten in the folded form, same weights, no
retraining.

The weights are read back from the bundle's ONNX (``fast.tgat_from_onnx``), the folded module
is exported, and the new file must give the old file's outputs within 1e-4 in onnxruntime and
tract, on the golden rows and on every row of the ``--lab-run`` feature files given (class
decisions compared too). The manifest is the old one with the new file's hash, the version,
the golden outputs recomputed with the new file, and ``model.refolded_from`` (the old
version and hash); the evaluation, cross-validation and threshold stay (same function). The
bundle is then checked as ``bundle`` checks it (Python, then `netwarden model check`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .. import gateway
from ..bundle.format import MANIFEST_FILE, MODEL_FILE, BundleError, now_utc, write_json_atomic
from ..bundle.verify import verify_python
from ..data.dataset import sha256_file
from ..export import runtimes as R
from ..export.onnx_export import export_onnx
from ..log import say
from . import data as gd
from .fast import TgatFast, tgat_from_onnx

PARITY = 1e-4


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", metavar="BUNDLE_DIR", help="a graph_tgat bundle (trained form)")
    p.add_argument("--out", required=True, metavar="DIR", help="where the new bundle goes "
                   "(may be BUNDLE_DIR itself)")
    p.add_argument("--version", required=True)
    p.add_argument("--lab-run", action="append", default=[], metavar="DIR",
                   help="lab run whose edges (`netwarden features --set graph-v1`) the new "
                   "file must score as the old one; repeat")
    p.add_argument("--work", metavar="DIR", help="feature CSV cache (default: a temp dir)")
    p.add_argument("--no-gateway-check", action="store_true")


def _compare(old: Path, new: Path, x: np.ndarray, what: str) -> dict:
    want = R.run_ort(old, x)
    got = {"onnxruntime": R.run_ort(new, x), "tract": R.run_tract(new, x, 512)}
    out = {"rows": int(len(x))}
    for name, y in got.items():
        diff = float(np.abs(y - want).max())
        flips = int(((y[:, 0] < 0.5) != (want[:, 0] < 0.5)).sum())
        out[name] = {"max_abs": diff, "decision_flips": flips}
        if not diff <= PARITY or flips:
            raise BundleError(f"{what}: the folded file differs from the old one in {name} by "
                              f"{diff:g} (> {PARITY:g}) or flips {flips} decisions")
    return out


def main(args) -> int:
    src = Path(args.bundle)
    m = json.loads((src / MANIFEST_FILE).read_text())
    if m.get("kind") != "graph_tgat":
        raise BundleError(f"{src}: kind {m.get('kind')!r}, expected graph_tgat")
    old_model = src / m["model"]["file"]
    old_bytes = old_model.stat().st_size
    classes = m["model"]["classes"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = tmp / "old.onnx"
        shutil.copyfile(old_model, old)
        new = tmp / MODEL_FILE
        export_onnx(TgatFast(tgat_from_onnx(old, len(classes))), new, (gd.INPUT_WIDTH,),
                    output_name=m["model"]["output_name"], output_shape=(len(classes),))
        golden = np.asarray(m["golden"]["inputs"], dtype=np.float32)
        parity = {"golden": _compare(old, new, golden, "golden rows")}
        if args.lab_run:
            binary = gateway.require_binary()
            work = Path(args.work) if args.work else tmp / "features"
            work.mkdir(parents=True, exist_ok=True)
            for d in map(Path, args.lab_run):
                run = gd.load_lab_run(binary, d, work)
                parity[d.name] = _compare(old, new, run.x, f"lab run {d.name}")
        out = dict(m)
        out["version"] = args.version
        out["created_utc"] = now_utc().strftime("%Y-%m-%dT%H:%M:%SZ")
        out["model"] = dict(m["model"], sha256=sha256_file(new), form="folded",
                            refolded_from={"version": m["version"], "sha256": m["model"]["sha256"],
                                           "parity": parity})
        out["golden"] = dict(m["golden"], outputs=[[float(v) for v in row]
                                                   for row in R.run_ort(new, golden)])
        stage = tmp / "bundle"
        stage.mkdir()
        shutil.copyfile(new, stage / MODEL_FILE)
        (stage / MODEL_FILE).chmod(0o644)
        write_json_atomic(stage / MANIFEST_FILE, out)
        verify_python(stage)
        if not args.no_gateway_check:
            gateway.model_check(stage)
        dst = Path(args.out)
        dst.mkdir(parents=True, exist_ok=True)
        for name in (MODEL_FILE, MANIFEST_FILE):
            shutil.copyfile(stage / name, dst / name)
    nodes = sum(R.op_counts(dst / MODEL_FILE).values())
    say(args.quiet, f"wrote {dst}: {m['version']} refolded as {args.version}, {nodes} ONNX nodes, "
        f"{(dst / MODEL_FILE).stat().st_size} bytes (was {old_bytes}); parity "
        + ", ".join(f"{k} {v['tract']['max_abs']:.1e}" for k, v in parity.items()))
    return 0
