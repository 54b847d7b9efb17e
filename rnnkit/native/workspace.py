"""Buffers kept between chunks, for the native kernels' autograd functions.

A fresh (T, B, 4H) buffer costs a page fault per 4 KiB the first time each page is written (large
allocations come straight from the operating system and go back to it when freed). At batch 64
and H = 256 that was about half of the LN-LSTM kernels' time; reusing the buffers of an earlier
chunk of the same shape removes it. A set is handed out again only once nothing can still read
it: the autograd node that saved it holds a token, and the set is free when the token is gone
(after that node's backward pass and the release of its graph). Buffers that leave the function
(outputs, gradients) are never taken from here.
"""

from __future__ import annotations

import threading
import weakref
from typing import Callable

import torch


class Token:
    """Held by whoever reads a set of buffers; the set is free once every token for it is gone."""


class Workspace:
    def __init__(self, limit: int = 8) -> None:
        self.limit = limit  # sets kept; more live at once are allocated and dropped as usual
        self.entries: list[tuple[tuple, weakref.ref, tuple[torch.Tensor, ...]]] = []
        self.lock = threading.Lock()

    def take(self, key: tuple, make: Callable[[], tuple[torch.Tensor, ...]]) -> tuple[Token, tuple[torch.Tensor, ...]]:
        """A free set for `key` (shapes, dtype), or a new one from `make()`; keep the token while you read it."""
        token = Token()
        with self.lock:
            for k, (entry_key, holder, buffers) in enumerate(self.entries):
                if entry_key == key and holder() is None:
                    self.entries[k] = (key, weakref.ref(token), buffers)
                    return token, buffers
        buffers = make()
        with self.lock:
            self.entries.append((key, weakref.ref(token), buffers))
            if len(self.entries) > self.limit:  # forget the oldest free set, else the oldest
                free = [k for k, (_, holder, _) in enumerate(self.entries) if holder() is None]
                del self.entries[free[0] if free else 0]
        return token, buffers
