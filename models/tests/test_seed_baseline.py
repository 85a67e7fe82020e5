"""The seed baseline's labelling, metrics and end-to-end run on a small synthetic flow table."""

import csv
import ipaddress

import numpy as np
import pytest

from netwarden_models import seed_baseline as sb

HEADER = "phase,kind,label,attacker_ip,victim_ip,start_ms,end_ms,notes\n"


def write_labels(tmp_path, body):
    p = tmp_path / "labels.csv"
    p.write_text(HEADER + body)
    return str(p)


def test_auc_with_ties_and_empty_classes():
    s = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    y = np.array([True, True, True, False, False])
    assert sb.roc_auc(s, y) == pytest.approx(5 / 6)
    assert sb.roc_auc(s, np.zeros(5, dtype=bool)) is None
    m = sb.flow_metrics(s, np.zeros(5, dtype=bool), np.zeros(5, dtype=bool))
    assert m["precision"] is None and m["recall"] is None and m["f1"] is None
    assert m["fpr"] == 0.0


def test_labels_follow_attacker_and_time(tmp_path):
    phases = sb.read_labels(write_labels(
        tmp_path, "lead,benign,benign,,,0,1000,\nscan,nmap,malicious,10.0.0.9,10.0.0.2,1000,2000,x\n"))
    ip = ipaddress.ip_address
    flows = sb.Flows(src=[ip("10.0.0.9"), ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.9")],
                     dst=[ip("10.0.0.2"), ip("10.0.0.9"), ip("10.0.0.2"), ip("10.0.0.2")],
                     first_ms=np.array([1500, 1500, 1500, 500]),
                     last_ms=np.array([1500, 1600, 1500, 500]), x=np.zeros((4, 1)),
                     detectors={})
    assert sb.label_flows(flows, phases, 0).tolist() == [True, True, False, False]
    assert sb.label_flows(flows, phases, 600).tolist() == [True, True, False, True]


def test_bad_labels_name_file_and_line(tmp_path):
    with pytest.raises(sb.BaselineError, match="line 2: label 'evil'"):
        sb.read_labels(write_labels(tmp_path, "x,y,evil,,,1,2,\n"))
    with pytest.raises(sb.BaselineError, match="needs an attacker_ip"):
        sb.read_labels(write_labels(tmp_path, "x,y,malicious,,,1,2,\n"))


def test_end_to_end_flags_the_big_flows(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(300):  # lead-in: small flows
        rows.append(("10.0.0.5", "10.0.0.2", i * 10, int(rng.integers(2, 12))))
    for i in range(100):  # attack: huge flows from the attacker
        rows.append(("10.0.0.9", "10.0.0.2", 5000 + i, int(rng.integers(500, 900))))
    for i in range(100):  # benign background during the attack
        rows.append(("10.0.0.5", "10.0.0.2", 5000 + i, int(rng.integers(2, 12))))
    flows = tmp_path / "flows.csv"
    with open(flows, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["src_ip", "dst_ip", "bidirectional_first_seen_ms",
                    "bidirectional_last_seen_ms", "bidirectional_packets", "flow_ae_error",
                    "flow_ae_anomalous"])
        # A stand-in detector that flags every flow from the attacker (one flow unscored).
        w.writerows((s, d, t, t + 5, n, "" if i == 0 else (1.0 if s == "10.0.0.9" else 0.1),
                     int(s == "10.0.0.9"))
                    for i, (s, d, t, n) in enumerate(rows))
    labels = write_labels(tmp_path, "lead,benign,benign,,,0,4000,\n"
                                    "flood,x,malicious,10.0.0.9,10.0.0.2,5000,5200,\n")
    r = sb.evaluate(sb.read_flows(str(flows), ["bidirectional_packets"]),
                    sb.read_labels(labels), 0, 30, 7, 0.95, ["bidirectional_packets"])
    assert r["train_flows"] == 300
    m = r["all_flows"]
    assert m["flows"] == 500 and m["malicious"] == 100
    assert m["roc_auc"] > 0.9
    assert m["recall"] == 1.0
    nw = r["netwarden_same_flows"]["flow_ae"]
    assert nw["scored"] == 499
    assert nw["all_flows"]["roc_auc"] == 1.0 and nw["all_flows"]["fpr"] == 0.0
    assert nw["after_lead_in"]["flows"] == 200
    [flood] = r["per_phase"]
    assert flood == {"phase": "flood", "kind": "x", "malicious": 100, "seed_flagged": 100,
                     "flow_ae_flagged": 100}
    assert sb.main(["--flows", str(flows), "--labels", labels, "--epochs", "2", "--json"]) == 0
    assert sb.main(["--flows", str(tmp_path / "none.csv"), "--labels", labels]) == 2
