"""The series_ae networks: convolutional and LSTM autoencoders over `series-v1` windows
([batch, 50, 8], already scaled).

Every variant maps a window to its reconstruction of the same shape; the anomaly score is the
window's mean squared reconstruction error (docs/models.md, "Series LSTM family").

- ``seed``: the seed notebook's model. Encoder LSTM 128 -> 64 -> 32 (the last one keeps only
  its final hidden state), repeated over the time axis, decoder LSTM 32 -> 64 -> 128, and a
  time-distributed linear layer back to 8 features.
- ``edge``: the same shape, small enough for a router: encoder 32 -> 16, decoder 16 -> 32.
- ``attention``: encoder LSTM 64 -> 32 returning every step, a learned attention query pools the
  steps into one 32-wide code (so the bottleneck stays: attention over the *input* steps in the
  decoder would let the model copy anomalies through), decoder LSTM 32 -> 64, linear to 8.
- ``ensemble``: the average of the members' reconstructions, one ONNX graph.
- ``conv``: not an LSTM: a convolutional autoencoder (``ConvAE``) with the same kind of
  bottleneck (one 32-wide code per window), the form tract runs as fast as onnxruntime. It
  holds the LSTMs' ranking quality on the synthetic set across seeds (docs/models.md).

Why the repeat is not a RepeatVector: a Keras-style repeat exports as an Expand, and an Expand
feeding the next LSTM's input MatMul makes tract 0.23's optimiser fail. See ``repeat_code``.

Two LSTM forms give the same maths and weights (``lstm_form``):

- ``"onnx"``: ``torch.nn.LSTM``, exported as the ONNX ``LSTM`` op;
- ``"unrolled"``: the same cells written out as one input projection (one MatMul for all steps)
  plus a per-step recurrent MatMul, so the graph holds only MatMul/Add/Sigmoid/Tanh/Mul. tract
  runs its ONNX ``LSTM`` as a generic Scan loop; the unrolled form lets it fuse and batch the
  matrix products. Which form ships is decided by measurement (``select``, select/rule.py).
"""

from __future__ import annotations

import torch
from torch import nn

WINDOW = 50
WIDTH = 8
VARIANTS = ("seed", "edge", "attention", "ensemble", "conv")
MEMBERS = ("seed", "edge", "attention")  # what the ensemble averages
LSTM_FORMS = ("onnx", "unrolled")
NOT_RECURRENT = ("conv",)  # variants the LSTM forms do not apply to


def forms_of(variant: str, forms: tuple[str, ...]) -> tuple[str, ...]:
    """The forms worth exporting for a variant: every asked LSTM form for the recurrent ones,
    one file for ``conv`` (its forms would be the same graph)."""
    if variant in NOT_RECURRENT:
        return forms[:1]
    return forms


class UnrolledLSTM(nn.Module):
    """One LSTM layer (batch_first, PyTorch gate order i, f, g, o) written out step by step.

    Holds the same parameters as ``nn.LSTM(input, hidden, batch_first=True)`` (names
    ``weight_ih_l0`` ... ) so weights move between the two forms with ``load_state_dict``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        bound = hidden_size ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [batch, steps, input], or [batch, input] for an input that is the same at every
        step (a repeated code); returns (all hidden states [batch, steps, hidden], last)."""
        h_size = self.hidden_size
        # tanh(z) = 2 * sigmoid(2 z) - 1: scaling the g rows by 2 lets one Sigmoid cover all
        # four gates (fewer ops per step is what makes tract fast here). The scaled weights
        # are constants that the exporter and tract fold.
        scale = torch.ones(4 * h_size, dtype=x.dtype)
        scale[2 * h_size : 3 * h_size] = 2.0
        w_ih = (self.weight_ih_l0 * scale.unsqueeze(1)).t()
        w_hh = (self.weight_hh_l0 * scale.unsqueeze(1)).t()
        bias = (self.bias_ih_l0 + self.bias_hh_l0) * scale
        # One MatMul for every step's input projection; a repeated input is projected once.
        proj = torch.matmul(x, w_ih) + bias
        per_step = torch.unbind(proj, dim=1) if proj.dim() == 3 else (proj,) * steps
        h = torch.zeros_like(per_step[0][:, :h_size])
        c = torch.zeros_like(h)
        outs = []
        for t in range(steps):
            gates = torch.sigmoid(per_step[t] + torch.matmul(h, w_hh))
            i, f, g, o = torch.chunk(gates, 4, dim=1)
            c = f * c + i * (2.0 * g - 1.0)
            h = o * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, dim=1), h


