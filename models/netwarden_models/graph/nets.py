"""The edge classifiers.

``Tgat``: TGAT-style (Xu et al., ICLR 2020) over the gateway's gathered rows. Each endpoint's
K recent interactions become tokens: the interaction's edge features, which side the endpoint
was on, whether the peer is this edge's other endpoint, and a functional time encoding
``cos(w * ln(1 + dt) + b)`` (learned ``w``, ``b``; cos as a triangle wave, see ``TimeEncoding``). The new edge, with the endpoint's counters,
is the query; scaled dot-product attention (2 heads, masked to used slots) summarises each
endpoint; edge embedding + both summaries go through an MLP to one logit per pattern class.
The output (and the ONNX ``probs``) is the softmax [batch, classes].

``Gcn``: the baseline, on static snapshots (``gcn.py`` builds them): two graph-convolution
layers over the snapshot's endpoints, then an MLP over [h_src, h_dst, edge features].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .data import EDGE_WIDTH, ENDPOINT_FEATURES, ENDPOINT_WIDTH, K, SLOT_WIDTH

N_EP = len(ENDPOINT_FEATURES)


class TimeEncoding(nn.Module):
    """TGAT's functional time encoding, ``phi(t) = cos(w t + b)`` with learned frequencies,
    with cos replaced by its piecewise-linear twin (the triangle wave of the same period and
    phase: 1 at 0, -1 at pi). tract evaluates ``Cos`` one element at a time (about 190 ns
    each, measured: 64 of the model's 90 us per edge); Floor, Abs and a few multiply-adds cost
    it almost nothing."""

    def __init__(self, dim: int):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(0.1, 3.0, dim))
        self.b = nn.Parameter(torch.zeros(dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # [..., 1] -> [..., dim]
        u = (t * self.w + self.b) * (1.0 / (2.0 * math.pi))
        return 4.0 * torch.abs(u - torch.floor(u) - 0.5) - 1.0


class Tgat(nn.Module):
    def __init__(self, classes: int, dim: int = 32, heads: int = 2, time_dim: int = 8):
        super().__init__()
        self.dim, self.heads = dim, heads
        self.time = TimeEncoding(time_dim)
        self.edge = nn.Sequential(nn.Linear(EDGE_WIDTH, dim), nn.ReLU())
        self.query = nn.Linear(dim + N_EP + time_dim, dim)
        self.token = nn.Linear(EDGE_WIDTH + 2 + time_dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.head = nn.Sequential(nn.Linear(3 * dim + 2 * N_EP, 2 * dim), nn.ReLU(),
                                  nn.Linear(2 * dim, classes))

    def _side(self, e: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
        b = block.shape[0]
        ep = block[:, :N_EP]
        slots = block[:, N_EP:].reshape(b, K, SLOT_WIDTH)
        feats = slots[:, :, :EDGE_WIDTH]
        dt = slots[:, :, EDGE_WIDTH : EDGE_WIDTH + 1]
        flags = slots[:, :, EDGE_WIDTH + 1 : EDGE_WIDTH + 3]
        valid = slots[:, :, EDGE_WIDTH + 3]
        tok = torch.relu(self.token(torch.cat([feats, flags, self.time(dt)], dim=-1)))
        zero_t = self.time(torch.zeros_like(ep[:, :1]))
        q = self.query(torch.cat([e, ep, zero_t], dim=-1))  # [b, dim]
        hd = self.dim // self.heads
        qh = q.reshape(b, self.heads, 1, hd)
        kh = self.key(tok).reshape(b, K, self.heads, hd).transpose(1, 2)  # [b, h, K, hd]
        vh = self.value(tok).reshape(b, K, self.heads, hd).transpose(1, 2)
        scores = (qh * kh).sum(-1) / math.sqrt(hd)  # [b, h, K]
        mask = valid.unsqueeze(1)  # [b, 1, K]
        scores = scores + (mask - 1.0) * 1e4
        att = torch.softmax(scores, dim=-1) * mask
        return (att.unsqueeze(-1) * vh).sum(2).reshape(b, self.dim)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        e_raw = x[:, :EDGE_WIDTH]
        s = x[:, EDGE_WIDTH : EDGE_WIDTH + ENDPOINT_WIDTH]
        d = x[:, EDGE_WIDTH + ENDPOINT_WIDTH :]
        e = self.edge(e_raw)
        hs, hdst = self._side(e, s), self._side(e, d)
        return self.head(torch.cat([e, hs, hdst, s[:, :N_EP], d[:, :N_EP]], dim=-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities: what the gateway runs (the ONNX ``probs``)."""
        return torch.softmax(self.logits(x), dim=-1)


class Gcn(nn.Module):
    """Two GCN layers (normalised adjacency with self loops, given per snapshot) over node
    features, then an edge MLP."""

    def __init__(self, node_in: int, edge_in: int, classes: int, dim: int = 32):
        super().__init__()
        self.l1 = nn.Linear(node_in, dim)
        self.l2 = nn.Linear(dim, dim)
        self.head = nn.Sequential(nn.Linear(2 * dim + edge_in, 2 * dim), nn.ReLU(),
                                  nn.Linear(2 * dim, classes))

    def forward(self, adj: torch.Tensor, nodes: torch.Tensor, src: torch.Tensor,
                dst: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        h = torch.relu(torch.sparse.mm(adj, self.l1(nodes)))
        h = torch.relu(torch.sparse.mm(adj, self.l2(h)))
        return self.head(torch.cat([h[src], h[dst], edges], dim=-1))
