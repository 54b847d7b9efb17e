"""Encoder-decoder with attention: a source sequence -> a target sequence of another length.

Shapes: B batch, S source length, T target length, E embedding, H hidden, V target vocabulary.
The encoder is a bidirectional `Recurrent` stack over the source (padding-invariant); the decoder
runs one cell step at a time and attends over the encoder outputs with Luong et al.'s (2015)
"general" score and input feeding: each step reads the previous target token together with the
previous attentional output, so the model knows what it has already looked at.

    score(h_t, e_s) = h_t^T W_a e_s        (masked to the real source positions)
    c_t = sum_s softmax(score)_s e_s
    a_t = tanh(W_c [c_t; h_t])             logits_t = W_o a_t
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..cells import CELL_TYPES
from ..recurrent import Recurrent
from .beam import Beams


class Decoding:
    """Greedy and beam decoding over `encode` and `decode_step`, for one model or an ensemble. What
    `encode` returns is tensors with the batch first (beams repeat and reorder rows of each)."""

    @torch.no_grad()
    def greedy(self, source: torch.Tensor, lengths: torch.Tensor, max_length: int) -> list[list[int]]:
        outputs, keys, mask, state, feed = self.encode(source, lengths)
        token = torch.full((source.shape[0],), self.bos, dtype=torch.long, device=source.device)
        result = [[] for _ in range(source.shape[0])]
        done = torch.zeros(source.shape[0], dtype=torch.bool, device=source.device)
        for _ in range(max_length):
            logits, state, feed = self.decode_step(token, state, feed, outputs, keys, mask)
            token = logits.argmax(dim=1)
            for b in torch.nonzero(~done)[:, 0].tolist():
                if token[b].item() != self.eos:
                    result[b].append(token[b].item())
            done |= token == self.eos
            if done.all():
                break
        return result

    @torch.no_grad()
    def beam(self, source: torch.Tensor, lengths: torch.Tensor, max_length: int, width: int) -> list[list[int]]:
        """Beam search over all sources at once: every step runs the `width` beams of all B sources
        as one batch of B * width rows (models/beam.py keeps the beams)."""
        beams = Beams(source.shape[0], width, self.bos, self.eos, source.device)
        outputs, keys, mask, state, feed = self.encode(source, lengths)
        outputs, keys, mask, feed = beams.repeat(outputs), beams.repeat(keys), beams.repeat(mask), beams.repeat(feed)
        state = tuple(beams.repeat(s) for s in state)
        for _ in range(max_length):
            logits, state, feed = self.decode_step(beams.last, state, feed, outputs, keys, mask)
            origin = beams.advance(logits)
            state, feed = tuple(s[origin] for s in state), feed[origin]
            if beams.done:
                break
        return [output for _, output in beams.best()]

    @torch.no_grad()
    def log_likelihood(self, source: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) natural log-probability of each given output: target (B, T) holds each one's ids and
        then EOS, padded with 0. Teacher forcing, as in training, so guesses of any origin (another
        system's n-best list, say) can be ranked by this model."""
        outputs, keys, mask, state, feed = self.encode(source, lengths)
        token = torch.full((source.shape[0],), self.bos, dtype=torch.long, device=source.device)
        total = torch.zeros(source.shape[0], dtype=torch.float64, device=source.device)
        for t in range(target.shape[1]):
            logits, state, feed = self.decode_step(token, state, feed, outputs, keys, mask)
            logp = torch.log_softmax(logits.float(), dim=1).gather(1, target[:, t:t + 1])[:, 0]  # (B,)
            total += logp.double().masked_fill(target[:, t] == 0, 0.0)  # padding after EOS adds nothing
            token = target[:, t]
        return total