class _Lstm(nn.Module):
    """A batch-first LSTM layer in either form, with one calling convention."""

    def __init__(self, input_size: int, hidden_size: int, form: str):
        super().__init__()
        if form not in LSTM_FORMS:
            raise ValueError(f"unknown LSTM form {form!r}; expected one of {LSTM_FORMS}")
        self.form = form
        if form == "onnx":
            self.cell = nn.LSTM(input_size, hidden_size, batch_first=True)
        else:
            self.cell = UnrolledLSTM(input_size, hidden_size)

    def forward(self, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.form == "onnx":
            seq, (h, _) = self.cell(x)
            return seq, h[0]
        return self.cell(x, steps)


def repeat_code(code: torch.Tensor, x: torch.Tensor, form: str) -> torch.Tensor:
    """The code as the decoder's input at every step of ``x``'s time axis.

    The unrolled LSTM takes the [batch, code] tensor as it is and projects it once. The ONNX
    ``LSTM`` op needs a sequence: ``x[..., :1] * 0 + code`` ties the time axis to the input's.
    A plain ``expand`` (what Keras' RepeatVector becomes) feeding a MatMul makes tract 0.23's
    declutter pass fail ("Trying to substitute a 1,50,128 by 1,1,128").
    """
    if form == "unrolled":
        return code
    return x[:, :, :1] * 0.0 + code.unsqueeze(1)


class LstmAE(nn.Module):
    """Stacked LSTM encoder -> last hidden state -> repeat -> stacked LSTM decoder -> linear."""

    def __init__(self, encoder: tuple[int, ...], decoder: tuple[int, ...], form: str = "onnx",
                 width: int = WIDTH, window: int = WINDOW):
        super().__init__()
        self.width, self.window, self.form = width, window, form
        enc_in = (width, *encoder[:-1])
        self.encoder = nn.ModuleList(_Lstm(a, b, form) for a, b in zip(enc_in, encoder))
        dec_in = (encoder[-1], *decoder[:-1])
        self.decoder = nn.ModuleList(_Lstm(a, b, form) for a, b in zip(dec_in, decoder))
        self.out = nn.Linear(decoder[-1], width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = self.window
        seq, last = x, x
        for layer in self.encoder:
            seq, last = layer(seq, steps)
        seq = repeat_code(last, x, self.form)
        for layer in self.decoder:
            seq, _ = layer(seq, steps)
        return self.out(seq)


class AttentionLstmAE(nn.Module):
    """Encoder LSTM 64 -> 32 (every step), learned-query attention pooling, decoder 32 -> 64."""

    def __init__(self, form: str = "onnx", width: int = WIDTH, window: int = WINDOW,
                 encoder: tuple[int, int] = (64, 32), decoder: tuple[int, ...] = (32, 64)):
        super().__init__()
        self.width, self.window, self.form = width, window, form
        enc_in = (width, *encoder[:-1])
        self.encoder = nn.ModuleList(_Lstm(a, b, form) for a, b in zip(enc_in, encoder))
        code = encoder[-1]
        self.key = nn.Linear(code, code)
        self.query = nn.Parameter(torch.zeros(code))
        self.scale = code ** -0.5
        dec_in = (code, *decoder[:-1])
        self.decoder = nn.ModuleList(_Lstm(a, b, form) for a, b in zip(dec_in, decoder))
        self.out = nn.Linear(decoder[-1], width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = self.window
        seq = x
        for layer in self.encoder:
            seq, _ = layer(seq, steps)
        scores = torch.matmul(torch.tanh(self.key(seq)), self.query) * self.scale  # [B, T]
        weights = torch.softmax(scores, dim=1).unsqueeze(2)
        code = (weights * seq).sum(dim=1)  # [B, code]
        seq = repeat_code(code, x, self.form)
        for layer in self.decoder:
            seq, _ = layer(seq, steps)
        return self.out(seq)


class EnsembleAE(nn.Module):
    """The average of its members' reconstructions (one graph, one ONNX file)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.members[0](x)
        for m in self.members[1:]:
            total = total + m(x)
        return total * (1.0 / len(self.members))


class ConvAE(nn.Module):
    """Convolutional autoencoder (not recurrent) with one code vector per window, like the LSTMs.

    Encoder: the window, channels first, is cut into 10 patches of 5 steps (Conv1d 8 -> 32,
    kernel = stride = 5, ReLU), then one Conv1d 32 -> 32 with kernel 10 spans all 10 patches and
    leaves a single 32-wide code (the LSTM encoders' bottleneck). Decoder: the transposed pair
    (ConvTranspose1d 32 -> 32 kernel 10, then 32 -> 8 kernel = stride = 5), ReLU between.

    An earlier form kept 5 codes of 16 channels (no layer saw the whole window before the
    bottleneck); it reconstructed better and ranked anomalies worse (ROC-AUC 0.9711 against
    0.9818-0.9848 for this one over five seeds, docs/models.md). tract runs both with a
    reused state and as fast as onnxruntime; ``form`` is accepted and ignored so the family's
    tooling treats it like the others.
    """

    CODE = 32
    PATCH = 5

    def __init__(self, form: str = "onnx"):
        super().__init__()
        if form not in LSTM_FORMS:
            raise ValueError(f"unknown LSTM form {form!r}; expected one of {LSTM_FORMS}")
        patches = WINDOW // self.PATCH
        self.encoder = nn.Sequential(
            nn.Conv1d(WIDTH, 32, self.PATCH, stride=self.PATCH), nn.ReLU(),
            nn.Conv1d(32, self.CODE, patches))
        self.decoder = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose1d(self.CODE, 32, patches), nn.ReLU(),
            nn.ConvTranspose1d(32, WIDTH, self.PATCH, stride=self.PATCH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x.transpose(1, 2))).transpose(1, 2)


def build(variant: str, form: str = "onnx") -> nn.Module:
    """A freshly initialised model of one variant (the ensemble gets fresh members)."""
    if variant == "seed":
        return LstmAE((128, 64, 32), (32, 64, 128), form)
    if variant == "edge":
        return LstmAE((32, 16), (16, 32), form)
    if variant == "attention":
        return AttentionLstmAE(form)
    if variant == "ensemble":
        return EnsembleAE([build(m, form) for m in MEMBERS])
    if variant == "conv":
        return ConvAE(form)
    raise ValueError(f"unknown series variant {variant!r}; expected one of {VARIANTS}")


def convert_form(model: nn.Module, variant: str, form: str) -> nn.Module:
    """The same trained weights in another LSTM form (state-dict keys only differ by ``cell``)."""
    other = build(variant, form)
    other.load_state_dict(model.state_dict())
    return other.eval()
