"""minGRU and minLSTM (Feng et al. 2024), forward and backward through time, in NumPy, written as
the plain loop: the engine runs them as a chunked parallel scan (cells/scan.py), and the
gradient check holds the two to the same numbers.

Shapes: T time, B batch, D input width, H hidden width. Gates read only the input; there is no
recurrent weight. With g(v) = v + 1/2 for v >= 0, sigmoid(v) below:

    minGRU   z = sigmoid(k),  h_t = (1 - z) h_{t-1} + z g(v)               gate blocks k, v
    minLSTM  f = sigmoid(k_f), i = sigmoid(k_i), S = f + i,
             h_t = (f / S) h_{t-1} + (i / S) g(v)                          gate blocks k_f, k_i, v

Backward, walking back with `dh_next` (dh = dhs[t] + dh_next):

    minGRU   dz = dh (g(v) - h_{t-1});  dk = dz z (1 - z);  dv = dh z g'(v);  dh_next = dh (1 - z)
    minLSTM  df' = dh h_{t-1};  di' = dh g(v);  df = (df' - di') i / S^2;  di = (di' - df') f / S^2;
             dk_f = df f (1 - f);  dk_i = di i (1 - i);  dv = dh (i / S) g'(v);  dh_next = dh f / S
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import numpy as np

from .lstm import sigmoid

PARAMS = ("weight_ih", "bias_ih")
STATE_NAMES = ("h",)


def g(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 0, v + 0.5, sigmoid(v))


def g_prime(v: np.ndarray) -> np.ndarray:
    s = sigmoid(v)
    return np.where(v >= 0, 1.0, s * (1.0 - s))


def forward(p: dict[str, np.ndarray], x: np.ndarray, state: tuple[np.ndarray, ...], lstm: bool):
    """x (T, B, D), state (h0,) with h0 > 0 -> hs (T, B, H), final state, cache for `backward`."""
    (h,) = state
    gates = x @ p["weight_ih"].T + p["bias_ih"]  # (T, B, G*H): every step at once
    hs = np.empty((x.shape[0], h.shape[0], h.shape[1]))
    for t in range(x.shape[0]):
        if lstm:
            f, i, v = (sigmoid(k) if n < 2 else k for n, k in enumerate(np.split(gates[t], 3, axis=1)))
            h = f / (f + i) * h + i / (f + i) * g(v)
        else:
            k, v = np.split(gates[t], 2, axis=1)
            z = sigmoid(k)
            h = (1.0 - z) * h + z * g(v)
        hs[t] = h
    return hs, (h,), (x, state[0], gates, hs, lstm)


def backward(p: dict[str, np.ndarray], dhs: np.ndarray, dstate: tuple[np.ndarray, ...], cache):
    """dhs (T, B, H) from above, dstate = (dh,) of the final state. Returns dx, d(initial state)
    and the parameter gradients."""
    x, h0, gates, hs, lstm = cache
    dgates = np.empty_like(gates)
    (dh_next,) = dstate
    for t in reversed(range(hs.shape[0])):
        h_prev = hs[t - 1] if t > 0 else h0
        dh = dhs[t] + dh_next
        if lstm:
            kf, ki, v = np.split(gates[t], 3, axis=1)
            f, i = sigmoid(kf), sigmoid(ki)
            S = f + i
            d_fs, d_is = dh * h_prev, dh * g(v)  # d(f/S), d(i/S)
            df, di = (d_fs - d_is) * i / S ** 2, (d_is - d_fs) * f / S ** 2
            dgates[t] = np.concatenate([df * f * (1 - f), di * i * (1 - i), dh * i / S * g_prime(v)], axis=1)
            dh_next = dh * f / S
        else:
            k, v = np.split(gates[t], 2, axis=1)
            z = sigmoid(k)
            dz = dh * (g(v) - h_prev)
            dgates[t] = np.concatenate([dz * z * (1 - z), dh * z * g_prime(v)], axis=1)
            dh_next = dh * (1.0 - z)
    grads = {"weight_ih": np.einsum("tbg,tbd->gd", dgates, x), "bias_ih": dgates.sum(axis=(0, 1))}
    return dgates @ p["weight_ih"], (dh_next,), grads


def _init(num_gates: int):
    def init(rng: np.random.Generator, s: float, H: int, D: int) -> dict[str, np.ndarray]:
        return {"weight_ih": rng.uniform(-s, s, (num_gates * H, D)), "bias_ih": rng.uniform(-s, s, num_gates * H)}
    return init


MINGRU = SimpleNamespace(PARAMS=PARAMS, NUM_GATES=2, STATE_NAMES=STATE_NAMES, init=_init(2),
                         forward=partial(forward, lstm=False), backward=backward)
MINLSTM = SimpleNamespace(PARAMS=PARAMS, NUM_GATES=3, STATE_NAMES=STATE_NAMES, init=_init(3),
                          forward=partial(forward, lstm=True), backward=backward)
