"""Which candidate file ships: the rule, applied to the candidates' quality figures and a
bench's speed figures (``select`` gathers both). Written for the series family (several
variants, LSTM forms and precisions compete); it holds for any kind whose score is ranked by
ROC-AUC. A candidate is named ``<variant>-<form>-<precision>.onnx``.

Rule (recorded in the bundle's ``selection``):
1. a candidate must match onnxruntime in tract (``tract_vs_ort_max_abs`` <= 1e-3 on the
   validation windows, fresh state) and have a ROC-AUC;
2. quality: its ROC-AUC on the labelled evaluation windows is at least the best fp32 ROC-AUC
   of the run minus ``AUC_SLACK``; an int8 file must also be within ``INT8_SLACK`` of its own
   fp32 file (int8 must not lose ranking quality);
3. speed: of those, the lowest tract time per window at batch ``SPEED_BATCH`` (8: the
   gateway scores the windows of all interfaces due at one poll step in one run, from a
   fresh state, and a branch router has a handful of interfaces), ties broken by batch 1;
4. int8 ships only when it is at least ``INT8_GAIN`` faster than its own fp32 file there:
   a difference inside the bench's noise is no reason to give up precision; and only when its
   run's ``quantize`` chose it (static int8 rule: ranking, batch independence, tract not
   slower at batches 1, 8 and 64; export/static_int8.py).
"""

from __future__ import annotations

from .bench import gateway_tract

AUC_SLACK = 0.01
INT8_SLACK = 0.005
PARITY = 1e-3
SPEED_BATCH = 8
INT8_GAIN = 0.10


class SelectionError(ValueError):
    pass


def _figures(bench: dict, file: str) -> dict:
    rows = [r for r in bench["rows"] if r["file"] == file]
    out = {}
    for r in rows:
        key = "batch1" if r["batch"] == 1 else f"batch{r['batch']}"
        out[key] = {"tract_us_per_window": gateway_tract(r),
                    "ort_us_per_window": r["ort_us_per_window"],
                    "tract_over_ort": round(gateway_tract(r) / r["ort_us_per_window"], 2),
                    "tract_reused_state_us_per_window": (r["tract_reuse_us_per_window"]
                                                         if r["tract_reuse_correct"] else None)}
    return out


def select(report: dict, bench: dict) -> dict:
    files = report["files"]
    aucs = {f: e["roc_auc"] for f, e in files.items() if e.get("roc_auc") is not None}
    if not aucs:
        raise SelectionError("the run has no ROC-AUC (train with --labels and --eval-start-ms)")
    best_fp32 = max(a for f, a in aucs.items() if files[f]["precision"] == "fp32")
    benched = {r["file"] for r in bench["rows"]}
    considered = []
    for f, e in sorted(files.items()):
        why = None
        if e.get("tract_error"):
            why = f"tract cannot run it: {e['tract_error'][:160]}"
        elif f not in benched:
            why = "not benchmarked"
        elif e.get("quantize_rejected"):
            why = f"quantize chose fp32: {e['quantize_rejected'][:200]}"
        elif e["tract_vs_ort_max_abs"] is None or e["tract_vs_ort_max_abs"] > PARITY:
            why = f"tract differs from onnxruntime by {e['tract_vs_ort_max_abs']}"
        elif f not in aucs:
            why = "no ROC-AUC"
        elif aucs[f] < best_fp32 - AUC_SLACK:
            why = f"ROC-AUC {aucs[f]:.4f} below {best_fp32:.4f} - {AUC_SLACK}"
        elif e["precision"] == "int8":
            fp32 = f.replace("-int8.onnx", "-fp32.onnx")
            if fp32 in aucs and aucs[f] < aucs[fp32] - INT8_SLACK:
                why = f"int8 ROC-AUC {aucs[f]:.4f} below its fp32 {aucs[fp32]:.4f} - {INT8_SLACK}"
        fig = _figures(bench, f) if f in benched else {}
        considered.append((f, why, fig))
    eligible = [(f, fig) for f, why, fig in considered if why is None and fig]
    if not eligible:
        raise SelectionError("no file passes the parity and quality rules")

    def speed(item):
        _, fig = item
        inf = float("inf")
        return (fig.get(f"batch{SPEED_BATCH}", {}).get("tract_us_per_window", inf),
                fig.get("batch1", {}).get("tract_us_per_window", inf))

    chosen_file, chosen_fig = min(eligible, key=speed)
    fp32_file = chosen_file.replace("-int8.onnx", "-fp32.onnx")
    by_file = dict(eligible)
    if chosen_file != fp32_file and fp32_file in by_file:
        if speed((chosen_file, chosen_fig))[0] > (1.0 - INT8_GAIN) * speed((fp32_file, by_file[fp32_file]))[0]:
            chosen_file, chosen_fig = fp32_file, by_file[fp32_file]
    e = files[chosen_file]
    return {
        "rule": "tract parity <= 1e-3; ROC-AUC >= best fp32 - 0.01 (int8 also >= its fp32 - "
                "0.005); then lowest tract us/window at batch 8 (fresh state), then at batch 1; int8 only "
                "if >= 10% faster than its fp32",
        "chosen": {"variant": e["variant"], "form": e["form"], "precision": e["precision"]},
        "roc_auc": aucs.get(chosen_file),
        "best_fp32_roc_auc": best_fp32,
        "tract": chosen_fig,
        "bench_machine": bench.get("machine"),
        "candidates": [
            {"file": f, "roc_auc": aucs.get(f), "rejected": why,
             **{k: v["tract_us_per_window"] for k, v in fig.items()}}
            for f, why, fig in considered
        ],
    }
