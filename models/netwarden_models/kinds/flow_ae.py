"""Kind ``flow_ae``: the dense autoencoder over `flow-v1` flow features (one row per flow);
``flow_ae_v2`` is the same network over `flow-v2` (its bundles say ``"kind": "flow_ae"`` and
``"schema": "flow-v2"``, which is how the gateway tells them apart).

Data: `netwarden features --netflow-pcap` CSVs. Labels are per file: ``--features`` files are
normal, every row of an ``--anomalous`` file is anomalous, unless ``--scan-json`` (the fixtures'
``scan-mixed.scan.json``) narrows that to the flows between the scanner and its target that
start while nmap ran (approximate: a few benign flows in that 0.3 s fall in too).

``--lab-run DIR`` (repeatable) takes a lab run (tests/lab/run.sh): its NetFlow v9 export's
features (with `flow-v2`, novelty learnt on the run's benign lead-in), labelled per record by
the run's ``flow-labels.csv``: benign rows are normal, malicious rows anomalous.

Split: normal rows are shuffled (seeded) into train / val / test; anomalous rows go to test only
(an autoencoder learns normal traffic).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .. import gateway
from ..data.dataset import sha256_file
from ..data.scaling import FLOW_V1_LOG1P, FLOW_V2_LOG1P
from ..features import FEATURE_NAMES, FEATURE_NAMES_V2, SCHEMA, SCHEMA_V2, read_feature_rows
from .base import TEST, TRAIN, VAL, ModelKind, Samples, TrainDefaults
from .flow_nets import DenseAutoencoder


class FlowAeKind(ModelKind):
    name = "flow_ae"
    schema = SCHEMA
    feature_names = FEATURE_NAMES
    log1p = FLOW_V1_LOG1P
    variants = ("seed",)
    default_variant = "seed"
    sample_shape = (len(FEATURE_NAMES),)
    threshold_split = TRAIN
    defaults = TrainDefaults(epochs=200, batch_size=64, learning_rate=1e-3, patience=20,
                             clip_grad=None)
    traffic_feature = "bidirectional_bytes"

    def add_dataset_args(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("flow_ae data (labels by file)")
        g.add_argument("--features", action="append", default=[], metavar="CSV",
                       help="normal flow-v1 CSV from `netwarden features` (repeatable)")
        g.add_argument("--anomalous", action="append", default=[], metavar="CSV",
                       help="flow-v1 CSV whose rows are anomalous (repeatable)")
        g.add_argument("--netflow-pcap", action="append", default=[], metavar="PCAP",
                       help="normal NetFlow/IPFIX capture: its features are exported by the "
                            "gateway binary (repeatable)")
        g.add_argument("--anomalous-pcap", action="append", default=[], metavar="PCAP",
                       help="capture whose flows are anomalous (repeatable)")
        # --lab-run DIR (repeatable) is graph_tgat's argument, shared: one parser serves every
        # kind, and both read the same lab run layout.
        g.add_argument("--scan-json", metavar="JSON",
                       help="label only the scan's flows in anomalous files (the fixtures' "
                            "scan-mixed.scan.json: scanner_ip, target_ip, nmap wall clock)")
        g.add_argument("--val-fraction", type=float, default=0.1)
        g.add_argument("--test-fraction", type=float, default=0.2)

    def read_dataset(self, args, work: Path):
        files: list[tuple[Path, int]] = [(Path(f), 0) for f in args.features]
        files += [(Path(f), 1) for f in args.anomalous]
        for label, pcaps in ((0, args.netflow_pcap), (1, args.anomalous_pcap)):
            for pcap in pcaps:
                csv_path = work / (Path(pcap).stem + ".csv")
                gateway.export_features(csv_path, netflow_pcaps=[pcap], feature_set=self.schema)
                files.append((csv_path, label))
        lab_runs = [Path(d) for d in getattr(args, "lab_run", [])]
        for d in lab_runs:
            csv_path = work / f"{d.name}.csv"
            learn = lead_in_end_ms(d / "labels.csv") if self.schema == SCHEMA_V2 else None
            gateway.export_features(csv_path, netflow_pcaps=[d / "netflow-v9.pcap"],
                                    feature_set=self.schema, learn_until=learn)
            files.append((csv_path, -1))
        if not files:
            raise ValueError("no flow data: give --features/--anomalous CSVs, --netflow-pcap "
                             "or --lab-run")
        scan = json.loads(Path(args.scan_json).read_text()) if args.scan_json else None
        raws, labels, times, srcs, sources = [], [], [], [], []
        for k, (path, label) in enumerate(files):
            raw, ident = read_feature_rows(path, self.schema)
            if label == -1:
                lab = lab_labels(ident, lab_runs[[d.name for d in lab_runs].index(path.stem)]
                                 / "flow-labels.csv")
            else:
                lab = np.full(len(raw), label, dtype=np.int8)
            if label == 1 and scan is not None:
                lab = scan_labels(ident, scan)
            raws.append(raw)
            labels.append(lab)
            times.append(np.array([int(r[7]) for r in ident], dtype=np.int64))
            srcs.append(np.full(len(raw), k, dtype=np.int32))
            sources.append({"file": path.name, "sha256": sha256_file(path), "rows": len(raw),
                            "label": {0: "normal", 1: "anomalous", -1: "lab flow-labels.csv"}[label],
                            "anomalous_rows": int(lab.sum())})
        raw = np.concatenate(raws)
        lab = np.concatenate(labels)
        split = random_split(lab, args.val_fraction, args.test_fraction, args.seed)
        s = Samples(raw=raw, labels=lab, split=split, time_ms=np.concatenate(times),
                    source=np.concatenate(srcs),
                    labelled=bool(args.anomalous or args.anomalous_pcap or lab_runs),
                    info={"label_rule": "by file" + (", scan flows only (--scan-json)" if scan else "")
                          + (", lab runs by flow-labels.csv" if lab_runs else "")})
        return s, sources

    def build(self, variant: str):
        self.check_variant(variant)
        return DenseAutoencoder(len(self.feature_names))


class FlowAeV2Kind(FlowAeKind):
    """The flow autoencoder over `flow-v2` rows (17 values)."""

    name = "flow_ae_v2"
    manifest_kind = "flow_ae"
    bundle_name = "flow-ae-v2"
    schema = SCHEMA_V2
    feature_names = FEATURE_NAMES_V2
    log1p = FLOW_V2_LOG1P
    sample_shape = (len(FEATURE_NAMES_V2),)

    def add_dataset_args(self, p: argparse.ArgumentParser) -> None:
        pass  # flow_ae's arguments (one parser serves every kind)


def lead_in_end_ms(labels_csv: Path) -> int:
    """End of a lab run's benign lead-in (its first malicious phase's start), in Unix ms."""
    import csv

    with Path(labels_csv).open(newline="") as f:
        starts = [int(r["start_ms"]) for r in csv.DictReader(f) if r["label"] == "malicious"]
    if not starts:
        raise ValueError(f"{labels_csv}: no malicious phase, so no lead-in end")
    return min(starts)


def lab_labels(identity: list[list[str]], flow_labels: Path) -> np.ndarray:
    """1 for records the lab's flow-labels.csv calls malicious; 0 otherwise (also for a record
    it does not list)."""
    from ..graph.data import flow_key, read_flow_labels

    labels = read_flow_labels(flow_labels)
    out = np.zeros(len(identity), dtype=np.int8)
    for i, r in enumerate(identity):
        hit = labels.get(flow_key(*r[2:9]))
        if hit is not None and hit[1] != "benign":
            out[i] = 1
    return out


def scan_labels(identity: list[list[str]], scan: dict) -> np.ndarray:
    """1 for flows between the scanner and the target that start while nmap ran (±1 s)."""
    pair = {scan["scanner_ip"], scan["target_ip"]}
    lo = scan["nmap_wallclock_start_epoch"] * 1000.0 - 1000.0
    hi = scan["nmap_wallclock_end_epoch"] * 1000.0 + 1000.0
    out = np.zeros(len(identity), dtype=np.int8)
    for i, r in enumerate(identity):
        if {r[2], r[3]} == pair and lo <= float(r[7]) <= hi:
            out[i] = 1
    return out


def random_split(labels: np.ndarray, val_fraction: float, test_fraction: float,
                 seed: int) -> np.ndarray:
    """Normal rows shuffled into train/val/test by the fractions; anomalous rows into test."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("--val-fraction and --test-fraction must be in [0, 1) and sum below 1")
    split = np.full(len(labels), TEST, dtype=np.int8)
    normal = np.nonzero(labels == 0)[0]
    order = np.random.default_rng(seed).permutation(normal)
    n_test = int(round(len(order) * test_fraction))
    n_val = int(round(len(order) * val_fraction))
    split[order[n_test : n_test + n_val]] = VAL
    split[order[n_test + n_val :]] = TRAIN
    return split
