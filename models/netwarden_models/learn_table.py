"""The learning-period table of docs/evaluation.md (section 7.3) from `netwarden eval --json`
files: one row per (file, path, detector) with the issue-18 figures (phases, scan/flood/exfil,
false alerts and the minutes they are counted over, benign flows over the threshold, ROC-AUC,
slowest first alert) and the learnt threshold's fit.

    python -m netwarden_models.learn_table LABEL=FILE.json [LABEL=FILE.json ...]

LABEL names the row's run and setting (e.g. `seed31-long/v2-learnt`). `arp_rules` rows are
left out (they do not score flows).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .flow_v2_table import first_alert_cells

KEY_KINDS = ("scan", "flood", "exfiltration")  # the "every scan, flood and exfiltration"

HEADER = ("| run / setting | detector | path | threshold | fit | phases | scan/flood/exfil "
          "| incidents opened | false | judged min | false / h | benign over threshold "
          "| ROC-AUC | slowest 1st alert (flow), scan/flood/exfil but scan_slow | scan_slow 1st alert |")
ALIGN = "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"


def judged_minutes(report: dict, result: dict) -> float:
    """Minutes the false alerts are counted over: the labelled span, less the learning window."""
    start, end = report["labelled_start_ms"], report["labelled_end_ms"]
    fitted = (result.get("learning") or {}).get("fitted") or {}
    start = max(start, fitted.get("window_end_ms", 0))
    return max(end - start, 0) / 60_000


def fit_text(result: dict) -> str:
    fitted = (result.get("learning") or {}).get("fitted")
    if not fitted:
        return "shipped"
    text = f'{fitted["method"]}, {fitted["samples"]} scores'
    spot = fitted.get("spot")
    if spot:
        text += f', t {spot["t"]:.3f}, gamma {spot["gamma"]:.2f}, {spot["peaks"]} peaks'
    if fitted.get("excluded_samples"):
        text += f', {fitted["excluded_samples"]} left out'
    return text


def row(label: str, report: dict, result: dict) -> str:
    key = [p for p in result["phases"] if p["kind"].split("_")[0] in KEY_KINDS]
    slowest, slow = first_alert_cells(result)
    c = result["flows"]["confusion"]
    benign = c["fp"] + c["tn"]
    a = result["alerts"]
    rate = result["false_alerts_per_hour"]
    auc = result["flows"]["roc_auc"]
    return (f'| {label} | {result["detector"]} | {result["path"]} | {result["threshold"]:.4f} '
            f'| {fit_text(result)} | {result["detected_phases"]}/{result["attack_phases"]} '
            f'| {sum(p["detected"] for p in key)}/{len(key)} | {a["total"] - a["updates"]} '
            f'| {a["false"]} | {judged_minutes(report, result):.1f} '
            f'| {"n/a" if rate is None else f"{rate:.1f}"} '
            f'| {c["fp"]}/{benign} = {100 * c["fp"] / max(benign, 1):.2f} % '
            f'| {"n/a" if auc is None else f"{auc:.3f}"} | {slowest} | {slow} |')


def rows(files: list[tuple[str, Path]]) -> list[str]:
    out = [HEADER, ALIGN]
    for label, path in files:
        report = json.loads(path.read_text())
        for r in report["results"]:
            if r["detector"] != "arp_rules":
                out.append(row(label, report, r))
    return out


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print(__doc__, file=sys.stderr)
        return 2
    files = [(a.split("=", 1)[0], Path(a.split("=", 1)[1])) for a in argv]
    print("\n".join(rows(files)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
