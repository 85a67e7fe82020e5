"""The flow_ae_v2 kind: a lab run read through the gateway's `flow-v2` export, labelled by the
run's flow-labels.csv, novelty learnt on its lead-in; its bundles say kind flow_ae and schema
flow-v2, and the registry maps them back to flow_ae_v2."""

import json
from pathlib import Path

import numpy as np
import pytest

from netwarden_models import registry
from netwarden_models.cli import main
from netwarden_models.features import FEATURE_NAMES_V2
from netwarden_models.kinds.flow_ae import lab_labels, lead_in_end_ms
from test_golden_features import netwarden_bin

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "tests" / "data" / "lab" / "small"


def test_the_registry_maps_a_flow_v2_manifest_to_its_kind():
    v2 = {"kind": "flow_ae", "features": {"schema": "flow-v2"}}
    assert registry.for_manifest(v2).name == "flow_ae_v2"
    assert registry.for_manifest({"kind": "flow_ae", "features": {"schema": "flow-v1"}}).name == "flow_ae"
    kind = registry.get("flow_ae_v2")
    assert kind.feature_names == FEATURE_NAMES_V2 and kind.sample_shape == (17,)
    assert getattr(kind, "manifest_kind") == "flow_ae"
    assert set(kind.log1p) == set(FEATURE_NAMES_V2)


def test_a_lab_run_becomes_a_labelled_flow_v2_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("NETWARDEN_BIN", str(netwarden_bin()))
    ds = tmp_path / "ds"
    assert main(["dataset", "--kind", "flow_ae_v2", "--out", str(ds), "--lab-run", str(SMALL),
                 "--quiet"]) == 0
    meta = json.loads((ds / "dataset.json").read_text())
    data = np.load(ds / "data.npz")
    labels, raw = data["labels"], data["raw"]
    assert raw.shape == (5461, 17)
    # flow-labels.csv of tests/data/lab/small: 4,207 malicious records (4,205 with a key the
    # export reproduces exactly), all in the test split.
    assert 4190 <= labels.sum() <= 4207, meta
    assert (data["split"][labels == 1] == 2).all()
    # Novelty is learnt on the lead-in: benign records are rarely novel, malicious ones often.
    novel = raw[:, FEATURE_NAMES_V2.index("svc_novel")]
    assert novel[labels == 0].mean() < 0.2 < novel[labels == 1].mean()
    # Answered and unanswered conversations both occur.
    seen = raw[:, FEATURE_NAMES_V2.index("reverse_seen")]
    assert 0 < seen.mean() < 1


def test_lead_in_end_and_labels_of_a_lab_run(tmp_path):
    end = lead_in_end_ms(SMALL / "labels.csv")
    starts = [int(l.split(",")[5]) for l in (SMALL / "labels.csv").read_text().splitlines()[1:]
              if ",malicious," in l]
    assert end == min(starts)
    ident = [["x", "0", "10.0.0.1", "10.0.0.2", "1", "2", "6", "0", "0"]]
    assert lab_labels(ident, SMALL / "flow-labels.csv").tolist() == [0]  # not listed: benign
    with pytest.raises(ValueError):
        bad = tmp_path / "labels.csv"
        bad.write_text("phase,kind,label,attacker_ip,victim_ip,start_ms,end_ms,notes\n"
                       "p00,benign,benign,,,1,2,x\n")
        lead_in_end_ms(bad)
