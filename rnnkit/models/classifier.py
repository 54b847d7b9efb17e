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
                 input_features: int | None = None) -> None:
        super().__init__()
        # numeric sequences (input_features values per step) are projected instead of looked up
        self.embed = nn.Linear(input_features, embedding_size) if input_features else \
            nn.Embedding(vocab_size, embedding_size, padding_idx=0)
        self.recurrent = Recurrent(cell, embedding_size, hidden_size, num_layers, dropout, bidirectional)
        self.recurrent.reset_parameters(init, forget_bias)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.recurrent.output_size, num_outputs)


class SequencePredictor(_TokenRecurrentHead):
    def __init__(self, vocab_size: int, num_outputs: int, cell: str = "lstm", hidden_size: int = 128,
                 num_layers: int = 1, embedding_size: int = 64, dropout: float = 0.0, pooling: str = "last",
                 bidirectional: bool = False, init: str = "auto", forget_bias: float = 1.0,
                 input_features: int | None = None) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)} (got {pooling!r})")
        super().__init__(vocab_size, num_outputs, cell, hidden_size, num_layers, embedding_size, dropout,
                         bidirectional, init, forget_bias, input_features)
        self.pooling = pooling

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T), (B,) -> one (B, H * directions) summary per sequence, by the chosen pooling."""
        out, _ = self.recurrent(self.embed(tokens), lengths=lengths, final_state=False)  # (B, T, H*), 0 past ends
        if self.pooling == "last":
            # The top layer's final h in each direction: its output at the last real token reading
            # forwards, at the first token reading backwards.
            H = self.recurrent.hidden_size
            last = out[torch.arange(out.shape[0], device=out.device), lengths.to(out.device) - 1]  # (B, H*)
            return torch.cat([last[:, :H], out[:, 0, H:]], dim=1)
        if self.pooling == "mean":
            return out.sum(dim=1) / lengths.to(out.device, out.dtype)[:, None]
        real = torch.arange(out.shape[1], device=out.device)[None, :] < lengths.to(out.device)[:, None]
        return out.masked_fill(~real[..., None], float("-inf")).max(dim=1).values

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.encode(tokens, lengths)))  # (B, K)


class SequenceTagger(_TokenRecurrentHead):
    """tokens (B, T) + lengths (B,) -> label logits (B, T, C) for every position; bidirectional
    by default, since a token's label usually depends on what follows it too."""

    def __init__(self, vocab_size: int, num_labels: int, cell: str = "lstm", hidden_size: int = 128,
                 num_layers: int = 1, embedding_size: int = 64, dropout: float = 0.0, bidirectional: bool = True,
                 init: str = "auto", forget_bias: float = 1.0) -> None:
        super().__init__(vocab_size, num_labels, cell, hidden_size, num_layers, embedding_size, dropout,
                         bidirectional, init, forget_bias)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.recurrent(self.embed(tokens), lengths=lengths, final_state=False)  # (B, T, H * directions)
        return self.head(self.dropout(out))  # (B, T, C)
