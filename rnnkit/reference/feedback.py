"""The gated-feedback LSTM stack (Chung et al. 2015, §3.2), forward and backward through time, in
NumPy. Unlike the other cells it is written for the whole stack at once: layer j at step t reads
every layer's state at t-1, so no layer can be run over the sequence on its own.

Shapes: T time, B batch, D input width, H hidden width, L layers. For layer j at step t, with x its
input (the layer below at t, or the data) and h* = [h^1; ...; h^L] at t-1 (B, L*H):

    r      = sigmoid(w_r x + b_r + u_r h*)                      (B, L): one reset gate per layer i
    a      = W_ih x + b_ih;   own = W_hh h^j + b_hh             (B, 4H) each, blocks i, f, g, o
    c~     = tanh(a_g + r_j own_g + sum_{i != j} r_i U_i h^i)   U_i = weight_feedback (L-1 of them)
    i, f, o = sigmoid(a + own) in their blocks
    c' = f c + i c~,   h' = o tanh(c')

Backward, per step from the top layer down (the layer below receives dx as part of its dh at the
same step; every layer's h at t-1 collects from the layer's own recurrence, the feedback of the
others, and the reset gates):

    dc = dc_next + dh o (1 - tanh(c')^2);  d(a) = [dc c~ i', dc c f', dc i (1 - c~^2), dh tanh(c') o']
    d(own) = d(a) with its g block times r_j;   dr_j = sum(d(a_g) own_g);  dr_i = sum(d(a_g) U_i h^i)
    d(reset pre-activation) = dr r (1 - r)
"""

from __future__ import annotations

import numpy as np

from .lstm import sigmoid

PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_feedback", "reset_weight_ih", "reset_bias",
          "reset_weight_hh")
NUM_GATES = 4
STATE_NAMES = ("h", "c")
STACKED = True  # `forward_stack` / `backward_stack` run all layers together


def init(rng: np.random.Generator, s: float, H: int, D: int, layers: int) -> dict[str, np.ndarray]:
    return {"weight_ih": rng.uniform(-s, s, (4 * H, D)), "weight_hh": rng.uniform(-s, s, (4 * H, H)),
            "bias_ih": rng.uniform(-s, s, 4 * H), "bias_hh": rng.uniform(-s, s, 4 * H),
            "weight_feedback": rng.uniform(-s, s, (layers - 1, H, H)),
            "reset_weight_ih": rng.uniform(-s, s, (layers, D)), "reset_bias": rng.uniform(-s, s, layers),
            "reset_weight_hh": rng.uniform(-s, s, (layers, layers * H))}


def forward_stack(layers: list[dict[str, np.ndarray]], x: np.ndarray, state: tuple[np.ndarray, ...]):
    """x (T, B, D), state (h0, c0) each (L, B, H) -> top layer's hs (T, B, H), final state, cache."""
    L, H = len(layers), state[0].shape[2]
    h, c = list(state[0]), list(state[1])
    top = np.empty((x.shape[0], x.shape[1], H))
    steps = []
    for t in range(x.shape[0]):
        previous = list(h)  # every layer's h at t-1 (h[j] is replaced as layer j steps)
        everyone = np.concatenate(previous, axis=1)  # h* (B, L*H)
        below, records = x[t], []
        for j, p in enumerate(layers):
            others = [i for i in range(L) if i != j]
            r = sigmoid(below @ p["reset_weight_ih"].T + p["reset_bias"] + everyone @ p["reset_weight_hh"].T)
            a = below @ p["weight_ih"].T + p["bias_ih"]
            own = previous[j] @ p["weight_hh"].T + p["bias_hh"]
            fed = [previous[i] @ p["weight_feedback"][n].T for n, i in enumerate(others)]  # U_i h^i, (B, H) each
            content = a[:, 2 * H:3 * H] + r[:, j:j + 1] * own[:, 2 * H:3 * H]
            for n, i in enumerate(others):
                content = content + r[:, i:i + 1] * fed[n]
            gates = sigmoid(a + own)
            g = np.tanh(content)
            c_new = gates[:, H:2 * H] * c[j] + gates[:, :H] * g
            h_new = gates[:, 3 * H:] * np.tanh(c_new)
            records.append(dict(below=below, r=r, own_g=own[:, 2 * H:3 * H], fed=fed, gates=gates, g=g,
                                c_prev=c[j], c=c_new))
            h[j], c[j], below = h_new, c_new, h_new
        steps.append((everyone, records))
        top[t] = below
    return top, (np.stack(h), np.stack(c)), steps


