"""Next-token prediction on whole documents (documents mode): every document starts from a fresh
state and its END, and is trained to predict its own END.

A batch is B documents of similar length, so little of it is padding: each epoch shuffles the
documents, sorts them by length within pools of POOL batches, cuts the pools into batches and
shuffles the batches (the bucketing of sequence-to-sequence training). A batch whose longest
document is longer than seq_length takes several steps of seq_length tokens, its state carried
from one to the next (truncated backpropagation through time within the batch); a shorter batch
takes one step only as wide as its longest document. Padding is never a target.

Shapes: B documents, T tokens per step, V vocabulary.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..cells import State
from ..models.language_model import LanguageModel
from ..recurrent import detach_state
from .base import EpochCursor
from .language_model import bits

POOL = 50  # batches per pool of documents sorted by length
IGNORE = -100  # target of a padding position (F.cross_entropy's ignore_index)


def document_window(tokens: np.ndarray, ends: np.ndarray, docs: np.ndarray, start: int, width: int,
                    pad: int, inputs: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets (B, width) of documents `docs` from their token `start` on; positions
    past a document's end are `pad` in the inputs and IGNORE in the targets. `inputs`, aligned
    with `tokens`, gives the ids the model reads when they differ from the tokens it predicts."""
    x = np.full((len(docs), width), pad, dtype=np.int64)
    y = np.full((len(docs), width), IGNORE, dtype=np.int64)
    for row, k in enumerate(docs):
        a, b = ends[k] + start, ends[k + 1]  # inputs run from the leading END to the last symbol
        if a < b:
            piece = np.asarray(tokens[a:min(b, a + width) + 1], dtype=np.int64)  # one more: the targets
            read = piece if inputs is None else np.asarray(inputs[a:a + len(piece)], dtype=np.int64)
            x[row, :len(piece) - 1], y[row, :len(piece) - 1] = read[:-1], piece[1:]
    return torch.from_numpy(x), torch.from_numpy(y)


