"""The four standard cells, with the equations of PyTorch's fused kernels (docs/design.md §2).

Gate order matches PyTorch (LSTM: i, f, g, o; GRU: r, z, n) so that weights move freely between
these step functions, the fused kernels and the NumPy reference.

Each cell writes `recurrent_step(xp, state, record)`, where xp = W_ih x + b_ih is computed by the
base class (for a whole sequence at once when `Recurrent` runs one). When `record` is a dict, the
step also stores its gate activations in it (for diagnostics and visualisation); normal use passes
nothing and pays nothing.
"""

from __future__ import annotations

import torch

from .base import Cell, State


class RNNCell(Cell):
    """Elman RNN: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

    fused_mode = "RNN_TANH"
    activation = staticmethod(torch.tanh)

    def recurrent_step(self, xp: torch.Tensor, state: State,
                       record: dict | None = None) -> tuple[torch.Tensor, State]:
        (h,) = state
        h = self.activation(xp + torch.addmm(self.bias_hh, h, self.weight_hh.t()))  # (B, H)
        return h, (h,)


class IRNNCell(RNNCell):
    """ReLU RNN whose recurrence starts as the identity and biases at zero (Le et al. 2015,
    arXiv 1504.00941): at init the state is copied forward unchanged, so gradients neither
    vanish nor explode over long spans until learning moves W_hh away from I."""

    fused_mode = "RNN_RELU"
    default_init = "identity"
    activation = staticmethod(torch.relu)


class LSTMCell(Cell):
    """LSTM (Hochreiter & Schmidhuber 1997, with forget gate, Gers et al. 2000):
    i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh); c' = σ(f)c + σ(i)tanh(g); h' = σ(o)tanh(c')."""

    fused_mode = "LSTM"
    num_gates = 4
    state_names = ("h", "c")
    gate_names = ("input_gate", "forget_gate", "output_gate")

    def recurrent_step(self, xp: torch.Tensor, state: State,
                       record: dict | None = None) -> tuple[torch.Tensor, State]:
        h, c = state
        gates = xp + torch.addmm(self.bias_hh, h, self.weight_hh.t())
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        if record is not None:
            record.update(input_gate=i, forget_gate=f, candidate=g, output_gate=o)
        return h, (h, c)

    def _set_gate_biases(self, forget_bias: float) -> None:
        # A positive forget bias keeps the cell state flowing early in training
        # (Jozefowicz et al. 2015). The sum b_ih + b_hh is what matters; put it in b_ih.
        H = self.hidden_size
        self.bias_ih[H:2 * H].fill_(forget_bias)
        self.bias_hh[H:2 * H].zero_()


class GRUCell(Cell):
    """GRU (Cho et al. 2014) in PyTorch's form: the reset gate multiplies (W_hn h + b_hn)."""

    fused_mode = "GRU"
    num_gates = 3
    gate_names = ("reset_gate", "update_gate")

    def recurrent_step(self, xp: torch.Tensor, state: State,
                       record: dict | None = None) -> tuple[torch.Tensor, State]:
        (h,) = state
        gh = torch.addmm(self.bias_hh, h, self.weight_hh.t())  # (B, 3H)
        xr, xz, xn = xp.chunk(3, dim=1)
        hr, hz, hn = gh.chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        if record is not None:
            record.update(reset_gate=r, update_gate=z, candidate=n)
        return h, (h,)

