import torch
from torch import nn

from netwarden_models.kinds.flow_nets import DenseAutoencoder


def test_layers_match_the_seed_model():
    # Seed: Dense(8 relu) Dense(4 relu) Dense(2 relu) Dense(4 relu) Dense(8 sigmoid) on 8 inputs.
    m = DenseAutoencoder(8)
    assert m.layer_widths() == [8, 8, 4, 2, 4, 8]
    kinds = [type(x) for x in m.net]
    assert kinds == [nn.Linear, nn.ReLU] * 4 + [nn.Linear, nn.Sigmoid]
    assert sum(p.numel() for p in m.parameters()) == 72 + 36 + 10 + 12 + 40


def test_output_shape_and_range():
    torch.manual_seed(0)
    m = DenseAutoencoder(8).eval()
    with torch.no_grad():
        y = m(torch.randn(37, 8) * 10)
    assert y.shape == (37, 8)
    assert bool(((y >= 0) & (y <= 1)).all())
