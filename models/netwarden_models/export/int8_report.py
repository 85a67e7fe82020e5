"""Markdown tables of the int8 measurement (`models/int8-report.sh` prints them for
docs/models.md): each bundle's `quantization` section, and `netwarden eval --json` results of
the fp32 and int8 comparison bundles side by side.

    python -m netwarden_models.export.int8_report --bundle DIR ... [--eval NAME=JSON ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def bundle_table(dirs: list[Path]) -> list[str]:
    L = ["| bundle | file | bytes | tract us/row batch 1 | batch 8 | batch 64 | ROC-AUC "
         "(test rows) | score Spearman | int8 vs fp32 max abs (benign / all) | batch "
         "independence | rule chose |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for d in dirs:
        m = json.loads((d / "manifest.json").read_text())
        q = m.get("quantization") or {}
        if q.get("method") != "static":
            L.append(f"| {m['name']} {m['version']} | no static int8 figures | | | | | | | | | |")
            continue
        t, r, p = q["tract"], q["ranking"], q.get("parity", {})
        auc = r.get("roc_auc", {})
        for f in ("fp32", "int8"):
            us = [t.get(f"batch{b}", {}).get("us_per_row", {}).get(f, "n/a") for b in (1, 8, 64)]
            extra = ("" if f == "fp32" else
                     f"{r['spearman_fp32_int8']:.4f} | {p.get('int8_vs_fp32_tract_max_abs_benign', float('nan')):.3g}"
                     f" / {p.get('int8_vs_fp32_tract_max_abs', float('nan')):.3g} | "
                     f"{q['batch_independence_max_abs']:g} | **{q.get('rule_chose', q['chosen'])}**")
            if f == "fp32":
                extra = " | | | "
            L.append(f"| {m['name']} {m['version']} | {f} | {q['bytes'][f]:,} | "
                     + " | ".join(str(u) for u in us)
                     + f" | {auc.get(f, float('nan')):.4f} | {extra} |")
    return L


def eval_table(evals: list[tuple[str, Path]]) -> list[str]:
    L = ["| run | path | bundle | threshold | phases detected | false alerts/h | flows over "
         "threshold | flow ROC-AUC | recall | FPR |",
         "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows = []
    for name, path in evals:
        r = json.loads(path.read_text())
        run = Path(r["dir"]).name
        for x in r["results"]:
            if x["detector"] != "flow_ae":
                continue
            f = x["flows"]
            rows.append((run, x["path"], name,
                         f"| {run} | {x['path']} | {name} | {x['threshold']:.4f} | "
                         f"{x['detected_phases']}/{x['attack_phases']} | "
                         f"{x['false_alerts_per_hour']:.0f} | {f['over_threshold']}/{f['scored']} | "
                         f"{f['roc_auc']:.4f} | {f['recall']:.3f} | {f['fpr']:.3f} |"))
    order = {n: i for i, (n, _) in enumerate(evals)}
    rows.sort(key=lambda t: (t[0], t[1], order[t[2]]))
    return L + [r[3] for r in rows]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", action="append", default=[], type=Path)
    ap.add_argument("--eval", action="append", default=[], metavar="NAME=JSON")
    a = ap.parse_args(argv)
    out = bundle_table(a.bundle) if a.bundle else []
    if a.eval:
        evals = [(e.split("=", 1)[0], Path(e.split("=", 1)[1])) for e in a.eval]
        out += ["", *eval_table(evals)]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
