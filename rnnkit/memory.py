"""Keeping freed memory for reuse, so large per-step tensors stop costing page faults.

glibc's malloc serves every block above its mmap threshold (128 KiB at first, raised by itself up
to 32 MiB) with a fresh mapping from the operating system and unmaps it on free; PyTorch's CPU
allocator keeps no cache of its own. A tensor above the threshold therefore costs a page fault per
4 KiB each time it is made: at a 2 x 512 LSTM's batch 64 x 100 steps, the (T, B, 4H) gate buffers
are 52 MB, 13,000 faults apiece, several times per training step. `keep_freed_memory` raises the
mmap threshold and the heap's trim threshold so freed blocks stay in the heap and the next step
reuses them. Measured (docs/performance.md): a 52 MB allocate-and-fill 15.0 -> 3.3 ms; minGRU's
training step at 4,096 steps 316-364 -> 156-178 ms; nn.LSTM's 2 x 512 step 0.95 -> 0.70 s.

The cost: the process keeps its peak heap until it exits instead of returning freed blocks to the
system. rnnkit's command line calls this at start (`RNNKIT_KEEP_MEMORY=0` leaves malloc as it is);
a program using rnnkit as a library may call it itself. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's <malloc.h>
THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap; larger ones are still mapped and unmapped


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks of up to 1 GiB; True if it took the settings."""
    if not sys.platform.startswith("linux") or os.environ.get("RNNKIT_KEEP_MEMORY", "1") == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # trim: never give the heap's top back while less than 2 GiB is free there
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * THRESHOLD - 1))
