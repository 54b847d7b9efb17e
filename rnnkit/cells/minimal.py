"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv 2410.01201): gates that
read only the input, so a whole sequence is one parallel scan instead of a loop over time.

    minGRU:  z = σ(W_z x + b_z),  h~ = g(W_h x + b_h),       h' = (1 - z) h + z h~
    minLSTM: f = σ(W_f x + b_f),  i = σ(W_i x + b_i),  h~ = g(W_h x + b_h),
             f, i = f / (f + i), i / (f + i)  (time-independent scale),   h' = f h + i h~

with g(v) = v + 1/2 for v >= 0 and σ(v) below (positive and continuous; the paper's log-space
form). Every step is h_t = a_t h_{t-1} + b_t with a_t in (0, 1) and b_t > 0, so the states stay
positive and the recurrence over T steps has the closed form

    log h_t = A_t + logcumsumexp_k<=t (log b_k - A_k),     A_t = sum_k<=t log a_k,  (h_0 as k = 0)

evaluated for all t at once (Heinsen 2023, "Efficient Parallelization of a Ubiquitous Sequential
Computation", arXiv 2311.06281): `scan` below. Sampling runs `recurrent_step`, the same equations one
step at a time with O(1) state; tests check that the two agree. There are no recurrent weights:
the cell keeps only weight_ih and bias_ih (gate blocks stacked as above).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Cell, State

TINY = 1e-30  # log of a zero state (the initial one): a finite stand-in for log 0


def g(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


class MinimalCell(Cell):
    """Shared by minGRU and minLSTM: input-only gates, the scan over a sequence, no weight_hh."""

    gate_names = ()
    default_init = "glorot"

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
        """xp (..., G*H) -> log a, log b (..., H) of h' = a h + b."""
        raise NotImplementedError

    def recurrent_step(self, xp: torch.Tensor, state: State,
                       record: dict | None = None) -> tuple[torch.Tensor, State]:
        (h,) = state
        log_a, log_b = self.coefficients(xp)  # (B, H) each
        h = torch.exp(log_a) * h + torch.exp(log_b)
        if record is not None:
            record.update(self._gates(xp))
        return h, (h,)

    def _gates(self, xp: torch.Tensor) -> dict:
        return {}

    def scan(self, x: torch.Tensor, state: State, live: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """The whole sequence at once: x (B, T, D) -> outputs (B, T, H), final state. `live` (T, B, 1)
        marks real steps; past a sequence's end its state is kept (a = 1, b = 0) and outputs are 0."""
        log_a, log_b = self.coefficients(self.input_projection(x))  # (B, T, H) each
        if live is not None:
            keep = live.transpose(0, 1)  # (B, T, 1)
            log_a = log_a * keep  # log 1 = 0 past the end
            log_b = torch.where(keep, log_b, torch.full_like(log_b, -math.inf))
        (h0,) = state
        log_h0 = torch.log(h0.clamp_min(TINY))[:, None]  # (B, 1, H); states are positive by construction
        A = torch.cumsum(log_a, dim=1)  # (B, T, H)
        terms = torch.cat([log_h0, log_b - A], dim=1)  # (B, T + 1, H)
        log_h = A + torch.logcumsumexp(terms, dim=1)[:, 1:]
        h = torch.exp(log_h)  # (B, T, H)
        final = h[:, -1]
        if live is not None:
            h = h * keep
        return h, (final,)


class MinGRUCell(MinimalCell):
    """minGRU: gate blocks z, h~."""

    num_gates = 2
    gate_names = ("update_gate",)

    def coefficients(self, xp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = xp.chunk(2, dim=-1)
        log_z = -F.softplus(-k)  # log σ(k)
        log_one_minus_z = -F.softplus(k)  # log (1 - σ(k)), computed without cancellation
        return log_one_minus_z, log_z + log_g(v)

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
        f, i, v = xp.chunk(3, dim=-1)
        # f' = σ(f) / (σ(f) + σ(i)) in log space: log σ(f) - logaddexp(log σ(f), log σ(i))
        log_f, log_i = -F.softplus(-f), -F.softplus(-i)
        total = torch.logaddexp(log_f, log_i)
        return log_f - total, log_i - total + log_g(v)

    def _gates(self, xp: torch.Tensor) -> dict:
        f, i, _ = xp.chunk(3, dim=-1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        return {"forget_gate": f / (f + i), "input_gate": i / (f + i)}
