"""Experiments on the adding problem about the tricks that make RNNs trainable.

- `relu-init`: a ReLU RNN whose recurrence is Gaussian vs the identity (IRNN, Le et al. 2015).
  Claim: with Gaussian init the hidden state grows over time until the loss becomes inf/NaN;
  identity init with a small learning rate and clipping trains.
- `clipping`: the same learning rate with and without gradient-norm clipping (Pascanu et al. 2013)
  on long sequences.
- `forget-bias`: LSTM forget-gate bias 1 vs 0 at init (Gers et al. 2000; Jozefowicz et al. 2015)
  on a long-dependency problem.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models.regressor import SequenceRegressor
from ..tasks import ADDING_BASELINE_MSE, GeneratedTask, adding_problem
from .runner import Curve, train_generated

SIZES = {
    "smoke": dict(hidden=16, length=20, steps=30, batch=16, eval_every=10),
    "full": dict(hidden=100, length=150, steps=1500, batch=50, eval_every=50),
}


def _task(s: dict, seed: int = 0) -> GeneratedTask:
    length = s["length"]
    return GeneratedTask(lambda b, g: adding_problem(b, length, g), s["batch"], val_size=1000, seed=seed)


def _gaussian_recurrence(model: SequenceRegressor, gain: float) -> SequenceRegressor:
    """W_hh ~ N(0, gain^2 / H): gain sqrt(2) is He et al.'s (2015) choice for ReLU layers."""
    with torch.no_grad():
        for cell in model.recurrent.cells:
            nn.init.normal_(cell.weight_hh, std=gain / math.sqrt(cell.hidden_size))
            nn.init.normal_(cell.weight_ih, std=1.0 / math.sqrt(cell.input_size))
    return model


@torch.no_grad()
def _hidden_norms(model: SequenceRegressor, length: int) -> list[float]:
    x, _ = adding_problem(64, length, torch.Generator().manual_seed(7))
    out, _ = model.recurrent(x)
    return out.norm(dim=2).mean(dim=0).tolist()  # mean ||h_t|| over the batch, per t


def _plot_curves(ax, curves: list[Curve], title: str) -> None:
    for c in curves:
        line, = ax.plot(c.steps, c.losses, lw=0.6, alpha=0.5)
        ax.plot(c.val_steps, c.val_losses, color=line.get_color(), lw=1.6,
                label=c.label + (f" (NaN at step {c.diverged_at})" if c.diverged_at else ""))
        if c.diverged_at:
            ax.axvline(c.diverged_at, color=line.get_color(), ls=":")
    ax.axhline(ADDING_BASELINE_MSE, color="grey", ls="--", lw=0.8, label="predict the mean (1/6)")
    # Log steps, so a blow-up in the first few dozen steps is as visible as the long tail.
    ax.set(xscale="log", yscale="log", xlabel="step", ylabel="MSE (thin: training batches; thick: validation)",
           title=title)
    ax.legend(fontsize=8)


