"""The GCN baseline on static snapshots (Python only). A run's edges are cut into snapshots
of ``WINDOW_MS`` of flow start time; in each, every `IP:port` endpoint is a node whose
features summarise its edges in that snapshot (in/out degree, distinct peers, mean edge
features as source and as destination), with no order and no time inside the snapshot. Two
GCN layers (symmetric-normalised adjacency with self loops) embed the nodes; an edge is
classified from [h_src, h_dst, its own 16 edge features]. The snapshot sees the whole window
at once (later edges too), which a causal model cannot: the baseline is not handicapped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .data import EDGE_WIDTH
from .nets import Gcn

WINDOW_MS = 30_000
NODE_WIDTH = 3 + 2 * EDGE_WIDTH


@dataclass
class Snapshot:
    adj: torch.Tensor  # sparse [n, n]
    nodes: torch.Tensor  # [n, NODE_WIDTH]
    src: torch.Tensor  # [m] node index
    dst: torch.Tensor
    edges: torch.Tensor  # [m, EDGE_WIDTH]
    rows: np.ndarray  # [m] index of the edge in the run's arrays


def snapshots(src_ep: np.ndarray, dst_ep: np.ndarray, e: np.ndarray, t_ms: np.ndarray,
              window_ms: int = WINDOW_MS) -> list[Snapshot]:
    out = []
    win = (t_ms - t_ms.min()) // window_ms if len(t_ms) else t_ms
    for w in np.unique(win):
        rows = np.nonzero(win == w)[0]
        names, inv = np.unique(np.concatenate([src_ep[rows], dst_ep[rows]]), return_inverse=True)
        m, n = len(rows), len(names)
        s, d = inv[:m], inv[m:]
        feats = e[rows].astype(np.float64)
        nodes = np.zeros((n, NODE_WIDTH))
        out_deg = np.bincount(s, minlength=n).astype(np.float64)
        in_deg = np.bincount(d, minlength=n).astype(np.float64)
        pairs = np.unique(np.stack([np.concatenate([s, d]), np.concatenate([d, s])], 1), axis=0)
        peers = np.bincount(pairs[:, 0], minlength=n).astype(np.float64)
        nodes[:, 0], nodes[:, 1], nodes[:, 2] = np.log1p(out_deg), np.log1p(in_deg), np.log1p(peers)
        np.add.at(nodes[:, 3 : 3 + EDGE_WIDTH], s, feats)
        np.add.at(nodes[:, 3 + EDGE_WIDTH :], d, feats)
        nodes[:, 3 : 3 + EDGE_WIDTH] /= np.maximum(out_deg, 1)[:, None]
        nodes[:, 3 + EDGE_WIDTH :] /= np.maximum(in_deg, 1)[:, None]
        # Symmetric normalised adjacency with self loops, over distinct neighbour pairs.
        ii = np.concatenate([pairs[:, 0], np.arange(n)])
        jj = np.concatenate([pairs[:, 1], np.arange(n)])
        deg = np.bincount(ii, minlength=n).astype(np.float64)
        vals = 1.0 / np.sqrt(deg[ii] * deg[jj])
        adj = torch.sparse_coo_tensor(np.stack([ii, jj]), vals.astype(np.float32), (n, n),
                                      check_invariants=True).coalesce()
        out.append(Snapshot(adj, torch.tensor(nodes, dtype=torch.float32),
                            torch.from_numpy(s.astype(np.int64)), torch.from_numpy(d.astype(np.int64)),
                            torch.from_numpy(e[rows].astype(np.float32)), rows))
    return out


def train_gcn(snaps: list[Snapshot], y: np.ndarray, train_mask: np.ndarray, classes: int,
              weights: torch.Tensor, epochs: int = 40, lr: float = 3e-3, seed: int = 7) -> tuple[Gcn, float]:
    """Full-batch per snapshot; loss on the edges of ``train_mask`` only (transductive, as the
    snapshot holds the test edges' structure too). Returns the model and seconds per epoch."""
    torch.manual_seed(seed)
    model = Gcn(NODE_WIDTH, EDGE_WIDTH, classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ce = nn.CrossEntropyLoss(weight=weights, reduction="sum")
    yt = torch.from_numpy(y.astype(np.int64))
    total = max(1, int(train_mask.sum()))
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        model.train()
        for i in rng.permutation(len(snaps)):
            sn = snaps[i]
            mask = torch.from_numpy(train_mask[sn.rows])
            if not bool(mask.any()):
                continue
            opt.zero_grad(set_to_none=True)
            logits = model(sn.adj, sn.nodes, sn.src, sn.dst, sn.edges)
            loss = ce(logits[mask], yt[sn.rows][mask]) / total * len(snaps)
            loss.backward()
            opt.step()
    return model.eval(), (time.monotonic() - started) / max(epochs, 1)


@torch.no_grad()
def predict_gcn(model: Gcn, snaps: list[Snapshot], n: int, classes: int) -> np.ndarray:
    probs = np.zeros((n, classes))
    for sn in snaps:
        probs[sn.rows] = torch.softmax(model(sn.adj, sn.nodes, sn.src, sn.dst, sn.edges), -1).numpy()
    return probs
