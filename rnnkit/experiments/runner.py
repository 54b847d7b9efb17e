"""Shared plumbing for the experiments: train a model on a generated task with the one Trainer,
recording the loss curve, and catch divergence as a result rather than an error."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import TrainConfig
from ..tasks import GeneratedTask
from ..training import Trainer, TrainingDiverged


@dataclass
class Curve:
    label: str
    steps: list[int] = field(default_factory=list)  # training loss at every step
    losses: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    diverged_at: int | None = None  # step at which the loss became NaN/inf, if it did
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"label": self.label, "steps": self.steps, "losses": self.losses, "val_steps": self.val_steps,
                "val_losses": self.val_losses, "diverged_at": self.diverged_at, **self.extra}

    @property
    def final_val(self) -> float | None:
        return self.val_losses[-1] if self.val_losses else None


def train_generated(label: str, model: nn.Module, task: GeneratedTask, steps: int, eval_every: int,
                    **train_options) -> Curve:
    """Train with the Trainer (no checkpoints); returns the curve, stopping early on NaN/inf."""
    config = TrainConfig(max_steps=steps, eval_every=eval_every, schedule="constant", device="cpu",
                         **train_options)
    trainer = Trainer(model, task, config, None, dict, torch.device("cpu"), log=lambda line: None)
    curve = Curve(label)

    def record(step: int, loss: float) -> None:
        curve.steps.append(step)
        curve.losses.append(loss if math.isfinite(loss) else float("nan"))
    trainer.on_step.append(record)
    try:
        trainer.fit()
    except TrainingDiverged:
        curve.diverged_at = trainer.progress.step + 1
    for row in trainer.progress.metrics:
        curve.val_steps.append(row["step"])
        curve.val_losses.append(row["val_mse"])
    return curve

