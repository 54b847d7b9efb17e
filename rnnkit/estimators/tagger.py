"""Sequence tagging: a label for every token. X: token lists; y: label lists of the same lengths.
Bidirectional by default. `predict` returns a list of label lists; `score` is per-token accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..data.tokenizers import Tokenizer
from ..models.classifier import SequenceTagger
from ..tasks import LabelledSequencesTask
from .base import RNNEstimator, init_from_config
from .configs import TaggerConfig


def _token_lists(X) -> list[list[str]]:
    if isinstance(X, str):
        raise ValueError("X must be a sequence of token lists, not one string")
    rows = [list(x) for x in X]
    for i, row in enumerate(rows):
        if not row or not all(isinstance(t, str) for t in row):
            raise ValueError(f"X item {i} must be a non-empty list of string tokens")
    return rows


class RNNTagger(RNNEstimator):
    """Hyperparameters: the fields of `TaggerConfig`."""

    config_class = TaggerConfig
    __init__ = init_from_config(TaggerConfig)

    def _prepare(self, X, y):
        rows, labels = _token_lists(X), [list(row) for row in y]
        if len(rows) != len(labels):
            raise ValueError(f"X has {len(rows)} items but y has {len(labels)}")
        for i, (tokens, tags) in enumerate(zip(rows, labels)):
            if len(tokens) != len(tags):
                raise ValueError(f"item {i} has {len(tokens)} tokens but {len(tags)} labels")
        self.tokenizer_ = Tokenizer("token", self.lowercase, self.min_df, self.max_features).fit(rows)
        self.classes_ = np.array(sorted({label for row in labels for label in row}, key=str), dtype=object)
        index = {label: i for i, label in enumerate(self.classes_)}
        return [self.tokenizer_.encode(r) for r in rows], [[index[label] for label in row] for row in labels]

    def _prepare_again(self, X, y):
        rows, labels = _token_lists(X), [list(row) for row in y]
        index = {label: i for i, label in enumerate(self.classes_)}
        new = sorted({label for row in labels for label in row} - set(index), key=str)
        if new:
            raise ValueError(f"warm_start keeps the tags of the first fit; y has new ones: {', '.join(map(repr, new[:5]))}")
        if len(rows) != len(labels) or any(len(a) != len(b) for a, b in zip(rows, labels)):
            return self._prepare(X, y)  # its checks and messages
        return [self.tokenizer_.encode(r) for r in rows], [[index[label] for label in row] for row in labels]

    def _build_model(self) -> torch.nn.Module:
        return SequenceTagger(len(self.tokenizer_), len(self.classes_), self.cell, self.hidden_size,
                              self.num_layers, self.embedding_size, self.dropout, self.bidirectional,
                              weight_drop=self.weight_drop, initial_state_noise=self.initial_state_noise)

    def _make_task(self, train, val, device):
        return LabelledSequencesTask(*train, *val, self.batch_size, "nats", self.random_state, device)

    def predict(self, X) -> list[list]:
        check_is_fitted(self, "model_")
        rows = _token_lists(X)
        labels = [logits.argmax(dim=2) for logits in self._network_outputs([self.tokenizer_.encode(r) for r in rows])]
        best = [row for chunk in labels for row in chunk]  # (T,) per row, padding included
        return [[self.classes_[i] for i in b[:len(r)].tolist()] for b, r in zip(best, rows)]

    def predict_proba(self, X) -> list[np.ndarray]:
        """Per token list, its label probabilities (len(tokens), len(classes_)), columns in the order
        of `classes_`: what several taggers average to decide together."""
        check_is_fitted(self, "model_")
        rows = _token_lists(X)
        chunks = [torch.softmax(logits.float(), dim=2)
                  for logits in self._network_outputs([self.tokenizer_.encode(r) for r in rows])]
        padded = [row for chunk in chunks for row in chunk]  # (T, C) per row, padding included
        return [p[:len(r)].numpy() for p, r in zip(padded, rows)]

    def transform(self, X) -> np.ndarray:
        """One vector per token list (N, H * directions): the recurrent outputs averaged over its tokens."""
        check_is_fitted(self, "model_")
        return self._vectors([self.tokenizer_.encode(r) for r in _token_lists(X)], "mean")

    def sentence_encoder(self):
        """A `SentenceEncoder` over this network; a text is read as its space-separated tokens."""
        check_is_fitted(self, "model_")
        return self._sentence_encoder(lambda text: self.tokenizer_.encode(text.split()))

    def score(self, X, y) -> float:
        predicted = self.predict(X)
        pairs = [(p, t) for ps, ts in zip(predicted, y) for p, t in zip(ps, ts)]
        return sum(p == t for p, t in pairs) / max(len(pairs), 1)

    def _fitted_state(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer_.to_json(), "classes": self.classes_.tolist()}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        self.tokenizer_ = Tokenizer.from_json(state["tokenizer"])
        self.classes_ = np.array(state["classes"], dtype=object)
