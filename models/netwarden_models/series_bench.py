"""Per-window scoring latency of series models: tract next to onnxruntime, same file, same run.

For every ONNX file given (normally a run directory's ``<variant>-<form>-<precision>.onnx``):
- onnxruntime, CPU provider, one intra-op thread;
- tract 0.23 (the ``tract`` Python package wraps the same Rust crate version the gateway
  links), the model optimised once for a fixed batch, two ways of running it:
  ``fresh``: a new state per run (what ``SimplePlan::run`` does), and ``reuse``: one state kept
  across runs (what the gateway's flow detector does). ``reuse`` is only reported as valid
  when its outputs still match: tract keeps the ONNX LSTM op's hidden state in the run state,
  so reusing it carries one window's state into the next (see docs/models.md);
- batch 1 (one interface's window) and the gateway's larger plans (8 and 32 by default:
  windows of several interfaces due at one poll step, scored in one run).

Timings interleave the runtimes in rounds (each round: a block of calls per runtime) and
report the median round, so a neighbour's compile job slows both sides alike. Figures are
microseconds per *window* (a batch's time divided by its size). Python call overhead (a few
microseconds) is in both columns.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from . import series_export as E
from .series_ae import WIDTH, WINDOW


def _time_block(fn, calls: int) -> float:
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls


def bench_file(path: Path, batches=(1, 8, 32), rounds: int = 7, budget_s: float = 0.25,
               seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    sess = E.ort_session(path)
    for batch in batches:
        x = rng.random((batch, WINDOW, WIDTH), dtype=np.float32)
        x2 = rng.random((batch, WINDOW, WIDTH), dtype=np.float32)
        ref = sess.run([E.OUTPUT_NAME], {E.INPUT_NAME: x})[0]
        ref2 = sess.run([E.OUTPUT_NAME], {E.INPUT_NAME: x2})[0]
        t0 = time.perf_counter()
        try:
            plan = E.TractPlan(path, batch)
        except Exception as e:  # noqa: BLE001 - tract's errors are one Python type
            print(f"  {path.name}: tract cannot load it: {str(e).splitlines()[0]}",
                  file=sys.stderr)
            return rows
        optimise_s = time.perf_counter() - t0
        fresh_out = plan.run(x)
        # Reused state: run another input first, then x; correct only if nothing carries over.
        plan.run_reused(x2)
        reuse_out = plan.run_reused(x)
        reuse_ok = bool(np.abs(reuse_out - ref).max() <= 1e-3 + 10 * np.abs(fresh_out - ref).max())

        def ort_call():
            sess.run([E.OUTPUT_NAME], {E.INPUT_NAME: x})

        def fresh_call():
            plan.run(x)

        def reuse_call():
            plan.run_reused(x)

        calls = {}
        for name, fn in (("ort", ort_call), ("tract_fresh", fresh_call), ("tract_reuse", reuse_call)):
            per = _time_block(fn, 3)
            calls[name] = max(3, min(2000, int(budget_s / rounds / max(per, 1e-6))))
        samples: dict[str, list[float]] = {k: [] for k in calls}
        for _ in range(rounds):
            for name, fn in (("ort", ort_call), ("tract_fresh", fresh_call), ("tract_reuse", reuse_call)):
                samples[name].append(_time_block(fn, calls[name]) / batch * 1e6)
        med = {k: statistics.median(v) for k, v in samples.items()}
        rows.append({
            "file": path.name,
            "batch": batch,
            "ort_us_per_window": round(med["ort"], 1),
            "tract_fresh_us_per_window": round(med["tract_fresh"], 1),
            "tract_reuse_us_per_window": round(med["tract_reuse"], 1),
            "tract_reuse_correct": reuse_ok,
            "tract_vs_ort_max_abs": float(np.abs(fresh_out - ref).max()),
            "tract_reuse_vs_ort_max_abs": float(np.abs(reuse_out - ref).max()),
            "ort_second_input_ok": bool(np.isfinite(ref2).all()),
            "tract_optimise_s": round(optimise_s, 2),
        })
    return rows


def gateway_tract(row: dict) -> float:
    """The tract figure of the gateway as it runs series models: a fresh state per run."""
    return row["tract_fresh_us_per_window"]


def format_table(rows: list[dict]) -> str:
    head = ("| file | batch | ORT µs/window | tract µs/window, fresh state | tract, reused state "
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="series_bench", description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+", type=Path, help="ONNX files (or a run directory)")
    p.add_argument("--batches", default="1,8,32",
                   help="batch sizes, comma-separated (default 1,8,32: the gateway's plans)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--budget-s", type=float, default=0.25, help="seconds per runtime per case")
    p.add_argument("--json", type=Path, help="write the rows here too")
    args = p.parse_args(argv)
    files: list[Path] = []
    for f in args.files:
        files.extend(sorted(f.glob("*.onnx")) if f.is_dir() else [f])
    rows = []
    for f in files:
        print(f"bench {f.name} ...", file=sys.stderr, flush=True)
        batches = tuple(int(b) for b in args.batches.split(",") if b.strip())
        rows.extend(bench_file(f, batches, args.rounds, args.budget_s))
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps({
            "machine": {"cpu": platform.processor() or platform.machine(),
                        "python": platform.python_version()},
            "rows": rows,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
