"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv 2410.01201): gates that
read only the input, so a whole sequence is one parallel scan instead of a loop over time.

    minGRU:  z = σ(W_z x + b_z),  h~ = g(W_h x + b_h),       h' = (1 - z) h + z h~
    minLSTM: f = σ(W_f x + b_f),  i = σ(W_i x + b_i),  h~ = g(W_h x + b_h),
             f, i = f / (f + i), i / (f + i)  (time-independent scale),   h' = f h + i h~

with g(v) = v + 1/2 for v >= 0 and σ(v) below (positive and continuous: the paper's choice, so
that states stay positive and its log-space form applies). Every step is h_t = a_t h_{t-1} + b_t
with a_t in (0, 1) and b_t > 0, so a whole sequence is one call of `scan.linear_recurrence` (one
C pass over time on CPU, else a chunked scan in linear space, forward and backward; see there).
Sampling runs `recurrent_step`, the same equations one step at a time with O(1) state; tests check
that the two agree. There are no recurrent weights: the cell keeps only weight_ih and bias_ih (gate
blocks stacked as above).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Cell, State
from .scan import linear_recurrence


def g(v: torch.Tensor) -> torch.Tensor:
    """v + 1/2 for v >= 0, σ(v) below; written without `where` or `clamp` (their backward passes
    over a whole sequence cost more than the scan itself): v - relu(v) is min(v, 0)."""
    positive = torch.relu(v)
    return positive + torch.sigmoid(v - positive)


class MinGRUCoefficients(torch.autograd.Function):
    """xp (..., 2H), blocks k and v -> a = 1 - σ(k), b = σ(k) g(v), with a hand-written backward
    pass that writes both halves of the gradient straight into one tensor: over a whole sequence
    autograd's version (three sigmoid backwards, a negation, a sum and the concatenation of the
    halves) cost a tenth of a training step.

        dk = σ(k) (1 - σ(k)) (db g(v) - da),   dv = db σ(k) g'(v),   g'(v) = 1 (v > 0) or σ(v) (1 - σ(v))
    """

    @staticmethod
    def forward(ctx, xp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = xp.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        a = torch.sub(1.0, z)  # 1 - z, not σ(-k): one pass; near z = 1 it loses relative precision, not absolute
        positive = torch.relu(v)
        low = torch.sub(v, positive).sigmoid_()  # σ(min(v, 0)): σ(v) below 0, 1/2 above
        # g(v) is above 1/2 where v > 0, which is all the backward pass needs to know of v (below
        # float32's resolution of 1/2, 0 < v < 3e-8, it takes g's slope from the left of its kink)
        gv = positive.add_(low)
        ctx.save_for_backward(z, a, low, gv)
        return a, z * gv

    @staticmethod
    def backward(ctx, da: torch.Tensor, db: torch.Tensor) -> torch.Tensor:
        z, a, low, gv = ctx.saved_tensors
        dxp = torch.empty(*z.shape[:-1], 2 * z.shape[-1], dtype=z.dtype, device=z.device)
        dk, dv = dxp.chunk(2, dim=-1)
        torch.mul(db, gv, out=dk)
        dk.sub_(da).mul_(z).mul_(a)  # in place: a fresh (B, T, H) tensor costs its pages' mapping
        slope = torch.addcmul(low, low, low, value=-1.0)  # σ(v)(1 - σ(v)) = g'(v) below 0, 1/4 above ...
        torch.gt(gv, 0.5, out=dv)  # (dv's memory as scratch: a float 1 where v > 0, with no bool tensor to convert)
        slope.add_(dv, alpha=0.75)  # ... and 1/4 + 3/4 = 1 above
        torch.mul(db, z, out=dv)
        dv.mul_(slope)
        return dxp


class MinimalCell(Cell):
    """Shared by minGRU and minLSTM: input-only gates, the scan over a sequence, no weight_hh."""

    gate_names = ()
    default_init = "glorot"
    zoneout_ready = False  # a sequence is one scan: there is no step at which to keep a unit's value
    recurrent_matrix = False  # gates read the input only: there is no W_hh

    def __init__(self, input_size: int, hidden_size: int) -> None:
        nn.Module.__init__(self)  # not Cell.__init__: there are no recurrent weights to create
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(self.num_gates * hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(self.num_gates * hidden_size))
        self.reset_parameters("auto")

    def reset_parameters(self, scheme: str = "auto", forget_bias: float = 1.0) -> None:
        """Glorot-uniform input weights (the recurrence has no matrix, so orthogonal and identity
        schemes have nothing of their own to set), zero biases; `uniform` and `pytorch` as for
        every cell."""
        with torch.no_grad():
            if scheme == "uniform":
                self.weight_ih.uniform_(-0.08, 0.08)
                self.bias_ih.uniform_(-0.08, 0.08)
            elif scheme == "pytorch":
                bound = 1.0 / math.sqrt(self.hidden_size)
                self.weight_ih.uniform_(-bound, bound)
                self.bias_ih.uniform_(-bound, bound)
            else:
                nn.init.xavier_uniform_(self.weight_ih)
                self.bias_ih.zero_()

    def coefficients(self, xp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """xp (..., G*H) -> a, b (..., H) of h' = a h + b."""
        raise NotImplementedError

    def recurrent_step(self, xp: torch.Tensor, state: State,
                       record: dict | None = None) -> tuple[torch.Tensor, State]:
        (h,) = state
        a, b = self.coefficients(xp)  # (B, H) each
        h = torch.addcmul(b, a, h)
        if record is not None:
            record.update(self._gates(xp))
        return h, (h,)

    def _gates(self, xp: torch.Tensor) -> dict:
        return {}

    def scan(self, x: torch.Tensor, state: State, live: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """The whole sequence at once: x (B, T, D) -> outputs (B, T, H), final state. `live` (T, B, 1)
        marks real steps; past a sequence's end its state is kept (a = 1, b = 0) and outputs are 0."""
        a, b = self.coefficients(self.input_projection(x))  # (B, T, H) each
        if live is not None:
            keep = live.transpose(0, 1)  # (B, T, 1)
            a = torch.where(keep, a, torch.ones_like(a))
            b = b * keep
        h = linear_recurrence(a, b, state[0])  # (B, T, H)
        final = h[:, -1]
        if live is not None:
            h = h * keep
        return h, (final,)


class MinGRUCell(MinimalCell):
    """minGRU: gate blocks z, h~."""

    num_gates = 2
    gate_names = ("update_gate",)

    def coefficients(self, xp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return MinGRUCoefficients.apply(xp)

    def _gates(self, xp: torch.Tensor) -> dict:
        return {"update_gate": torch.sigmoid(xp.chunk(2, dim=-1)[0])}


class MinLSTMCell(MinimalCell):
    """minLSTM: gate blocks f, i, h~ (forget bias applied to f)."""

    num_gates = 3
    gate_names = ("forget_gate", "input_gate")

    def reset_parameters(self, scheme: str = "auto", forget_bias: float = 1.0) -> None:
        super().reset_parameters(scheme, forget_bias)
        with torch.no_grad():
            self.bias_ih[:self.hidden_size].add_(forget_bias)  # keep the state early on, as for the LSTM

    def coefficients(self, xp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = self._gates(xp)
        return gates["forget_gate"], gates["input_gate"] * g(xp.chunk(3, dim=-1)[2])

    def _gates(self, xp: torch.Tensor) -> dict:
        f, i, _ = xp.chunk(3, dim=-1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        return {"forget_gate": f / (f + i), "input_gate": i / (f + i)}
