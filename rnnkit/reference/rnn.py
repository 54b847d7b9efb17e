"""The Elman RNN (tanh) and the ReLU RNN (IRNN), forward and backward through time, in NumPy.

Shapes: T time, B batch, D input width, H hidden width. Every array is float64.

Forward, for t = 1..T (design notes §2, PyTorch's equations):

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        (B, H)   pre-activation
    h_t = act(a_t)                                     tanh, or ReLU for the IRNN

Backward. The loss L depends on h_t twice: through the output at time t (the head gives
dL/dh_t directly, `dhs[t]`) and through h_{t+1}, which was computed from h_t. Walking back from
t = T carries the second part as `dh_next`:

    dh_t    = dhs[t] + dh_next
    da_t    = dh_t * act'(a_t)                         tanh' = 1 - h_t^2;  ReLU' = [a_t > 0]
    dh_next = da_t W_hh                                (what h_{t-1} receives)
    dW_hh  += da_t^T h_{t-1},   dW_ih += da_t^T x_t,   db_ih = db_hh += sum over batch of da_t

The repeated product by W_hh (times act') in `dh_next` is the whole story of vanishing and
exploding gradients (Bengio et al. 1994; Pascanu et al. 2013): after k steps the gradient has
been multiplied by k Jacobians, and shrinks or grows roughly like their largest singular value
to the power k. The weight gradients are sums over time, so they are computed after the loop,
in one matrix product per weight.
"""

from __future__ import annotations

import numpy as np

PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def input_and_weight_grads(p: dict, x: np.ndarray, h_prev: np.ndarray, dgx: np.ndarray,
                           dgh: np.ndarray) -> tuple[np.ndarray, dict]:
    """Every cell's gates are W_ih x_t + b_ih and W_hh h_{t-1} + b_hh: given the gradients of
    those two sums at every step, dgx and dgh (T, B, G*H), the input gradient (T, B, D) and the
    four parameter gradients are one product each, summed over time and batch. h_prev (T, B, H)
    holds h_{t-1} for every t."""
    return dgx @ p["weight_ih"], {
        "weight_ih": np.einsum("tbg,tbd->gd", dgx, x),
        "weight_hh": np.einsum("tbg,tbh->gh", dgh, h_prev),
        "bias_ih": dgx.sum(axis=(0, 1)),
        "bias_hh": dgh.sum(axis=(0, 1)),
    }
NUM_GATES = 1
STATE_NAMES = ("h",)


def forward(p: dict[str, np.ndarray], x: np.ndarray, state: tuple[np.ndarray, ...], relu: bool = False):
    """x (T, B, D), state (h0,) -> hs (T, B, H), final state, cache for `backward`."""
    (h,) = state
    T = x.shape[0]
    hs = np.empty((T, h.shape[0], h.shape[1]))
    pre_x = x @ p["weight_ih"].T + p["bias_ih"]  # (T, B, H): the input part of every step at once
    for t in range(T):
        a = pre_x[t] + h @ p["weight_hh"].T + p["bias_hh"]
        h = np.maximum(a, 0.0) if relu else np.tanh(a)
        hs[t] = h
    return hs, (h,), (x, state[0], hs, relu)


def backward(p: dict[str, np.ndarray], dhs: np.ndarray, dstate: tuple[np.ndarray, ...], cache):
    """dhs (T, B, H) = dL/dh_t from above; dstate = dL/d(final state) from later chunks.
    Returns dx (T, B, D), d(initial state), and the parameter gradients."""
    x, h0, hs, relu = cache
    T = x.shape[0]
    das = np.empty_like(hs)  # dL/da_t for every t
    (dh_next,) = dstate
    for t in reversed(range(T)):
        dh = dhs[t] + dh_next
        da = dh * (hs[t] > 0) if relu else dh * (1.0 - hs[t] ** 2)
        das[t] = da
        dh_next = da @ p["weight_hh"]
    h_prev = np.concatenate([h0[None], hs[:-1]])  # (T, B, H): h_{t-1} for every t
    dx, grads = input_and_weight_grads(p, x, h_prev, das, das)
    return dx, (dh_next,), grads
