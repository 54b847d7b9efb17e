"""The baseline rnnkit's language model is measured against: the training loop a practitioner
writes by hand in plain PyTorch, with the design notes' recipe (a 2 x 256 `nn.LSTM` over a
64-wide embedding, Adam 3e-3, batches of 32 random 64-character windows, a cosine schedule with 2%
warmup over the time budget, gradient norm clipped at 1, float32, no evaluation while training).

After the budget it scores the validation text the way `rnnkit eval` does: one stream, the state
carried from chunk to chunk, the mean negative log-likelihood of every character after the first.

usage: python bench/plain_loop.py train.txt val.txt --time 130 [--seed 1337]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from torch import nn


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, embedding: int = 64, hidden: int = 256, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embedding)
        self.lstm = nn.LSTM(embedding, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


def encode(text: str, index: dict[str, int]) -> np.ndarray:
    missing = sorted(set(text) - set(index))
    if missing:
        raise SystemExit(f"plain_loop: the validation text has characters the training text lacks: {missing[:5]}")
    return np.array([index[c] for c in text], dtype=np.int64)


@torch.no_grad()
def score(model: CharLSTM, tokens: np.ndarray, chunk: int = 1024) -> float:
    """Mean nats per character of tokens[1:], one stream with the state carried."""
    model.eval()
    data = torch.from_numpy(tokens)
    total, count, state = 0.0, 0, None
    for start in range(0, len(data) - 1, chunk):
        x = data[start:start + chunk][None]
        y = data[start + 1:start + chunk + 1][None]
        x = x[:, :y.shape[1]]
        logits, state = model(x, state)
        total += nn.functional.cross_entropy(logits[0], y[0], reduction="sum").item()
        count += y.shape[1]
    return total / count


def train(train_text: str, val_text: str, budget: float, seed: int = 1337, batch: int = 32, seq: int = 64,
          lr: float = 3e-3) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    chars = sorted(set(train_text))
    index = {c: i for i, c in enumerate(chars)}
    data = encode(train_text, index)
    model = CharLSTM(len(chars))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < budget:
        progress = elapsed / budget  # the schedule follows the clock, since the step count is unknown
        factor = progress / 0.02 if progress < 0.02 else 0.5 * (1 + math.cos(math.pi * progress))
        for group in optimizer.param_groups:
            group["lr"] = lr * max(factor, 1e-3)
        starts = rng.integers(0, len(data) - seq - 1, batch)
        window = torch.from_numpy(np.stack([data[s:s + seq + 1] for s in starts]))
        logits, _ = model(window[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(chars)), window[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps += 1
    wall = time.perf_counter() - started
    return {"time_budget_s": budget, "steps": steps, "wall_s": round(wall, 1),
            "val_nats_per_char": round(score(model, encode(val_text, index)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_txt")
    parser.add_argument("val_txt")
    parser.add_argument("--time", type=float, default=130.0)
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args()
    read = lambda p: open(p, encoding="utf-8").read()  # noqa: E731
    print(json.dumps(train(read(args.train_txt), read(args.val_txt), args.time, args.seed)))


if __name__ == "__main__":
    main()
