"""Training a ForecastNetwork with the one Trainer: batches of windows in a new random order
every epoch, the negative log-likelihood of the scaled targets as the loss; validation reports
it with the scaled mean absolute error of the forecast mean (a MASE over the held-out windows).
`PairsTask`, the batching, is shared with the anomaly detector's reconstruction task."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..tasks.base import EpochCursor

EVAL_BATCH = 1024


class PairsTask(EpochCursor):
    """Training examples as (series, position) pairs into one flat array of windows; batches are
    drawn in a new random order every epoch. Subclasses define the loss and the evaluation."""

    units = "windows"

    def __init__(self, windows, train_pairs: np.ndarray, val_pairs: np.ndarray, batch_size: int, seed: int,
                 device: torch.device) -> None:
        super().__init__()
        self.windows, self.train_pairs, self.val_pairs = windows, train_pairs, val_pairs
        self.batch_size, self.device = min(batch_size, len(train_pairs)), device
        self.generator = torch.Generator().manual_seed(seed)
        self.order = self._shuffle()

    def _shuffle(self) -> np.ndarray:
        return torch.randperm(len(self.train_pairs), generator=self.generator).numpy()

    def units_per_step(self) -> int:
        return self.batch_size

    def steps_per_epoch(self) -> int:
        return len(self.train_pairs) // self.batch_size

    def new_epoch(self) -> None:
        self.order = self._shuffle()

    def next_pairs(self) -> np.ndarray:
        """The pairs of this training step; the cursor moves on."""
        chosen = self.order[self.index * self.batch_size:(self.index + 1) * self.batch_size]
        self.advance()
        return self.train_pairs[chosen]


class ForecastTask(PairsTask):
    loss_name = "nll"

    def _nll(self, model: nn.Module, pairs: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        context, lengths, _, _, target = self.windows.batch(pairs, self.device)
        predicted = getattr(model, "module", model).distribution(model(context, lengths))  # module: under DDP
        return -predicted.log_prob(target).mean(), (predicted.mean - target).abs().mean()

    def training_loss(self, model: nn.Module) -> torch.Tensor:
        loss, _ = self._nll(model, self.next_pairs())
        return loss

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        nll = mae = 0.0
        for start in range(0, len(self.val_pairs), EVAL_BATCH):
            pairs = self.val_pairs[start:start + EVAL_BATCH]
            loss, error = self._nll(model, pairs)
            nll, mae = nll + loss.item() * len(pairs), mae + error.item() * len(pairs)
        n = max(len(self.val_pairs), 1)
        return {"nll": nll / n, "scaled_mae": mae / n}
