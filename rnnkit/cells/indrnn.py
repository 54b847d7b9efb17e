"""Independently recurrent network (IndRNN; Li et al. 2018, "Independently Recurrent Neural Network
(IndRNN): Building A Longer and Deeper RNN", arXiv 1803.04831):

    h' = relu(W_ih x + b_ih + u ⊙ h + b_hh)          u: one recurrent weight per unit (H,)

Each unit sees only its own past, so the gradient through T steps of a unit is a product of T
factors u·relu'(.), and bounding |u| bounds it. The paper's rule: |u| <= γ^(1/T) keeps a unit's
gradient below γ over T steps (no explosion, γ = 2 for ReLU); units initialised across
[0, γ^(1/T)] span short and long memories. Here T is `MAX_STEPS` (the length the bound is meant
for) and the bound is applied in the step itself (u clamped), so no optimizer or trainer needs
to know about it. There is no fused kernel: the step path runs it, with the input projection of
a whole chunk in one multiply.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Cell, State

MAX_STEPS = 1000  # the sequence length the recurrent-weight bound is chosen for
GAMMA = 2.0  # the largest gradient growth a unit may have over MAX_STEPS steps


class IndRNNCell(Cell):
    recurrent_matrix = False  # one recurrent weight per unit, not a matrix
    state_names = ("h",)
    default_init = "glorot"  # for W_ih; u has its own initialisation (reset_parameters)

    def __init__(self, input_size: int, hidden_size: int) -> None:
        nn.Module.__init__(self)  # not Cell.__init__: the recurrent weight is a vector, not a matrix
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size))  # u, one per unit
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters("auto")

    @property
    def bound(self) -> float:
        return GAMMA ** (1.0 / MAX_STEPS)

    def reset_parameters(self, scheme: str = "auto", forget_bias: float = 1.0) -> None:
        """auto: u ~ U(0, γ^(1/T)) (the paper's spread of memories), W_ih Glorot-uniform, biases 0;
        identity: u = 1 (every unit keeps its past at init, as the IRNN); uniform and pytorch as
        for every cell; orthogonal and glorot take auto's u (a vector has no orthogonal form)."""
        with torch.no_grad():
            if scheme in ("uniform", "pytorch"):
                bound = 0.08 if scheme == "uniform" else 1.0 / math.sqrt(self.hidden_size)
                for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
                    p.uniform_(-bound, bound)
                return
            nn.init.xavier_uniform_(self.weight_ih)
            self.bias_ih.zero_()
            self.bias_hh.zero_()
            if scheme == "identity":
                self.weight_hh.fill_(1.0)
            else:
                self.weight_hh.uniform_(0.0, self.bound)

    def recurrent_step(self, xp: torch.Tensor, state: State,
                       record: dict | None = None) -> tuple[torch.Tensor, State]:
        (h,) = state
        u = self.weight_hh.clamp(-self.bound, self.bound)  # (H,): the bound holds whatever the optimizer does
        h = torch.relu(xp + torch.addcmul(self.bias_hh, u, h))  # (B, H)
        return h, (h,)
