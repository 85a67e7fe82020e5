"""Checking a bundle: in Python (hash, features, golden vectors replayed in onnxruntime and in
tract), its signature, and with the gateway's own `netwarden model check` (the ``check``
command)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import gateway, registry
from ..data.dataset import sha256_file
from ..data.scaling import FeatureScaling
from ..export import runtimes as R
from ..kinds.base import ModelKind
from ..log import say
from . import signing
from .format import MANIFEST_FILE, BundleError


def verify_python(bundle_dir: Path, kind: ModelKind | None = None) -> dict:
    """Hash, schema and golden vectors in onnxruntime and in tract (fresh state, one batch)."""
    m = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    kind = kind or registry.for_manifest(m)
    if m["features"]["names"] != list(kind.feature_names):
        raise BundleError(f"{bundle_dir}: features are not {kind.schema}")
    path = bundle_dir / m["model"]["file"]
    if sha256_file(path) != m["model"]["sha256"]:
        raise BundleError(f"{bundle_dir}: sha256 of {path.name} does not match the manifest")
    scaling = FeatureScaling.from_manifest(m["features"]["scaling"])
    g = m["golden"]
    raw = np.asarray(g["inputs"], dtype=np.float32).reshape(-1, *kind.sample_shape)
    x = kind.scale(scaling, raw)
    want = np.asarray(g["outputs"], dtype=np.float32).reshape(len(x), -1).reshape(
        (len(x), *getattr(kind, "output_shape", kind.sample_shape)))
    tol = g["tolerance"]
    for runtime, y in (("onnxruntime", R.run_ort(path, x)), ("tract", R.run_tract(path, x, len(x)))):
        diff = float(np.abs(y - want).max())
        ediff = float(np.abs(kind.score_outputs(x, y) - np.asarray(g["errors"])).max())
        if not (diff <= tol and ediff <= tol):
            raise BundleError(f"{bundle_dir}: golden vectors differ in {runtime} by {max(diff, ediff):g} (> {tol})")
    return m


def check(args) -> int:
    d = Path(args.bundle)
    if args.key:
        signing.verify_bundle_signature(d, [args.key])
    verify_python(d)
    if args.no_gateway_check:
        say(args.quiet, f"{d}: Python checks passed (gateway check skipped: --no-gateway-check)")
        return 0
    out = gateway.model_check(d, key=args.key)
    print(out)
    return 0
