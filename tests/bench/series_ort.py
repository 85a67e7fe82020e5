"""onnxruntime side of the series-model latency comparison (the tract side is
`cargo bench -p netwarden --bench series`). Same bundles, same input (golden window 0,
scaled), one intra-op thread like tract, batch 1/8/32/64.

    models/.venv/bin/python tests/bench/series_ort.py [BUNDLE_DIR ...]
"""
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]


def bundles(args):
    dirs = sorted(p for p in (ROOT / "models/bundles").glob("series-*") if p.is_dir())
    dirs.append(ROOT / "gateway/tests/data/series-tiny")
    return dirs + [Path(a) for a in args]


def scaled_window(m):
    raw = np.asarray(m["golden"]["inputs"][0], dtype=np.float64).reshape(-1, 8)
    out = np.empty_like(raw)
    for j, s in enumerate(m["features"]["scaling"]):
        v = np.log1p(np.maximum(raw[:, j], 0)) if s["log1p"] else raw[:, j]
        rng = s["max"] - s["min"]
        out[:, j] = (v - s["min"]) / (rng if rng >= 1e-6 else 1.0)
    return out.astype(np.float32)[None]


def per_call(f, min_s):
    f()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s or n < 5:
        f()
        n += 1
    return (time.perf_counter() - t0) / n


def main():
    min_s = 1.5
    for d in bundles(sys.argv[1:]):
        m = json.loads((d / "manifest.json").read_text())
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        s = ort.InferenceSession(str(d / m["model"]["file"]), so, providers=["CPUExecutionProvider"])
        print(f"{d} ({m['name']} {m['version']}, variant {m['model'].get('variant', '-')}), onnxruntime {ort.__version__}")
        x1 = scaled_window(m)
        for b in (1, 8, 32, 64):
            x = np.repeat(x1, b, axis=0)
            t = per_call(lambda: s.run(None, {m["model"]["input_name"]: x}), min_s)
            print(f"  ort   batch {b:>3}: {t*1e6:9.1f} us per run  {t*1e6/b:8.1f} us per window")


if __name__ == "__main__":
    main()
