"""Sentences in, vectors out: any trained model's recurrent stack reads a text, and its top layer's
outputs are pooled into one vector (Palangi et al. 2016 read a sentence into an LSTM's state).

    encoder = SentenceEncoder.load("runs/lm")          # a language model, classifier or tagger
    vectors = encoder.transform(["a fine film", "dull"], pool="mean")   # (2, H * directions)
    encoder.nearest(vectors, "a good film", top=5)     # (row, cosine similarity), best first

Shapes: N texts, B batch, T longest text in the batch, H hidden (times 2 when bidirectional).
Texts are read in batches of similar length (sorted), so padding costs little; padding never
changes a vector (the recurrent layer stops at each text's end).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..checkpoint import is_run_dir, read_meta
from ..errors import UsageError
from ..models.classifier import POOLINGS, pool_outputs

BATCH = 256
ESTIMATOR_TASKS = ("RNNClassifier", "RNNRegressor", "RNNTagger")


@dataclass
class SentenceEncoder:
    """A recurrent stack with the embedding in front of it and the way its model turns a text into
    token ids. `prefix`: ids read before every text (a language model's start of text), whose
    outputs are not pooled."""

    embed: nn.Module
    recurrent: nn.Module
    tokenize: Callable[[str], list[int]]
    prefix: tuple[int, ...] = ()
    kind: str = "language model"

    @property
    def size(self) -> int:
        return self.recurrent.output_size

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "cpu") -> "SentenceEncoder":
        """The encoder of a language model, classifier, regressor or tagger directory (UsageError for
        anything else: a music model, a seq2seq, a forecaster, a numeric-sequence classifier)."""
        path = Path(directory)
        if not is_run_dir(path):
            raise UsageError(f"{directory} is not a model directory (no rnnkit.json); train a language model, "
                             "classifier or tagger first")
        task = read_meta(path).get("task", "language_model")
        if task in ESTIMATOR_TASKS:
            from .. import estimators
            return getattr(estimators, task).load(path).sentence_encoder()
        if task != "language_model":
            raise UsageError(f"{directory} holds a {task!r} model; embeddings come from a language model, "
                             "classifier, regressor or tagger directory")
        from .model import load
        return cls.of_language_model(load(path, device=device))

    @classmethod
    def of_language_model(cls, model) -> "SentenceEncoder":
        vocab = model.vocab

        def tokenize(text: str) -> list[int]:
            # characters the model never saw are left out: a vector of the rest is still useful
            try:
                return vocab.encode(text).tolist()
            except UsageError:
                return vocab.encode("".join(ch for ch in text if _encodable(vocab, ch))).tolist()

        # Every training document (or line) followed an end of text or a newline: start there too.
        return cls(model.module.embed, model.module.recurrent, tokenize, (vocab.start_id,), "language model")

    # ------------------------------------------------------------------ vectors
    @torch.no_grad()
    def transform(self, texts: list[str], pool: str = "mean", batch_size: int = BATCH,
                  progress: Callable[[int], None] | None = None) -> np.ndarray:
        """One float32 vector per text (N, size). A text with no token the model knows is a
        UsageError naming it. `progress(k)` is called after each batch with k texts done."""
        if pool not in POOLINGS:
            raise UsageError(f"pool must be one of {', '.join(POOLINGS)} (got {pool!r})")
        ids = [self.tokenize(text) for text in texts]
        for number, (text, row) in enumerate(zip(texts, ids), start=1):
            if not row:
                raise UsageError(f"text {number} ({text[:40]!r}) has no token the {self.kind} knows; remove it")
        device = next(self.recurrent.parameters()).device
        was_training = self.recurrent.training
        self.recurrent.eval(), self.embed.eval()
        vectors = np.zeros((len(ids), self.size), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch
        k = len(self.prefix)
        try:
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                lengths = torch.tensor([k + len(ids[i]) for i in rows])
                tokens = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)  # (B, T), 0 = padding
                for b, i in enumerate(rows):
                    tokens[b, :lengths[b]] = torch.tensor([*self.prefix, *ids[i]])
                tokens, lengths = tokens.to(device), lengths.to(device)
                out = self.recurrent(self.embed(tokens), lengths=lengths, final_state=False)[0]  # (B, T, H*)
                pooled = pool_outputs(out[:, k:], lengths - k, pool, self.recurrent.hidden_size)  # (B, H*)
                vectors[rows] = pooled.float().cpu().numpy()
                if progress is not None:
                    progress(min(start + batch_size, len(order)))
        finally:
            self.recurrent.train(was_training), self.embed.train(was_training)
        return vectors

    def nearest(self, vectors: np.ndarray, query: str, top: int = 10, pool: str = "mean") -> list[tuple[int, float]]:
        """The `top` rows of `vectors` most similar to the query text by cosine, as (row, similarity)."""
        if top < 1:
            raise UsageError(f"--top must be >= 1 (got {top})")
        if not query.strip():
            raise UsageError("the query is empty; give some text to look for")
        if not self.tokenize(query):
            raise UsageError(f"the query has no token the {self.kind} knows; use words or characters of its texts")
        q = self.transform([query], pool)[0]
        similarity = cosine(vectors, q)
        order = np.argsort(-similarity, kind="stable")[:top]
        return [(int(i), float(similarity[i])) for i in order]


def cosine(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of vectors (N, D) with query (D,); a zero vector scores 0."""
    norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(query)
    return np.divide(vectors @ query, norms, out=np.zeros(len(vectors), dtype=np.float64), where=norms > 0)


def _encodable(vocab, ch: str) -> bool:
    try:
        vocab.encode(ch)
        return True
    except UsageError:
        return False
