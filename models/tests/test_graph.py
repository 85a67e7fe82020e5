"""The temporal graph kind (graph_tgat): the graph-v1 layout as the gateway writes it, the
supervised path of the shared training loop, the GCN snapshots, and the ONNX contract of a
classifier (``probs`` [batch, classes])."""

import numpy as np
import pytest
import torch

from netwarden_models import golden, registry
from netwarden_models.graph import data as gd
from netwarden_models.graph.gcn import snapshots
from netwarden_models.graph.nets import Tgat
from netwarden_models.kinds.graph_tgat import class_weights
from netwarden_models.train.trainer import FitConfig, fit


def test_the_layout_is_the_gateways():
    assert gd.INPUT_WIDTH == 16 + 2 * (2 + 8 * 20) == len(gd.COLUMNS)
    header = golden.GRAPH_GOLDEN.read_text().split("\n", 1)[0].split(",")
    assert tuple(header) == gd.CSV_HEADER
    kind = registry.get("graph_tgat")
    assert kind.sample_shape == (gd.INPUT_WIDTH,) and kind.classes[0] == "benign"


def test_a_bad_header_is_refused_with_the_reason(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(gd.GraphCsvError, match="features --set graph-v1"):
        gd.read_edge_csv(p)


def test_class_weights_favour_rare_classes():
    w = class_weights(np.array([0] * 100 + [1] * 4 + [2]), 4)
    assert w[3] == 0 and w[2] > w[1] > w[0] > 0


def test_the_supervised_loop_learns_a_pattern_from_neighbours():
    # The class is only visible in the destination endpoint's slots: how many are used.
    rng = np.random.default_rng(0)
    n = 600
    x = np.zeros((n, gd.INPUT_WIDTH), np.float32)
    y = rng.integers(0, 2, n)
    base = gd.EDGE_WIDTH + gd.ENDPOINT_WIDTH + len(gd.ENDPOINT_FEATURES)
    for i in range(n):
        used = 8 if y[i] else 1
        for k in range(used):
            s = base + k * gd.SLOT_WIDTH
            x[i, s + gd.EDGE_WIDTH] = rng.uniform(0, 2) if y[i] else rng.uniform(8, 12)
            x[i, s + gd.SLOT_WIDTH - 1] = 1.0
    kind = registry.get("graph_tgat")
    torch.manual_seed(0)
    model = Tgat(len(kind.classes))
    cfg = FitConfig(epochs=25, batch_size=64, learning_rate=1e-2, patience=25, quiet=True)
    res = fit(model, x[:500], x[500:], cfg, y_train=y[:500], y_val=y[500:], loss=kind.loss(y[:500]))
    acc = float(np.mean(res.model(torch.from_numpy(x[500:])).argmax(1).numpy() == y[500:]))
    assert acc > 0.95 and res.best_val_loss < res.history[0][1]


def test_snapshots_normalise_the_adjacency():
    src = np.array(["a:1", "a:1", "b:2"])
    dst = np.array(["c:3", "d:4", "c:3"])
    e = np.ones((3, gd.EDGE_WIDTH), np.float32)
    (snap,) = snapshots(src, dst, e, np.array([0, 10, 20]))
    dense = snap.adj.to_dense().numpy()
    assert dense.shape == (4, 4) and np.allclose(dense, dense.T)
    # a (index 0) has 2 neighbours + itself: its self loop weight is 1/3.
    assert dense[0, 0] == pytest.approx(1 / 3)
    assert snap.nodes[0, 0] == pytest.approx(np.log(3))  # out degree 2


def test_export_writes_probs_of_the_classes(tmp_path):
    kind = registry.get("graph_tgat")
    torch.manual_seed(0)
    model = kind.build("tgat").eval()
    out = tmp_path / "m.onnx"
    kind.export(model, out, "tgat", "default")
    from netwarden_models.export import runtimes as R

    x = np.random.default_rng(1).random((5, gd.INPUT_WIDTH)).astype(np.float32)
    y = R.run_ort(out, x)
    assert y.shape == (5, len(kind.classes)) and np.allclose(y.sum(1), 1, atol=1e-5)
    yt = R.run_tract(out, x, 8)
    assert np.abs(yt - y).max() < 1e-5


def test_metered_flows_are_labelled_by_eval_s_phase_rule(tmp_path):
    # labels.csv: a brute force by .66 against .30 from t=10 s to t=20 s; an arp_spoof after.
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "phase,kind,label,attacker_ip,victim_ip,start_ms,end_ms,notes\n"
        "p00-lead_in,benign,benign,,,0,10000,x\n"
        "p01-bruteforce_ssh,bruteforce_ssh,malicious,10.0.0.66,10.0.0.30,10000,20000,x\n"
        "p02-arp_spoof,arp_spoof,malicious,10.0.0.66,10.0.0.101,30000,40000,x\n")
    phases = gd.read_malicious_phases(labels)
    assert [p.phase for p in phases] == ["p01-bruteforce_ssh", "p02-arp_spoof"]
    ident = [
        # the attacker's SSH session and the server's reply, inside the phase
        ("m", "0", "10.0.0.66", "10.0.0.30", "40000", "22", "6", "12000", "12500"),
        ("m", "0", "10.0.0.30", "10.0.0.66", "22", "40000", "6", "12000", "12500"),
        # ends 0.5 s before the phase: within the 1 s slack
        ("m", "0", "10.0.0.66", "10.0.0.30", "40001", "22", "6", "9000", "9500"),
        # a benign host at the same time, and the attacker long after the phase
        ("m", "0", "10.0.0.101", "10.0.0.30", "40002", "22", "6", "12000", "12500"),
        ("m", "0", "10.0.0.66", "10.0.0.10", "40003", "80", "6", "25000", "25100"),
        # during arp_spoof: left out (ARP makes no IP flow)
        ("m", "0", "10.0.0.66", "10.0.0.10", "40004", "80", "6", "35000", "35100"),
    ]
    table = gd.EdgeTable(x=np.zeros((len(ident), gd.INPUT_WIDTH), np.float32), ident=ident,
                         path="t")
    run = gd.label_by_phase("t/capture", table, phases)
    assert run.kind.tolist() == ["bruteforce_ssh"] * 3 + ["benign", "benign"]
    assert run.y.tolist() == [gd.CLASSES.index("brute_force")] * 3 + [0, 0]
    assert run.unlabelled == 0


