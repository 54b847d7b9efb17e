"""Heads over token sequences of any length: `SequencePredictor` (many-to-one: one vector of outputs
per sequence, class logits or values) and `SequenceTagger` (many-to-many, aligned: a label per token).

Shapes: B batch, T longest sequence in the batch, E embedding, H hidden, K outputs.
tokens (B, T) are padded with id 0 after each sequence's end; lengths (B,) give the real lengths.
Numeric sequences (SequencePredictor with input_features=D) come as values (B, T, D) instead.
The recurrent layer skips padding (packed sequences / masks), so padding never changes a result.
"""

from __future__ import annotations

import torch
from torch import nn

from ..recurrent import Recurrent

POOLINGS = ("last", "mean", "max")


class _TokenRecurrentHead(nn.Module):
    """What both heads share: token embedding (id 0 is padding) -> Recurrent stack -> dropout ->
    linear layer of width num_outputs. Submodule names are part of saved checkpoints."""

    def __init__(self, vocab_size: int, num_outputs: int, cell: str, hidden_size: int, num_layers: int,
                 embedding_size: int, dropout: float, bidirectional: bool, init: str, forget_bias: float,
                 input_features: int | None = None, weight_drop: float = 0.0, initial_state_noise: float = 0.0) -> None:
        super().__init__()
        # numeric sequences (input_features values per step) are projected instead of looked up
        self.embed = nn.Linear(input_features, embedding_size) if input_features else \
            nn.Embedding(vocab_size, embedding_size, padding_idx=0)
        self.recurrent = Recurrent(cell, embedding_size, hidden_size, num_layers, dropout, bidirectional,
                                   weight_drop=weight_drop)
        self.recurrent.reset_parameters(init, forget_bias)
        if not self.recurrent.trainable:  # a fixed reservoir reads a fixed input layer: only the head learns
            self.embed.requires_grad_(False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.recurrent.output_size, num_outputs)
        self.initial_state_noise = initial_state_noise

    def outputs(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T), (B,) -> the top layer's outputs (B, T, H * directions), zero past each end."""
        x = self.embed(tokens)
        return self.recurrent(x, self._initial_state(x), lengths=lengths, final_state=False)[0]

    def _initial_state(self, x: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """None (zeros) except in training with initial_state_noise: then h ~ N(0, noise²) for every
        row and layer, other states (c, step counters) zero (Cooijmans et al. 2016, pixel MNIST)."""
        if not (self.training and self.initial_state_noise):
            return None
        state = self.recurrent.init_state(x.shape[0], x.device, x.dtype)
        return tuple(s + self.initial_state_noise * torch.randn_like(s) if name == "h" else s
                     for name, s in zip(self.recurrent.state_names, state))


def pool_outputs(out: torch.Tensor, lengths: torch.Tensor, pooling: str, hidden_size: int) -> torch.Tensor:
    """Outputs (B, T, H * directions), zero past each sequence's end -> one (B, H * directions) vector
    per sequence: "last" = the final h of each direction, "mean" or "max" over the real positions."""
    lengths = lengths.to(out.device)
    if pooling == "last":
        # The top layer's final h in each direction: its output at the last real token reading
        # forwards, at the first token reading backwards.
        last = out[torch.arange(out.shape[0], device=out.device), lengths - 1]  # (B, H*)
        return torch.cat([last[:, :hidden_size], out[:, 0, hidden_size:]], dim=1)
    if pooling == "mean":
        return out.sum(dim=1) / lengths.to(out.dtype)[:, None]
    real = torch.arange(out.shape[1], device=out.device)[None, :] < lengths[:, None]
    return out.masked_fill(~real[..., None], float("-inf")).max(dim=1).values


class SequencePredictor(_TokenRecurrentHead):
    def __init__(self, vocab_size: int, num_outputs: int, cell: str = "lstm", hidden_size: int = 128,
                 num_layers: int = 1, embedding_size: int = 64, dropout: float = 0.0, pooling: str = "last",
                 bidirectional: bool = False, init: str = "auto", forget_bias: float = 1.0,
                 input_features: int | None = None, weight_drop: float = 0.0, initial_state_noise: float = 0.0) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)} (got {pooling!r})")
        super().__init__(vocab_size, num_outputs, cell, hidden_size, num_layers, embedding_size, dropout,
                         bidirectional, init, forget_bias, input_features, weight_drop, initial_state_noise)
        self.pooling = pooling

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T), (B,) -> one (B, H * directions) summary per sequence, by the chosen pooling."""
        return pool_outputs(self.outputs(tokens, lengths), lengths, self.pooling, self.recurrent.hidden_size)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.encode(tokens, lengths)))  # (B, K)


class SequenceTagger(_TokenRecurrentHead):
    """tokens (B, T) + lengths (B,) -> label logits (B, T, C) for every position; bidirectional
    by default, since a token's label usually depends on what follows it too."""

    def __init__(self, vocab_size: int, num_labels: int, cell: str = "lstm", hidden_size: int = 128,
                 num_layers: int = 1, embedding_size: int = 64, dropout: float = 0.0, bidirectional: bool = True,
                 init: str = "auto", forget_bias: float = 1.0, weight_drop: float = 0.0,
                 initial_state_noise: float = 0.0) -> None:
        super().__init__(vocab_size, num_labels, cell, hidden_size, num_layers, embedding_size, dropout,
                         bidirectional, init, forget_bias, weight_drop=weight_drop,
                         initial_state_noise=initial_state_noise)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.outputs(tokens, lengths)))  # (B, T, C)
