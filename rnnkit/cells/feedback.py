"""Gated-feedback LSTM (Chung, Gulcehre, Cho & Bengio 2015, "Gated Feedback Recurrent Neural
Networks", arXiv 1502.02367, §3.2): in a stack of L layers, every layer's new memory content reads
the previous states of *all* layers, each through a scalar global reset gate learned per pair of layers.

For layer j at step t, with input x = h^{j-1}_t (the layer below, or the data) and h* = [h^1; ...; h^L]
at t-1 (all layers' previous outputs side by side, (B, L*H)):

    g^{i->j} = σ(w^{i->j} · x + u^{i->j} · h* + b^{i->j})            one scalar per layer i: (B, L)
    i, f, o  = σ(W x + U h^j + b)                                    as in the LSTM, own layer only
    c~       = tanh(W_c x + b_c + Σ_i g^{i->j} U_c^{i->j} h^i)          the feedback from every layer
    c' = f c + i c~,    h' = o tanh(c')

The gates from above let a fast lower layer be steered by the slower context of the layers above
it (the paper's motivation: layers settle on different timescales). Weights keep the LSTM's layout:
``weight_hh``'s candidate block is U_c^{j->j} (its bias b_hh inside the gated term), the other
layers' U_c^{i->j} are ``weight_feedback`` (L-1, H, H), the reset gates' input weights extend
the input projection (so a whole chunk's input part is still one multiply) and their weights on h*
are ``reset_weight_hh`` (L, L*H). A stack of these cells is run time step by time step with all
layers inside the step (`Recurrent._forward_feedback`), since layer j at step t reads layer j+1 at t-1;
where the C kernels run, a chunk of the whole stack is one node instead (`feedback_sequence.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import State
from .standard import LSTMCell


class GatedFeedbackLSTMCell(LSTMCell):
    fused_mode = None
    feedback = True  # its step reads every layer's previous h: `Recurrent` runs the stack time-major
    zoneout_ready = False  # kept apart from zoneout: the feedback would read states kept at random

    def add_feedback(self, layers: int, index: int) -> None:
        """Create the feedback weights once the stack's depth and this layer's place in it are known."""
        H, D = self.hidden_size, self.input_size
        self.layers, self.index = layers, index
        self.others = [k for k in range(layers) if k != index]  # the layers whose U_c^{i->j} are weight_feedback
        self.weight_feedback = nn.Parameter(torch.empty(layers - 1, H, H))  # U_c^{i->j}, i != j, in layer order
        self.reset_weight_ih = nn.Parameter(torch.empty(layers, D))  # w^{i->j}
        self.reset_bias = nn.Parameter(torch.zeros(layers))  # b^{i->j}
        self.reset_weight_hh = nn.Parameter(torch.empty(layers, layers * H))  # u^{i->j}
        self.reset_feedback()

    def reset_feedback(self) -> None:
        with torch.no_grad():
            for k in range(self.layers - 1):
                nn.init.orthogonal_(self.weight_feedback[k])
            nn.init.xavier_uniform_(self.reset_weight_ih)
            nn.init.xavier_uniform_(self.reset_weight_hh)
            self.reset_bias.zero_()

    def reset_parameters(self, scheme: str = "auto", forget_bias: float = 1.0) -> None:
        super().reset_parameters(scheme, forget_bias)
        if hasattr(self, "weight_feedback"):
            self.reset_feedback()

    def input_projection(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., D) -> (..., 4H + L): the LSTM's input part, then the reset gates' input part."""
        return torch.cat([F.linear(x, self.weight_ih, self.bias_ih),
                          F.linear(x, self.reset_weight_ih, self.reset_bias)], dim=-1)

    def recurrent_step(self, xp: torch.Tensor, state: State, record: dict | None = None,
                       feedback: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """feedback (B, L*H): every layer's h at the previous step (this layer's own included)."""
        if feedback is None:
            raise ValueError("a gated-feedback cell steps with every layer's previous state (Recurrent.step)")
        H, j = self.hidden_size, self.index
        h, c = state
        xp, reset_input = xp[:, :4 * H], xp[:, 4 * H:]
        reset = torch.sigmoid(reset_input + feedback @ self.reset_weight_hh.t())  # (B, L): g^{i->j}
        own = h @ self.weight_hh.t() + self.bias_hh  # (B, 4H)
        i, f, g, o = xp.chunk(4, dim=1)
        own_i, own_f, own_g, own_o = own.chunk(4, dim=1)
        content = g + reset[:, j:j + 1] * own_g
        if self.others:  # Σ_{i != j} g^{i->j} U_c^{i->j} h^i, all layers in one batched multiply
            previous = feedback.view(-1, self.layers, H)[:, self.others]  # (B, L-1, H)
            from_others = torch.einsum("blh,lkh->blk", previous, self.weight_feedback)  # (B, L-1, H)
            content = content + (reset[:, self.others, None] * from_others).sum(1)
        i, f, o = torch.sigmoid(i + own_i), torch.sigmoid(f + own_f), torch.sigmoid(o + own_o)
        g = torch.tanh(content)
        c = f * c + i * g
        h = o * torch.tanh(c)
        if record is not None:
            record.update(input_gate=i, forget_gate=f, candidate=g, output_gate=o, reset_gates=reset)
        return h, (h, c)
