"""Padded batches of labelled sequences, with length bucketing.

Sequences of similar length are batched together (sorted within buckets of 50 batches, then the
batches shuffled), so little compute is spent on padding while every epoch still sees the data
in a new order.
"""

from __future__ import annotations

import numpy as np
import torch

BUCKET_BATCHES = 50


def pad(sequences: list, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> tokens (B, T) padded with 0, lengths (B,). Empty sequences become one
    padding token (the caller decides whether those are allowed). Numeric sequences ((T, D) float
    arrays) -> values (B, T, D) padded with zeros."""
    lengths = torch.tensor([max(1, len(s)) for s in sequences])
    if sequences and isinstance(sequences[0], np.ndarray) and sequences[0].ndim == 2:
        values = torch.zeros(len(sequences), int(lengths.max()), sequences[0].shape[1])
        for b, s in enumerate(sequences):
            values[b, :len(s)] = torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32))
        return values.to(device), lengths
    tokens = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.long)
    for b, s in enumerate(sequences):
        tokens[b, :len(s)] = torch.tensor(s, dtype=torch.long)
    return tokens.to(device), lengths


def bucketed_batches(lengths: np.ndarray, batch_size: int, generator: torch.Generator) -> list[np.ndarray]:
    """One epoch's batches of indices: shuffled, sorted by length within buckets, batch order shuffled."""
    order = torch.randperm(len(lengths), generator=generator).numpy()
    batches = []
    bucket = batch_size * BUCKET_BATCHES
    for start in range(0, len(order), bucket):
        chunk = order[start:start + bucket]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]
