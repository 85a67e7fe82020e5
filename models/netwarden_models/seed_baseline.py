"""The seed's method on a lab run, as the reference baseline for `netwarden eval`.

The seed project scored flows with a dense autoencoder on NFStream's ``bidirectional_packets``
and flagged a flow when its reconstruction error exceeded the 95th percentile of the training
errors. This module does that on one lab run (docs/evaluation.md):

- flows: the NFStream columns of the run's capture, as metered by netwarden's packet meter
  (``netwarden eval DIR --paths capture --write-nfstream flows.csv``);
- labels: the run's ``labels.csv``, with the rule ``netwarden eval`` applies: a flow is
  malicious iff its [first, last] packet times overlap a malicious phase (widened by
  ``--slack-ms``) and one of the phase's attackers is an endpoint;
- training: the benign lead-in only (flows that end before the first malicious phase,
  minus the slack); min/max scaling fitted on those flows (the seed used scikit-learn's
  MinMaxScaler on raw columns); Dense 8-4-2-4 with ReLU, a sigmoid output, Adam, MSE;
- threshold: the 95th percentile of the training flows' errors; a flow is flagged when its
  error is above it.

It reports ROC-AUC, precision, recall, F1 and false-positive rate over all flows of the run
(what ``netwarden eval`` reports) and over the flows after the lead-in (never trained on),
and, when the CSV carries netwarden's verdicts (``<detector>_error``/``_anomalous``, which
``--write-nfstream`` adds), the same figures for netwarden's detectors on the same flows.
Rates with an empty denominator are ``None`` (``n/a``), as in ``netwarden eval``.

Self-contained on purpose (numpy and torch only), so it keeps working while the package's
pipeline changes around it:

    python -m netwarden_models.seed_baseline --flows flows.csv --labels DIR/labels.csv [--json]
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import sys
from dataclasses import dataclass

import numpy as np

HIDDEN = (8, 4, 2, 4)


class BaselineError(Exception):
    """Bad input: the message names the file and line."""


@dataclass(frozen=True)
class Phase:
    name: str
    kind: str
    malicious: bool
    attackers: frozenset
    start_ms: int
    end_ms: int


def _ips(text: str, where: str) -> frozenset:
    out = set()
    for part in text.replace(";", " ").replace("|", " ").split():
        try:
            out.add(ipaddress.ip_address(part))
        except ValueError as e:
            raise BaselineError(f"{where}: {part!r} is not an IP address") from e
    return frozenset(out)


def read_labels(path: str) -> list[Phase]:
    """labels.csv: phase,kind,label,attacker_ip,victim_ip,start_ms,end_ms,notes."""
    phases = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.DictReader(f)
            need = {"phase", "kind", "label", "attacker_ip", "start_ms", "end_ms"}
            missing = need - set(rows.fieldnames or [])
            if missing:
                raise BaselineError(f"{path}: header lacks {', '.join(sorted(missing))}")
            for line, row in enumerate(rows, start=2):
                where = f"{path} line {line}"
                label = (row["label"] or "").strip().lower()
                if label not in ("benign", "malicious"):
                    raise BaselineError(f"{where}: label {row['label']!r} is neither benign nor malicious")
                try:
                    start, end = int(row["start_ms"]), int(row["end_ms"])
                except (TypeError, ValueError) as e:
                    raise BaselineError(f"{where}: start_ms/end_ms must be whole epoch ms") from e
                attackers = _ips(row["attacker_ip"] or "", where)
                if label == "malicious" and not attackers:
                    raise BaselineError(f"{where}: a malicious phase needs an attacker_ip")
                phases.append(Phase(row["phase"], row["kind"], label == "malicious",
                                    attackers, start, end))
    except OSError as e:
        raise BaselineError(f"cannot read {path}: {e}") from e
    if not phases:
        raise BaselineError(f"{path}: no phases")
    return phases


@dataclass
class Flows:
    src: list
    dst: list
    first_ms: np.ndarray
    last_ms: np.ndarray
    x: np.ndarray  # [n, len(columns)]
    # netwarden's own verdicts on the same flows, when the CSV has them
    # (`<detector>_error`, `<detector>_anomalous`): name -> (errors, flagged); NaN = not scored.
    detectors: dict


def read_flows(path: str, columns: list[str]) -> Flows:
    """The CSV `netwarden eval --write-nfstream` writes: src_ip,dst_ip, then NFStream columns."""
    src, dst, first, last, x = [], [], [], [], []
    det_cols: list[str] = []
    det: dict = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.DictReader(f)
            need = {"src_ip", "dst_ip", "bidirectional_first_seen_ms",
                    "bidirectional_last_seen_ms", *columns}
            missing = need - set(rows.fieldnames or [])
            if missing:
                raise BaselineError(f"{path}: header lacks {', '.join(sorted(missing))}")
            names = rows.fieldnames or []
            det_cols = [c[:-len("_error")] for c in names
                        if c.endswith("_error") and f"{c[:-len('_error')]}_anomalous" in names]
            det = {d: ([], []) for d in det_cols}
            for line, row in enumerate(rows, start=2):
                try:
                    for d in det_cols:
                        e = row[f"{d}_error"]
                        det[d][0].append(float(e) if e else float("nan"))
                        det[d][1].append(row[f"{d}_anomalous"] == "1")
                    src.append(ipaddress.ip_address(row["src_ip"]))
                    dst.append(ipaddress.ip_address(row["dst_ip"]))
                    first.append(int(float(row["bidirectional_first_seen_ms"])))
                    last.append(int(float(row["bidirectional_last_seen_ms"])))
                    x.append([float(row[c]) for c in columns])
                except (TypeError, ValueError) as e:
                    raise BaselineError(f"{path} line {line}: {e}") from e
    except OSError as e:
        raise BaselineError(f"cannot read {path}: {e}") from e
    if not src:
        raise BaselineError(f"{path}: no flows")
    return Flows(src, dst, np.asarray(first, dtype=np.int64), np.asarray(last, dtype=np.int64),
                 np.asarray(x, dtype=np.float64),
                 {d: (np.asarray(e, dtype=np.float64), np.asarray(f, dtype=bool))
                  for d, (e, f) in det.items()})


def label_flows(flows: Flows, phases: list[Phase], slack_ms: int) -> np.ndarray:
    """True where a flow overlaps a malicious phase (± slack) with an attacker as endpoint."""
    y = np.zeros(len(flows.src), dtype=bool)
    for p in phases:
        if not p.malicious:
            continue
        last = np.maximum(flows.last_ms, flows.first_ms)
        in_time = (flows.first_ms <= p.end_ms + slack_ms) & (last >= p.start_ms - slack_ms)
        ends = np.array([(s in p.attackers) or (d in p.attackers)
                         for s, d in zip(flows.src, flows.dst)], dtype=bool)
        y |= in_time & ends
    return y


def roc_auc(scores: np.ndarray, y: np.ndarray) -> float | None:
    """Mann-Whitney U with average ranks for ties; None when a class is empty."""
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(first + (counts - 1) / 2.0 + 1.0, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def flow_metrics(scores: np.ndarray, flagged: np.ndarray, y: np.ndarray) -> dict:
    tp = int((flagged & y).sum())
    fp = int((flagged & ~y).sum())
    tn = int((~flagged & ~y).sum())
    fn = int((~flagged & y).sum())
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall > 0 else None)
    return {"flows": len(y), "malicious": tp + fn, "benign": tn + fp, "flagged": tp + fp,
            "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
            "roc_auc": roc_auc(scores, y), "precision": precision, "recall": recall,
            "f1": f1, "fpr": _ratio(fp, fp + tn)}


def train_and_score(x_train: np.ndarray, x_all: np.ndarray, epochs: int, seed: int,
                    batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Fits min/max + the dense AE on x_train; returns (train errors, errors of x_all)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    lo, hi = x_train.min(axis=0), x_train.max(axis=0)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    scale = lambda a: torch.tensor((a - lo) / span, dtype=torch.float32)  # noqa: E731
    width = x_train.shape[1]
    widths = (width, *HIDDEN, width)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        lin = nn.Linear(a, b)
        nn.init.xavier_uniform_(lin.weight)
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.Sigmoid() if i == len(widths) - 2 else nn.ReLU()]
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt = scale(x_train)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch_size):
            b = xt[perm[i:i + batch_size]]
            opt.zero_grad()
            loss = ((model(b) - b) ** 2).mean()
            loss.backward()
            opt.step()
    with torch.no_grad():
        err = lambda t: ((model(t) - t) ** 2).mean(dim=1).numpy().astype(np.float64)  # noqa: E731
        return err(xt), err(scale(x_all))


def per_phase(flows: Flows, phases: list[Phase], slack_ms: int, flagged: np.ndarray,
              others: dict) -> list[dict]:
    """Per malicious phase: its malicious flows, and how many each method flagged."""
    out = []
    for p in phases:
        if not p.malicious:
            continue
        mine = label_flows(flows, [p], slack_ms)
        row = {"phase": p.name, "kind": p.kind, "malicious": int(mine.sum()),
               "seed_flagged": int((flagged & mine).sum())}
        for name, f in others.items():
            row[f"{name}_flagged"] = int((f & mine).sum())
        out.append(row)
    return out


def evaluate(flows: Flows, phases: list[Phase], slack_ms: int, epochs: int, seed: int,
             quantile: float, columns: list[str]) -> dict:
    y = label_flows(flows, phases, slack_ms)
    attacks = [p.start_ms for p in phases if p.malicious]
    lead_in_end = (min(attacks) if attacks else max(p.end_ms for p in phases)) - slack_ms
    train = (np.maximum(flows.last_ms, flows.first_ms) < lead_in_end) & ~y
    if int(train.sum()) < 10:
        raise BaselineError(f"only {int(train.sum())} flows start in the benign lead-in "
                            f"(before {lead_in_end} ms); need at least 10 to train")
    train_err, err = train_and_score(flows.x[train], flows.x, epochs, seed)
    threshold = float(np.quantile(train_err, quantile))
    flagged = err > threshold
    after = ~train
    same_flows = {}
    for name, (derr, dflag) in flows.detectors.items():
        ok = ~np.isnan(derr)
        same_flows[name] = {
            "scored": int(ok.sum()),
            "all_flows": flow_metrics(derr[ok], dflag[ok], y[ok]),
            "after_lead_in": flow_metrics(derr[ok & after], dflag[ok & after], y[ok & after]),
        }
    return {
        "method": f"dense AE {'-'.join(map(str, (len(columns), *HIDDEN, len(columns))))} on "
                  f"{', '.join(columns)}, min/max on the lead-in, threshold = "
                  f"{quantile:g} quantile of the training errors",
        "columns": columns, "seed": seed, "epochs": epochs, "slack_ms": slack_ms,
        "lead_in_end_ms": lead_in_end, "train_flows": int(train.sum()),
        "threshold": threshold,
        "all_flows": flow_metrics(err, flagged, y),
        "after_lead_in": flow_metrics(err[after], flagged[after], y[after]),
        "netwarden_same_flows": same_flows,
        "per_phase": per_phase(flows, phases, slack_ms, flagged,
                               {n: d[1] for n, d in flows.detectors.items()}),
    }


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def human(r: dict) -> str:
    lines = [f"seed baseline: {r['method']}",
             f"trained on {r['train_flows']} lead-in flows (ending before {r['lead_in_end_ms']} ms), "
             f"threshold {r['threshold']:.6g}"]
    def row(who: str, what: str, m: dict) -> str:
        return (f"{who} {what}: {m['flows']} flows ({m['malicious']} malicious), {m['flagged']} "
                f"flagged: ROC-AUC {_fmt(m['roc_auc'])}, precision {_fmt(m['precision'])}, "
                f"recall {_fmt(m['recall'])}, F1 {_fmt(m['f1'])}, FPR {_fmt(m['fpr'])}")

    for key, what in (("all_flows", "all flows"), ("after_lead_in", "after the lead-in")):
        lines.append(row("seed", what, r[key]))
        for name, m in r["netwarden_same_flows"].items():
            lines.append(row(f"netwarden {name}", what, m[key]))
    lines.append("flagged / malicious flows per attack phase:")
    for ph in r["per_phase"]:
        others = "".join(f", {k[:-len('_flagged')]} {v}" for k, v in ph.items()
                         if k.endswith("_flagged") and k != "seed_flagged")
        lines.append(f"  {ph['phase']:<24} {ph['kind']:<16} {ph['malicious']:>6} malicious: "
                     f"seed {ph['seed_flagged']}{others}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m netwarden_models.seed_baseline",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--flows", required=True, metavar="CSV",
                   help="`netwarden eval DIR --paths capture --write-nfstream CSV` output")
    p.add_argument("--labels", required=True, metavar="labels.csv")
    p.add_argument("--columns", default="bidirectional_packets",
                   help="comma-separated NFStream columns (default: bidirectional_packets)")
    p.add_argument("--slack-ms", type=int, default=1000, help="as netwarden eval (default 1000)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--quantile", type=float, default=0.95)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    columns = [c.strip() for c in a.columns.split(",") if c.strip()]
    try:
        result = evaluate(read_flows(a.flows, columns), read_labels(a.labels), a.slack_ms,
                          a.epochs, a.seed, a.quantile, columns)
    except BaselineError as e:
        print(f"seed_baseline: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if a.json else human(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
