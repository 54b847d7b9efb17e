"""What mixed precision the CPU can run, found by trying rather than by reading CPU flags.

oneDNN's fused RNN kernels run in bfloat16 only on CPUs with bf16 (or AVX-512) instructions; on
an AVX2-only CPU creating the primitive fails ("could not create a primitive descriptor for the
LSTM forward propagation primitive"). PyTorch's native RNN kernel runs under bf16 autocast on any
CPU (it computes the recurrence in float32), so on such a CPU the recurrent layers take that
kernel while the embedding and output layers still run in bf16.
"""

from __future__ import annotations

import contextlib
import functools

import torch
from torch import nn


@functools.cache
def onednn_bf16_rnn() -> bool:
    """True when oneDNN's fused LSTM runs under CPU bf16 autocast on this machine (tried once)."""
    if not torch.backends.mkldnn.is_available():
        return False
    probe = nn.LSTM(4, 4, batch_first=True)
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            probe(torch.zeros(1, 2, 4))
    except RuntimeError:
        return False
    return True


@functools.cache
def cpu_bf16_matrix_units() -> bool:
    """True on a CPU with bf16 matrix units (Intel AMX) where oneDNN runs the fused LSTM in bf16.
    Read from PyTorch's own CPU check, not timed, so that the defaults it selects are the same on
    every run on the machine; False where this PyTorch has no such check."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(check is not None and check()) and onednn_bf16_rnn()
    except Exception:  # a private check of PyTorch's: if it fails, assume no AMX
        return False


def cpu_bf16_active(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16)


def rnn_kernel_context(x: torch.Tensor):
    """The context the fused recurrent kernel should run in for input x: PyTorch's native kernel
    when bf16 autocast is on and oneDNN cannot run it on this CPU, else no change."""
    if cpu_bf16_active(x) and not onednn_bf16_rnn():
        return _without_onednn()
    return contextlib.nullcontext()


@contextlib.contextmanager
def _without_onednn():
    # Only the `enabled` switch: torch.backends.mkldnn.flags() would also reset the TF32 setting.
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


# ---------------------------------------------------------------------------- denormal numbers
def flushing_denormals() -> bool:
    """True when this thread's float arithmetic treats denormal numbers as zero (a denormal times
    one comes out zero only then)."""
    return torch.tensor(1e-39, dtype=torch.float32).mul(1.0).item() == 0.0


@contextlib.contextmanager
def flush_denormals():
    """Treat float32 numbers below 1.2e-38 (denormals) as zero on this thread inside the block, the
    previous mode restored after; usable as a decorator. A gradient that fades through hundreds of
    steps of backpropagation through time, or a cell state that decays over a long blank stretch,
    passes through the denormal range, where x86 CPUs compute many times slower: an LSTM of 100 units
    over 784 steps took 10x longer per training step on one thread without this
    (docs/performance.md, bench/denormals.py). Values that small change no result rnnkit reports.
    The mode belongs to a thread, and a thread takes it from the thread that starts it: PyTorch's
    worker threads flush only if their pool starts inside the block (`rnnkit` on the command line
    enters it before any tensor work; a Python program that ran parallel work before training keeps
    its workers' default there), and keep flushing after it."""
    before = flushing_denormals()
    torch.set_flush_denormal(True)  # False, and no change, on a CPU without the mode
    try:
        yield
    finally:
        if not before:
            torch.set_flush_denormal(False)
