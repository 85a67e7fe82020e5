"""Reading the gateway's ``graph-v1`` edge rows and labelling them from a lab run.

The layout is the gateway's (``gateway/src/pipeline/graph/edge.rs``): the nine identity
columns of every feature CSV, then ``INPUT_WIDTH`` values: the edge's 16 features, then per
endpoint (source, destination) 2 counters and K=8 slots of 20 (the interaction's 16 edge
features, ln(1 + dt ms), was_src, peer_is_other, valid). Nothing here computes a feature.

Labels: a lab run's ``flow-labels.csv`` labels every NetFlow v9 record (same records, same
order of fields); the packet meter's flows of the run's ``capture.pcap`` (cut at other times
than softflowd's, so not in that file) are labelled by ``netwarden eval``'s rule instead: a flow
overlapping a malicious phase (1 s slack) with one of its attackers as an endpoint is that
phase's (``label_by_phase``); the *pattern* of an edge is its phase's attack kind folded into the classes
below. ``arp_spoof`` makes no IP flows of its own (the two or three records the lab labels
with it are the victim's ICMP/DHCP noise), so its edges are left out of training and scoring:
NetFlow cannot see ARP (the capture path's ARP accounting does).
"""

from __future__ import annotations

import csv
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..features import IDENTITY_COLUMNS

SCHEMA = "graph-v1"
K = 8
EDGE_FEATURES = ("ln_packets", "ln_bytes", "ln_duration_ms", "ln_mean_packet", "tcp", "udp",
                 "icmp", "syn", "ack", "fin", "rst", "src_port_low", "dst_port_low",
                 "src_port_frac", "dst_port_frac", "src_is_initiator")
ENDPOINT_FEATURES = ("ln_interactions", "ln_age_s")
SLOT_EXTRA = ("ln_dt_ms", "was_src", "peer_is_other", "valid")
EDGE_WIDTH = len(EDGE_FEATURES)
SLOT_WIDTH = EDGE_WIDTH + len(SLOT_EXTRA)
ENDPOINT_WIDTH = len(ENDPOINT_FEATURES) + K * SLOT_WIDTH
INPUT_WIDTH = EDGE_WIDTH + 2 * ENDPOINT_WIDTH


def column_names() -> tuple[str, ...]:
    out = [f"e_{n}" for n in EDGE_FEATURES]
    for side in ("s", "d"):
        out += [f"{side}_{n}" for n in ENDPOINT_FEATURES]
        for k in range(K):
            out += [f"{side}{k}_{n}" for n in EDGE_FEATURES + SLOT_EXTRA]
    return tuple(out)


COLUMNS = column_names()
CSV_HEADER = IDENTITY_COLUMNS + COLUMNS

# The pattern head's classes, in output order. Index 0 is benign.
CLASSES = ("benign", "scan", "brute_force", "flood", "reverse_shell", "exfiltration")
KIND_TO_CLASS = {
    "benign": "benign",
    "scan_syn": "scan", "scan_connect": "scan", "scan_udp": "scan", "scan_slow": "scan",
    "bruteforce_ssh": "brute_force",
    "flood_syn": "flood", "flood_udp": "flood",
    "reverse_shell": "reverse_shell",
    "exfiltration": "exfiltration",
}
IGNORED_KINDS = ("arp_spoof",)


class GraphCsvError(ValueError):
    pass


@dataclass
class EdgeTable:
    """Edge rows of one CSV: float32 [n, INPUT_WIDTH] and each row's identity (text)."""

    x: np.ndarray
    ident: list[tuple[str, ...]]
    path: str


def read_edge_csv(path: str | Path) -> EdgeTable:
    path = Path(path)
    with path.open(newline="") as f:
        r = csv.reader(f)
        header = next(r, None)
        if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
            raise GraphCsvError(f"{path}: header is not the {SCHEMA} layout "
                                f"({len(header or [])} columns, expected {len(CSV_HEADER)}; "
                                f"write it with `netwarden features --set {SCHEMA}`)")
        ident, rows = [], []
        n_id = len(IDENTITY_COLUMNS)
        for line in r:
            if len(line) != len(CSV_HEADER):
                raise GraphCsvError(f"{path}: line {r.line_num} has {len(line)} fields, "
                                    f"expected {len(CSV_HEADER)}")
            ident.append(tuple(line[:n_id]))
            rows.append(line[n_id:])
    x = np.array(rows, dtype=np.float32).reshape(len(rows), INPUT_WIDTH)
    return EdgeTable(x=x, ident=ident, path=str(path))


def flow_key(src, dst, sport, dport, proto, first_ms, last_ms) -> tuple:
    return (src, dst, int(sport), int(dport), int(proto), int(first_ms), int(last_ms))


def read_flow_labels(path: str | Path) -> dict[tuple, tuple[str, str]]:
    """flow-labels.csv: {record key: (phase, kind)}; a key seen twice keeps its first label."""
    out: dict[tuple, tuple[str, str]] = {}
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            key = flow_key(row["src"], row["dst"], row["sport"], row["dport"], row["proto"],
                           row["first_ms"], row["last_ms"])
            kind = row["kind"] if row["label"] == "malicious" else "benign"
            out.setdefault(key, (row["phase"], kind))
    return out


