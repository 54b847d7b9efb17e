"""The feed-forward block of a residual recurrent stack (`--feed-forward`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeedForward(nn.Module):
    """x + W2 GELU(W1 LayerNorm(x)): a position-wise block of `multiple` x the width inside, added to
    its input (pre-norm, as a Transformer's), so that each step gets more than the recurrence's own
    arithmetic. Feng et al. 2024 follow each minGRU/minLSTM layer with one."""

    def __init__(self, width: int, multiple: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, multiple * width)
        self.down = nn.Linear(multiple * width, width)

    def forward(self, x: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        """x (..., width) -> the same shape; dropout on the block's output, in training."""
        return x + F.dropout(self.down(F.gelu(self.up(self.norm(x)))), dropout, dropout > 0)
