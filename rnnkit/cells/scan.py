"""The linear recurrence h_t = a_t * h_{t-1} + b_t over a whole sequence, without a loop over time.

Shapes: a, b (B, T, H), h0 (B, H) -> h (B, T, H). Used by the cells whose gates read only the
input (minGRU, minLSTM), where every a_t and b_t is known before the recurrence runs.

A chunked scan: the T steps are cut into n chunks of C ~ sqrt(T) steps. First every chunk runs
its C steps from a zero state, all chunks side by side (C vectorised steps over (B, n, H)), keeping
the running product of its a's; then the n chunk ends are chained (n steps over (B, H)); last,
each step adds its chunk's incoming state times the running product, one element-wise pass.
That is 2 sqrt(T) short Python iterations instead of T, and everything stays in linear space:
only products and sums of the a's and b's, so nothing overflows and nothing is divided (a
product of many a's in (0, 1) underflows to an exact-enough 0, where a closed form would divide
by it or need a log-space `logcumsumexp`, measured 2-3x slower on CPU).

The backward pass is the same recurrence run backwards (`LinearRecurrence.backward`):
g_t = dL/dh_t + a_{t+1} g_{t+1}; then dL/db_t = g_t, dL/da_t = g_t h_{t-1}, dL/dh0 = a_0 g_0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """The forward recurrence, chunked; no autograd of its own."""
    B, T, H = a.shape
    C = max(1, math.isqrt(T))  # steps per chunk
    n = -(-T // C)  # chunks
    pad = n * C - T  # identity steps (a = 1, b = 0) to fill the last chunk
    if pad:
        a = F.pad(a, (0, 0, 0, pad), value=1.0)
        b = F.pad(b, (0, 0, 0, pad))
    a, b = a.reshape(B, n, C, H), b.reshape(B, n, C, H)
    out = torch.empty_like(b)  # first each chunk's states from zero, then the true states
    product = torch.empty_like(a)  # running product of a within each chunk
    out[:, :, 0], product[:, :, 0] = b[:, :, 0], a[:, :, 0]
    for t in range(1, C):  # every chunk at once: slices of (B, n, H)
        torch.addcmul(b[:, :, t], a[:, :, t], out[:, :, t - 1], out=out[:, :, t])
        torch.mul(product[:, :, t - 1], a[:, :, t], out=product[:, :, t])
    incoming = torch.empty_like(out[:, :, 0])  # (B, n, H): the true state just before each chunk
    carry = h0
    for j in range(n):
        incoming[:, j] = carry
        carry = torch.addcmul(out[:, j, -1], product[:, j, -1], carry)
    out.addcmul_(product, incoming[:, :, None])
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
        # g_t = grad_t + a_{t+1} g_{t+1}: the forward scan on reversed time, with a shifted by one
        a_next = F.pad(a[:, 1:], (0, 0, 0, 1))  # a_{t+1}, 0 after the last step
        g = _scan(a_next.flip(1), grad.flip(1), torch.zeros_like(h0)).flip(1)
        h_prev = torch.cat([h0[:, None], h[:, :-1]], dim=1)
        return g * h_prev, g, a[:, 0] * g[:, 0]


def linear_recurrence(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t for t = 0..T-1 from h_{-1} = h0: a, b (B, T, H), h0 (B, H) -> (B, T, H)."""
    return LinearRecurrence.apply(a, b, h0)
