"""A fused recurrent stack run one layer at a time, with PyTorch's dropout between the layers:
`run_by_layer` for exact resumes on a GPU, and `run_padded` for padded batches without packing.

Why one layer at a time on a GPU: cuDNN applies the dropout between the layers of a multi-layer
`nn.LSTM`/`nn.GRU`/`nn.RNN` itself, from a random state of its own that PyTorch seeds once and can
neither save nor restore. A training run resumed from a checkpoint on a GPU then drew other masks than the uninterrupted
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

from .precision import rnn_kernel_context

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


def run_padded(mode: str, layer_params: list[list[torch.Tensor]], x: torch.Tensor, state: tuple[torch.Tensor, ...],
               lengths: torch.Tensor, dropout: float, training: bool, directions: int) -> torch.Tensor:
    """The fused kernel over a padded batch x (B, T, D) without packing, outputs only: PyTorch's
    packed-sequence kernels are several times slower on CPU (forward + backward of B 64, T 150, H 256:
    1.0-1.4 s packed, 0.26-0.36 s padded). Padding comes after each sequence's end, so it cannot reach
    a real step reading forwards; reading backwards, each sequence is reversed within its own length
    first (padding stays at the end), so the same holds. Each layer and direction is one kernel call.
    The final states are not exact (the kernel runs on through the padding): hence outputs only."""
    op = OPS[mode]
    real = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (B, T)
    flip = within_length_flip(lengths, x.shape[1], x.device)
    layer_input = x
    for k, params in enumerate(layer_params):
        if k > 0 and dropout > 0:
            layer_input = F.dropout(layer_input, dropout, training)
        outputs = []
        for d in range(directions):
            seq = layer_input if d == 0 else gather_time(layer_input, flip)
            first = [part[k * directions + d][None] for part in state]  # (1, B, H) each
            with rnn_kernel_context(seq):
                out = op(seq, first if mode == "LSTM" else first[0], params[4 * d:4 * d + 4], True, 1, 0.0, training,
                         False, True)[0]
            outputs.append(out if d == 0 else gather_time(out, flip))
        layer_input = torch.cat(outputs, dim=2) * real[..., None].to(x.dtype)  # zeros past each end
    return layer_input


def within_length_flip(lengths: torch.Tensor, T: int, device: torch.device) -> torch.Tensor:
    """flip (B, T): flip[b, t] is where sequence b's step t comes from when read backwards within its
    own length (padding stays in place); applying it twice gives the identity."""
    t = torch.arange(T, device=device)[None, :]
    n = lengths.to(device)[:, None]
    return torch.where(t < n, n - 1 - t, t)


def gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, T, D) reordered in time per sequence: out[b, t] = x[b, index[b, t]]."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[2]))
