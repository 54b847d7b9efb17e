"""Echo state cell: a fixed random reservoir as a recurrent layer (Jaeger 2001; Jaeger & Haas 2004).

    h' = (1 - a) h + a tanh(W_ih x + b + W_hh h)        a: leak rate

W_hh is sparse (DENSITY of its entries nonzero, uniform) and scaled to a chosen spectral radius
(below about 1 the state forgets where it started: the echo state property); W_ih and b are
uniform, scaled by 1 / sqrt(D) so the pre-activation stays near unit size whatever the input
width. None of it is trained: the weights are buffers, not parameters, so no optimizer, gradient
or unfreezing schedule ever reaches them, and no gradient flows back through time. Above it, only
the readout learns. For a language model (`rnnkit train --cell esn`) the readout is the softmax
layer, trained by the usual optimizer (cross-entropy has no closed form) and the embedding is
frozen too; `rnnkit.reservoir.EchoStateNetwork` fits a linear readout in closed form by ridge
regression for numeric series.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Cell, State

DENSITY = 0.05
LEAK = 1.0


class EchoStateCell(Cell):
    state_names = ("h",)
    trainable = False  # nothing in the cell learns; models freeze their input embedding with it
    recurrent_matrix = False  # its W_hh is a fixed buffer
    spectral_radius = 0.95  # a subclass made by `with_spectral_radius` sets another

    @classmethod
    def with_spectral_radius(cls, radius: float) -> type["EchoStateCell"]:
        """The cell type whose reservoirs are scaled to `radius` (validated by the configs: > 0)."""
        return type(cls.__name__, (cls,), {"spectral_radius": float(radius)})

    def __init__(self, input_size: int, hidden_size: int) -> None:
        nn.Module.__init__(self)  # not Cell.__init__: the weights are fixed buffers, not parameters
        self.input_size, self.hidden_size = input_size, hidden_size
        self.register_buffer("weight_ih", torch.empty(hidden_size, input_size))
        self.register_buffer("weight_hh", torch.empty(hidden_size, hidden_size))
        self.register_buffer("bias_ih", torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self, scheme: str = "auto", forget_bias: float = 1.0) -> None:
        """A new random reservoir (every init scheme draws the same kind: the reservoir is its own)."""
        H, D = self.hidden_size, self.input_size
        with torch.no_grad():
            W = torch.empty(H, H).uniform_(-1, 1) * (torch.rand(H, H) < DENSITY)
            radius = torch.linalg.eigvals(W.double()).abs().max().item() if H > 1 else abs(W[0, 0].item())
            if radius == 0:  # too sparse to hold any cycle: a dense draw
                W = torch.empty(H, H).uniform_(-1, 1)
                radius = torch.linalg.eigvals(W.double()).abs().max().item()
            self.weight_hh.copy_(W * (self.spectral_radius / radius))
            scale = 1.0 / math.sqrt(D)
            self.weight_ih.uniform_(-scale, scale)
            self.bias_ih.uniform_(-scale, scale)

    def recurrent_step(self, xp: torch.Tensor, state: State,
                       record: dict | None = None) -> tuple[torch.Tensor, State]:
        (h,) = state
        h = torch.lerp(h, torch.tanh(xp + h @ self.weight_hh.t()), LEAK)
        return h, (h,)
