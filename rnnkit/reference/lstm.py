"""The LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), forward and
backward through time, in NumPy.

Shapes: T time, B batch, D input width, H hidden width. Gate blocks are stacked in PyTorch's
order i, f, g, o, so weights move unchanged between this file, the engine and nn.LSTM.

Forward, for t = 1..T:

    i, f, g, o = split(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      four (B, H) pre-activations
    i, f, o    = sigmoid(i), sigmoid(f), sigmoid(o);   g = tanh(g)
    c_t = f * c_{t-1} + i * g                                      the cell: a running sum
    h_t = o * tanh(c_t)

Backward. h_t reaches the loss through the output at t and through step t+1; c_t through h_t
and through c_{t+1}. Walking back from t = T with `dh_next`, `dc_next`:

    dh  = dhs[t] + dh_next
    dc  = dc_next + dh * o * (1 - tanh(c_t)^2)
    do  = dh * tanh(c_t);   di = dc * g;   dg = dc * i;   df = dc * c_{t-1}
    dc_next = dc * f                      <- the cell's gradient path: one multiply by the forget
                                             gate per step, no weight matrix and no squashing,
                                             which is why LSTM gradients decay so much more slowly
    pre-activation gradients: sigmoid' = s (1 - s), tanh' = 1 - g^2
    dh_next = d(gates) W_hh
"""

from __future__ import annotations

import numpy as np

from .rnn import input_and_weight_grads

PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
NUM_GATES = 4
STATE_NAMES = ("h", "c")


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # the same function, without overflow for large |a|


def forward(p: dict[str, np.ndarray], x: np.ndarray, state: tuple[np.ndarray, ...]):
    """x (T, B, D), state (h0, c0) -> hs (T, B, H), final state, cache for `backward`."""
    h, c = state
    T, B = x.shape[:2]
    H = h.shape[1]
    pre_x = x @ p["weight_ih"].T + p["bias_ih"]  # (T, B, 4H)
    gates = np.empty((T, B, 4 * H))  # activated i, f, g, o
    cs = np.empty((T, B, H))
    hs = np.empty((T, B, H))
    for t in range(T):
        a = pre_x[t] + h @ p["weight_hh"].T + p["bias_hh"]
        i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        gates[t] = np.concatenate([i, f, g, o], axis=1)
        cs[t], hs[t] = c, h
    return hs, (h, c), (x, state, gates, cs, hs)


def backward(p: dict[str, np.ndarray], dhs: np.ndarray, dstate: tuple[np.ndarray, ...], cache):
    """dhs (T, B, H) from above, dstate = (dh, dc) of the final state. Returns dx, d(initial
    state) and the parameter gradients."""
    x, (h0, c0), gates, cs, hs = cache
    T, B, H = hs.shape
    dpre = np.empty_like(gates)  # dL/d(pre-activations), (T, B, 4H)
    dh_next, dc_next = dstate
    for t in reversed(range(T)):
        i, f, g, o = gates[t, :, :H], gates[t, :, H:2 * H], gates[t, :, 2 * H:3 * H], gates[t, :, 3 * H:]
        c_prev = cs[t - 1] if t > 0 else c0
        tanh_c = np.tanh(cs[t])
        dh = dhs[t] + dh_next
        dc = dc_next + dh * o * (1.0 - tanh_c ** 2)
        dpre[t, :, :H] = dc * g * i * (1.0 - i)
        dpre[t, :, H:2 * H] = dc * c_prev * f * (1.0 - f)
        dpre[t, :, 2 * H:3 * H] = dc * i * (1.0 - g ** 2)
        dpre[t, :, 3 * H:] = dh * tanh_c * o * (1.0 - o)
        dc_next = dc * f
        dh_next = dpre[t] @ p["weight_hh"]
    dx, grads = input_and_weight_grads(p, x, np.concatenate([h0[None], hs[:-1]]), dpre, dpre)
    return dx, (dh_next, dc_next), grads
