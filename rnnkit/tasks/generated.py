"""Synthetic sequence tasks with known answers, and the Task that lets the Trainer learn them.

The adding problem (Hochreiter & Schmidhuber 1997, as set up by Le et al. 2015): each step carries
two numbers, a value drawn from U(0, 1) and a marker that is 1 at exactly two steps (one in each
half of the sequence) and 0 elsewhere; the target is the sum of the two marked values. Predicting
the mean sum (1) always scores MSE 1/6 ~ 0.167, so a model below that has learned to find and
hold the marked values across up to T steps.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .base import EpochCursor

ADDING_BASELINE_MSE = 1 / 6  # variance of the sum of two U(0, 1) values

Batch = tuple[torch.Tensor, torch.Tensor]


def adding_problem(batch: int, length: int, generator: torch.Generator) -> Batch:
    """x (B, T, 2): values and markers; y (B, 1): the sum of the two marked values."""
    values = torch.rand(batch, length, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, length, (batch,), generator=generator)
    markers = torch.zeros(batch, length)
    rows = torch.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = (values[rows, first] + values[rows, second]).unsqueeze(1)
    return torch.stack([values, markers], dim=2), y


class GeneratedTask(EpochCursor):
    """Fresh random batches every step (so training loss measures generalisation too) and a fixed
    validation set; mean squared error. Generated data has no epochs: each step is one, and the
    random generator's state is what a resume restores."""

    loss_name = "mse"

    def __init__(self, make_batch: Callable[[int, torch.Generator], Batch], batch_size: int,
                 val_size: int = 1000, seed: int = 0) -> None:
        super().__init__()
        self.make_batch = make_batch
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.val = make_batch(val_size, torch.Generator().manual_seed(seed + 1_000_003))

    def units_per_step(self) -> int:
        return self.batch_size

    def steps_per_epoch(self) -> int:
        return 1  # budgets over generated data are in steps

    def training_loss(self, model: nn.Module) -> torch.Tensor:
        x, y = self.make_batch(self.batch_size, self.generator)
        self.advance()
        return F.mse_loss(model(x), y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        x, y = self.val
        return {"mse": F.mse_loss(model(x), y).item()}

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def restore_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(tensors["generator"])
