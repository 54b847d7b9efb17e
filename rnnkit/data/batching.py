"""Stream batching for truncated backpropagation through time.

The token range is cut into B equal, contiguous streams laid side by side: ``streams (B, L)``.
Batch i is the window ``streams[:, i*T : i*T + T + 1]``; inputs are its first T columns, targets
the last T. Consecutive batches continue each stream exactly where the previous one stopped, which
is what lets the model carry its hidden state from chunk to chunk (Williams & Peng 1990;
char-rnn and torch-rnn batch the same way).
"""

from __future__ import annotations

import numpy as np
import torch


class StreamBatches:
    def __init__(self, tokens: np.ndarray, batch_size: int, seq_length: int) -> None:
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.stream_length = len(tokens) // batch_size
        # Each stream needs one input chunk plus the target shifted by one.
        if self.stream_length < seq_length + 1:
            raise ValueError("too few tokens for one batch")
        # A view on the memory map: nothing is read until a batch asks for it.
        self.streams = tokens[: batch_size * self.stream_length].reshape(batch_size, self.stream_length)
        self.batches_per_epoch = (self.stream_length - 1) // seq_length

    @staticmethod
    def min_tokens(batch_size: int, seq_length: int) -> int:
        return batch_size * (seq_length + 1)

    def batch(self, index: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of batch `index` within an epoch, each (B, T) int64."""
        start = index * self.seq_length
        window = np.asarray(self.streams[:, start:start + self.seq_length + 1], dtype=np.int64)
        window = torch.from_numpy(window).to(device, non_blocking=True)
        return window[:, :-1], window[:, 1:]
