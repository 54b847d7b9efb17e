"""The Trainer's Task for labelled sequences (classification or regression): bucketed padded
batches in a new order every epoch, the loss on a held-out part for validation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.sequences import bucketed_batches, pad


class LabelledSequencesTask:
    units = "seqs"

    def __init__(self, sequences: list[list[int]], targets: torch.Tensor, val_sequences: list[list[int]],
                 val_targets: torch.Tensor, batch_size: int, loss: str, seed: int, device: torch.device) -> None:
        self.sequences, self.targets = sequences, targets
        self.val_sequences, self.val_targets = val_sequences, val_targets
        self.batch_size = batch_size
        self.loss_name = loss  # "cross_entropy" | "mse"
        self.device = device
        self.lengths = np.array([len(s) for s in sequences])
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.index = 0, 0
        self.batches = bucketed_batches(self.lengths, batch_size, self.generator)
        self.max_sane_loss = float("inf")

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "cross_entropy":
            return F.cross_entropy(outputs, targets)
        return F.mse_loss(outputs, targets)

    def units_per_step(self) -> int:
        return self.batch_size

    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def training_loss(self, model: nn.Module) -> torch.Tensor:
        chosen = self.batches[self.index]
        tokens, lengths = pad([self.sequences[i] for i in chosen], self.device)
        loss = self.loss(model(tokens, lengths), self.targets[chosen].to(self.device))
        self.index += 1
        if self.index == len(self.batches):
            self.epoch, self.index = self.epoch + 1, 0
            self.batches = bucketed_batches(self.lengths, self.batch_size, self.generator)
        return loss

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> float:
        model.eval()
        total, count = 0.0, 0
        for start in range(0, len(self.val_sequences), 256):
            tokens, lengths = pad(self.val_sequences[start:start + 256], self.device)
            targets = self.val_targets[start:start + 256].to(self.device)
            total += self.loss(model(tokens, lengths), targets).item() * len(targets)
            count += len(targets)
        return total / max(count, 1)

    def cursor(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def restore_cursor(self, cursor: dict) -> None:
        self.epoch, self.index = int(cursor["epoch"]), int(cursor["index"])

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def restore_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass
