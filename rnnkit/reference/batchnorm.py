"""The batch-normalised LSTM (Cooijmans et al. 2016, §4) in training mode, forward and backward
through time, in NumPy.

Shapes: T time, B batch, D input width, H hidden width. BN(z; gamma, beta) normalises each column
of z (B, W) with the batch's mean and (biased) variance at that step, then scales and shifts:

    a  = BN(W_ih x_t; gamma_ih) + BN(W_hh h_{t-1}; gamma_hh) + b_ih + b_hh     blocks i, f, g, o
    c' = sigmoid(f) c + sigmoid(i) tanh(g)
    h' = sigmoid(o) tanh(BN(c'; gamma_c, beta_c))

Statistics are of the batch at each step, as in training; the engine's running averages for
evaluation (cells/batchnorm.py) change no gradient and are not kept here, so this reference
trains but does not sample. The step counter `t` (which selects statistics in evaluation only)
is counted on and gets no gradient.

Backward through BN, with zhat = (z - mean) / s, s = sqrt(var + eps), and dzhat = dy * gamma:
every row's z moves the mean and the variance that normalise all rows, which gives

    dz = (dzhat - mean_B(dzhat) - zhat mean_B(dzhat zhat)) / s,   dgamma = sum_B(dy zhat),  dbeta = sum_B(dy)

The LSTM part is reference/lstm.py's, with c reaching h through BN as well as through c_{t+1}.
"""

from __future__ import annotations

import numpy as np

from ..cells.batchnorm import EPS, INITIAL_GAIN, MAX_STEPS
from .lstm import sigmoid

PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "bn_ih_gain", "bn_hh_gain", "bn_c_gain", "bn_c_bias")
NUM_GATES = 4
STATE_NAMES = ("h", "c", "t")
COUNTERS = ("t",)  # states that count steps: they start at 0 and have no gradient
BATCH_STATISTICS = True  # results depend on the whole batch: at least a few rows are needed


def init(rng: np.random.Generator, s: float, H: int, D: int) -> dict[str, np.ndarray]:
    return {"weight_ih": rng.uniform(-s, s, (4 * H, D)), "weight_hh": rng.uniform(-s, s, (4 * H, H)),
            "bias_ih": rng.uniform(-s, s, 4 * H), "bias_hh": rng.uniform(-s, s, 4 * H),
            "bn_ih_gain": np.full(4 * H, INITIAL_GAIN), "bn_hh_gain": np.full(4 * H, INITIAL_GAIN),
            "bn_c_gain": np.full(H, INITIAL_GAIN), "bn_c_bias": np.zeros(H)}


def normalise(z: np.ndarray, gain: np.ndarray, shift: np.ndarray | float = 0.0):
    """z (B, W) -> gain * zhat + shift, and (zhat, 1/s) for `normalise_backward`."""
    inverse = 1.0 / np.sqrt(z.var(axis=0) + EPS)
    zhat = (z - z.mean(axis=0)) * inverse
    return gain * zhat + shift, (zhat, inverse)


def normalise_backward(dy: np.ndarray, gain: np.ndarray, saved) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dy (B, W) -> dz, dgain, dshift (the module docstring's formulas)."""
    zhat, inverse = saved
    dzhat = dy * gain
    dz = (dzhat - dzhat.mean(axis=0) - zhat * (dzhat * zhat).mean(axis=0)) * inverse
    return dz, (dy * zhat).sum(axis=0), dy.sum(axis=0)


def forward(p: dict[str, np.ndarray], x: np.ndarray, state: tuple[np.ndarray, ...]):
    """x (T, B, D), state (h0, c0, t0) -> hs (T, B, H), final state, cache for `backward`."""
    h, c, steps = state
    T, H = x.shape[0], h.shape[1]
    projected = x @ p["weight_ih"].T  # (T, B, 4H): W_ih x, normalised step by step below
    hs, records = np.empty((T, h.shape[0], H)), []
    for t in range(T):
        from_input, saved_ih = normalise(projected[t], p["bn_ih_gain"])
        from_state, saved_hh = normalise(h @ p["weight_hh"].T, p["bn_hh_gain"])
        a = from_input + from_state + p["bias_ih"] + p["bias_hh"]
        i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        c_prev, c = c, f * c + i * g
        shown, saved_c = normalise(c, p["bn_c_gain"], p["bn_c_bias"])
        h_prev, h = h, o * np.tanh(shown)
        records.append(dict(i=i, f=f, g=g, o=o, c_prev=c_prev, h_prev=h_prev, tanh_shown=np.tanh(shown),
                            ih=saved_ih, hh=saved_hh, c=saved_c))
        hs[t] = h
    return hs, (h, c, np.minimum(steps + T, MAX_STEPS)), (x, steps, records)


def backward(p: dict[str, np.ndarray], dhs: np.ndarray, dstate: tuple[np.ndarray, ...], cache):
    """dhs (T, B, H) from above, dstate = (dh, dc, dt) of the final state. Returns dx, d(initial
    state) and the parameter gradients."""
    x, steps, records = cache
    grads = {n: np.zeros_like(v) for n, v in p.items()}
    dprojected = np.empty((x.shape[0], x.shape[1], p["weight_ih"].shape[0]))
    dh_next, dc_next, _ = dstate
    for t in reversed(range(x.shape[0])):
        s = records[t]
        i, f, g, o = s["i"], s["f"], s["g"], s["o"]
        dh = dhs[t] + dh_next
        d_shown = dh * o * (1.0 - s["tanh_shown"] ** 2)
        dc_bn, d_gain, d_bias = normalise_backward(d_shown, p["bn_c_gain"], s["c"])
        grads["bn_c_gain"] += d_gain
        grads["bn_c_bias"] += d_bias
        dc = dc_next + dc_bn
        da = np.concatenate([dc * g * i * (1 - i), dc * s["c_prev"] * f * (1 - f), dc * i * (1 - g ** 2),
                             dh * s["tanh_shown"] * o * (1 - o)], axis=1)  # (B, 4H)
        grads["bias_ih"] += da.sum(axis=0)
        grads["bias_hh"] += da.sum(axis=0)
        dprojected[t], d_gain, _ = normalise_backward(da, p["bn_ih_gain"], s["ih"])
        grads["bn_ih_gain"] += d_gain
        d_recurrent, d_gain, _ = normalise_backward(da, p["bn_hh_gain"], s["hh"])
        grads["bn_hh_gain"] += d_gain
        grads["weight_hh"] += d_recurrent.T @ s["h_prev"]
        dh_next, dc_next = d_recurrent @ p["weight_hh"], dc * f
    grads["weight_ih"] = np.einsum("tbg,tbd->gd", dprojected, x)
    return dprojected @ p["weight_ih"], (dh_next, dc_next, np.zeros_like(steps)), grads
