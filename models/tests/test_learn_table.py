"""learn_table: the section-7.3 rows from `netwarden eval --json` reports."""

import json

from netwarden_models import learn_table


def _phase(kind, detected, first=None):
    return {"kind": kind, "detected": detected, "first_alert_flow_s": first}


def _report(tmp_path, learning):
    result = {
        "path": "netflow-v9", "detector": "flow_ae", "threshold": 0.25,
        "learning": learning,
        "phases": [_phase("scan_syn", True, 0.0), _phase("flood_udp", True, 1.4),
                   _phase("scan_slow", True, 4.3), _phase("exfiltration", False),
                   _phase("arp_spoof", False), _phase("bruteforce_ssh", True, 0.5)],
        "detected_phases": 4, "attack_phases": 6,
        "alerts": {"total": 9, "updates": 4, "attacker": 6, "victim": 0, "false": 3,
                   "false_updates": 0},
        "false_alerts_per_hour": 7.2,
        "flows": {"confusion": {"tp": 10, "fp": 5, "tn": 995, "fn": 2}, "roc_auc": 0.9876},
    }
    arp = dict(result, detector="arp_rules")
    report = {"labelled_start_ms": 1_000, "labelled_end_ms": 1_000 + 45 * 60_000,
              "results": [result, arp]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    return path


def test_learnt_row_counts_only_after_the_window(tmp_path):
    fitted = {"method": "spot", "samples": 4900, "excluded_samples": 12,
              "spot": {"t": 0.1234, "gamma": -0.05, "peaks": 98},
              "window_end_ms": 1_000 + 20 * 60_000}
    rows = learn_table.rows([("s31/learnt", _report(tmp_path, {"fitted": fitted}))])
    assert len(rows) == 3  # header, alignment, flow_ae (arp_rules left out)
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert cells[:4] == ["s31/learnt", "flow_ae", "netflow-v9", "0.2500"]
    assert cells[4] == "spot, 4900 scores, t 0.123, gamma -0.05, 98 peaks, 12 left out"
    assert cells[5:9] == ["4/6", "3/4", "5", "3"]  # scan/flood/exfil: exfiltration missed
    assert cells[9] == "25.0"  # 45 labelled minutes less the 20-minute window
    assert cells[10:13] == ["7.2", "5/1000 = 0.50 %", "0.988"]
    assert cells[13:] == ["1.40 s", "4.3 s"]  # slowest but scan_slow, then scan_slow


def test_shipped_row_counts_the_whole_span(tmp_path):
    rows = learn_table.rows([("s31/shipped", _report(tmp_path, None))])
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert cells[4] == "shipped"
    assert cells[9] == "45.0"


def test_main_wants_label_equals_file(capsys):
    assert learn_table.main(["no-label.json"]) == 2
