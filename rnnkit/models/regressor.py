"""Sequence regressor: feature vectors (B, T, D) -> Recurrent stack -> last output -> Linear -> (B, K).

The many-to-one head used by the experiments' synthetic tasks (the adding problem); the same
`Recurrent` layer and cells as the language model.
"""

from __future__ import annotations

import torch
from torch import nn

from ..recurrent import Recurrent


class SequenceRegressor(nn.Module):
    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int = 1,
                 num_layers: int = 1, init: str = "auto", forget_bias: float = 1.0) -> None:
        super().__init__()
        self.recurrent = Recurrent(cell, input_size, hidden_size, num_layers)
        self.recurrent.reset_parameters(init, forget_bias)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.recurrent(x)  # (B, T, H)
        return self.head(out[:, -1])  # (B, K): the state after reading the whole sequence
