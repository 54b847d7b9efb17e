"""Gradient-flow diagnostics for a language model: how far back the loss reaches, and why.

- `gradient_by_distance`: ||dL_T / dh_t|| against the distance T - t, where L_T is the loss of the
  last prediction of a window. Its slope on a log scale is the vanishing (< 1 per step) or
  exploding (> 1) rate of Bengio et al. (1994) and Pascanu et al. (2013).
- `recurrent_spectra`: singular values and spectral radius of every gate block of W_hh. For a
  linear recurrence the spectral radius decides whether the state and its gradients shrink or
  grow; the largest singular value bounds one step's amplification.
- `activity`: fraction of gate activations saturated (< 0.1 or > 0.9, the thresholds of Karpathy,
  Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent networks"), and the hidden
  state's norm over time from a blank state.

Shapes: B windows, T positions, L layers, H hidden units.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..models.language_model import LanguageModel

SATURATION_LOW, SATURATION_HIGH = 0.1, 0.9


def _windows(tokens: np.ndarray, length: int, batch: int, seed: int) -> torch.Tensor:
    """`batch` random windows of `length` tokens: (B, length) int64."""
    n = len(tokens)
    if n < length:
        raise UsageError(f"the text is too short for these diagnostics: it has {n} characters and "
                         f"needs at least {length}; use a longer text or a smaller --span")
    starts = np.random.default_rng(seed).integers(0, n - length + 1, batch)
    return torch.from_numpy(np.stack([np.asarray(tokens[s:s + length], dtype=np.int64) for s in starts]))


def gradient_by_distance(model: LanguageModel, tokens: np.ndarray, span: int = 100, batch: int = 16,
                         warmup: int = 100, seed: int = 0) -> np.ndarray:
    """(L, span) array: entry [k, d] is the mean over windows of ||dL_T / dh_t|| for layer k at
    distance d = T - t. The state is first warmed up on `warmup` characters (without gradients),
    so the gradients are those of a model in the middle of a text, not at its blank start."""
    model.eval()
    device = next(model.parameters()).device
    windows = _windows(tokens, warmup + span + 1, batch, seed).to(device)
    with torch.no_grad():
        _, state = model(windows[:, :warmup]) if warmup else (None, model.recurrent.init_state(batch, device))
    states = model.recurrent.layer_states(state)
    hidden: list[list[torch.Tensor]] = [[] for _ in states]  # [layer][t] -> (B, H)
    with torch.enable_grad():
        for t in range(span):
            x, states = model.recurrent.step(model.embed(windows[:, warmup + t]), states)
            for k, s in enumerate(states):
                hidden[k].append(s[0])  # h: the layer's output at step t
        loss = F.cross_entropy(model.head(x), windows[:, warmup + span])  # L_T: the last prediction
        flat = [h for layer in hidden for h in layer]
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
    norms = np.zeros((len(hidden), span))
    for j, g in enumerate(grads):
        k, t = divmod(j, span)
        norms[k, span - 1 - t] = 0.0 if g is None else g.norm(dim=1).mean().item()
    return norms


def decay_per_step(norms: np.ndarray, skip: int = 1) -> float | None:
    """Geometric rate r of a curve norm(d) ~ a r^d, from a least-squares line through log norms
    (distances below `skip` are left out: the first step back is special, it includes the head)."""
    d = np.arange(len(norms))[skip:]
    y = norms[skip:]
    keep = y > 0
    if keep.sum() < 2:
        return None
    slope = np.polyfit(d[keep], np.log(y[keep]), 1)[0]
    return float(math.exp(slope))


def recurrent_spectra(model: LanguageModel) -> list[dict[str, dict]]:
    """Per layer, per gate block of W_hh: singular values (descending) and spectral radius."""
    spectra = []
    for cell in model.recurrent.cells:
        H = cell.hidden_size
        names = _gate_block_names(cell)
        layer = {}
        for g, name in enumerate(names):
            w = cell.weight_hh.detach()[g * H:(g + 1) * H].double().cpu()
            layer[name] = {"singular_values": torch.linalg.svdvals(w).tolist(),
                           "spectral_radius": float(torch.linalg.eigvals(w).abs().max())}
        spectra.append(layer)
    return spectra


def _gate_block_names(cell) -> tuple[str, ...]:
    return {4: ("input_gate", "forget_gate", "candidate", "output_gate"),
            3: ("reset_gate", "update_gate", "candidate"), 1: ("recurrence",)}[cell.num_gates]


@torch.no_grad()
def activity(model: LanguageModel, tokens: np.ndarray, length: int = 400, batch: int = 16,
             seed: int = 1) -> tuple[list[dict[str, dict]], np.ndarray]:
    """Run `batch` windows of `length` characters from a blank state, recording every step.
    Returns saturation per layer ({name: {"low": fraction, "high": fraction}}) and the mean
    hidden-state norm per layer and position, (L, length)."""
    model.eval()
    device = next(model.parameters()).device
    windows = _windows(tokens, length, batch, seed).to(device)
    L = model.recurrent.num_layers
    states = model.recurrent.layer_states(model.recurrent.init_state(batch, device))
    counts: list[dict[str, list[float]]] = [{} for _ in range(L)]  # name -> [low, high, total]
    norms = np.zeros((L, length))
    for t in range(length):
        records: list[dict] = []
        _, states = model.recurrent.step(model.embed(windows[:, t]), states, records)
        for k, (cell, record) in enumerate(zip(model.recurrent.cells, records)):
            h = states[k][0]
            norms[k, t] = h.norm(dim=1).mean().item()
            for name in cell.gate_names:
                _count(counts[k], name, record[name], SATURATION_LOW, SATURATION_HIGH)
            if not cell.gate_names:  # plain RNN: saturation of the hidden units themselves
                if cell.fused_mode == "RNN_RELU":  # ReLU: "low" = inactive (exactly zero)
                    _count(counts[k], "hidden", h, 0.0, math.inf, inclusive_low=True)
                else:
                    _count(counts[k], "hidden", h, -0.9, 0.9)
    saturation = [{name: {"low": c[0] / c[2], "high": c[1] / c[2]} for name, c in layer.items()}
                  for layer in counts]
    return saturation, norms


def _count(counts: dict, name: str, values: torch.Tensor, low: float, high: float,
           inclusive_low: bool = False) -> None:
    c = counts.setdefault(name, [0.0, 0.0, 0.0])
    c[0] += float((values <= low).sum() if inclusive_low else (values < low).sum())
    c[1] += float((values > high).sum())
    c[2] += values.numel()


def diagnose(model: LanguageModel, tokens: np.ndarray, span: int = 100, batch: int = 16,
             seed: int = 0) -> dict:
    """Every diagnostic above, as one JSON-ready dict."""
    norms = gradient_by_distance(model, tokens, span=span, batch=batch, seed=seed)
    saturation, hidden_norms = activity(model, tokens, length=min(400, len(tokens)), batch=batch, seed=seed + 1)
    c = model.config
    return {
        "model": {"cell": c.cell, "hidden_size": c.hidden_size, "num_layers": c.num_layers},
        "gradient_by_distance": {"distance": list(range(span)), "norm": norms.tolist(),
                                 "decay_per_step": [decay_per_step(n) for n in norms]},
        "recurrent_spectra": recurrent_spectra(model),
        "saturation": saturation,
        "saturation_thresholds": {"sigmoid_gates": [SATURATION_LOW, SATURATION_HIGH], "tanh_hidden": [-0.9, 0.9],
                                  "relu_hidden": "low = exactly zero"},
        "hidden_norm": hidden_norms.tolist(),
    }