def _graph_rows(n: int, seed: int) -> np.ndarray:
    """Rows shaped like the gateway's: features in [0, 3), slots used or not (an endpoint
    with no history at all among them), ln_dt over the range the lab sees."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 3, (n, gd.INPUT_WIDTH)).astype(np.float32)
    for side in range(2):
        base = gd.EDGE_WIDTH + side * gd.ENDPOINT_WIDTH + len(gd.ENDPOINT_FEATURES)
        for k in range(gd.K):
            s = base + k * gd.SLOT_WIDTH
            x[:, s + gd.EDGE_WIDTH] = rng.uniform(0, 16, n)
            x[:, s + gd.SLOT_WIDTH - 1] = rng.random(n) < 0.6
    x[0, gd.EDGE_WIDTH:] = 0.0  # two endpoints never seen
    return x


def test_the_folded_form_computes_the_trained_function(tmp_path):
    from netwarden_models.export import runtimes as R
    from netwarden_models.export.onnx_export import export_onnx
    from netwarden_models.graph.fast import TgatFast, tgat_from_onnx

    torch.manual_seed(3)
    model = Tgat(len(gd.CLASSES)).eval()
    with torch.no_grad():  # trained-looking weights: larger than at init, time frequencies spread
        for p in model.parameters():
            p.mul_(3.0)
    x = _graph_rows(300, 4)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
        got = TgatFast(model)(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() < 1e-5
    # The kind exports the folded form; tract runs it as torch ran the trained one.
    out = tmp_path / "folded.onnx"
    registry.get("graph_tgat").export(model, out, "tgat", "default")
    assert np.abs(R.run_tract(out, x, 64) - want).max() < 1e-4
    # A trained-form file (what older bundles hold) gives its weights back.
    old = tmp_path / "trained.onnx"
    export_onnx(model, old, (gd.INPUT_WIDTH,), output_name="probs", output_shape=(len(gd.CLASSES),))
    back = tgat_from_onnx(old, len(gd.CLASSES))
    for (name, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), name
    assert sum(R.op_counts(out).values()) < 0.6 * sum(R.op_counts(old).values())
