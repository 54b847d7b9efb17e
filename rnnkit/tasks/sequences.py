"""Labelled sequences: bucketed padded batches in a new order every epoch, the loss and accuracy
on a held-out part for validation. Targets are one per sequence (a tensor: classification or
regression) or one per token (a list of id lists: tagging, padded with IGNORE); Seq2SeqTask
trains an encoder-decoder by teacher forcing."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cells.batchnorm import population_statistics
from ..data.sequences import bucketed_batches, pad
from .base import EpochCursor

IGNORE = -100  # the label of padding positions; cross_entropy skips it
EVAL_BATCH = 256
POPULATION_BATCHES = 50  # training batches a BN-LSTM's statistics are recomputed from before each validation


def _targets(targets, chosen, device) -> torch.Tensor:
    if isinstance(targets, torch.Tensor):
        return targets[chosen].to(device)
    rows = [targets[i] for i in chosen]
    out = torch.full((len(rows), max(len(r) for r in rows)), IGNORE, dtype=torch.long)
    for b, r in enumerate(rows):
        out[b, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out.to(device)


class LabelledSequencesTask(EpochCursor):
    """loss "nats": cross-entropy over classes (or over the labels of every token), validated
    with accuracy too; loss "mse": mean squared error of standardised values."""

    def __init__(self, sequences: list[list[int]], targets, val_sequences: list[list[int]],
                 val_targets, batch_size: int, loss: str, seed: int, device: torch.device,
                 class_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        # (C,) weight of each class in the training loss (imbalanced classes); validation stays unweighted
        self.class_weights = None if class_weights is None else class_weights.to(device)
        if loss not in ("nats", "mse"):
            raise ValueError(f"loss must be 'nats' or 'mse' (got {loss!r})")
        self.sequences, self.targets = sequences, targets
        self.val_sequences, self.val_targets = val_sequences, val_targets
        self.batch_size = batch_size
        self.loss_name = loss
        self.device = device
        self.lengths = np.array([len(s) for s in sequences])
        self.generator = torch.Generator().manual_seed(seed)
        self.batches = bucketed_batches(self.lengths, batch_size, self.generator)

    def units_per_step(self) -> int:
        return self.batch_size

    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def new_epoch(self) -> None:
        self.batches = bucketed_batches(self.lengths, self.batch_size, self.generator)

    def _outputs(self, model: nn.Module, sequences: list, targets, chosen) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, lengths = pad([sequences[i] for i in chosen], self.device)
        return model(tokens, lengths), _targets(targets, chosen, self.device)

    def _loss(self, outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        if self.loss_name == "mse":
            return F.mse_loss(outputs, targets)
        if outputs.dim() == 3:  # (B, T, C) per-token logits against (B, T) labels
            return F.cross_entropy(outputs.transpose(1, 2), targets, ignore_index=IGNORE)
        return F.cross_entropy(outputs, targets, weight=weights)

    def training_loss(self, model: nn.Module) -> torch.Tensor:
        loss = self._loss(*self._outputs(model, self.sequences, self.targets, self.batches[self.index]),
                          self.class_weights)
        self.advance()
        return loss

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """The loss per sequence (per token for tagging) and, for classes, the accuracy."""
        self.refresh_statistics(model)
        model.eval()
        loss_sum, right, counted, n = 0.0, 0, 0, len(self.val_sequences)
        for start in range(0, n, EVAL_BATCH):
            chosen = list(range(start, min(start + EVAL_BATCH, n)))
            outputs, targets = self._outputs(model, self.val_sequences, self.val_targets, chosen)
            loss_sum += self._loss(outputs, targets).item() * len(chosen)
            if self.loss_name == "nats":
                real = targets != IGNORE
                right += int((outputs.argmax(dim=-1) == targets)[real].sum())
                counted += int(real.sum())
        metrics = {self.loss_name: loss_sum / max(n, 1)}
        if self.loss_name == "nats":
            metrics["accuracy"] = right / max(counted, 1)
        return metrics

    def refresh_statistics(self, model: nn.Module) -> None:
        """Cells that normalise with batch statistics (the BN-LSTM) get population statistics from
        up to POPULATION_BATCHES training batches, the weights as they are, before each validation:
        the validation, the choice of the best epoch and the model that fit returns all use them."""
        with population_statistics(model) as counting:
            if counting:
                for chosen in self.batches[:POPULATION_BATCHES]:
                    self._outputs(model, self.sequences, self.targets, chosen)


class Seq2SeqTask(LabelledSequencesTask):
    """Sequence-to-sequence by teacher forcing: the decoder reads BOS + target and must predict
    target + EOS at every step; padding positions are ignored. Accuracy is per target token."""

    def __init__(self, *args, bos: int, eos: int, **kwargs) -> None:
        super().__init__(*args, loss="nats", **kwargs)
        self.bos, self.eos = bos, eos

    def _outputs(self, model: nn.Module, sequences: list, targets, chosen) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [targets[i] for i in chosen]
        tokens, lengths = pad([sequences[i] for i in chosen], self.device)
        target_in = pad([[self.bos] + t for t in rows], self.device)[0]
        target_out = _targets([t + [self.eos] for t in rows], range(len(rows)), self.device)
        return model(tokens, lengths, target_in), target_out  # (B, T, V), (B, T)
