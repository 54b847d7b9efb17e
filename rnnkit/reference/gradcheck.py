"""Gradient checking: the reference's hand-written BPTT against centred finite differences, and
the PyTorch engine against the reference on the same weights.

Small, distinct sizes (V=5, E=3, H=4, B=2, T=6) make shape mix-ups fail loudly, and a random
initial state checks the gradient that flows back through carried state. Everything is float64.
A cell normalised with batch statistics (bnlstm) gets B=5, since two rows normalise to +-1 whatever
they hold; weights the engine never trains (the echo state reservoir) are checked against finite
differences only.

Error measure, per tensor: ||a - b|| / max(||a||, ||b||) (Euclidean norms over the tensor). An
element-wise ratio is dominated by entries whose true gradient is ~0, where finite differences
have only absolute accuracy (~1e-11 here); the norm-wise error is what tells a wrong formula
(error ~1) from rounding (error ~1e-9).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .model import CELLS, ReferenceLanguageModel

# Targets: finite differences agree to < 1e-6 (their own truncation error is
# ~eps^2 ~ 1e-10 relative), the engine agrees with the reference to < 1e-8 in float64.
REFERENCE_TOLERANCE = 1e-6
ENGINE_TOLERANCE = 1e-8
SIZES = dict(vocab_size=5, hidden_size=4, batch=2, time=6)
BATCH_FOR_STATISTICS = 5


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def numeric_gradients(loss, arrays: dict[str, np.ndarray], eps: float = 1e-5) -> dict[str, np.ndarray]:
    """Centred differences (L(w + eps) - L(w - eps)) / 2 eps for every entry of every array,
    perturbing the arrays in place and restoring them. `loss()` reads the arrays."""
    grads = {}
    for name, w in arrays.items():
        g = np.zeros_like(w)
        flat, gflat = w.reshape(-1), g.reshape(-1)
        for j in range(flat.size):
            saved = flat[j]
            flat[j] = saved + eps
            up = loss()
            flat[j] = saved - eps
            down = loss()
            flat[j] = saved
            gflat[j] = (up - down) / (2 * eps)
        grads[name] = g
    return grads


@dataclass
class GradcheckReport:
    cell: str
    num_layers: int
    embedding_size: int
    reference_vs_numeric: dict[str, float] = field(default_factory=dict)
    engine_vs_reference: dict[str, float] = field(default_factory=dict)  # the fused kernel (training path)
    engine_steps_vs_reference: dict[str, float] = field(default_factory=dict)  # the cells' step functions

    @property
    def passed(self) -> bool:
        return bool(max(self.reference_vs_numeric.values()) < REFERENCE_TOLERANCE
                and max(self.engine_vs_reference.values()) < ENGINE_TOLERANCE
                and max(self.engine_steps_vs_reference.values()) < ENGINE_TOLERANCE)

    def to_dict(self) -> dict:
        return {"cell": self.cell, "num_layers": self.num_layers, "embedding_size": self.embedding_size,
                "reference_vs_numeric": self.reference_vs_numeric,
                "engine_vs_reference": self.engine_vs_reference,
                "engine_steps_vs_reference": self.engine_steps_vs_reference,
                "targets": {"reference_vs_numeric": REFERENCE_TOLERANCE, "engine_vs_reference": ENGINE_TOLERANCE},
                "passed": self.passed}


def _engine_gradients(reference: ReferenceLanguageModel, tokens, targets, state, steps: bool):
    """Loss and gradients of the engine's LanguageModel with the reference's weights, run on the
    fused kernel (steps=False) or the cells' step functions (steps=True)."""
    import torch
    import torch.nn.functional as F

    model = reference.to_engine()
    inputs = torch.from_numpy(tokens)
    state_t = tuple(torch.tensor(s, requires_grad=True) for s in state)
    x = model.embed(inputs)  # (B, T, E)
    out, _ = model.recurrent.forward_steps(x, state_t, scan=False) if steps else model.recurrent(x, state_t)
    logits = model.head(out)  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(targets).reshape(-1))
    loss.backward()
    # a parameter the loss never reached (a one-layer feedback stack's empty feedback weights) has no .grad
    grads = {name: (p.grad if p.grad is not None else torch.zeros_like(p)).numpy()
             for name, p in model.named_parameters() if p.requires_grad}
    grads.update({f"state.{n}": s.grad.numpy() for n, s in zip(reference.state_names, state_t)
                  if n not in reference.counters})
    return loss.item(), grads


def gradcheck(cell: str, num_layers: int = 1, embedding_size: int = 3, seed: int = 0) -> GradcheckReport:
    """Check one cell type; see the module docstring for sizes and the error measure."""
    rng = np.random.default_rng(seed)
    V, H, B, T = SIZES["vocab_size"], SIZES["hidden_size"], SIZES["batch"], SIZES["time"]
    if getattr(CELLS[cell][0], "BATCH_STATISTICS", False):
        B = BATCH_FOR_STATISTICS
    # Weights larger than the usual init push the gates away from their linear middle, so the
    # check sees the nonlinearities work; the IRNN keeps its identity recurrence plus noise.
    model = ReferenceLanguageModel.random(cell, V, H, num_layers, embedding_size, seed=seed, scale=0.6)
    if cell == "irnn":
        for k in range(num_layers):
            model.params[f"recurrent.cells.{k}.weight_hh"] += rng.normal(0, 0.1, (H, H))
            model.params[f"recurrent.cells.{k}.bias_ih"] += rng.normal(0, 0.1, H)
    tokens = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B, T))
    state = tuple(np.zeros((num_layers, B, H)) if n in model.counters else rng.normal(0.0, 0.5, (num_layers, B, H))
                  for n in model.state_names)

    loss, analytic, _ = model.loss_and_gradients(tokens, targets, state)
    checked = {**model.params, **{f"state.{n}": s for n, s in zip(model.state_names, state) if n not in model.counters}}
    numeric = numeric_gradients(lambda: model.forward(tokens, targets, state)[0], checked)
    report = GradcheckReport(cell, num_layers, embedding_size)
    report.reference_vs_numeric = {n: relative_error(analytic[n], numeric[n]) for n in checked}
    for steps, result in ((False, report.engine_vs_reference), (True, report.engine_steps_vs_reference)):
        engine_loss, engine = _engine_gradients(model, tokens, targets, state, steps)
        result["loss"] = float(abs(engine_loss - loss) / abs(loss))
        result.update({n: relative_error(engine[n], analytic[n]) for n in checked if n in engine})
    return report
