"""The echo state reservoir (Jaeger 2001), forward and backward through time, in NumPy.

Shapes: T time, B batch, D input width, H hidden width. With leak rate a (cells/reservoir.py):

    h_t = (1 - a) h_{t-1} + a tanh(W_ih x_t + b_ih + W_hh h_{t-1})

The engine never trains W_ih, b_ih or W_hh (FIXED: they are buffers, and the input embedding is
frozen with them); only the softmax readout above learns. The backward pass below still derives
every gradient, so the check against finite differences covers the whole recurrence, and the
initial state's gradient (which the engine does compute) is the product of the steps' Jacobians:

    dh = dhs[t] + dh_next;   da = a dh (1 - tanh(.)^2);   dh_next = (1 - a) dh + da W_hh
"""

from __future__ import annotations

import numpy as np

from ..cells.reservoir import LEAK

PARAMS = ("weight_ih", "weight_hh", "bias_ih")
FIXED = PARAMS  # the reservoir: drawn once, never trained (the embedding below it is frozen too)
NUM_GATES = 1
STATE_NAMES = ("h",)


def init(rng: np.random.Generator, s: float, H: int, D: int) -> dict[str, np.ndarray]:
    return {"weight_ih": rng.uniform(-s, s, (H, D)), "weight_hh": rng.uniform(-s, s, (H, H)),
            "bias_ih": rng.uniform(-s, s, H)}


def forward(p: dict[str, np.ndarray], x: np.ndarray, state: tuple[np.ndarray, ...], leak: float = LEAK):
    """x (T, B, D), state (h0,) -> hs (T, B, H), final state, cache for `backward`."""
    (h,) = state
    pre_x = x @ p["weight_ih"].T + p["bias_ih"]  # (T, B, H)
    hs = np.empty((x.shape[0], h.shape[0], h.shape[1]))
    squashed = np.empty_like(hs)  # tanh(.) at every step
    for t in range(x.shape[0]):
        squashed[t] = np.tanh(pre_x[t] + h @ p["weight_hh"].T)
        h = (1.0 - leak) * h + leak * squashed[t]
        hs[t] = h
    return hs, (h,), (x, state[0], hs, squashed, leak)


def backward(p: dict[str, np.ndarray], dhs: np.ndarray, dstate: tuple[np.ndarray, ...], cache):
    """dhs (T, B, H) from above, dstate = (dh,) of the final state. Returns dx, d(initial state)
    and the gradients of the (fixed) reservoir weights."""
    x, h0, hs, squashed, leak = cache
    das = np.empty_like(hs)  # dL/d(pre-activation) at every step
    (dh_next,) = dstate
    for t in reversed(range(hs.shape[0])):
        dh = dhs[t] + dh_next
        das[t] = leak * dh * (1.0 - squashed[t] ** 2)
        dh_next = (1.0 - leak) * dh + das[t] @ p["weight_hh"]
    h_prev = np.concatenate([h0[None], hs[:-1]])
    grads = {"weight_ih": np.einsum("tbh,tbd->hd", das, x), "weight_hh": np.einsum("tbh,tbk->hk", das, h_prev),
             "bias_ih": das.sum(axis=(0, 1))}
    return das @ p["weight_ih"], (dh_next,), grads
