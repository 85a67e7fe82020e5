"""The ``select`` command: which of several trained, exported (and quantized) runs ships.

Every run's fp32 and int8 files are candidates. For each: ROC-AUC on the dataset's labelled
test split (onnxruntime), parity of tract with onnxruntime on 64 reference samples (batch 16,
fresh state; a file tract cannot load is recorded, not fatal), and the bench (tract next to
onnxruntime at batches 1, 8, 32). The rule in ``rule.py`` picks one; the result (with the
chosen run) is what ``bundle --selection`` reads and records in the manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import registry
from ..data import dataset as ds
from ..data.build import open_dataset
from ..evaluate import metrics
from ..export import runtimes as R
from ..log import say
from ..train.run import load_run
from . import rule
from .bench import bench_file, format_table, machine

PARITY_SAMPLES, PARITY_BATCH = 64, 16


def candidates_of(run_dir: Path) -> list[dict]:
    """Quality figures of a run's exported files (fp32, and int8 when quantized)."""
    run, kind, _, scaling = load_run(run_dir)
    try:
        form = json.loads((run_dir / "export.json").read_text())["form"]
    except OSError as e:
        raise ValueError(f"{run_dir}: no export.json (run `export --run {run_dir}` first)") from e
    _, _, samples = open_dataset(run["dataset"])
    test = ds.test_part(samples)
    if not (samples.labelled and len(test) and 0 < test.labels.sum() < len(test)):
        raise ValueError(f"{run_dir}: its dataset has no labelled test split with both classes "
                         "(select ranks by ROC-AUC)")
    x_test = kind.scale(scaling, test.raw)
    ref_idx = np.nonzero((samples.split == kind.threshold_split) & (samples.labels == 0))[0]
    x_ref = kind.scale(scaling, samples.raw[ref_idx[:PARITY_SAMPLES]])
    try:
        quant = json.loads((run_dir / "quantize.json").read_text())
    except OSError:
        quant = None
    out = []
    for precision in ("fp32", "int8"):
        path = run_dir / f"model-{precision}.onnx"
        if not path.exists():
            continue
        e = {"file": f"{run['variant']}-{form}-{precision}.onnx", "run": str(run_dir.resolve()),
             "path": str(path.resolve()), "kind": kind.name, "variant": run["variant"],
             "form": form, "precision": precision, "bytes": path.stat().st_size}
        if precision == "int8" and quant and quant.get("chosen") != "int8":
            e["quantize_rejected"] = quant.get("why")  # its run's static int8 rule said fp32
        e["roc_auc"] = metrics.roc_auc(kind.score_outputs(x_test, R.run_ort(path, x_test)), test.labels)
        try:
            y_tract = R.run_tract(path, x_ref, PARITY_BATCH)
        except Exception as err:  # noqa: BLE001 - tract's errors are one Python type
            lines = [line.strip() for line in str(err).split("\n") if line.strip()]
            e["tract_error"], e["tract_vs_ort_max_abs"] = " ".join(lines[:5]), None
        else:
            y_ort = R.run_ort(path, x_ref, batch=PARITY_BATCH)  # same batches: dynamic int8
            e["tract_vs_ort_max_abs"] = float(np.abs(y_tract - y_ort).max())
        out.append(e)
    return out


def select(args) -> dict:
    files: dict[str, dict] = {}
    for d in args.runs:
        for e in candidates_of(Path(d)):
            if e["file"] in files:
                raise ValueError(f"two runs hold {e['file']} ({files[e['file']]['run']}, {e['run']}): "
                                 "give one run per variant and form")
            files[e["file"]] = e
            say(args.quiet, f"  {e['file']}: ROC-AUC {e['roc_auc']:.4f}, tract-ORT "
                + ("tract cannot load it" if e["tract_vs_ort_max_abs"] is None
                   else f"{e['tract_vs_ort_max_abs']:.1e}"))
    batches = tuple(int(b) for b in args.batches.split(",") if b.strip())
    rows = []
    for name, e in files.items():
        if e["tract_vs_ort_max_abs"] is not None:
            say(args.quiet, f"bench {name} ...")
            rows.extend(bench_file(Path(e["path"]), registry.get(e["kind"]), name, batches, args.rounds,
                                   args.budget_s))
    print(format_table(rows))
    sel = rule.select({"files": files}, {"rows": rows, "machine": machine()})
    chosen = sel["chosen"]
    chosen["run"] = files[f"{chosen['variant']}-{chosen['form']}-{chosen['precision']}.onnx"]["run"]
    sel["bench"] = rows
    Path(args.out).write_text(json.dumps(sel, indent=2) + "\n")
    say(args.quiet, f"wrote {args.out}: {chosen['variant']} {chosen['form']} {chosen['precision']} "
        f"from {chosen['run']}")
    return sel

