"""`TextEstimator`: what `RNNClassifier` and `RNNRegressor` (text.py) share. Strings (or numeric
sequences) in, one prediction per sequence out, through a `SequencePredictor`: tokenizing, the
network's shape, pretrained word vectors or a language model to start from, the training run (or
an echo state network's closed-form readout), pooled vectors, and the fitted state.

Transfer (`RNNClassifier(pretrained="runs/lm")`, after ULMFiT, Howard & Ruder 2018): the network
starts from a character language model trained by `rnnkit train` on unlabelled text: its embedding
rows (for every character the two share) and its whole recurrent stack are copied in, the
architecture is the language model's (one direction), and only the output layer starts from scratch; then all of
it is fine-tuned on the labelled examples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils import TransformerTags
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ..config import ModelConfig
from ..data.tokenizers import Tokenizer
from ..errors import UsageError
from ..models.classifier import SequencePredictor
from ..tasks import LabelledSequencesTask
from .base import RNNEstimator, strings
from .readout import fit_readout


class TextEstimator(RNNEstimator):
    """Strings in; a SequencePredictor with one output per class (or one value)."""

    loss = "nats"  # "nats" (cross-entropy) or "mse"

    def __sklearn_tags__(self):
        """Strings, or numeric sequences: a 2-D array (N, T) is N univariate sequences of length T
        and a 3-D array (N, T, D) N sequences of D features, so scikit-learn's checks apply with
        their tables read as sequences (tests/test_estimators.py lists the ones that fail, and why)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        tags.transformer_tags = TransformerTags(preserves_dtype=[])  # transform(): float32 vectors, whatever X was
        return tags

    def _encode_targets(self, y) -> torch.Tensor:
        raise NotImplementedError

    def _num_outputs(self) -> int:
        raise NotImplementedError

    def _prepare(self, X, y):
        from ..timeseries.features import SeriesFeatures, as_sequences, is_series_input
        # numeric sequences ((T, D) arrays: time-series classification) or strings (text)
        X, y = as_sequences(X), self._targets(y)
        numeric = is_series_input(X)
        X = X if numeric else strings(X)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} items but y has {len(y)}")
        self.features_ = SeriesFeatures().fit(X) if numeric else None
        if numeric and self.pretrained is not None:
            raise ValueError("pretrained language models read text; numeric sequences cannot start from one")
        if numeric and self.ensemble == "nbsvm":
            raise ValueError("ensemble='nbsvm' reads words; numeric sequences cannot use it")
        self.tokenizer_ = None if numeric else \
            Tokenizer(self.level, self.lowercase, self.min_df, self.max_features, self.hash_buckets).fit(X)
        targets = self._encode_targets(y)
        sequences = self._encode(X)
        self.max_tokens_ = self.max_tokens or max(64, 4 * int(np.percentile([len(s) for s in sequences], 90)))
        cut = sum(len(s) > self.max_tokens_ for s in sequences)
        if cut:
            self._log(f"{cut} of {len(sequences)} sequences are longer than {self.max_tokens_} steps; their ends "
                      "are left out (max_tokens)")
        self._language_model = self._pretrained_model()
        shape = self._language_model.config if self._language_model is not None else self
        # the network's shape: the language model's when one is given, else ours
        self.architecture_ = {"cell": shape.cell, "hidden_size": shape.hidden_size, "num_layers": shape.num_layers,
                              "embedding_size": shape.embedding_size,
                              "bidirectional": self.bidirectional and self._language_model is None}
        self._word_vectors = self._pretrained_vectors(numeric)
        return [s[:self.max_tokens_] for s in sequences], targets

    def _prepare_again(self, X, y):
        from ..timeseries.features import as_sequences
        X, y = as_sequences(X), self._targets(y)
        X = X if self.features_ is not None else strings(X)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} items but y has {len(y)}")
        targets = self._encode_targets_again(y)
        return [s[:self.max_tokens_] for s in self._encode(X)], targets

    def _encode_targets_again(self, y) -> torch.Tensor:
        raise NotImplementedError

    def _targets(self, y) -> np.ndarray:
        """y as one value per sample: a column (N, 1) is flattened with scikit-learn's warning."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        return column_or_1d(y, warn=True)

    def _pretrained_vectors(self, numeric: bool) -> torch.Tensor | None:
        """The embedding rows from `embeddings` (None without them); sets the embedding width to theirs."""
        if self.embeddings is None:
            return None
        if numeric:
            raise ValueError("embeddings are vectors of words; numeric sequences cannot use them")
        from ..data.word_vectors import vectors_for
        words = self.tokenizer_.tokens[2:]  # after padding and the unknown token
        rows, hits = vectors_for(self.embeddings, words, self.random_state)
        self.embeddings_found_, self.embeddings_missing_ = sum(hits), len(hits) - sum(hits)
        self._log(f"embeddings {self.embeddings}: {self.embeddings_found_:,} of {len(words):,} words found; "
                  f"{self.embeddings_missing_:,} start at random")
        self.architecture_["embedding_size"] = rows.shape[1]
        rows = torch.from_numpy(rows)
        unknown = rows.std() * torch.randn(1, rows.shape[1])  # the unknown token's row
        return torch.cat([torch.zeros(1, rows.shape[1]), unknown, rows])  # (V, D)

    def _build_model(self) -> torch.nn.Module:
        arch = self.architecture_
        return SequencePredictor(len(self.tokenizer_) if self.tokenizer_ else 0, self._num_outputs(), arch["cell"],
                                 arch["hidden_size"], arch["num_layers"], arch["embedding_size"], self.dropout,
                                 self.pooling, arch.get("bidirectional", self.bidirectional),
                                 input_features=self.features_.size if self.features_ else None,
                                 weight_drop=self.weight_drop, initial_state_noise=self.initial_state_noise)

    def _make_task(self, train, val, device):
        return LabelledSequencesTask(*train, *val, self.batch_size, self.loss, self.random_state, device,
                                     class_weights=self._class_weights(train[1]))

    def _train(self, task, config, device, on_epoch_end=None, **train_config: Any) -> None:
        """An echo state network's output layer is fitted in closed form (readout.py), not trained."""
        if self.model_.recurrent.trainable:
            return super()._train(task, config, device, on_epoch_end, **train_config)
        fit = fit_readout(self.model_.head, self._vectors(task.sequences, self.pooling), task.targets, task.loss_name)
        if task.class_weights is not None:
            self._log("class_weight is not applied to a closed-form readout: every sequence counts once")
        self._log(f"echo state readout: ridge penalty {fit['penalty']:.3g} (generalised cross-validation), "
                  f"leave-one-out {task.loss_name} {fit['left_out_loss']:.4f}")
        self.best_epoch_, self.n_steps_ = None, 0
        validation = {"val_loss" if k == task.loss_name else f"val_{k}": v
                      for k, v in task.evaluate(self.model_).items()}
        self.history_ = [{"epoch": 1.0, "step": 0, "train_loss": fit["train_loss"], **validation}]
        if on_epoch_end is not None:
            on_epoch_end(self, self.history_[-1])

    def _class_weights(self, targets) -> torch.Tensor | None:
        """class_weight="balanced": n / (C x count) per class, from the training rows (a class absent
        from them gets weight 0: it has no loss to weigh)."""
        if getattr(self, "class_weight", None) != "balanced" or self.loss != "nats":
            return None
        counts = torch.bincount(torch.as_tensor(targets), minlength=self._num_outputs()).double()
        weights = torch.where(counts > 0, counts.sum() / (len(counts) * counts.clamp(min=1)), torch.zeros_like(counts))
        return weights.float()

    # ------------------------------------------------------------------ transfer
    def _pretrained_model(self):
        """The pretrained language model, checked to fit this estimator (ValueError otherwise)."""
        if self.pretrained is None:
            return None
        from ..api import load
        if self.level != "char":
            raise ValueError("pretrained language models read characters; use level='char' with pretrained")
        try:
            lm = load(self.pretrained)
        except UsageError as e:
            raise ValueError(f"pretrained: {e}") from None
        if lm.vocab.kind != "chars" or lm.config.embedding_size == 0:
            raise ValueError(f"pretrained: {self.pretrained} must be a character model with an embedding "
                             "(trained without --bytes and with --embedding-size > 0)")
        return lm

    def _after_build(self) -> None:
        """Copy pretrained word vectors, or the language model's embedding rows and recurrent stack,
        into model_."""
        vectors, self._word_vectors = getattr(self, "_word_vectors", None), None
        if vectors is not None:
            with torch.no_grad():
                self.model_.embed.weight.copy_(vectors)
            self.model_.embed.weight.requires_grad_(not self.freeze_embeddings)
        lm, self._language_model = self._language_model, None
        if lm is None:
            return
        row_of = {chr(symbol): row for row, symbol in enumerate(lm.vocab.symbols)}
        known = 0
        with torch.no_grad():
            for token, row in self.tokenizer_.index.items():
                if token in row_of:
                    self.model_.embed.weight[row] = lm.module.embed.weight[row_of[token]]
                    known += 1
            for mine, theirs in zip(self.model_.recurrent.cells, lm.module.recurrent.cells):
                mine.load_state_dict(theirs.state_dict())
        self._log(f"started from {self.pretrained}: {known} of {len(self.tokenizer_) - 2} characters known")

    def _before_training(self, trainer) -> None:
        """Gradual unfreezing (ULMFiT, Howard & Ruder 2018, section 3.2): only the top group trains in
        the first epoch; after each epoch's validation the next group down joins. Frozen parameters
        get no gradient, so the optimizer leaves them (and their moments) alone until then."""
        if not self.gradual_unfreezing:
            return
        groups = self._layer_groups()
        for group in groups[1:]:
            for parameter in group:
                parameter.requires_grad_(False)
        opened = [1]

        def unfreeze_next(step: int) -> None:
            if opened[0] < len(groups):
                for parameter in groups[opened[0]]:
                    parameter.requires_grad_(True)
                opened[0] += 1
        trainer.on_evaluate.append(unfreeze_next)

    def _layer_groups(self) -> list[list[torch.nn.Parameter]]:
        """The network's parameters from the top: the output layer, each recurrent layer from the last
        down (both directions together), the embedding."""
        m = self.model_
        groups = [list(m.head.parameters())]
        for k in reversed(range(len(m.recurrent.cells))):
            groups.append([p for cells, _ in m.recurrent._directions() for p in cells[k].parameters()])
        return groups + [list(m.embed.parameters())]

    # ------------------------------------------------------------------ predicting
    def _outputs(self, X) -> torch.Tensor:
        check_is_fitted(self, "model_")
        limit = self.max_tokens_ or None  # None: directories saved before texts were cut
        outputs = list(self._network_outputs([s[:limit] for s in self._encode(X)]))
        return torch.cat(outputs) if outputs else torch.empty(0, self._num_outputs())

    def transform(self, X) -> np.ndarray:
        """One vector per text or numeric sequence (N, H * directions): the pooled recurrent states
        the output layer reads (this estimator's `pooling`), so a fitted estimator can featurise
        texts for another model (a step of a scikit-learn Pipeline)."""
        check_is_fitted(self, "model_")
        limit = self.max_tokens_ or None
        return self._vectors([s[:limit] for s in self._encode(X)], self.pooling)

    def fit_transform(self, X, y, **fit_params) -> np.ndarray:
        """fit, then transform the same X."""
        return self.fit(X, y, **fit_params).transform(X)

    def sentence_encoder(self):
        """A `SentenceEncoder` over this network (texts only; `rnnkit embed` uses it)."""
        check_is_fitted(self, "model_")
        if self.features_ is not None:
            raise UsageError("this model was trained on numeric sequences; its vectors come from transform() "
                             "on arrays, not from texts")
        return self._sentence_encoder(self.tokenizer_.encode)

    def _encode(self, X) -> list:
        """Token id lists for texts, standardised (T, D) arrays for numeric sequences."""
        from ..timeseries.features import as_sequences
        X = as_sequences(X)
        if self.features_ is not None:
            return self.features_.encode(X)
        return [self.tokenizer_.encode(t) for t in strings(X)]

    def _fitted_state(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer_.to_json() if self.tokenizer_ else None, "architecture": self.architecture_,
                "max_tokens": self.max_tokens_, "series_features": self.features_.to_json() if self.features_ else None}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        from ..timeseries.features import SeriesFeatures
        numeric = state.get("series_features") is not None
        self.features_ = SeriesFeatures.from_json(state["series_features"]) if numeric else None
        self.tokenizer_ = None if numeric else Tokenizer.from_json(state["tokenizer"])
        self.max_tokens_ = state.get("max_tokens")
        if self.max_tokens_ is not None and (not isinstance(self.max_tokens_, int) or self.max_tokens_ < 1):
            raise ValueError("max_tokens must be a whole number >= 1")
        # directories written before architecture_ was saved: the parameters give the shape
        architecture = state.get("architecture") or {
            "cell": self.cell, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
            "embedding_size": self.embedding_size}
        # the same checks (types, sizes, memory) a language model of this shape gets
        shape = {k: v for k, v in architecture.items() if k != "bidirectional"}
        ModelConfig(vocab_size=self.features_.size if numeric else len(self.tokenizer_), **shape)
        if not isinstance(architecture.get("bidirectional", False), bool):
            raise ValueError("architecture.bidirectional must be true or false")
        self.architecture_ = architecture
