"""Beam search bookkeeping for decoders that run the beams of all their inputs as one batch: the
N beams of each of B inputs are rows b * N .. b * N + N - 1 of a (B * N)-row batch (the seq2seq
decoder, the image captioner). The decoder owns its state; after each step it reorders that state
by the rows `advance` returns.

A finished output is continued only by padding (id 0), at no cost, so it keeps its score; the best
beam of an input is chosen by log-probability per token, EOS counted, so short outputs are not
preferred just for being short.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Beams:
    def __init__(self, inputs: int, width: int, bos: int, eos: int, device: torch.device) -> None:
        self.B, self.N, self.eos = inputs, width, eos
        self.scores = torch.full((inputs, width), float("-inf"), device=device)  # (B, N) total log-probability
        self.scores[:, 0] = 0.0  # at first every beam of an input is the same: expand one
        self.tokens = torch.full((inputs * width, 1), bos, dtype=torch.long, device=device)  # (B*N, t + 1)
        self.finished = torch.zeros(inputs * width, dtype=torch.bool, device=device)
        self.counts = torch.zeros(inputs * width, device=device)  # tokens of each output, its EOS included

    def repeat(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ...) -> (B * N, ...): each input's row once per beam."""
        return x.repeat_interleave(self.N, dim=0)

    @property
    def last(self) -> torch.Tensor:
        """(B*N,) the token each beam ends with: the decoder's next input."""
        return self.tokens[:, -1]

    @property
    def done(self) -> bool:
        return bool(self.finished.all())

    def advance(self, logits: torch.Tensor) -> torch.Tensor:
        """Extend every beam by the decoder's logits (B*N, V); returns the (B*N,) rows each new
        beam continues, by which the decoder reorders its state."""
        B, N = self.B, self.N
        logp = F.log_softmax(logits.float(), dim=1)  # (B*N, V)
        logp[self.finished] = float("-inf")
        logp[self.finished, 0] = 0.0  # padding
        V = logp.shape[1]
        self.scores, index = (self.scores.reshape(-1, 1) + logp).reshape(B, N * V).topk(N, dim=1)  # (B, N)
        origin = (index // V + torch.arange(B, device=logits.device)[:, None] * N).reshape(-1)  # rows of B*N
        chosen = (index % V).reshape(-1)
        self.tokens = torch.cat([self.tokens[origin], chosen[:, None]], dim=1)
        was_finished = self.finished[origin]
        self.counts = self.counts[origin] + (~was_finished).float()
        self.finished = was_finished | (chosen == self.eos)
        return origin

    def best(self) -> list[tuple[int, list[int]]]:
        """For each input: the row of its best beam and that beam's token ids (EOS left out)."""
        best = (self.scores.reshape(-1) / self.counts.clamp(min=1)).reshape(self.B, self.N).argmax(dim=1)  # (B,)
        out = []
        for b in range(self.B):
            row = b * self.N + int(best[b])
            output = self.tokens[row, 1:].tolist()
            out.append((row, output[:next((t for t, i in enumerate(output) if i in (self.eos, 0)), len(output))]))
        return out