class Seq2SeqModel(Decoding, nn.Module):
    def __init__(self, source_vocab: int, target_vocab: int, cell: str = "lstm", hidden_size: int = 128,
                 embedding_size: int = 64, dropout: float = 0.0, bos: int = 2, eos: int = 3) -> None:
        super().__init__()
        H = hidden_size
        self.bos, self.eos, self.hidden_size = bos, eos, H
        self.source_embed = nn.Embedding(source_vocab, embedding_size, padding_idx=0)
        self.encoder = Recurrent(cell, embedding_size, H, 1, bidirectional=True)
        self.bridge = nn.Linear(2 * H, H)  # encoder's final states (both directions) -> decoder's first h
        self.target_embed = nn.Embedding(target_vocab, embedding_size, padding_idx=0)
        self.decoder = CELL_TYPES[cell](embedding_size + H, H)
        self.attend = nn.Linear(2 * H, H, bias=False)  # W_a, mapping encoder outputs into h's space
        self.combine = nn.Linear(3 * H, H)  # W_c
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(H, target_vocab)

    def encode(self, source: torch.Tensor, lengths: torch.Tensor):
        """-> encoder outputs (B, S, 2H), their keys W_a e (B, S, H), source mask (B, S), first state."""
        outputs, state = self.encoder(self.source_embed(source), lengths=lengths)
        mask = torch.arange(source.shape[1], device=source.device)[None, :] < lengths.to(source.device)[:, None]
        h = torch.tanh(self.bridge(state[0].transpose(0, 1).reshape(source.shape[0], -1)))  # (B, H)
        first = tuple([h] + [torch.zeros_like(h) for _ in self.decoder.state_names[1:]])
        feed = torch.zeros_like(h)  # the attentional output of "step 0"
        return outputs, self.attend(outputs), mask, first, feed

    def decode_step(self, token: torch.Tensor, state, feed, outputs, keys, mask):
        """One decoder step: token (B,) -> logits (B, V), new state, new attentional output."""
        x = torch.cat([self.target_embed(token), feed], dim=1)  # (B, E + H)
        h, state = self.decoder.step(x, state)
        scores = torch.bmm(keys, h[:, :, None])[:, :, 0].masked_fill(~mask, float("-inf"))  # (B, S)
        context = torch.bmm(torch.softmax(scores, dim=1)[:, None, :], outputs)[:, 0]  # (B, 2H)
        feed = torch.tanh(self.combine(torch.cat([context, h], dim=1)))  # (B, H)
        return self.out(self.dropout(feed)), state, feed

    def forward(self, source: torch.Tensor, lengths: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: target_in (B, T) starts with BOS -> logits (B, T, V)."""
        outputs, keys, mask, state, feed = self.encode(source, lengths)
        logits = []
        for t in range(target_in.shape[1]):
            step_logits, state, feed = self.decode_step(target_in[:, t], state, feed, outputs, keys, mask)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)


class Seq2SeqEnsembleModel(Decoding, nn.Module):
    """Several trained Seq2SeqModels with the same vocabularies decoding as one: each step's
    distribution is the mean of the members' probabilities (averaging the members of an ensemble
    is the standard way neural machine translation combines models; Sutskever et al. 2014 used 5).
    Each member keeps its own encoder outputs, attention and state; they travel as one tensor per
    kind, the members' parts side by side in the last dimension, so beams repeat and reorder them
    like a single model's."""

    def __init__(self, members: list[Seq2SeqModel]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one model")
        first = members[0]
        for m in members[1:]:
            if (m.out.out_features, m.source_embed.num_embeddings, m.bos, m.eos) != \
                    (first.out.out_features, first.source_embed.num_embeddings, first.bos, first.eos):
                raise ValueError("the ensemble's models must share their vocabularies")
            if type(m.decoder) is not type(first.decoder):
                raise ValueError("the ensemble's models must share their cell")
        self.members = nn.ModuleList(members)
        self.bos, self.eos = first.bos, first.eos
        self._sizes = [m.hidden_size for m in members]

    def _split(self, x: torch.Tensor, scale: int = 1) -> tuple[torch.Tensor, ...]:
        return torch.split(x, [scale * h for h in self._sizes], dim=-1)

    def encode(self, source: torch.Tensor, lengths: torch.Tensor):
        parts = [m.encode(source, lengths) for m in self.members]
        outputs = torch.cat([p[0] for p in parts], dim=-1)  # (B, S, sum 2H)
        keys = torch.cat([p[1] for p in parts], dim=-1)  # (B, S, sum H)
        state = tuple(torch.cat(s, dim=-1) for s in zip(*(p[3] for p in parts)))  # each (B, sum H)
        feed = torch.cat([p[4] for p in parts], dim=-1)  # (B, sum H)
        return outputs, keys, parts[0][2], state, feed

    def decode_step(self, token, state, feed, outputs, keys, mask):
        """-> log of the members' mean probabilities (B, V), the new state and attentional outputs."""
        columns = zip(*(self._split(s) for s in state))
        steps = [m.decode_step(token, tuple(st), f, o, k, mask) for m, st, f, o, k in
                 zip(self.members, columns, self._split(feed), self._split(outputs, 2), self._split(keys))]
        logp = torch.stack([torch.log_softmax(s[0].float(), dim=1) for s in steps])  # (M, B, V)
        mean = torch.logsumexp(logp, dim=0) - math.log(len(steps))
        state = tuple(torch.cat(s, dim=-1) for s in zip(*(s[1] for s in steps)))
        return mean, state, torch.cat([s[2] for s in steps], dim=-1)
