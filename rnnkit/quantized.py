"""Faster batch-1 generation with int8 weights (dynamic quantisation, Jacob et al. 2018).

A generation step of a trained model reads every recurrent weight once per token, so at batch 1
it is bound by memory traffic and per-call overhead, not arithmetic. Storing the recurrent weights
as int8 (one scale per output row) reads a quarter of the bytes; activations stay float and are
quantised on the fly by PyTorch's dynamic quantised linear layers. The first layer's
input projection is a (V, G*H) float table made once (as `Generator` does), so the embedding costs
a row lookup and loses nothing to rounding. The prime is still read by the float model.

    model = rnnkit.load("runs/shakespeare").int8()   # or `rnnkit sample DIR --int8`

Cells: lstm, gru, rnn and irnn (the standard equations); others are refused with a UsageError.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cells import State
from .errors import UsageError
from .models.language_model import LanguageModel

SUPPORTED = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")


def _int8_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """A dynamic-quantised linear layer with per-row int8 weights. PyTorch marks torch.ao.quantization
    deprecated (it still works in the pinned 2.13); its non-deprecated int8 weight-only matmul
    (aten._weight_int8pack_mm) measured 6x slower than a float matmul at batch 1 here, and these
    layers 2.5x faster, so these stay until a replacement is as fast."""
    import warnings
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notes, once per layer
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
        return quantize_dynamic(nn.Sequential(linear), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)[0]


def check_int8_engine() -> None:
    """PyTorch's quantised kernels need an engine for this CPU (fbgemm / x86 / qnnpack)."""
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines:
        raise UsageError("this PyTorch build has no quantised kernels for this CPU; sample without --int8")
    if torch.backends.quantized.engine == "none":
        torch.backends.quantized.engine = engines[0]


class Int8LanguageModel(nn.Module):
    """A float language model whose generation steps run with int8 weights (inference only, CPU)."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        check_int8_engine()
        modes = [cell.fused_mode for cell in model.recurrent.cells]
        if any(mode not in SUPPORTED for mode in modes):
            raise UsageError(f"--int8 covers lstm, gru, rnn and irnn cells; this model's cell is {model.config.cell}")
        if not model.recurrent.is_fused:  # its int8 steps would leave out the norms or the zoneout average
            raise UsageError("--int8 covers plain stacks of lstm, gru, rnn and irnn cells; this model was trained "
                             "with --residual or --zoneout: sample without --int8")
        self.model, self.config, self.modes = model.eval(), model.config, modes
        cells = model.recurrent.cells
        with torch.no_grad():
            vocab = torch.arange(model.config.vocab_size, device=model.head.weight.device)
            first = cells[0]
            self.first_projection = F.linear(model.embed(vocab), first.weight_ih, first.bias_ih).float().cpu()  # (V, G*H)
        self.input = nn.ModuleList([_int8_linear(c.weight_ih.detach().float().cpu(), c.bias_ih.detach().float().cpu())
                                    for c in cells[1:]])
        self.recurrent = nn.ModuleList([_int8_linear(c.weight_hh.detach().float().cpu(),
                                                     c.bias_hh.detach().float().cpu()) for c in cells])
        # The output layer stays float: it is small (H x V), and rounding it moved the top next character
        # most (measured on a 2 x 512 LSTM, tiny Shakespeare: agreement 0.9921 with it in int8, 0.9961
        # in float, at the same speed)
        self.head = model.head

    def forward(self, tokens: torch.Tensor, state: State | None = None):
        return self.model(tokens, state)  # the prime: the float model

    def generator(self, state: State) -> "Int8Generator":
        return Int8Generator(self, state)


def _cell_step(mode: str, x_part: torch.Tensor, h_part: torch.Tensor, state: tuple) -> tuple:
    """The standard equations (PyTorch's gate order) from the two projections (B, G*H) -> new state."""
    if mode == "LSTM":
        i, f, g, o = (x_part + h_part).chunk(4, dim=1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    if mode == "GRU":
        xr, xz, xn = x_part.chunk(3, dim=1)
        hr, hz, hn = h_part.chunk(3, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return ((1 - z) * n + z * state[0],)
    total = x_part + h_part
    return (torch.tanh(total) if mode == "RNN_TANH" else torch.relu(total),)


class Int8Generator:
    """Like `Generator`: tokens (B,) -> logits (B, V) of the next token, the state moving on."""

    @torch.no_grad()
    def __init__(self, model: Int8LanguageModel, state: State) -> None:
        self.model = model
        recurrent = model.model.recurrent
        self.states = [tuple(s.float().cpu() for s in layer) for layer in recurrent.layer_states(state)]

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = None
        for k, (mode, state) in enumerate(zip(m.modes, self.states)):
            x_part = m.first_projection[tokens.cpu()] if k == 0 else m.input[k - 1](x)
            self.states[k] = _cell_step(mode, x_part, m.recurrent[k](state[0]), state)
            x = self.states[k][0]
        return m.head(x)

    def state(self) -> State:
        return tuple(torch.stack([layer[i] for layer in self.states]) for i in range(len(self.states[0])))
