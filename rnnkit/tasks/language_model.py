"""Next-token prediction on B parallel streams of a text, with state carried across chunks
(truncated backpropagation through time). Metrics: nats and bits per character."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..cells import State
from ..data import StreamBatches
from ..models.language_model import LanguageModel
from ..recurrent import detach_state
from .base import EpochCursor


def bits(nats: float) -> float:
    return nats / math.log(2)


class LanguageModelTask(EpochCursor):
    units = "chars"
    loss_name = "nats"

    def __init__(self, train_tokens: np.ndarray, val_tokens: np.ndarray, batch_size: int,
                 seq_length: int, eval_chars: int, device: torch.device, subwords=None,
                 state_reset: float = 0.0) -> None:
        super().__init__()
        self.batches = StreamBatches(train_tokens, batch_size, seq_length)
        self.val_tokens = val_tokens[:eval_chars]
        self.device = device
        # Word and BPE models: the loss is per token; bits per character (the validation text's
        # characters per token, decoded once) compares them with character models on one scale.
        self.chars_per_token = 1.0
        if subwords is not None:
            self.units = "tokens"
            self.chars_per_token = max(len(subwords.decode(self.val_tokens)), 1) / max(len(self.val_tokens), 1)
        self.state: State | None = None  # carried between chunks, reset at each epoch
        # Each chunk, each stream's state starts afresh with this chance. Carried through a whole epoch,
        # the model sees a zero state once per stream and epoch, and reading a short prompt from one
        # (sampling, evaluation) it then predicted rare symbols: after "ROMEO:" on tiny Shakespeare
        # '&' 0.08, 'C' 0.08, newline under 0.01, where the same prompt after 2,000 characters of the
        # play gave newline 0.999.
        self.state_reset = state_reset
        self.state_shape: tuple[int, ...] = ()  # (state tensors, L, B, H), known once bound to a model

    def bind(self, model: LanguageModel) -> "LanguageModelTask":
        # Uniform guessing costs ln V nats; far above that, the run has blown up.
        self.max_sane_loss = 4 * math.log(max(model.config.vocab_size, 2)) + 1
        rec = model.recurrent
        self.state_shape = (len(rec.state_names), rec.num_layers, self.batches.batch_size, rec.hidden_size)
        return self

    def units_per_step(self) -> int:
        return self.batches.batch_size * self.batches.seq_length

    def steps_per_epoch(self) -> int:
        return self.batches.batches_per_epoch

    def training_loss(self, model: LanguageModel) -> torch.Tensor:
        if self.index == 0:
            self.state = None  # streams restart from their beginnings
        x, y = self.batches.batch(self.index, self.device)  # (B, T) each
        state = detach_state(self.state) if self.state is not None else None
        if state is not None and self.state_reset > 0:
            # drawn from torch's generator, which a resume restores: the same rows restart again
            recurrent = getattr(model, "module", model).recurrent  # model may be DDP's wrapper
            state = recurrent.fresh_rows(state, torch.rand(x.shape[0]) < self.state_reset)
        logits, self.state = model(x, state)  # (B, T, V)
        self.advance()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def per_char(self, nats: float) -> float:
        """Nats per token -> nats per character of the validation text."""
        return nats / self.chars_per_token

    def bpc(self, nats: float) -> float:
        return bits(self.per_char(nats))

    def evaluate(self, model: LanguageModel) -> dict[str, float]:
        nats = model.evaluate_tokens(self.val_tokens, device=self.device)[0]
        return {"nats": nats, "bpc": self.bpc(nats)}

    def format_metrics(self, metrics: dict[str, float]) -> str:
        per = "" if self.units == "chars" else "/token"
        return f"{metrics['nats']:.4f} nats{per} ({metrics['bpc']:.3f} bpc)"

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        if self.state is None:
            return {}
        return {f"state.{k}": s.detach() for k, s in enumerate(self.state)}

    def restore_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        parts = [tensors[f"state.{k}"] for k in range(len(tensors))]
        if parts and (len(parts), *parts[0].shape) != self.state_shape or any(p.shape != parts[0].shape for p in parts):
            raise ValueError(f"the carried state has shape {[tuple(p.shape) for p in parts]}, the model "
                             f"{self.state_shape[0]} x {self.state_shape[1:]}")
        self.state = tuple(parts) if parts else None
