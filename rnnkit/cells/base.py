"""The cell contract every recurrent cell follows.

A cell maps one time step: ``step(x_t, state) -> (y_t, new_state)`` with ``x_t: (B, D)``,
``state``: a tuple of ``(B, H)`` tensors named by ``state_names`` (``h`` first), ``y_t: (B, H)``;
an optional ``record`` dict receives the step's gate activations (diagnostics, visualisation).
The generic `Recurrent` layer runs any cell over time; heads never see which cell they have.

A new cell writes one method, ``recurrent_step(xp, state, record)``, and sets its class
attributes. Every step is split in two: ``input_projection(x)`` (the part that depends only on
the input, ``W_ih x + b_ih``) and ``recurrent_step`` (the rest). Over a whole sequence,
`Recurrent` computes the input projection of all T steps in one large matrix multiply and loops
only over the recurrent part, the same split the fused kernels make; a cell that normalises or
otherwise transforms its input projection overrides ``input_projection`` and the split still holds.

Standard cells keep their weights in PyTorch's layout (``weight_ih (G*H, D)``, ``weight_hh (G*H, H)``,
``bias_ih``, ``bias_hh``, gate blocks stacked in PyTorch's order) and name the fused kernel with
identical equations in ``fused_mode``. `Recurrent` then runs whole sequences on that kernel (oneDNN
on CPU, cuDNN on GPU), and ``step`` uses PyTorch's one-step op of the same mode (torch.lstm_cell, ...:
both multiplies and the gate arithmetic in one C++ call), since at batch 1 a step is a few dozen
microseconds of work buried under per-op overhead. A custom cell leaves ``fused_mode = None``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

State = tuple[torch.Tensor, ...]


# PyTorch's one-step op for each fused mode: (x, state, W_ih, W_hh, b_ih, b_hh) -> new h (or (h, c)).
FUSED_STEPS = {"LSTM": torch.lstm_cell, "GRU": torch.gru_cell,
               "RNN_TANH": torch.rnn_tanh_cell, "RNN_RELU": torch.rnn_relu_cell}


class Cell(nn.Module):
    fused_mode: ClassVar[str | None] = None  # a key of FUSED_STEPS when PyTorch has these equations fused
    num_gates: ClassVar[int] = 1  # blocks of H rows in weight_ih / weight_hh
    state_names: ClassVar[tuple[str, ...]] = ("h",)  # h first: it is also the cell's output
    gate_names: ClassVar[tuple[str, ...]] = ()  # sigmoid gates `record` receives (saturation diagnostics)
    default_init: ClassVar[str] = "orthogonal"
    # False for a cell that does not learn (a fixed reservoir): models then freeze their embedding too
    trainable: ClassVar[bool] = True
    # True for a cell whose training step depends on the other rows (batch statistics): its
    # ``recurrent_step`` then also takes ``live`` (B, 1), the rows that still have a real step.
    reads_live: ClassVar[bool] = False
    # True for a cell whose step reads every layer's previous h (gated feedback): `Recurrent` then
    # calls ``add_feedback(layers, index)`` on each layer and runs the stack time-major.
    feedback: ClassVar[bool] = False
    # False where zoneout cannot apply: a state that is not a unit's value (a step count), or no steps.
    zoneout_ready: ClassVar[bool] = True
    # False for a cell without a learnt recurrent matrix weight_hh (G*H, H), which --weight-drop needs
    recurrent_matrix: ClassVar[bool] = True
    # States that count steps rather than hold units' values: a row sent back to a fresh start keeps them
    counter_states: ClassVar[tuple[str, ...]] = ()

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        self.add_parameters()
        self.reset_parameters("auto")

    def add_parameters(self) -> None:
        """Hook: a cell with parameters beyond the four standard ones creates them here."""

    def init_state(self, batch: int, device: torch.device | None = None,
                   dtype: torch.dtype | None = None) -> State:
        zeros = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        return tuple(zeros.clone() for _ in self.state_names)

    def input_projection(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., D) -> (..., G*H): the input's contribution to the gates, any number of steps at once."""
        return torch.nn.functional.linear(x, self.weight_ih, self.bias_ih)

    def recurrent_step(self, xp: torch.Tensor, state: State,
                       record: dict | None = None) -> tuple[torch.Tensor, State]:
        """One time step given this step's input projection xp (B, G*H).
        If `record` is a dict, store the step's gate activations in it."""
        raise NotImplementedError

    def recurrent_sequence(self, projections: torch.Tensor, state: State) -> tuple[torch.Tensor, State] | None:
        """Hook: all T steps of a chunk at once, projections (T, B, G*H) -> outputs (T, B, H), final
        state; for a cell with a hand-derived backward pass over the whole chunk. None (the default,
        or where the hook does not apply) sends `Recurrent` to the loop over `recurrent_step`."""
        return None

    def step(self, x: torch.Tensor, state: State, record: dict | None = None) -> tuple[torch.Tensor, State]:
        """One time step: x (B, D) -> y (B, H), new state (the fused one-step op unless gates are recorded)."""
        if self.fused_mode is None or record is not None:
            return self.recurrent_step(self.input_projection(x), state, record)
        hx = state if len(state) > 1 else state[0]
        new = FUSED_STEPS[self.fused_mode](x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        new = tuple(new) if isinstance(new, tuple) else (new,)
        return new[0], new

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return self.step(x, state)

    # ---------------------------------------------------------------- initialisation
    def reset_parameters(self, scheme: str = "auto", forget_bias: float = 1.0) -> None:
        """Initialise weights by a named scheme; each gate block of W_hh is treated as its own matrix.

        orthogonal: W_hh blocks orthogonal (Saxe et al. 2014), W_ih Glorot-uniform, biases 0.
        identity:   W_hh blocks = I (Le et al. 2015), W_ih ~ N(0, 0.001^2), biases 0.
        glorot:     every weight Glorot-uniform (Glorot & Bengio 2010), biases 0.
        uniform:    every weight and bias ~ U(-0.08, 0.08), as char-rnn does.
        pytorch:    PyTorch's default, U(-1/sqrt(H), 1/sqrt(H)) for everything.
        """
        if scheme == "auto":
            scheme = self.default_init
        H = self.hidden_size
        with torch.no_grad():
            if scheme == "pytorch":
                bound = 1.0 / math.sqrt(H)
                for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
                    p.uniform_(-bound, bound)
            elif scheme == "uniform":
                for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
                    p.uniform_(-0.08, 0.08)
            else:
                self.bias_ih.zero_()
                self.bias_hh.zero_()
                for g in range(self.num_gates):
                    w_ih = self.weight_ih[g * H:(g + 1) * H]
                    w_hh = self.weight_hh[g * H:(g + 1) * H]
                    if scheme == "identity":
                        nn.init.normal_(w_ih, std=0.001)
                        w_hh.copy_(torch.eye(H))
                    else:
                        nn.init.xavier_uniform_(w_ih)
                        if scheme == "orthogonal":
                            nn.init.orthogonal_(w_hh)
                        else:
                            nn.init.xavier_uniform_(w_hh)
            self._set_gate_biases(forget_bias)

    def _set_gate_biases(self, forget_bias: float) -> None:
        """Hook for cells with gate-specific bias conventions (the LSTM forget gate)."""
