"""The exported form of a trained ``Tgat``: the same function, rearranged for tract.

Training runs ``nets.Tgat`` as written (one module per role, easy to read). The ONNX file the
gateway runs is this module, built from a trained ``Tgat``'s weights: the same outputs (the
export checks it against the trained module in onnxruntime and tract, within 1e-4; in practice
~1e-5), in about half the ONNX nodes and a third less time in tract (docs/performance.md).
tract runs a node as one pass over a ``[batch, ...]`` tensor; matrix products over many rows
are its fast path, small element-wise passes with broadcasting and reductions along a middle
axis its slow one, so the rearrangement trades the second for the first:

- Both endpoints' blocks are one ``[batch, 2, ...]`` tensor (the input's columns after the edge
  are the two blocks back to back), and each (edge, side, slot) is one row of a matrix
  product: every op runs once for both sides, no per-side slices or concatenations.
- The token projection reads the 20-value slot directly (zero weights on ``ln_dt`` and
  ``valid``); the time encoding's phase ``w dt + b`` is a product with the slot too.
- Time encoding: ``4 |frac(u) - 1/2| - 1`` with ``u = (w dt + b) / 2 pi`` equals
  ``4 |v - round(v)| - 1`` with ``v = u - 1/2`` (at a tie both give 1/2); the ``4 . - 1`` goes
  into the token projection's weights and bias.
- The query's time input is ``phi(0)``, a constant: folded into its bias, and the 1/sqrt(d)
  scale into its weights.
- Keys lose their bias: it adds ``q . b_k``, the same to every slot's score, which cancels in
  the softmax. A head's score is the sum of its channels of ``k * q``: a product with a 0/1
  matrix.
- The masked softmax over the K slots is written out (max, exp, sum): ``exp`` of masked slots
  is multiplied by 0, the weighted sum of the values is divided by the sum of the weights
  afterwards, and an endpoint without history (no valid slot) gets zero attention, as
  ``softmax(...) * mask`` gave; the sums over slots are products with 0/1 matrices where tract
  would otherwise reduce along a middle axis. The output softmax is written out too.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .data import EDGE_WIDTH, ENDPOINT_WIDTH, K, SLOT_WIDTH
from .nets import N_EP, Tgat

DT = EDGE_WIDTH  # the slot's ln_dt column
FLAGS = slice(EDGE_WIDTH + 1, EDGE_WIDTH + 3)
VALID = EDGE_WIDTH + 3


class TgatFast(nn.Module):
    def __init__(self, m: Tgat):
        super().__init__()
        dim, heads = m.dim, m.heads
        hd = dim // heads
        self.dim, self.heads = dim, heads
        with torch.no_grad():
            f = lambda t: t.detach().clone().float()  # noqa: E731
            self.edge = nn.Linear(EDGE_WIDTH, dim)
            self.edge.weight.copy_(m.edge[0].weight)
            self.edge.bias.copy_(m.edge[0].bias)
            # Time encoding: v = slot @ time_w + time_b (only ln_dt weighs); |v - round(v)|.
            two_pi = 2.0 * math.pi
            tw = torch.zeros(SLOT_WIDTH, m.time.w.numel())
            tw[DT] = f(m.time.w) / two_pi
            self.register_buffer("time_w", tw)
            self.register_buffer("time_b", f(m.time.b) / two_pi - 0.5)
            # Token: relu(slot @ tok_slot + |v - round v| @ tok_time + tok_bias).
            w = f(m.token.weight)  # [dim, EDGE_WIDTH + 2 + td]
            ws = torch.zeros(SLOT_WIDTH, dim)
            ws[:EDGE_WIDTH] = w[:, :EDGE_WIDTH].T
            ws[FLAGS] = w[:, EDGE_WIDTH : EDGE_WIDTH + 2].T
            self.register_buffer("tok_slot", ws)
            self.register_buffer("tok_time", 4.0 * w[:, EDGE_WIDTH + 2 :].T.contiguous())
            self.register_buffer("tok_bias", f(m.token.bias) - w[:, EDGE_WIDTH + 2 :].sum(1))
            # Keys without their bias (it adds q . b_k to every slot's score: cancels).
            self.register_buffer("key_w", f(m.key.weight).T.contiguous())
            self.value = nn.Linear(dim, dim)
            self.value.weight.copy_(m.value.weight)
            self.value.bias.copy_(m.value.bias)
            # Query, scaled by 1/sqrt(hd): e @ q_e + ep @ q_ep + q_b (phi(0) folded into q_b).
            wq = f(m.query.weight)  # [dim, dim + N_EP + td]
            phi0 = m.time(torch.zeros(1, 1))[0].float()
            scale = 1.0 / math.sqrt(hd)
            self.register_buffer("q_e", scale * wq[:, :dim].T.contiguous())
            self.register_buffer("q_ep", scale * wq[:, dim : dim + N_EP].T.contiguous())
            self.register_buffer("q_b", scale * (f(m.query.bias) + wq[:, dim + N_EP :] @ phi0))
            # Per-head sums of the dim channels.
            sums = torch.zeros(dim, heads)
            for h in range(heads):
                sums[h * hd : (h + 1) * hd, h] = 1.0
            self.register_buffer("head_sum", sums)
            # Sums over the K slots of each head's [K, heads] scores.
            self.register_buffer("slot_sum", torch.eye(heads).repeat(K, 1))
            # Head's first layer over [e, hs, hd, ep_s, ep_d], as trained.
            self.head0 = nn.Linear(m.head[0].in_features, m.head[0].out_features)
            self.head0.weight.copy_(m.head[0].weight)
            self.head0.bias.copy_(m.head[0].bias)
            self.out = nn.Linear(m.head[2].in_features, m.head[2].out_features)
            self.out.weight.copy_(m.head[2].weight)
            self.out.bias.copy_(m.head[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, dim, heads = x.shape[0], self.dim, self.heads
        rows = b * 2 * K  # one per (edge, side, slot)
        e = torch.relu(self.edge(x[:, :EDGE_WIDTH]))  # [b, dim]
        sides = x[:, EDGE_WIDTH:].reshape(b, 2, ENDPOINT_WIDTH)
        ep = sides[:, :, :N_EP]  # [b, 2, N_EP]
        slots = sides[:, :, N_EP:].reshape(rows, SLOT_WIDTH)
        v = slots @ self.time_w + self.time_b  # [rows, td]
        enc = torch.abs(v - torch.round(v))
        tok = torch.relu(slots @ self.tok_slot + enc @ self.tok_time + self.tok_bias)
        q = ((e @ self.q_e + self.q_b).unsqueeze(1)
             + (ep.reshape(b * 2, N_EP) @ self.q_ep).reshape(b, 2, dim))  # [b, 2, dim]
        k = (tok @ self.key_w).reshape(b, 2, K, dim)
        scores = (k * q.unsqueeze(2)).reshape(rows, dim) @ self.head_sum  # [rows, heads]
        valid = slots[:, VALID : VALID + 1]  # [rows, 1]
        scores = (scores + (valid * 1e4 - 1e4)).reshape(b, 2, K, heads)
        ex = torch.exp(scores - scores.amax(2, keepdim=True)) * valid.reshape(b, 2, K, 1)
        # Normalised after the weighted sum (fewer values to divide); 0 without history.
        den = (ex.reshape(b * 2, K * heads) @ self.slot_sum).clamp_min(1e-30)  # [b * 2, heads]
        vals = self.value(tok).reshape(b, 2, K, heads, dim // heads)
        ctx = (ex.unsqueeze(-1) * vals).sum(2).reshape(b * 2, heads, dim // heads)
        ctx = (ctx / den.unsqueeze(-1)).reshape(b, 2 * dim)
        h = torch.relu(self.head0(torch.cat([e, ctx, ep.reshape(b, 2 * N_EP)], dim=-1)))
        logits = self.out(h)
        z = torch.exp(logits - logits.amax(1, keepdim=True))
        return z / z.sum(1, keepdim=True)


def tgat_from_onnx(path, classes: int) -> Tgat:
    """A ``Tgat`` with the weights of an exported trained-form ONNX file (a bundle made before
    this form existed): named initializers are the parameters; a ``Linear`` the exporter wrote
    as ``MatMul`` + ``Add`` has its weight, transposed, as the MatMul's unnamed initializer."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    adds = {n.input[0]: n.input[1] for n in g.node if n.op_type == "Add" and len(n.input) == 2}
    state = {}
    for n in g.node:
        if n.op_type == "MatMul" and n.input[1] in init and n.output[0] in adds:
            bias = adds[n.output[0]]
            if bias.endswith(".bias"):
                state[bias[: -len("bias")] + "weight"] = init[n.input[1]].T
    model = Tgat(classes)
    names = dict(model.named_parameters())
    for name in names:
        if name not in state:
            if name not in init:
                raise ValueError(f"{path}: no weights for {name}")
            state[name] = init[name]
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    return model.eval()
