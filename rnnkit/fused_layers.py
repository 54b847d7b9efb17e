"""A fused recurrent stack run one layer at a time, with PyTorch's dropout between the layers.

Why: cuDNN applies the dropout between the layers of a multi-layer `nn.LSTM`/`nn.GRU`/`nn.RNN`
itself, from a random state of its own that PyTorch seeds once and can neither save nor restore.
A training run resumed from a checkpoint on a GPU then drew other masks than the uninterrupted
run from the first step after resuming (measured on an H200: the losses parted at that step).
Run layer by layer, each call is still one fused kernel, and the masks come from PyTorch's
generator, whose state every checkpoint carries. On CPU the fused kernel already draws its masks
this way (the same masks as these calls: a test compares the two), so it keeps the one call.

Shapes: as `Recurrent` (state tensors (L * directions, B, H), layer-major).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import PackedSequence

OPS = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}


def run_by_layer(mode: str, layer_params: list[list[torch.Tensor]], x: torch.Tensor | PackedSequence,
                 state: tuple[torch.Tensor, ...], dropout: float, training: bool,
                 bidirectional: bool) -> tuple[torch.Tensor | PackedSequence, tuple[torch.Tensor, ...]]:
    """x (B, T, D) batch-first, or a PackedSequence; layer_params[k]: layer k's weight_ih, weight_hh,
    bias_ih, bias_hh (then the reverse direction's four). Returns what the fused module returns:
    the top layer's outputs (the same kind as x) and the final state, one tensor per state name."""
    op, directions = OPS[mode], 2 if bidirectional else 1
    packed = isinstance(x, PackedSequence)
    if packed and x.sorted_indices is not None:  # the module sorts the state with the batch
        state = tuple(part.index_select(1, x.sorted_indices) for part in state)
    layer_input = x.data if packed else x
    finals: list[tuple[torch.Tensor, ...]] = []
    for k, params in enumerate(layer_params):
        if k > 0:
            layer_input = F.dropout(layer_input, dropout, training)
        first = [part[k * directions:(k + 1) * directions] for part in state]
        hx = first if mode == "LSTM" else first[0]
        if packed:
            result = op(layer_input, x.batch_sizes, hx, params, True, 1, 0.0, training, bidirectional)
        else:
            result = op(layer_input, hx, params, True, 1, 0.0, training, bidirectional, True)
        layer_input, finals = result[0], finals + [tuple(result[1:])]
    new = tuple(torch.cat(parts) for parts in zip(*finals))
    if packed and x.unsorted_indices is not None:
        new = tuple(part.index_select(1, x.unsorted_indices) for part in new)
    out = PackedSequence(layer_input, x.batch_sizes, x.sorted_indices, x.unsorted_indices) if packed else layer_input
    return out, new
