"""The Trainer's Task for labelled sequences: bucketed padded batches in a new order every epoch,
the loss on a held-out part for validation. Targets are one per sequence (a tensor: classification
or regression) or one per token (a list of id lists: tagging, padded with IGNORE)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.sequences import bucketed_batches, pad

IGNORE = -100  # the label of padding positions; cross_entropy skips it


def _targets(targets, chosen, device) -> torch.Tensor:
    if isinstance(targets, torch.Tensor):
        return targets[chosen].to(device)
    rows = [targets[i] for i in chosen]
    out = torch.full((len(rows), max(len(r) for r in rows)), IGNORE, dtype=torch.long)
    for b, r in enumerate(rows):
        out[b, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out.to(device)


class LabelledSequencesTask:
    units = "seqs"

    def __init__(self, sequences: list[list[int]], targets, val_sequences: list[list[int]],
                 val_targets, batch_size: int, loss: str, seed: int, device: torch.device) -> None:
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
            if outputs.dim() == 3:  # (B, T, C) per-token logits against (B, T) labels
                return F.cross_entropy(outputs.transpose(1, 2), targets, ignore_index=IGNORE)
            return F.cross_entropy(outputs, targets)
        return F.mse_loss(outputs, targets)

    def units_per_step(self) -> int:
        return self.batch_size

    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def _batch_loss(self, model: nn.Module, sequences: list, targets, chosen) -> torch.Tensor:
        tokens, lengths = pad([sequences[i] for i in chosen], self.device)
        return self.loss(model(tokens, lengths), _targets(targets, chosen, self.device))

    def training_loss(self, model: nn.Module) -> torch.Tensor:
        loss = self._batch_loss(model, self.sequences, self.targets, self.batches[self.index])
        self.index += 1
        if self.index == len(self.batches):
            self.epoch, self.index = self.epoch + 1, 0
            self.batches = bucketed_batches(self.lengths, self.batch_size, self.generator)
        return loss

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> float:
        model.eval()
        total = 0.0
        for start in range(0, len(self.val_sequences), 256):
            chosen = list(range(start, min(start + 256, len(self.val_sequences))))
            total += self._batch_loss(model, self.val_sequences, self.val_targets, chosen).item() * len(chosen)
        return total / max(len(self.val_sequences), 1)

    def cursor(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def restore_cursor(self, cursor: dict) -> None:
        self.epoch, self.index = int(cursor["epoch"]), int(cursor["index"])

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def restore_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


class Seq2SeqTask(LabelledSequencesTask):
    """Sequence-to-sequence by teacher forcing: the decoder reads BOS + target and must predict
    target + EOS at every step; padding positions are ignored."""

    def __init__(self, *args, bos: int, eos: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bos, self.eos = bos, eos

    def _batch_loss(self, model: nn.Module, sequences: list, targets, chosen) -> torch.Tensor:
        rows = [targets[i] for i in chosen]
        tokens, lengths = pad([sequences[i] for i in chosen], self.device)
        target_in = pad([[self.bos] + t for t in rows], self.device)[0]
        target_out = _targets([t + [self.eos] for t in rows], range(len(rows)), self.device)
        logits = model(tokens, lengths, target_in)  # (B, T, V)
        return F.cross_entropy(logits.transpose(1, 2), target_out, ignore_index=IGNORE)