@torch.no_grad()
def document_nats(model: LanguageModel, tokens: np.ndarray, ends: np.ndarray, batch_size: int = 64,
                  seq_length: int = 256, inputs: np.ndarray | None = None) -> tuple[float, int]:
    """Mean cross-entropy (nats per token, END included) of the documents between `ends`, each
    read from a fresh state, and how many tokens were predicted; on the model's device."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    lengths = np.diff(ends)
    order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding
    total, count = 0.0, 0
    end_id = int(tokens[ends[0]])
    try:
        for i in range(0, len(order), batch_size):
            docs = order[i:i + batch_size]
            longest, state = int(lengths[docs].max()), None
            for start in range(0, longest, seq_length):
                x, y = document_window(tokens, ends, docs, start, min(seq_length, longest - start), end_id, inputs)
                logits, state = model(x.to(device), state)
                total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(device).reshape(-1),
                                         ignore_index=IGNORE, reduction="sum").item()
                count += int((y != IGNORE).sum())
    finally:
        model.train(was_training)
    return total / max(count, 1), count


class DocumentTask(EpochCursor):
    units = "chars"
    loss_name = "nats"

    def __init__(self, train_tokens: np.ndarray, train_ends: np.ndarray, val_tokens: np.ndarray,
                 val_ends: np.ndarray, batch_size: int, seq_length: int, eval_chars: int, seed: int,
                 device: torch.device, subwords=None, train_inputs: np.ndarray | None = None,
                 val_inputs: np.ndarray | None = None) -> None:
        super().__init__()
        self.tokens, self.ends = train_tokens, train_ends
        self.inputs, self.val_inputs = train_inputs, val_inputs  # what the model reads, when not the tokens
        self.lengths = np.diff(train_ends)  # (documents,) input tokens of each
        self.batch_size, self.seq_length, self.seed, self.device = batch_size, seq_length, seed, device
        self.end_id = int(train_tokens[train_ends[0]])
        # Validation: whole documents, from the first, until eval_chars tokens are covered.
        keep = int(np.searchsorted(val_ends - val_ends[0], eval_chars)) + 1
        self.val_tokens, self.val_ends = val_tokens, val_ends[:max(2, min(keep, len(val_ends)))]
        # Word and BPE models: the loss is per token; per character (each END counted as one, as a
        # character model predicts it) it compares with character models on one scale.
        self.chars_per_token = 1.0
        if subwords is not None:
            self.units = "tokens"
            scored = self.val_tokens[self.val_ends[0] + 1:self.val_ends[-1] + 1]  # every predicted token
            documents = len(self.val_ends) - 1
            self.chars_per_token = (len(subwords.decode(scored)) + documents) / max(len(scored), 1)
        self.state: State | None = None
        self.state_shape: tuple[int, ...] = ()
        self._plan_epoch, self._plan = -1, []
        self._units = batch_size * seq_length

    def bind(self, model: LanguageModel) -> "DocumentTask":
        self.max_sane_loss = 4 * math.log(max(model.config.vocab_size, 2)) + 1
        rec = model.recurrent
        self.state_shape = (len(rec.state_names), rec.num_layers, rec.hidden_size)
        return self

    def plan(self) -> list[tuple[np.ndarray, int]]:
        """This epoch's steps: (documents of the batch, first token of the step), in order."""
        if self._plan_epoch != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(len(self.lengths))
            pool = POOL * self.batch_size
            batches = []
            for p in range(0, len(order), pool):
                chunk = order[p:p + pool]
                chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
                batches.extend(chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
            steps = []
            for b in rng.permutation(len(batches)):
                docs = batches[b]
                steps.extend((docs, start) for start in range(0, int(self.lengths[docs].max()), self.seq_length))
            self._plan_epoch, self._plan = self.epoch, steps
        return self._plan

    def units_per_step(self) -> int:
        return self._units

    def steps_per_epoch(self) -> int:
        return len(self.plan())

    def training_loss(self, model: LanguageModel) -> torch.Tensor:
        docs, start = self.plan()[self.index]
        width = min(self.seq_length, int(self.lengths[docs].max()) - start)
        x, y = document_window(self.tokens, self.ends, docs, start, width, self.end_id, self.inputs)  # (B, width)
        state = None if start == 0 else detach_state(self.state)  # a new batch of documents starts fresh
        logits, self.state = model(x.to(self.device), state)  # (B, width, V)
        self._units = int((y != IGNORE).sum())
        self.advance()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.to(self.device).reshape(-1),
                               ignore_index=IGNORE)

    def per_char(self, nats: float) -> float:
        return nats / self.chars_per_token

    def bpc(self, nats: float) -> float:
        return bits(self.per_char(nats))

    def evaluate(self, model: LanguageModel) -> dict[str, float]:
        nats = document_nats(model, self.val_tokens, self.val_ends, inputs=self.val_inputs)[0]
        return {"nats": nats, "bpc": self.bpc(nats)}

    def format_metrics(self, metrics: dict[str, float]) -> str:
        per = "" if self.units == "chars" else "/token"
        return f"{metrics['nats']:.4f} nats{per} ({metrics['bpc']:.3f} bpc)"

    def resume_tensors(self) -> dict[str, torch.Tensor]:
        if self.state is None or self.index == 0 or self.plan()[self.index][1] == 0:
            return {}  # the next step starts a new batch: nothing carried
        return {f"state.{k}": s.detach() for k, s in enumerate(self.state)}

    def restore_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        parts = [tensors[f"state.{k}"] for k in range(len(tensors))]
        if parts:
            n, layers, hidden = self.state_shape
            rows = len(self.plan()[self.index][0])
            if len(parts) != n or any(tuple(p.shape) != (layers, rows, hidden) for p in parts):
                raise ValueError(f"the carried state has shape {[tuple(p.shape) for p in parts]}, the model "
                                 f"{n} x {(layers, rows, hidden)}")
        self.state = tuple(parts) if parts else None
