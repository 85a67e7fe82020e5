"""The flow_ae network, a dense autoencoder: the seed's Keras model in PyTorch.

Seed (Keras, 8-wide input): Dense(8, relu) Dense(4, relu) Dense(2, relu) Dense(4, relu)
Dense(8, sigmoid). Layer widths 8 -> 8 -> 4 -> 2 -> 4 -> 8. Weights are initialised like
Keras' defaults (Glorot-uniform weights, zero biases).
"""

from __future__ import annotations

import torch
from torch import nn

HIDDEN = (8, 4, 2, 4)


class DenseAutoencoder(nn.Module):
    def __init__(self, input_width: int = 8, hidden: tuple[int, ...] = HIDDEN):
        super().__init__()
        self.input_width = input_width
        widths = (input_width, *hidden, input_width)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            linear = nn.Linear(a, b)
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
            layers.append(linear)
            layers.append(nn.Sigmoid() if i == len(widths) - 2 else nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def layer_widths(self) -> list[int]:
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        return [linears[0].in_features] + [m.out_features for m in linears]
