"""Weight drop: DropConnect (Wan et al. 2013) on the recurrent matrices, as AWD-LSTM regularises
its LSTMs (Merity, Keskar & Socher 2018, "Regularizing and Optimizing LSTM Language Models").

In training, each element of every layer's W_hh (G*H, H) is zeroed with probability p and the
rest scaled by 1 / (1 - p), with one mask per forward call: every time step of the chunk and
every sequence of the batch sees the same dropped matrix. Dropout on h would differ at every
step and disturb the state it carries; dropping weights leaves the state alone and needs nothing
from the kernels, since the dropped matrices are swapped in for the parameters
(`torch.func.functional_call`): fused kernels, rnnkit's C kernels and the step path all run them
unchanged, and the gradient reaches W_hh through the mask. Evaluation and sampling use W_hh whole.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def run_on_dropped_weights(recurrent: nn.Module, p: float, args: tuple) -> Any:
    """recurrent(*args) with every W_hh dropped; `recurrent._dropping` marks the inner call, which runs
    the layer's forward pass itself on the swapped-in matrices."""
    recurrent._dropping = True
    try:
        return functional_call(recurrent, dropped_recurrent_weights(recurrent, p), args)
    finally:
        recurrent._dropping = False


def dropped_recurrent_weights(recurrent: nn.Module, p: float) -> dict[str, torch.Tensor]:
    """{parameter name: W_hh with elements dropped} for every cell of `recurrent`, both directions.
    A gated-feedback cell's other recurrent weights (feedback and reset matrices) stay whole."""
    return {name: F.dropout(param, p, training=True)
            for name, param in recurrent.named_parameters() if name.rpartition(".")[2] == "weight_hh"}
