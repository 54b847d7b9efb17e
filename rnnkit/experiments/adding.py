"""Experiment `adding`: the adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015) at
several lengths for the four cells: validation MSE against steps. Below 1/6 (predicting the mean)
means the model found the two marked values and carried them across up to T steps.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..models.regressor import SequenceRegressor
from ..tasks import ADDING_BASELINE_MSE, GeneratedTask, adding_problem
from .runner import train_generated

CELLS = ("rnn", "irnn", "lstm", "gru")
# Adam with clipping for every cell; the IRNN gets a 20x smaller learning rate, the range in which
# it stays stable here (Le et al. used SGD with far more steps than a CPU budget allows).
OPTIMIZER = {"rnn": 2e-3, "irnn": 1e-4, "lstm": 2e-3, "gru": 2e-3}
SIZES = {
    "smoke": dict(lengths=(10, 20), hidden=16, steps=20, batch=16, eval_every=10),
    "full": dict(lengths=(50, 150, 300), hidden=100, steps=1500, batch=50, eval_every=50),
}
SOLVED_MSE = 0.01  # the usual bar for "solved" (about a tenth of a unit of error)


def run(size: str, out: Path, work: Path, log) -> dict:
    s = SIZES[size]
    results = {"settings": {**s, "lr": OPTIMIZER}, "runs": []}
    for length in s["lengths"]:
        for cell in CELLS:
            torch.manual_seed(0)
            model = SequenceRegressor(cell, 2, s["hidden"])
            task = GeneratedTask(lambda b, g, T=length: adding_problem(b, T, g), s["batch"], val_size=1000)
            started = time.perf_counter()
            curve = train_generated(f"{cell}", model, task, s["steps"], s["eval_every"],
                                    optimizer="adam", lr=OPTIMIZER[cell], clip=1.0)
            solved = next((st for st, v in zip(curve.val_steps, curve.val_losses) if v < SOLVED_MSE), None)
            curve.extra.update(length=length, cell=cell, solved_at=solved,
                               seconds=round(time.perf_counter() - started, 1))
            results["runs"].append(curve.to_dict())
            log(f"adding: T={length} {cell}: final val MSE {curve.final_val:.4f}"
                + (f", below {SOLVED_MSE} at step {solved}" if solved else "")
                + (f", NaN at step {curve.diverged_at}" if curve.diverged_at else ""))

    from ..diagnostics.figures import pyplot, save_figure
    plt = pyplot()
    fig, axes = plt.subplots(1, len(s["lengths"]), figsize=(5 * len(s["lengths"]), 4.2), sharey=True)
    for ax, length in zip(axes, s["lengths"]):
        for r in results["runs"]:
            if r["length"] == length:
                ax.plot(r["val_steps"], r["val_losses"], label=r["cell"])
        ax.axhline(ADDING_BASELINE_MSE, color="grey", ls="--", lw=0.8, label="predict the mean")
        ax.set(title=f"T = {length}", xlabel="step", yscale="log")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("validation MSE")
    save_figure(fig, out / "adding.png")
    return results
