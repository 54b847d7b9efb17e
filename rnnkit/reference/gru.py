"""The GRU (Cho et al. 2014) in PyTorch's form, forward and backward through time, in NumPy.

Shapes: T time, B batch, D input width, H hidden width. Gate blocks in PyTorch's order r, z, n.

Forward, for t = 1..T, with the input part and the recurrent part kept apart because the reset
gate multiplies only the recurrent part of the candidate (this is where PyTorch's GRU differs from
the paper's, which resets h before the matrix product):

    xr, xz, xn = split(W_ih x_t + b_ih);   hr, hz, hn = split(W_hh h_{t-1} + b_hh)
    r = sigmoid(xr + hr);   z = sigmoid(xz + hz)              reset and update gates
    n = tanh(xn + r * hn)                                     candidate state
    h_t = (1 - z) * n + z * h_{t-1}                           z near 1 copies the state forward

Backward, walking back with `dh_next`:

    dh = dhs[t] + dh_next
    dn = dh * (1 - z);   dz = dh * (h_{t-1} - n);   direct part of dh_{t-1}: dh * z
    dan = dn * (1 - n^2)           -> input-side gradient of n, and dhn = dan * r, dr = dan * hn
    dar = dr * r (1 - r);   daz = dz * z (1 - z)
    input side [dar, daz, dan], recurrent side [dar, daz, dhn];   dh_next = direct + (recurrent side) W_hh
"""

from __future__ import annotations

import numpy as np

from .lstm import sigmoid
from .rnn import input_and_weight_grads

PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
NUM_GATES = 3
STATE_NAMES = ("h",)


def forward(p: dict[str, np.ndarray], x: np.ndarray, state: tuple[np.ndarray, ...]):
    """x (T, B, D), state (h0,) -> hs (T, B, H), final state, cache for `backward`."""
    (h,) = state
    T, B = x.shape[:2]
    H = h.shape[1]
    gx_all = x @ p["weight_ih"].T + p["bias_ih"]  # (T, B, 3H)
    hs = np.empty((T, B, H))
    saved = np.empty((T, B, 4 * H))  # r, z, n and hn for the backward pass
    for t in range(T):
        gx, gh = gx_all[t], h @ p["weight_hh"].T + p["bias_hh"]
        r = sigmoid(gx[:, :H] + gh[:, :H])
        z = sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        hn = gh[:, 2 * H:]
        n = np.tanh(gx[:, 2 * H:] + r * hn)
        h = (1.0 - z) * n + z * h
        hs[t] = h
        saved[t] = np.concatenate([r, z, n, hn], axis=1)
    return hs, (h,), (x, state[0], saved, hs)


def backward(p: dict[str, np.ndarray], dhs: np.ndarray, dstate: tuple[np.ndarray, ...], cache):
    """dhs (T, B, H) from above, dstate = (dh,) of the final state. Returns dx, d(initial state)
    and the parameter gradients."""
    x, h0, saved, hs = cache
    T, B, H = hs.shape
    dgx = np.empty((T, B, 3 * H))  # gradients of W_ih x + b_ih
    dgh = np.empty((T, B, 3 * H))  # gradients of W_hh h + b_hh
    (dh_next,) = dstate
    for t in reversed(range(T)):
        r, z, n, hn = (saved[t, :, k * H:(k + 1) * H] for k in range(4))
        h_prev = hs[t - 1] if t > 0 else h0
        dh = dhs[t] + dh_next
        dan = dh * (1.0 - z) * (1.0 - n ** 2)
        dar = dan * hn * r * (1.0 - r)
        daz = dh * (h_prev - n) * z * (1.0 - z)
        dgx[t] = np.concatenate([dar, daz, dan], axis=1)
        dgh[t] = np.concatenate([dar, daz, dan * r], axis=1)
        dh_next = dh * z + dgh[t] @ p["weight_hh"]
    dx, grads = input_and_weight_grads(p, x, np.concatenate([h0[None], hs[:-1]]), dgx, dgh)
    return dx, (dh_next,), grads
