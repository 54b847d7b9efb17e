"""Batch-normalised LSTM (Cooijmans et al. 2016, "Recurrent Batch Normalization", arXiv 1603.09025, §4):

    gates = BN_t(W_hh h; γ_hh) + BN_t(W_ih x; γ_ih) + b         no shift inside: b does that
    c'    = σ(f) c + σ(i) tanh(g)
    h'    = σ(o) tanh(BN_t(c'; γ_c, β_c))

BN_t normalises each feature over the batch with statistics of its own for every time step
t < MAX_STEPS (the paper's rule: the statistics of early steps differ from later ones; steps past
the last one seen in training reuse its statistics). γ starts at 0.1 (the paper, §5: with unit
gains tanh saturates and gradients vanish). In training each step uses its batch's statistics and
updates running averages for that step; in evaluation and sampling the running averages are used,
so a row's result never depends on the other rows of its batch.

Each row's step count is part of the state (``t``, (B, H), every column the same), so it is saved,
carried across truncated-BPTT chunks and restored with h and c: a carried state continues at the
right step, and a padded row stops counting at its end. In training the statistics are taken over
the rows that still have a real step (`live`), so padding never enters them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import State
from .standard import LSTMCell

MAX_STEPS = 256  # time steps with statistics of their own; later ones share the last
INITIAL_GAIN = 0.1
MOMENTUM = 0.1  # weight of a new batch in the running averages (PyTorch's BatchNorm default)
EPS = 1e-5


class BatchNormLSTMCell(LSTMCell):
    fused_mode = None
    state_names = ("h", "c", "t")
    reads_live = True  # `Recurrent` passes which rows have a real step: batch statistics skip padding
    zoneout_ready = False  # keeping a unit's old value at random would also freeze the step count

    def add_parameters(self) -> None:
        H = self.hidden_size
        self.bn_ih_gain = nn.Parameter(torch.empty(4 * H))  # γ_ih
        self.bn_hh_gain = nn.Parameter(torch.empty(4 * H))  # γ_hh
        self.bn_c_gain = nn.Parameter(torch.empty(H))  # γ_c
        self.bn_c_bias = nn.Parameter(torch.empty(H))  # β_c
        for name, width in (("ih", 4 * H), ("hh", 4 * H), ("c", H)):
            self.register_buffer(f"running_mean_{name}", torch.zeros(MAX_STEPS, width))
            self.register_buffer(f"running_var_{name}", torch.ones(MAX_STEPS, width))
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))  # steps with running statistics

    def reset_parameters(self, scheme: str = "auto", forget_bias: float = 1.0) -> None:
        super().reset_parameters(scheme, forget_bias)
        with torch.no_grad():
            for gain in (self.bn_ih_gain, self.bn_hh_gain, self.bn_c_gain):
                gain.fill_(INITIAL_GAIN)
            self.bn_c_bias.zero_()

    def input_projection(self, x: torch.Tensor) -> torch.Tensor:
        """W_ih x alone: it is normalised with its step's statistics inside `recurrent_step`."""
        return torch.nn.functional.linear(x, self.weight_ih)

    def recurrent_step(self, xp: torch.Tensor, state: State, record: dict | None = None,
                       live: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """live (B, 1) bool or None (all rows real): the rows whose statistics count in training."""
        h, c, t = state
        step = t[:, 0].long().clamp(0, MAX_STEPS - 1)  # (B,): each row's step index
        rows = None if live is None or bool(live.all()) else live[:, 0]
        k = None  # training: the step whose statistics this batch uses and updates
        if self.training:
            real = step if rows is None else step[rows]
            # one real row has no batch statistics (nor none): it is normalised by the running ones
            k = int(real.max()) if real.numel() > 1 else None
        gates = (self._normalise(xp, "ih", self.bn_ih_gain, None, step, rows, k)
                 + self._normalise(h @ self.weight_hh.t(), "hh", self.bn_hh_gain, None, step, rows, k)
                 + self.bias_ih + self.bias_hh)
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(self._normalise(c, "c", self.bn_c_gain, self.bn_c_bias, step, rows, k))
        if record is not None:
            record.update(input_gate=i, forget_gate=f, candidate=g, output_gate=o)
        return h, (h, c, (t + 1).clamp(max=MAX_STEPS))

    def _normalise(self, z: torch.Tensor, name: str, gain: torch.Tensor, shift: torch.Tensor | None,
                   step: torch.Tensor, rows: torch.Tensor | None, k: int | None) -> torch.Tensor:
        """γ (z - mean) / sqrt(var + eps) + β for z (B, W): the statistics of the batch's real rows
        (training, step k; PyTorch's batch_norm also updates that step's running averages), else the
        running statistics of each row's own step. Rows that are not real get 0 (their outputs are
        discarded)."""
        means, variances = getattr(self, f"running_mean_{name}"), getattr(self, f"running_var_{name}")
        if k is not None:
            self.steps_seen.clamp_(min=k + 1)
            if rows is None:
                return F.batch_norm(z, means[k], variances[k], gain, shift, True, MOMENTUM, EPS)
            out = z.new_zeros(z.shape)
            out[rows] = F.batch_norm(z[rows], means[k], variances[k], gain, shift, True, MOMENTUM, EPS)
            return out
        index = step.clamp(max=max(int(self.steps_seen) - 1, 0))  # steps never trained share the last one's
        if bool((index == index[0]).all()):  # the usual case: every row at the same step
            j = int(index[0])
            return F.batch_norm(z, means[j], variances[j], gain, shift, False, 0.0, EPS)
        mean, var = means[index].to(z.dtype), variances[index].to(z.dtype)  # (B, W)
        normalised = (z - mean) * torch.rsqrt(var + EPS) * gain
        return normalised if shift is None else normalised + shift
