"""The IndRNN (Li et al. 2018), forward and backward through time, in NumPy.

Shapes: T time, B batch, D input width, H hidden width. The recurrent weight is a vector u (H,),
clamped to |u| <= 2^(1/1000) in the step as the engine does (cells/indrnn.py).

    a_t = W_ih x_t + b_ih + u * h_{t-1} + b_hh,    h_t = relu(a_t)

Backward, walking back with `dh_next`: each unit sees only its own past, so the recurrent Jacobian
is diagonal and the gradient of a unit over k steps is a product of k factors u * relu'(a):

    dh = dhs[t] + dh_next;   da = dh * [a_t > 0];   dh_next = da * u
    du = sum over t and batch of da * h_{t-1}   (0 where the clamp is active, as in torch.clamp)
"""

from __future__ import annotations

import numpy as np

from ..cells.indrnn import GAMMA, MAX_STEPS

PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
NUM_GATES = 1
STATE_NAMES = ("h",)
BOUND = GAMMA ** (1.0 / MAX_STEPS)


def init(rng: np.random.Generator, s: float, H: int, D: int) -> dict[str, np.ndarray]:
    return {"weight_ih": rng.uniform(-s, s, (H, D)), "weight_hh": rng.uniform(-s, s, H),
            "bias_ih": rng.uniform(-s, s, H), "bias_hh": rng.uniform(-s, s, H)}


def forward(p: dict[str, np.ndarray], x: np.ndarray, state: tuple[np.ndarray, ...]):
    """x (T, B, D), state (h0,) -> hs (T, B, H), final state, cache for `backward`."""
    (h,) = state
    u = np.clip(p["weight_hh"], -BOUND, BOUND)
    pre_x = x @ p["weight_ih"].T + p["bias_ih"]  # (T, B, H)
    hs = np.empty((x.shape[0], h.shape[0], h.shape[1]))
    for t in range(x.shape[0]):
        h = np.maximum(pre_x[t] + u * h + p["bias_hh"], 0.0)
        hs[t] = h
    return hs, (h,), (x, state[0], hs)


def backward(p: dict[str, np.ndarray], dhs: np.ndarray, dstate: tuple[np.ndarray, ...], cache):
    """dhs (T, B, H) from above, dstate = (dh,) of the final state. Returns dx, d(initial state)
    and the parameter gradients."""
    x, h0, hs = cache
    w = p["weight_hh"]
    u = np.clip(w, -BOUND, BOUND)
    das = np.empty_like(hs)
    (dh_next,) = dstate
    for t in reversed(range(hs.shape[0])):
        das[t] = (dhs[t] + dh_next) * (hs[t] > 0)
        dh_next = das[t] * u
    h_prev = np.concatenate([h0[None], hs[:-1]])
    inside = (w >= -BOUND) & (w <= BOUND)
    grads = {"weight_ih": np.einsum("tbh,tbd->hd", das, x), "weight_hh": (das * h_prev).sum(axis=(0, 1)) * inside,
             "bias_ih": das.sum(axis=(0, 1)), "bias_hh": das.sum(axis=(0, 1))}
    return das @ p["weight_ih"], (dh_next,), grads
