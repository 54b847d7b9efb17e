"""The linear recurrence h_t = a_t * h_{t-1} + b_t over a whole sequence, without a loop over time.

Shapes: a, b (B, T, H), h0 (B, H) -> h (B, T, H). Used by the cells whose gates read only the
input (minGRU, minLSTM), where every a_t and b_t is known before the recurrence runs.

A chunked scan: the T steps are cut into n chunks of C ~ sqrt(T) steps. First every chunk runs
its C steps from a zero state, all chunks side by side (C vectorised steps over (B, n, H)), keeping
only where it ends, and the product of its a's is one reduction; then the n chunk ends are chained
(n steps over (B, H)) into the true state entering each chunk; last, every chunk runs again from
that state, writing each step. (Keeping every step of the first pass and correcting it with the
running products afterwards reads and writes twice the memory: measured 5% slower per training
step.) That is 3 sqrt(T) short Python iterations instead of T, and everything stays in linear space:
only products and sums of the a's and b's, so nothing overflows and nothing is divided (a
product of many a's in (0, 1) underflows to an exact-enough 0, where a closed form would divide
by it or need a log-space `logcumsumexp`, measured 2-3x slower on CPU).

On CPU, where rnnkit's C kernels are built (`rnnkit.native`), the recurrence is instead one C pass
over time (`rnnkit/native/scan.c`): every column of B x H is its own recurrence, so threads split
the columns and each walks its share through time, reading a and b once and writing h once (1.1-1.2x
faster per minGRU training step than the chunked scan at 256-4,096 steps). The chunked scan is the
path everywhere else (GPU, float16/bfloat16, no compiler) and is tested against the same loop.

The backward pass is the same recurrence run backwards (`LinearRecurrence.backward`):
g_t = dL/dh_t + a_{t+1} g_{t+1}; then dL/db_t = g_t, dL/da_t = g_t h_{t-1}, dL/dh0 = a_0 g_0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..native.calls import kernel, usable


def _scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, reverse: bool = False,
          shifted: bool = False) -> torch.Tensor:
    """The recurrence, in C or chunked as the module docstring says; no autograd of its own. With
    `reverse`, time runs from the last step to the first (h_t = a_t h_{t+1} + b_t, h0 after the
    last step): the backward pass's recurrence, without flipping three whole tensors. With
    `shifted` (and `reverse`) step t reads a_{t+1} instead of a_t, as the backward pass needs,
    without a shifted copy of a; the last step's coefficient is then 1, so h0 must be 0."""
    B, T, H = a.shape
    if reverse == shifted and a.dtype == b.dtype == h0.dtype and usable(b):
        # where the C kernels run: one pass over time per column (rnnkit/native/scan.c)
        a, b = a.contiguous(), b.contiguous()
        h = torch.empty_like(b)
        kernel("linear_recurrence", b.dtype)(B, T, H, int(reverse), a.data_ptr(), b.data_ptr(),
                                             h0.contiguous().data_ptr(), h.data_ptr())
        return h
    C = max(1, math.isqrt(T))  # steps per chunk
    n = -(-T // C)  # chunks
    pad = n * C - T  # identity steps (a = 1, b = 0) to fill the last chunk; in reverse they come first
    if pad:
        a = F.pad(a, (0, 0, 0, pad), value=1.0)
        b = F.pad(b, (0, 0, 0, pad))
    a, b = a.reshape(B, n, C, H), b.reshape(B, n, C, H)
    steps, chunks = (range(C - 1, -1, -1), range(n - 1, -1, -1)) if reverse else (range(C), range(n))
    if shifted:  # step c of chunk j reads a[:, j, c + 1]; its last step, the next chunk's first a
        next_first = torch.cat([a[:, 1:, 0], torch.ones_like(a[:, :1, 0])], dim=1)  # (B, n, H)
        coefficient = lambda t: a[:, :, t + 1] if t + 1 < C else next_first  # noqa: E731
        product = a[:, :, 1:].prod(dim=2).mul_(next_first)
    else:
        coefficient = lambda t: a[:, :, t]  # noqa: E731
        product = a.prod(dim=2)
    # 1. every chunk at once, from a zero state: where it ends, (B, n, H), and the product of its a's
    # (updated in place: a fresh (B, n, H) tensor per step would be a fresh page-mapped block)
    first, *rest = steps
    end = b[:, :, first].clone()
    for t in rest:
        torch.addcmul(b[:, :, t], coefficient(t), end, out=end)
    # 2. the chunk ends chained: the true state entering each chunk, written where it is read
    incoming = torch.empty_like(end)
    incoming[:, chunks[0]] = h0
    for j, following in zip(chunks, chunks[1:]):
        torch.addcmul(end[:, j], product[:, j], incoming[:, j], out=incoming[:, following])
    # 3. every chunk again, now from its true incoming state, keeping every step
    out = torch.empty_like(b)
    before = incoming
    for t in steps:
        before = torch.addcmul(b[:, :, t], coefficient(t), before, out=out[:, :, t])
    return out.view(B, n * C, H)[:, :T]


class LinearRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        h = _scan(a, b, h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, h, h0 = ctx.saved_tensors
        # g_t = grad_t + a_{t+1} g_{t+1}: the scan run in reverse, reading a one step on
        g = _scan(a, grad, torch.zeros_like(h0), reverse=True, shifted=True)
        da = torch.empty_like(g)  # g_t h_{t-1}, written in two parts rather than concatenating h0 and h
        torch.mul(g[:, 1:], h[:, :-1], out=da[:, 1:])
        torch.mul(g[:, 0], h0, out=da[:, 0])
        return da, g, a[:, 0] * g[:, 0]


def linear_recurrence(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t for t = 0..T-1 from h_{-1} = h0: a, b (B, T, H), h0 (B, H) -> (B, T, H)."""
    return LinearRecurrence.apply(a, b, h0)
