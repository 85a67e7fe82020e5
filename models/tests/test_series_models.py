"""Series models: shapes, the two LSTM forms, the ensemble, export, int8 and tract parity."""

import numpy as np
import pytest
import torch

from netwarden_models.export import runtimes
from netwarden_models.export.onnx_export import export_onnx, quantize_dynamic_int8
from netwarden_models.kinds import series_nets as series_ae

SHAPE = (50, 8)


def export_series(model, path, form):
    """As the series kind exports: dynamo for the onnx form, TorchScript for unrolled."""
    export_onnx(model, path, SHAPE, exporter="dynamo" if form == "onnx" else "torchscript")
    return path

torch.set_num_threads(1)


@pytest.mark.parametrize("variant", series_ae.VARIANTS)
def test_every_variant_maps_a_window_to_its_shape_in_both_forms(variant):
    torch.manual_seed(0)
    model = series_ae.build(variant, "onnx").eval()
    unrolled = series_ae.convert_form(model, variant, "unrolled")
    x = torch.rand(3, 50, 8)
    with torch.no_grad():
        a, b = model(x), unrolled(x)
    assert a.shape == (3, 50, 8)
    # Same weights, same maths: the forms differ only in how the graph is written.
    assert float((a - b).abs().max()) < 1e-5


def test_seed_layer_sizes_follow_the_seed():
    m = series_ae.build("seed")
    assert [l.cell.hidden_size for l in m.encoder] == [128, 64, 32]
    assert [l.cell.hidden_size for l in m.decoder] == [32, 64, 128]
    assert (m.out.in_features, m.out.out_features) == (128, 8)
    edge = series_ae.build("edge")
    assert sum(p.numel() for p in edge.parameters()) < sum(p.numel() for p in m.parameters()) / 10


def test_ensemble_is_the_mean_of_its_members():
    torch.manual_seed(1)
    e = series_ae.build("ensemble").eval()
    x = torch.rand(2, 50, 8)
    with torch.no_grad():
        want = sum(m(x) for m in e.members) / 3
        assert float((e(x) - want).abs().max()) < 1e-6


def test_unknown_variant_or_form_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown series variant"):
        series_ae.build("huge")
    with pytest.raises(ValueError, match="unknown LSTM form"):
        series_ae.build("edge", "scan")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The edge model exported in both forms, plus int8 copies (one export per form)."""
    torch.manual_seed(2)
    d = tmp_path_factory.mktemp("series-export")
    model = series_ae.build("edge", "onnx").eval()
    files = {}
    for form in series_ae.LSTM_FORMS:
        m = series_ae.convert_form(model, "edge", form)
        fp32 = export_series(m, d / f"edge-{form}-fp32.onnx", form)
        files[(form, "fp32")] = fp32
        files[(form, "int8")] = quantize_dynamic_int8(fp32, d / f"edge-{form}-int8.onnx")
    return model, files


def test_exported_files_match_torch_in_onnxruntime_and_tract(exported):
    model, files = exported
    x = np.random.default_rng(0).random((5, 50, 8), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    for (form, precision), path in files.items():
        tol = 1e-5 if precision == "fp32" else 2e-2
        ort = runtimes.run_ort(path, x)
        tract = runtimes.run_tract(path, x, 4)  # 4 + a zero-padded 1
        assert ort.shape == tract.shape == (5, 50, 8)
        assert np.abs(ort - ref).max() < tol, (form, precision)
        # Dynamic int8 picks its scales from the whole batch (zero padding included), so an
        # int8 window's output depends a little on its batch neighbours.
        assert np.abs(tract - ort).max() < (1e-4 if precision == "fp32" else 2e-3), (form, precision)


def test_int8_quantises_matmuls_only_and_keeps_the_lstm_op(exported):
    import onnx

    _, files = exported
    ops = {n.op_type for n in onnx.load(str(files[("onnx", "int8")])).graph.node}
    assert "LSTM" in ops and "MatMulInteger" in ops
    assert not any(n.domain == "com.microsoft" for n in onnx.load(str(files[("onnx", "int8")])).graph.node)
    unrolled_ops = {n.op_type for n in onnx.load(str(files[("unrolled", "fp32")])).graph.node}
    assert "LSTM" not in unrolled_ops and "MatMul" in unrolled_ops


def test_regression_tract_reused_state_carries_the_onnx_lstm_state(exported):
    """tract 0.23 keeps an ONNX LSTM's hidden state in the run state: a reused state scores
    the next window from where the last one ended. The gateway must start each run from a
    fresh state (the unrolled form has no such state)."""
    _, files = exported
    rng = np.random.default_rng(3)
    a, b = rng.random((2, 1, 50, 8), dtype=np.float32)
    for form, carries in (("onnx", True), ("unrolled", False)):
        plan = runtimes.TractPlan(files[(form, "fp32")], 1, SHAPE)
        fresh = plan.run(a)
        plan.run_reused(b)
        reused = plan.run_reused(a)
        assert (np.abs(reused - fresh).max() > 1e-3) == carries, form


def test_conv_variant_is_not_recurrent_and_runs_alike_in_tract_even_with_a_reused_state(tmp_path):
    """The convolutional variant has no recurrent op, so tract's reused run state (what the
    gateway keeps for stateless plans) gives the fresh state's output."""
    import onnx

    torch.manual_seed(4)
    model = series_ae.build("conv").eval()
    path = export_series(model, tmp_path / "conv.onnx", "onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "Conv" in ops and not ops & {"LSTM", "GRU", "Scan", "Loop"}, ops
    rng = np.random.default_rng(5)
    x = rng.random((3, 50, 8), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(runtimes.run_ort(path, x) - ref).max() < 1e-5
    plan = runtimes.TractPlan(path, 1, SHAPE)
    for i, window in enumerate(x):
        fresh = plan.run(window[None])
        assert np.abs(fresh[0] - ref[i]).max() < 1e-5
        plan.run_reused(x[(i + 1) % len(x)][None])  # another window first
        reused = plan.run_reused(window[None])
        assert np.abs(reused - fresh).max() < 1e-6


def test_conv_variant_squeezes_each_window_into_one_code_and_exports_once():
    """The conv form that holds the LSTMs' ranking quality is the one whose encoder sees the
    whole window before the bottleneck: one 32-wide code per window (docs/models.md). Its
    LSTM forms would be one graph twice, so a run exports it once."""
    model = series_ae.build("conv").eval()
    with torch.no_grad():
        code = model.encoder(torch.zeros(3, 50, 8).transpose(1, 2))
    assert tuple(code.shape) == (3, series_ae.ConvAE.CODE, 1)
    assert series_ae.forms_of("conv", ("onnx", "unrolled")) == ("onnx",)
    assert series_ae.forms_of("edge", ("onnx", "unrolled")) == ("onnx", "unrolled")
    assert series_ae.forms_of("edge", ("unrolled",)) == ("unrolled",)
