"""The flow-v1 / flow-v2 comparison table of docs/evaluation.md from `netwarden eval --json`
files named RUN-MODEL-MODE.json (MODEL: shipped, v1, v2; MODE: shipped, learn), as
models/flow-v2-report.sh writes them.

    python -m netwarden_models.flow_v2_table EVAL_DIR seed21 seed22
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# "shipped": models/bundles/flow-ae, the built-in bundle until issue 18 made flow-ae-v2 built in.
MODELS = {"shipped": "fixture flow-v1", "v1": "lab flow-v1", "v2": "lab flow-v2"}
KEY_KINDS = ("scan", "flood", "exfiltration")  # the "every scan, flood and exfiltration"


def first_alert_cells(result: dict) -> tuple[str, str]:
    """The slowest first alert (flow time) over the detected scan/flood/exfiltration phases but
    scan_slow, and scan_slow's own first alert, as table cells ("-" when not detected)."""
    key = [p for p in result["phases"] if p["kind"].split("_")[0] in KEY_KINDS]
    hit = [p["first_alert_flow_s"] for p in key if p["kind"] != "scan_slow"
           and p["detected"] and p["first_alert_flow_s"] is not None]
    slowest = f"{max(hit):.2f} s" if hit else "-"
    ss = [p for p in key if p["kind"] == "scan_slow"]
    slow = f'{ss[0]["first_alert_flow_s"]:.1f} s' if ss and ss[0]["detected"] else "-"
    return slowest, slow


def rows(eval_dir: Path, runs: list[str]) -> list[str]:
    out = ["| run | model | threshold | path | phases | scan/flood/exfil | incidents opened | false "
           "| false / h | benign over threshold | ROC-AUC | slowest 1st alert (flow), scan/flood/exfil "
           "but scan_slow | scan_slow 1st alert |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        for mode in ("shipped", "learn"):
            for m, name in MODELS.items():
                d = json.loads((eval_dir / f"{run}-{m}-{mode}.json").read_text())
                for r in d["results"]:
                    if r["detector"] != "flow_ae":
                        continue
                    key = [p for p in r["phases"] if p["kind"].split("_")[0] in KEY_KINDS]
                    slow, ss = first_alert_cells(r)
                    c = r["flows"]["confusion"]
                    benign = c["fp"] + c["tn"]
                    a = r["alerts"]
                    thr = f'{r["threshold"]:.4f}' + (" learnt" if mode == "learn" else "")
                    out.append(
                        f'| {run} | {name} | {thr} | {r["path"]} | {r["detected_phases"]}/'
                        f'{r["attack_phases"]} | {sum(p["detected"] for p in key)}/{len(key)} | '
                        f'{a["total"] - a["updates"]} | {a["false"]} | '
                        f'{r["false_alerts_per_hour"]:.0f} | {c["fp"]}/{benign} = '
                        f'{100 * c["fp"] / max(benign, 1):.1f} % | {r["flows"]["roc_auc"]:.3f} | {slow} | {ss} |')
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(rows(Path(argv[0]), argv[1:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