def run_relu_init(size: str, out: Path, work: Path, log) -> dict:
    s = SIZES[size]
    gains = (1.0, math.sqrt(2), 2.0)
    norms = {}
    for gain in gains:
        torch.manual_seed(0)
        norms[f"gaussian gain {gain:.2f}"] = _hidden_norms(_gaussian_recurrence(
            SequenceRegressor("irnn", 2, s["hidden"]), gain), s["length"])
    torch.manual_seed(0)
    norms["identity (IRNN)"] = _hidden_norms(SequenceRegressor("irnn", 2, s["hidden"]), s["length"])

    runs = [("Gaussian (He), SGD lr 1e-2, no clip", "gaussian", dict(optimizer="sgd", lr=1e-2, momentum=0.0, clip=0.0)),
            ("Gaussian (He), SGD lr 1e-3, clip 1", "gaussian", dict(optimizer="sgd", lr=1e-3, momentum=0.0, clip=1.0)),
            ("identity, SGD lr 1e-3, clip 1", "identity", dict(optimizer="sgd", lr=1e-3, momentum=0.0, clip=1.0)),
            ("identity, Adam lr 1e-4, clip 1", "identity", dict(optimizer="adam", lr=1e-4, clip=1.0))]
    curves = []
    for label, init, options in runs:
        torch.manual_seed(0)
        model = SequenceRegressor("irnn", 2, s["hidden"])
        if init == "gaussian":
            _gaussian_recurrence(model, math.sqrt(2))
        curve = train_generated(label, model, _task(s), s["steps"], s["eval_every"], **options)
        curves.append(curve)
        log(f"relu-init: {label}: " + (f"NaN at step {curve.diverged_at}" if curve.diverged_at
                                        else f"final val MSE {curve.final_val:.4f}"))

    from ..diagnostics.figures import pyplot, save_figure
    plt = pyplot()
    fig, (ax_norm, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, n in norms.items():
        ax_norm.semilogy(np.maximum(n, 1e-30), label=label)
    ax_norm.set(title=f"ReLU RNN at init: hidden-state norm (H={s['hidden']})", xlabel="time step",
                ylabel="mean ||h_t||")
    ax_norm.legend(fontsize=8)
    _plot_curves(ax_loss, curves, f"Adding problem, T={s['length']}")
    save_figure(fig, out / "relu-init.png")
    return {"settings": s, "hidden_norm_at_init": {k: [v[0], v[len(v) // 2], v[-1]] for k, v in norms.items()},
            "curves": [c.to_dict() for c in curves]}


def run_clipping(size: str, out: Path, work: Path, log) -> dict:
    s = dict(SIZES[size], length=SIZES[size]["length"] * 2 // 3)
    curves = []
    for cell, lr in (("rnn", 0.05), ("lstm", 0.5)):
        for clip in (1.0, 0.0):
            label = f"{cell}, SGD lr {lr} momentum 0.9, " + (f"clip {clip:g}" if clip else "no clip")
            torch.manual_seed(0)
            model = SequenceRegressor(cell, 2, s["hidden"])
            curve = train_generated(label, model, _task(s), s["steps"], s["eval_every"],
                                    optimizer="sgd", lr=lr, momentum=0.9, clip=clip)
            curve.extra["cell"], curve.extra["clip"] = cell, clip
            curves.append(curve)
            log(f"clipping: {label}: " + (f"NaN at step {curve.diverged_at}" if curve.diverged_at
                                           else f"final val MSE {curve.final_val:.4f}"))
    from ..diagnostics.figures import pyplot, save_figure
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, cell in zip(axes, ("rnn", "lstm")):
        _plot_curves(ax, [c for c in curves if c.extra["cell"] == cell], f"{cell}: adding problem, T={s['length']}")
    save_figure(fig, out / "clipping.png")
    return {"settings": s, "curves": [c.to_dict() for c in curves]}


def run_forget_bias(size: str, out: Path, work: Path, log) -> dict:
    # T=100 and twice the steps: at T=150 neither setting learned within 1,500 steps.
    s = dict(SIZES[size], length=100, steps=3000) if size == "full" else SIZES[size]
    curves = []
    for bias in (1.0, 0.0):
        for seed in range(2 if size == "full" else 1):
            torch.manual_seed(seed)
            model = SequenceRegressor("lstm", 2, s["hidden"], forget_bias=bias)
            curve = train_generated(f"forget bias {bias:g}, seed {seed}", model, _task(s, seed), s["steps"],
                                    s["eval_every"], optimizer="adam", lr=2e-3, clip=1.0)
            curve.extra["forget_bias"] = bias
            curves.append(curve)
            log(f"forget-bias: {curve.label}: final val MSE {curve.final_val:.4f}")
    from ..diagnostics.figures import pyplot, save_figure
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _plot_curves(ax, curves, f"LSTM forget-gate bias, adding problem T={s['length']}")
    save_figure(fig, out / "forget-bias.png")
    return {"settings": s, "curves": [c.to_dict() for c in curves]}
