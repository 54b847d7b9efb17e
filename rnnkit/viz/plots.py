"""`rnnkit plot`: training and validation loss of a run against steps and wall time (PNG)."""

from __future__ import annotations

import math
from pathlib import Path

from ..diagnostics.figures import pyplot
from ..outputs import png, write


def plot_training(meta: dict, title: str = "", steps: list[dict] | None = None) -> bytes:
    """PNG bytes: loss in nats (left axis) and bits per char (right axis) against steps and seconds.
    `steps`, the rows of metrics.jsonl, give the training loss at every step; without them the
    training loss is the one recorded at each validation."""
    plt = pyplot()
    rows = meta["metrics"]
    every_step = [r for r in steps or [] if r.get("train_nats") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "step", "step"), (axes[1], "elapsed", "seconds of training")):
        x = [r[key] for r in rows]
        if every_step:
            ax.plot([r[key] for r in every_step], [r["train_nats"] for r in every_step], lw=0.6, alpha=0.7,
                    label="training batch (every step)")
        else:
            ax.plot(x, [r["train_nats"] for r in rows], marker=".", label="training batch")
        ax.plot(x, [r["val_nats"] for r in rows], marker="o", label="validation")
        ax.set(xlabel=label, ylabel="loss (nats/char)")
        ax.grid(alpha=0.3)
        ax.legend()
        bpc = ax.secondary_yaxis("right", functions=(lambda n: n / math.log(2), lambda b: b * math.log(2)))
        bpc.set_ylabel("bits/char")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return png(fig, dpi=100)


def write_training_plot(meta: dict, path: Path, title: str = "", steps: list[dict] | None = None) -> None:
    write(path, plot_training(meta, title, steps))