@dataclass
class LabRun:
    """One lab run's edges (v9 export), labelled."""

    name: str
    x: np.ndarray  # float32 [n, INPUT_WIDTH]
    y: np.ndarray  # int64 [n]: CLASSES index
    phase: np.ndarray  # str [n]
    kind: np.ndarray  # str [n]: lab attack kind (benign for benign)
    src: np.ndarray  # str [n]
    dst: np.ndarray
    sport: np.ndarray  # int64 [n]
    dport: np.ndarray
    first_ms: np.ndarray  # int64 [n]
    unlabelled: int


def label_edges(name: str, table: EdgeTable, labels: dict) -> LabRun:
    keep, y, phase, kind, src, dst, first = [], [], [], [], [], [], []
    sport, dport = [], []
    missing = 0
    for i, idr in enumerate(table.ident):
        key = flow_key(idr[2], idr[3], idr[4], idr[5], idr[6], idr[7], idr[8])
        lab = labels.get(key)
        if lab is None:
            missing += 1
            continue
        ph, k = lab
        if k in IGNORED_KINDS:
            continue
        if k not in KIND_TO_CLASS:
            raise GraphCsvError(f"{name}: unknown attack kind {k!r} in flow-labels.csv")
        keep.append(i)
        y.append(CLASSES.index(KIND_TO_CLASS[k]))
        phase.append(ph)
        kind.append(k)
        src.append(idr[2])
        dst.append(idr[3])
        sport.append(int(idr[4]))
        dport.append(int(idr[5]))
        first.append(int(idr[7]))
    return LabRun(name=name, x=table.x[np.array(keep, dtype=np.int64)], y=np.array(y, np.int64),
                  phase=np.array(phase), kind=np.array(kind), src=np.array(src),
                  dst=np.array(dst), sport=np.array(sport, np.int64),
                  dport=np.array(dport, np.int64), first_ms=np.array(first, np.int64), unlabelled=missing)


def export_lab_run(binary: Path, run_dir: Path, out_csv: Path, timeout: float = 600) -> Path:
    """``netwarden features --set graph-v1`` of a lab run's NetFlow v9 export."""
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(binary), "features", "--set", SCHEMA, "--netflow-pcap",
                    str(run_dir / "netflow-v9.pcap"), "--out", str(out_csv)], check=True,
                   capture_output=True, timeout=timeout)
    return out_csv


def load_lab_run(binary: Path, run_dir: Path, cache: Path) -> LabRun:
    csv_path = cache / f"{run_dir.name}.graph-v1.csv"
    if not csv_path.exists() or csv_path.stat().st_mtime < (run_dir / "netflow-v9.pcap").stat().st_mtime:
        export_lab_run(binary, run_dir, csv_path)
    table = read_edge_csv(csv_path)
    return label_edges(run_dir.name, table, read_flow_labels(run_dir / "flow-labels.csv"))


@dataclass
class PhaseSpan:
    phase: str
    kind: str
    attackers: frozenset
    start_ms: int
    end_ms: int


def read_malicious_phases(labels_csv: str | Path) -> list[PhaseSpan]:
    """labels.csv's malicious phases (attacker_ip may list several, separated by ``;`` or
    spaces)."""
    out = []
    with Path(labels_csv).open(newline="") as f:
        for row in csv.DictReader(f):
            if row["label"] != "malicious":
                continue
            ips = frozenset(a for a in row["attacker_ip"].replace(";", " ").split() if a)
            out.append(PhaseSpan(row["phase"], row["kind"], ips, int(row["start_ms"]),
                                 int(row["end_ms"])))
    return out


def label_by_phase(name: str, table: EdgeTable, phases: list[PhaseSpan],
                   slack_ms: int = 1000) -> LabRun:
    """Labels edges by ``netwarden eval``'s rule (``cli/eval/metrics.rs``, ``malicious_phase``):
    the first malicious phase the flow overlaps (widened by ``slack_ms``) with an attacker as
    one of its endpoints; otherwise benign."""
    labels = {}
    for idr in table.ident:
        src, dst, first, last = idr[2], idr[3], int(idr[7]), int(idr[8])
        lab = ("benign", "benign")
        for p in phases:
            if (first <= p.end_ms + slack_ms and max(last, first) >= p.start_ms - slack_ms
                    and (src in p.attackers or dst in p.attackers)):
                lab = (p.phase, p.kind)
                break
        labels[flow_key(*idr[2:9])] = lab
    return label_edges(name, table, labels)


def load_capture_run(binary: Path, run_dir: Path, cache: Path,
                     timeout: float = 600) -> LabRun:
    """A lab run's ``capture.pcap`` metered by the gateway's packet meter
    (``netwarden features --set graph-v1 --pcap``), labelled by phase (``label_by_phase``)."""
    pcap = run_dir / "capture.pcap"
    csv_path = cache / f"{run_dir.name}.capture.graph-v1.csv"
    if not csv_path.exists() or csv_path.stat().st_mtime < pcap.stat().st_mtime:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(binary), "features", "--set", SCHEMA, "--pcap", str(pcap),
                        "--out", str(csv_path)], check=True, capture_output=True, timeout=timeout)
    table = read_edge_csv(csv_path)
    return label_by_phase(f"{run_dir.name}/capture", table,
                          read_malicious_phases(run_dir / "labels.csv"))
