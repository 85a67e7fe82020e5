"""Per-sample scoring latency: tract next to onnxruntime, same file, same run (the ``bench``
command, and the speed figures ``select`` ranks candidates by).

For every ONNX file (a bundle's model.onnx, or a run directory's model-*.onnx):
- onnxruntime, CPU provider, one intra-op thread;
- tract 0.23 (the ``tract`` Python package wraps the same Rust crate version the gateway
  links), the model optimised once for a fixed batch, run two ways: ``fresh``, a new state per
  run (what ``SimplePlan::run`` does and the gateway's series detector does), and ``reuse``,
  one state kept across runs (what the gateway does for stateless plans). ``reuse`` is only
  reported as valid when its outputs still match: tract keeps the ONNX LSTM op's hidden state
  in the run state, so reusing it carries one window's state into the next (docs/models.md);
- batch 1 and the gateway's larger plans (8 and 32 by default: samples of several interfaces
  due at one step, scored in one run).

Timings interleave the runtimes in rounds and report the median round
(``runtimes.time_us_per_sample``). Figures are microseconds per *sample* (a window for
series). Python call overhead (a few microseconds) is in both columns.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np

from .. import registry
from ..export import runtimes as R
from ..export.onnx_export import INPUT_NAME
from ..kinds.base import ModelKind


def bench_file(path: Path, kind: ModelKind, label: str, batches=(1, 8, 32), rounds: int = 7,
               budget_s: float = 0.25, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    sess = R.ort_session(path, fused=True)  # timed: ORT at its fastest
    exact = R.ort_session(path)  # the reference outputs (a quantized file as written)
    for batch in batches:
        x = rng.random((batch, *kind.sample_shape), dtype=np.float32)
        x2 = rng.random((batch, *kind.sample_shape), dtype=np.float32)
        ref = exact.run(None, {INPUT_NAME: x})[0]
        try:
            plan = R.TractPlan(path, batch, kind.sample_shape)
        except Exception as e:  # noqa: BLE001 - tract's errors are one Python type
            print(f"  {label}: tract cannot load it: {str(e).splitlines()[0]}", file=sys.stderr)
            return rows
        fresh_out = plan.run(x)
        # Reused state: run another input first, then x; correct only if nothing carries over.
        plan.run_reused(x2)
        reuse_out = plan.run_reused(x)
        reuse_ok = bool(np.abs(reuse_out - ref).max() <= 1e-3 + 10 * np.abs(fresh_out - ref).max())
        us = R.time_us_per_sample(
            {"ort": lambda: sess.run(None, {INPUT_NAME: x}),
             "tract_fresh": lambda: plan.run(x), "tract_reuse": lambda: plan.run_reused(x)},
            batch, rounds=rounds, budget_s=budget_s)
        rows.append({
            "file": label,
            "batch": batch,
            "ort_us_per_window": round(us["ort"], 1),
            "tract_fresh_us_per_window": round(us["tract_fresh"], 1),
            "tract_reuse_us_per_window": round(us["tract_reuse"], 1),
            "tract_reuse_correct": reuse_ok,
            "tract_vs_ort_max_abs": float(np.abs(fresh_out - ref).max()),
            "tract_reuse_vs_ort_max_abs": float(np.abs(reuse_out - ref).max()),
        })
    return rows


def gateway_tract(row: dict) -> float:
    """The tract figure of the gateway as it runs series models: a fresh state per run."""
    return row["tract_fresh_us_per_window"]


def format_table(rows: list[dict]) -> str:
    head = ("| file | batch | ORT µs/sample | tract µs/sample, fresh state | tract, reused state "
            "| fresh / ORT | reused / ORT | tract-ORT max abs |")
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ok = r["tract_reuse_correct"]
        reuse = f"{r['tract_reuse_us_per_window']:.0f}" + ("" if ok else " (wrong output)")
        reuse_ratio = f"{r['tract_reuse_us_per_window'] / r['ort_us_per_window']:.2f}" if ok else "n/a"
        lines.append(
            f"| {r['file']} | {r['batch']} | {r['ort_us_per_window']:.0f} | "
            f"{r['tract_fresh_us_per_window']:.0f} | {reuse} | "
            f"{gateway_tract(r) / r['ort_us_per_window']:.2f} | {reuse_ratio} | "
            f"{r['tract_vs_ort_max_abs']:.1e} |")
    return "\n".join(lines)


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()}


def files_of(path: Path) -> list[tuple[Path, ModelKind, str]]:
    """(ONNX file, kind, label) of a bundle directory, a run directory, or a directory of runs
    (what make-series-bundle.sh keeps)."""
    if (path / "manifest.json").exists():
        m = json.loads((path / "manifest.json").read_text())
        return [(path / m["model"]["file"], registry.for_manifest(m), f"{path.name}/{m['model']['file']}")]
    if (path / "run.json").exists():
        kind = registry.get(json.loads((path / "run.json").read_text())["kind"])
        return [(f, kind, f"{path.name}/{f.name}") for f in sorted(path.glob("model-*.onnx"))]
    runs = sorted(p.parent for p in path.glob("*/run.json"))
    if runs:
        return [f for r in runs for f in files_of(r)]
    raise ValueError(f"{path}: not a bundle (manifest.json), a run directory (run.json) or a "
                     "directory of runs")


def bench(args) -> int:
    """The ``bench`` command."""
    batches = tuple(int(b) for b in args.batches.split(",") if b.strip())
    rows = []
    for d in args.dirs:
        for path, kind, label in files_of(Path(d)):
            print(f"bench {label} ...", file=sys.stderr, flush=True)
            rows.extend(bench_file(path, kind, label, batches, args.rounds, args.budget_s))
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    return 0
