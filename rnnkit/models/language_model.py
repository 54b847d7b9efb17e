"""Character-level language model: tokens -> (embedding | one-hot) -> Recurrent stack -> logits.

Shapes: B batch, T time, V vocabulary, E embedding width (V for one-hot), H hidden, L layers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cells import EchoStateCell, State
from ..config import ModelConfig
from ..recurrent import Recurrent


class OneHot(nn.Module):
    """Token ids -> one-hot vectors; the "no embedding" input of the classic char-rnn."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        # An empty buffer follows .double()/.to(), so the vectors match the model's dtype.
        self.register_buffer("dtype_probe", torch.zeros(0), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.one_hot(tokens, self.vocab_size).to(self.dtype_probe.dtype)


class LanguageModel(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        V, E, H = config.vocab_size, config.embedding_size, config.hidden_size
        self.embed: nn.Module = nn.Embedding(V, E) if E > 0 else OneHot(V)
        cell = EchoStateCell.with_spectral_radius(config.spectral_radius) if config.cell == "esn" else config.cell
        self.recurrent = Recurrent(cell, E if E > 0 else V, H, config.num_layers, config.dropout,
                                   zoneout=config.zoneout, residual=config.residual,
                                   feed_forward=config.feed_forward, weight_drop=config.weight_drop)
        if not self.recurrent.trainable:  # a fixed reservoir reads a fixed embedding: only the head learns
            self.embed.requires_grad_(False)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(H, V)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if isinstance(self.embed, nn.Embedding):
            nn.init.normal_(self.embed.weight, std=1.0)
        self.recurrent.reset_parameters(self.config.init, self.config.forget_bias)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, tokens: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """tokens (B, T) -> logits (B, T, V), final state."""
        x = self.embed(tokens)  # (B, T, E)
        out, state = self.recurrent(x, state)  # (B, T, H)
        return self.head(self.dropout(out)), state

    def generator(self, state: State) -> "Generator":
        return Generator(self, state)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def evaluate_tokens(self, tokens: np.ndarray, seq_length: int = 256, max_streams: int = 32,
                        device: torch.device | str = "cpu") -> tuple[float, int]:
        """Mean cross-entropy (nats per token) of `tokens` and how many tokens were predicted.

        The text is read as up to `max_streams` contiguous streams side by side, with the state
        carried along each, so nearly every token is predicted with its full left context;
        only the first token of each stream is predicted from a blank state. `tokens` may be a
        memory map: only one chunk of each stream is read at a time.
        """
        was_training = self.training
        self.eval()
        n = len(tokens)
        streams = max(1, min(max_streams, (n - 1) // 1000))
        # Streams overlap by one token so every token after the first is a target exactly once;
        # the few tokens left over after the last stream continue that stream's state.
        length = (n - 1) // streams + 1
        starts = [k * (length - 1) for k in range(streams)]
        total_nats, count, state = 0.0, 0, None

        def score(window: np.ndarray, state):
            window = torch.from_numpy(np.asarray(window, dtype=np.int64)).to(device)  # (S, t + 1)
            logits, state = self(window[:, :-1], state)
            nats = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1), reduction="sum")
            return nats.item(), window[:, 1:].numel(), state

        try:
            for t0 in range(0, length - 1, seq_length):
                t1 = min(t0 + seq_length + 1, length)
                nats, k, state = score(np.stack([tokens[s + t0:s + t1] for s in starts]), state)
                total_nats, count = total_nats + nats, count + k
            tail = starts[-1] + length - 1
            if tail < n - 1:
                nats, k, _ = score(np.asarray(tokens[tail:n])[None], tuple(s[:, -1:] for s in state))
                total_nats, count = total_nats + nats, count + k
        finally:
            self.train(was_training)
        return total_nats / max(count, 1), count


class Generator:
    """Token-at-a-time inference from a given state (sampling), with the per-step work cut down.

    At batch 1 a step is bound by reading the weights (a 2 x 512 LSTM reads 12 MB per character)
    and by per-call overhead (a few microseconds per PyTorch op, dozens of ops per step), so this
    (a) steps the stack with `Recurrent.step`, which runs standard cells on PyTorch's one-call
    fused step (torch.lstm_cell, ...); custom cells get the first layer's input projection from a
    (V, G*H) table made once, instead of an embedding lookup plus a matrix multiply per step;
    (b) keeps the state per layer; (c) skips the autograd and dropout machinery (inference only).
    """

    @torch.no_grad()
    def __init__(self, model: LanguageModel, state: State) -> None:
        if model.training:
            raise ValueError("Generator needs a model in eval mode")
        self.recurrent, self.embed, self.head = model.recurrent, model.embed, model.head
        self.fused = all(cell.fused_mode is not None for cell in self.recurrent.cells)
        # the table needs one row per input id: only for plain token inputs (not ids with side information)
        self.table = not self.fused and isinstance(model.embed, (nn.Embedding, OneHot))
        if self.table:
            vocab = torch.arange(model.config.vocab_size, device=model.head.weight.device)
            self.first_projection = self.recurrent.cells[0].input_projection(model.embed(vocab))  # (V, G*H)
        self.states = self.recurrent.layer_states(state)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B,) -> logits (B, V) of the next token; the state moves on."""
        if not self.table:
            y, self.states = self.recurrent.step(self.embed(tokens), self.states)
        else:  # a row lookup replaces the first layer's input projection
            y, self.states = self.recurrent.step(F.embedding(tokens, self.first_projection), self.states,
                                                 projected=True)
        return self.head(y)

    def state(self) -> State:
        """The current state in `Recurrent`'s (L, B, H) layout."""
        return self.recurrent.stack_states(self.states)