def backward_stack(layers: list[dict[str, np.ndarray]], dtop: np.ndarray, cache):
    """dtop (T, B, H) from above the top layer. Returns dx (T, B, D), d(initial state) as (L, B, H)
    arrays, and one gradient dict per layer."""
    steps = cache
    L, (T, B, H) = len(layers), dtop.shape
    grads = [{n: np.zeros_like(v) for n, v in p.items()} for p in layers]
    dh_next, dc_next = np.zeros((L, B, H)), np.zeros((L, B, H))
    dx = None
    for t in reversed(range(T)):
        everyone, records = steps[t]
        previous = everyone.reshape(B, L, H).transpose(1, 0, 2)  # (L, B, H): every layer's h at t-1
        dh_prev, dc_prev = np.zeros((L, B, H)), np.zeros((L, B, H))
        d_below = dtop[t]
        for j in reversed(range(L)):
            p, gr, s = layers[j], grads[j], records[j]
            others = [i for i in range(L) if i != j]
            i_, f, o = s["gates"][:, :H], s["gates"][:, H:2 * H], s["gates"][:, 3 * H:]
            g, r = s["g"], s["r"]
            dh = d_below + dh_next[j]
            tanh_c = np.tanh(s["c"])
            dc = dc_next[j] + dh * o * (1.0 - tanh_c ** 2)
            d_content = dc * i_ * (1.0 - g ** 2)
            da = np.concatenate([dc * g * i_ * (1 - i_), dc * s["c_prev"] * f * (1 - f), d_content,
                                 dh * tanh_c * o * (1 - o)], axis=1)  # (B, 4H)
            d_own = da.copy()
            d_own[:, 2 * H:3 * H] *= r[:, j:j + 1]
            dr = np.zeros((B, L))
            dr[:, j] = (d_content * s["own_g"]).sum(axis=1)
            for n, i in enumerate(others):
                dr[:, i] = (d_content * s["fed"][n]).sum(axis=1)
                d_fed = d_content * r[:, i:i + 1]
                gr["weight_feedback"][n] += d_fed.T @ previous[i]
                dh_prev[i] += d_fed @ p["weight_feedback"][n]
            d_reset = dr * r * (1.0 - r)  # (B, L)
            gr["reset_weight_ih"] += d_reset.T @ s["below"]
            gr["reset_bias"] += d_reset.sum(axis=0)
            gr["reset_weight_hh"] += d_reset.T @ everyone
            dh_prev += (d_reset @ p["reset_weight_hh"]).reshape(B, L, H).transpose(1, 0, 2)
            gr["weight_ih"] += da.T @ s["below"]
            gr["bias_ih"] += da.sum(axis=0)
            gr["weight_hh"] += d_own.T @ previous[j]
            gr["bias_hh"] += d_own.sum(axis=0)
            dh_prev[j] += d_own @ p["weight_hh"]
            dc_prev[j] = dc * f
            d_below = da @ p["weight_ih"] + d_reset @ p["reset_weight_ih"]  # into the layer below at t
        if dx is None:
            dx = np.empty((T, B, d_below.shape[1]))
        dx[t] = d_below
        dh_next, dc_next = dh_prev, dc_prev
    return dx, (dh_next, dc_next), grads
