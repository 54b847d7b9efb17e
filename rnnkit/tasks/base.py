"""The Task protocol the Trainer runs, and the epoch/index cursor most tasks share.

A task's metrics are a dict whose first key is its loss (the one the best checkpoint is chosen
by) and whose keys say what they hold: "nats" (cross-entropy), "bpc" (bits per character),
"mse", "accuracy". The Trainer saves them as "train_<loss>" and "val_<key>", so a run's history
never calls a mean squared error "nats".
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn


class Task(Protocol):
    units: str  # what one training example unit is called in logs and throughput ("chars", "seqs")
    loss_name: str  # the loss's key in the metrics ("nats", "mse")
    max_sane_loss: float  # a training loss above this means the run has diverged

    def units_per_step(self) -> int: ...
    def steps_per_epoch(self) -> int: ...
    def training_loss(self, model: nn.Module) -> torch.Tensor: ...
    def evaluate(self, model: nn.Module) -> dict[str, float]: ...
    def format_metrics(self, metrics: dict[str, float]) -> str: ...
    def cursor(self) -> dict[str, Any]: ...
    def restore_cursor(self, cursor: dict[str, Any]) -> None: ...
    def resume_tensors(self) -> dict[str, torch.Tensor]: ...
    def restore_tensors(self, tensors: dict[str, torch.Tensor]) -> None: ...


class EpochCursor:
    """Where a task stands: `epoch`, and `index`, the next batch within it. Subclasses call
    `advance()` after each training batch and may override `new_epoch()` (a reshuffle, a reset of
    carried state) and the resume tensors (anything beyond the cursor that a resume must restore)."""

    units = "seqs"
    loss_name = "nats"
    max_sane_loss = float("inf")  # only NaN/inf stop a run unless the task knows better

    def __init__(self) -> None:
        self.epoch, self.index = 0, 0

    def steps_per_epoch(self) -> int:
        raise NotImplementedError

    def advance(self) -> None:
        self.index += 1
        if self.index == self.steps_per_epoch():
            self.epoch, self.index = self.epoch + 1, 0
            self.new_epoch()

    def new_epoch(self) -> None:
        """Hook: called when an epoch ends, before the next batch is drawn."""

    def format_metrics(self, metrics: dict[str, float]) -> str:
        return ", ".join(f"{value:.4f} {name}" for name, value in metrics.items())

    def cursor(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index}

    def restore_cursor(self, cursor: dict[str, Any]) -> None:
        self.epoch, self.index = int(cursor["epoch"]), int(cursor["index"])

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def restore_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass
