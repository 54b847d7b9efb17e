"""Training a captioner by teacher forcing: the decoder reads BOS + caption and must predict
caption + EOS at every step; validation reports nats per token and token accuracy on the held-out
images.

Batches are drawn at random, not bucketed by caption length as text batches are: the encoder's
batch normalisation learns its running statistics from the batches, and a batch of captions of one
length holds images alike (strips of six digits carry more ink than strips of one), so bucketed
batches left statistics that fit no real image. Measured on the digit strips of docs/images.md:
bucketed, sequence accuracy 0.65 and 0.00 on strips of six digits; random, the table there.
Captions are short, so the padding this costs is small."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.sequences import pad
from ..tasks.base import EpochCursor
from ..tasks.sequences import IGNORE, _targets
from .data import to_input

EVAL_BATCH = 256


class CaptionTask(EpochCursor):
    def __init__(self, images: list[torch.Tensor], captions: list[list[int]], val_images: list[torch.Tensor],
                 val_captions: list[list[int]], batch_size: int, seed: int, device: torch.device,
                 bos: int, eos: int) -> None:
        super().__init__()
        self.images, self.captions = images, captions  # uint8 (C, H, W) each, token ids each
        self.val_images, self.val_captions = val_images, val_captions
        self.batch_size, self.device, self.bos, self.eos = batch_size, device, bos, eos
        self.generator = torch.Generator().manual_seed(seed)
        self.batches = self._shuffled()

    def units_per_step(self) -> int:
        return self.batch_size

    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def new_epoch(self) -> None:
        self.batches = self._shuffled()

    def _shuffled(self) -> list[list[int]]:
        order = torch.randperm(len(self.images), generator=self.generator)
        return [rows.tolist() for rows in order.split(self.batch_size)]

    def _loss(self, model: nn.Module, images: list, captions: list, chosen) -> tuple[torch.Tensor, torch.Tensor,
                                                                                     torch.Tensor]:
        """-> mean nats per token, logits (B, T, V), targets (B, T) for the rows `chosen`."""
        rows = [captions[i] for i in chosen]
        pixels = to_input(torch.stack([images[i] for i in chosen]), self.device)  # (B, C, H, W)
        target_in = pad([[self.bos] + r for r in rows], self.device)[0]  # (B, T)
        target_out = _targets([r + [self.eos] for r in rows], range(len(rows)), self.device)  # (B, T)
        logits = model(pixels, target_in)  # (B, T, V)
        return F.cross_entropy(logits.transpose(1, 2), target_out, ignore_index=IGNORE), logits, target_out

    def training_loss(self, model: nn.Module) -> torch.Tensor:
        loss = self._loss(model, self.images, self.captions, self.batches[self.index])[0]
        self.advance()
        return loss

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        nats, right, counted = 0.0, 0, 0
        for start in range(0, len(self.val_images), EVAL_BATCH):
            chosen = range(start, min(start + EVAL_BATCH, len(self.val_images)))
            loss, logits, targets = self._loss(model, self.val_images, self.val_captions, chosen)
            real = targets != IGNORE
            nats += loss.item() * int(real.sum())
            right += int((logits.argmax(dim=-1) == targets)[real].sum())
            counted += int(real.sum())
        return {"nats": nats / max(counted, 1), "accuracy": right / max(counted, 1)}
