"""Layer-normalised LSTM (Ba, Kiros & Hinton 2016, "Layer Normalization", arXiv 1607.06450, §3.1).

    gates = LN(W_ih x; γ_ih, b_ih) + LN(W_hh h; γ_hh, b_hh)      each gate block normalised on its own
    c'    = σ(f) c + σ(i) tanh(g)
    h'    = σ(o) tanh(LN(c'; γ_c, β_c))

Normalising the summed inputs keeps every gate's pre-activation at unit scale whatever the
weights do, which steadies training of long unrolls. Per-gate blocks (rather than one
normalisation over all 4H rows) follow common practice: one gate's large inputs then cannot
squash the others. No fused kernel computes this. Over a chunk, the normalised input projection
of all steps is one call and the recurrence runs as one autograd node with a hand-derived backward
pass (`layernorm_sequence`); `recurrent_step` is the step path (sampling, padded batches, zoneout,
bf16 autocast) and the reference the whole-chunk pass is checked against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..native.calls import usable
from .base import State
from .layernorm_sequence import BlockLayerNorm, LayerNormLSTMSequence
from .standard import LSTMCell


class LayerNormLSTMCell(LSTMCell):
    fused_mode = None

    def add_parameters(self) -> None:
        H = self.hidden_size
        self.ln_ih_gain = nn.Parameter(torch.ones(4 * H))  # γ_ih, one per gate row
        self.ln_hh_gain = nn.Parameter(torch.ones(4 * H))  # γ_hh
        self.ln_c_gain = nn.Parameter(torch.ones(H))  # γ_c
        self.ln_c_bias = nn.Parameter(torch.zeros(H))  # β_c

    def reset_parameters(self, scheme: str = "auto", forget_bias: float = 1.0) -> None:
        super().reset_parameters(scheme, forget_bias)
        with torch.no_grad():
            for gain in (self.ln_ih_gain, self.ln_hh_gain, self.ln_c_gain):
                gain.fill_(1.0)
            self.ln_c_bias.zero_()

    def _normalise_gates(self, z: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """z (..., 4H): each H-wide gate block to zero mean and unit variance, then scaled and shifted."""
        H = self.hidden_size
        blocks = F.layer_norm(z.unflatten(-1, (4, H)), (H,))  # (..., 4, H)
        return torch.addcmul(bias, blocks.flatten(-2), gain)

    def input_projection(self, x: torch.Tensor) -> torch.Tensor:
        z = F.linear(x, self.weight_ih)
        if z.dim() == 3 and usable(z):  # a whole chunk: the native kernel
            return BlockLayerNorm.apply(z, self.ln_ih_gain, self.bias_ih, self.hidden_size)
        return self._normalise_gates(z, self.ln_ih_gain, self.bias_ih)

    def recurrent_step(self, xp: torch.Tensor, state: State,
                       record: dict | None = None) -> tuple[torch.Tensor, State]:
        h, c = state
        gates = xp + self._normalise_gates(h @ self.weight_hh.t(), self.ln_hh_gain, self.bias_hh)
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(F.layer_norm(c, (self.hidden_size,), self.ln_c_gain, self.ln_c_bias))
        if record is not None:
            record.update(input_gate=i, forget_gate=f, candidate=g, output_gate=o)
        return h, (h, c)

    def recurrent_sequence(self, projections: torch.Tensor, state: State) -> tuple[torch.Tensor, State] | None:
        if not usable(projections):  # no compiler, not CPU, bf16 autocast: the step path
            return None
        h0, c0 = state
        out, h, c = LayerNormLSTMSequence.apply(projections, h0, c0, self.weight_hh, self.ln_hh_gain,
                                                self.bias_hh, self.ln_c_gain, self.ln_c_bias)
        return out, (h, c)
