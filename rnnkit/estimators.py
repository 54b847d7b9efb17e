"""scikit-learn estimators over rnnkit's recurrent models: `RNNClassifier`, `RNNRegressor`, `RNNTagger`,
`Seq2Seq`.

X is a sequence of strings (for the tagger: a sequence of token lists); y labels (any hashable
values), numbers, or for the tagger one label list per token list. `__init__` only stores
hyperparameters; `fit` learns the tokenizer (`tokenizer_`), the classes (`classes_`) and the
network (`model_`) and returns self; so `Pipeline`, `GridSearchCV`, `cross_val_score` and
`clone` work as with any scikit-learn estimator. Training uses the one rnnkit Trainer, on the CPU
or GPU (`device`), with a 10% validation split for the loss history (`history_`).
`save(dir)` / `load(dir)` use rnnkit's checkpoint format (safetensors + JSON, never pickle).

Transfer (`RNNClassifier(pretrained="runs/lm")`, after ULMFiT, Howard & Ruder 2018): the network
starts from a character language model trained by `rnnkit train` on unlabelled text: its embedding
rows (for every character the two share) and its whole recurrent stack are copied in, the
architecture is the language model's, and only the output layer starts from scratch; then all of
it is fine-tuned on the labelled examples.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from . import checkpoint
from .config import TrainConfig
from .data.sequences import pad
from .data.tokenizers import Tokenizer
from .errors import UsageError
from .models.classifier import SequencePredictor, SequenceTagger
from .models.seq2seq import Seq2SeqModel
from .models.sequence_task import LabelledSequencesTask, Seq2SeqTask
from .training import Trainer


def _texts(X) -> list[str]:
    if isinstance(X, str):
        raise ValueError("X must be a sequence of strings, not one string")
    texts = list(X)
    for i, x in enumerate(texts):
        if not isinstance(x, str):
            raise ValueError(f"X must contain strings; item {i} is {type(x).__name__}")
    return texts


class _SavedEstimator(BaseEstimator):
    """save / load in rnnkit's checkpoint format: the hyperparameters, what `_fitted_state` returns
    (tokenizers, classes: JSON), and the network's weights (safetensors)."""

    def _build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def _fitted_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def save(self, directory: str | Path) -> None:
        check_is_fitted(self, "model_")
        meta = {"task": type(self).__name__, "params": self.get_params(), "fitted": self._fitted_state(), "step": 0}
        checkpoint.save(Path(directory), meta, {"model": self.model_.state_dict()})

    @classmethod
    def load(cls, directory: str | Path):
        meta = checkpoint.read_meta(directory)
        if meta.get("task") != cls.__name__:
            raise UsageError(f"{directory} holds a {meta.get('task')!r}, not a {cls.__name__}")
        estimator = cls(**meta["params"])
        estimator._restore_fitted(meta["fitted"])
        estimator.model_ = estimator._build_model()
        estimator.model_.load_state_dict(checkpoint.load_tensors(directory, meta, "model"))
        estimator.model_.eval()
        return estimator


class _RNNEstimator(_SavedEstimator):
    _loss = ""  # "cross_entropy" | "mse"

    def __init__(self, cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1,
                 embedding_size: int = 64, dropout: float = 0.0, pooling: str = "last", bidirectional: bool = False,
                 level: str = "char",
                 lowercase: bool = False, min_df: int = 1, max_features: int | None = None, epochs: float = 10.0,
                 batch_size: int = 32, lr: float = 3e-3, optimizer: str = "adam", clip: float = 1.0,
                 pretrained: str | None = None, random_state: int = 0, device: str = "cpu", verbose: int = 0) -> None:
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding_size = embedding_size
        self.dropout = dropout
        self.pooling = pooling
        self.bidirectional = bidirectional
        self.level = level
        self.lowercase = lowercase
        self.min_df = min_df
        self.max_features = max_features
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.clip = clip
        self.pretrained = pretrained  # run directory of a character language model to start from
        self.random_state = random_state
        self.device = device
        self.verbose = verbose  # > 0: a line per epoch (validation loss) on stderr

    # ------------------------------------------------------------------ subclass hooks
    def _encode_targets(self, y) -> torch.Tensor:
        raise NotImplementedError

    def _num_outputs(self) -> int:
        raise NotImplementedError

    def _build_model(self) -> torch.nn.Module:
        # The shape fit chose (architecture_: the language model's when one was given); models
        # saved before architecture_ existed take the parameters.
        arch = getattr(self, "architecture_", None) or {
            "cell": self.cell, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
            "embedding_size": self.embedding_size}
        return SequencePredictor(len(self.tokenizer_), self._num_outputs(), arch["cell"], arch["hidden_size"],
                                 arch["num_layers"], arch["embedding_size"], self.dropout, self.pooling,
                                 self.bidirectional)

    def _language_model(self):
        """The pretrained language model, checked to fit this estimator (ValueError otherwise)."""
        from .api import load  # the LM API; imported here since it is only needed for transfer
        if self._tokenizer_level() != "char":
            raise ValueError("pretrained language models read characters; use level='char' with pretrained")
        try:
            lm = load(self.pretrained)
        except UsageError as e:
            raise ValueError(f"pretrained: {e}") from None
        if lm.vocab.kind != "chars" or lm.config.embedding_size == 0:
            raise ValueError(f"pretrained: {self.pretrained} must be a character model with an embedding "
                             "(trained without --bytes and with --embedding-size > 0)")
        return lm

    def _transfer(self, lm) -> int:
        """Copy the language model's embedding rows and recurrent stack into model_; returns how
        many of this tokenizer's characters the language model knew."""
        row_of = {chr(symbol): row for row, symbol in enumerate(lm.vocab.symbols)}
        known = 0
        with torch.no_grad():
            source_embedding = lm.module.embed.weight
            for token, row in self.tokenizer_.index.items():
                if token in row_of:
                    self.model_.embed.weight[row] = source_embedding[row_of[token]]
                    known += 1
            for mine, theirs in zip(self.model_.recurrent.cells, lm.module.recurrent.cells):
                mine.load_state_dict(theirs.state_dict())
        return known

    def _inputs(self, X) -> list:
        return _texts(X)

    def _tokenizer_level(self) -> str:
        return self.level

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y):
        texts = self._inputs(X)
        y = np.asarray(y) if self._loss != "tagging" else list(y)
        if len(texts) != len(y):
            raise ValueError(f"X has {len(texts)} items but y has {len(y)}")
        if len(texts) < 2:
            raise ValueError("fit needs at least 2 examples")
        torch.manual_seed(self.random_state)
        self.tokenizer_ = Tokenizer(self._tokenizer_level(), self.lowercase, self.min_df, self.max_features).fit(texts)
        targets = self._encode_targets(y)
        sequences = [self.tokenizer_.encode(t) for t in texts]
        order = np.random.default_rng(self.random_state).permutation(len(texts))
        n_val = max(1, len(texts) // 10) if len(texts) >= 20 else 0
        val, train = order[:n_val], order[n_val:]
        if n_val == 0:  # too few examples to hold some out: validate on the training set
            val = train
        device = torch.device(self.device)
        # (the tagger has no `pretrained` parameter: a character LM cannot start a token tagger)
        lm = self._language_model() if getattr(self, "pretrained", None) is not None else None
        shape = lm.config if lm is not None else self  # the network's shape: the language model's, or ours
        self.architecture_ = {"cell": shape.cell, "hidden_size": shape.hidden_size, "num_layers": shape.num_layers,
                              "embedding_size": shape.embedding_size}
        self.model_ = self._build_model().to(device)
        if lm is not None:
            known = self._transfer(lm)
            if self.verbose:
                print(f"started from {self.pretrained}: {known} of {len(self.tokenizer_) - 2} characters known",
                      file=sys.stderr)
        pick = (lambda rows: targets[rows]) if isinstance(targets, torch.Tensor) else \
            (lambda rows: [targets[i] for i in rows])
        task = LabelledSequencesTask([sequences[i] for i in train], pick(train), [sequences[i] for i in val],
                                     pick(val), self.batch_size, "mse" if self._loss == "mse" else "cross_entropy",
                                     self.random_state, device)
        config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
                             clip=self.clip, seed=self.random_state, device=self.device,
                             eval_every=max(1, task.steps_per_epoch()))
        log = (lambda line: print(line, file=sys.stderr)) if self.verbose else (lambda line: None)
        trainer = Trainer(self.model_, task, config, None, dict, device, log=log)
        trainer.fit()
        self.history_ = [{"step": m["step"], "train_loss": m["train_nats"], "val_loss": m["val_nats"]}
                         for m in trainer.progress.metrics]
        self.model_.eval()
        return self

    @torch.no_grad()
    def _outputs(self, X) -> torch.Tensor:
        check_is_fitted(self, "model_")
        texts = self._inputs(X)
        self.model_.eval()
        device = next(self.model_.parameters()).device
        outputs = []
        for start in range(0, len(texts), 256):
            tokens, lengths = pad([self.tokenizer_.encode(t) for t in texts[start:start + 256]], device)
            outputs.append(self.model_(tokens, lengths).cpu())
        return torch.cat(outputs) if outputs else torch.empty(0, self._num_outputs())

    def _fitted_state(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer_.to_json(), "architecture": getattr(self, "architecture_", None)}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        self.tokenizer_ = Tokenizer.from_json(state["tokenizer"])
        if state.get("architecture"):
            self.architecture_ = state["architecture"]


class RNNClassifier(ClassifierMixin, _RNNEstimator):
    """Text classification with a recurrent network: strings in, labels out."""

    _loss = "cross_entropy"

    def _encode_targets(self, y) -> torch.Tensor:
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least two")
        return torch.from_numpy(encoded.astype(np.int64))

    def _num_outputs(self) -> int:
        return len(self.classes_)

    def predict_proba(self, X) -> np.ndarray:
        return torch.softmax(self._outputs(X), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        best = self._outputs(X).argmax(dim=1).numpy()  # first: it raises NotFittedError before fit
        return self.classes_[best]

    def _fitted_state(self) -> dict[str, Any]:
        return {**super()._fitted_state(), "classes": self.classes_.tolist()}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        super()._restore_fitted(state)
        self.classes_ = np.asarray(state["classes"])


class RNNRegressor(RegressorMixin, _RNNEstimator):
    """Text regression with a recurrent network: strings in, numbers out (targets are standardised
    for training and mapped back for prediction)."""

    _loss = "mse"

    def _encode_targets(self, y) -> torch.Tensor:
        y = np.asarray(y, dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("y must be finite numbers")
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std() or 1.0)
        return torch.from_numpy(((y - self.y_mean_) / self.y_scale_).astype(np.float32)).reshape(-1, 1)

    def _num_outputs(self) -> int:
        return 1

    def predict(self, X) -> np.ndarray:
        return self._outputs(X).numpy()[:, 0] * self.y_scale_ + self.y_mean_

    def _fitted_state(self) -> dict[str, Any]:
        return {**super()._fitted_state(), "y_mean": self.y_mean_, "y_scale": self.y_scale_}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        super()._restore_fitted(state)
        self.y_mean_, self.y_scale_ = state["y_mean"], state["y_scale"]


class RNNTagger(_RNNEstimator):
    """Sequence tagging: a label for every token. X: token lists; y: label lists of the same lengths.
    Bidirectional by default. `predict` returns a list of label lists; `score` is per-token accuracy."""

    _loss = "tagging"

    def __init__(self, cell: str = "lstm", hidden_size: int = 128, num_layers: int = 1, embedding_size: int = 64,
                 dropout: float = 0.0, bidirectional: bool = True, lowercase: bool = False, min_df: int = 1,
                 max_features: int | None = None, epochs: float = 10.0, batch_size: int = 32, lr: float = 3e-3,
                 optimizer: str = "adam", clip: float = 1.0, random_state: int = 0, device: str = "cpu",
                 verbose: int = 0) -> None:
        # Stored one by one, as scikit-learn expects; no pooling or tokenizer level here.
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embedding_size = embedding_size
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.lowercase = lowercase
        self.min_df = min_df
        self.max_features = max_features
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.clip = clip
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _tokenizer_level(self) -> str:
        return "token"  # the given tokens are used as they are

    def _inputs(self, X) -> list[list[str]]:
        if isinstance(X, str):
            raise ValueError("X must be a sequence of token lists, not one string")
        rows = [list(x) for x in X]
        for i, row in enumerate(rows):
            if not row or not all(isinstance(t, str) for t in row):
                raise ValueError(f"X item {i} must be a non-empty list of string tokens")
        return rows

    def fit(self, X, y):
        rows, labels = self._inputs(X), [list(row) for row in y]
        if len(rows) == len(labels):
            for i, (tokens, tags) in enumerate(zip(rows, labels)):
                if len(tokens) != len(tags):
                    raise ValueError(f"item {i} has {len(tokens)} tokens but {len(tags)} labels")
        return super().fit(rows, labels)

    def _encode_targets(self, y) -> list[list[int]]:
        rows = [list(labels) for labels in y]
        self.classes_ = np.array(sorted({label for row in rows for label in row}, key=str), dtype=object)
        index = {label: i for i, label in enumerate(self.classes_)}
        return [[index[label] for label in row] for row in rows]

    def _num_outputs(self) -> int:
        return len(self.classes_)

    def _build_model(self) -> torch.nn.Module:
        return SequenceTagger(len(self.tokenizer_), self._num_outputs(), self.cell, self.hidden_size,
                              self.num_layers, self.embedding_size, self.dropout, self.bidirectional)

    @torch.no_grad()
    def predict(self, X) -> list[list]:
        check_is_fitted(self, "model_")
        rows = self._inputs(X)
        self.model_.eval()
        device = next(self.model_.parameters()).device
        out = []
        for start in range(0, len(rows), 256):
            chunk = rows[start:start + 256]
            tokens, lengths = pad([self.tokenizer_.encode(r) for r in chunk], device)
            best = self.model_(tokens, lengths).argmax(dim=2).cpu()  # (B, T)
            out.extend([self.classes_[i] for i in best[b, :len(r)].tolist()] for b, r in enumerate(chunk))
        return out

    def score(self, X, y) -> float:
        predicted = self.predict(X)
        pairs = [(p, t) for ps, ts in zip(predicted, y) for p, t in zip(ps, ts)]
        return sum(p == t for p, t in pairs) / max(len(pairs), 1)

    def _fitted_state(self) -> dict[str, Any]:
        return {**super()._fitted_state(), "classes": self.classes_.tolist()}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        super()._restore_fitted(state)
        self.classes_ = np.array(state["classes"], dtype=object)


class Seq2Seq(_SavedEstimator):
    """String to string (spelling to phonemes, reversal, ...): a bidirectional encoder and an
    attentive decoder (rnnkit.models.seq2seq). X and y are sequences of strings, tokenized at
    `level` ("char", or "word" for space-separated symbols such as phonemes). `predict` decodes
    greedily, or with beam search when `beam_size` > 1; `score` is exact-match accuracy."""

    def __init__(self, cell: str = "lstm", hidden_size: int = 128, embedding_size: int = 64, dropout: float = 0.0,
                 source_level: str = "char", target_level: str = "char", epochs: float = 10.0, batch_size: int = 32,
                 lr: float = 3e-3, clip: float = 1.0, beam_size: int = 1, max_length: int = 100,
                 random_state: int = 0, device: str = "cpu", verbose: int = 0) -> None:
        self.cell = cell
        self.hidden_size = hidden_size
        self.embedding_size = embedding_size
        self.dropout = dropout
        self.source_level = source_level
        self.target_level = target_level
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.clip = clip
        self.beam_size = beam_size
        self.max_length = max_length
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # Target ids: the target tokenizer's ids shifted by 2, so 2 and 3 are free for BOS and EOS.
    BOS, EOS, SHIFT = 2, 3, 2

    def _target_ids(self, text: str) -> list[int]:
        return [i + self.SHIFT if i >= 2 else i for i in self.target_tokenizer_.encode(text)]

    def _build_model(self) -> Seq2SeqModel:
        return Seq2SeqModel(len(self.source_tokenizer_), len(self.target_tokenizer_) + self.SHIFT, self.cell,
                            self.hidden_size, self.embedding_size, self.dropout, self.BOS, self.EOS)

    def fit(self, X, y):
        sources, targets = _texts(X), _texts(y)
        if len(sources) != len(targets):
            raise ValueError(f"X has {len(sources)} items but y has {len(targets)}")
        for i, (a, b) in enumerate(zip(sources, targets)):
            if not a.strip() or not b.strip():
                raise ValueError(f"item {i} has an empty source or target")
        torch.manual_seed(self.random_state)
        self.source_tokenizer_ = Tokenizer(self.source_level).fit(sources)
        self.target_tokenizer_ = Tokenizer(self.target_level).fit(targets)
        source_ids = [self.source_tokenizer_.encode(s) for s in sources]
        target_ids = [self._target_ids(t) for t in targets]
        order = np.random.default_rng(self.random_state).permutation(len(sources))
        n_val = max(1, len(sources) // 20) if len(sources) >= 40 else 0
        val, train = (order[:n_val], order[n_val:]) if n_val else (order, order)
        device = torch.device(self.device)
        self.model_ = self._build_model().to(device)
        task = Seq2SeqTask([source_ids[i] for i in train], [target_ids[i] for i in train],
                           [source_ids[i] for i in val], [target_ids[i] for i in val], self.batch_size,
                           "cross_entropy", self.random_state, device, bos=self.BOS, eos=self.EOS)
        config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, clip=self.clip,
                             seed=self.random_state, device=self.device, eval_every=max(1, task.steps_per_epoch()))
        log = (lambda line: print(line, file=sys.stderr)) if self.verbose else (lambda line: None)
        trainer = Trainer(self.model_, task, config, None, dict, device, log=log)
        trainer.fit()
        self.history_ = [{"step": m["step"], "train_loss": m["train_nats"], "val_loss": m["val_nats"]}
                         for m in trainer.progress.metrics]
        self.model_.eval()
        return self

    def predict(self, X) -> list[str]:
        check_is_fitted(self, "model_")
        sources = _texts(X)
        device = next(self.model_.parameters()).device
        joiner = "" if self.target_level == "char" else " "
        out = []
        for start in range(0, len(sources), 256):
            tokens, lengths = pad([self.source_tokenizer_.encode(s) for s in sources[start:start + 256]], device)
            decoded = (self.model_.beam(tokens, lengths, self.max_length, self.beam_size) if self.beam_size > 1
                       else self.model_.greedy(tokens, lengths, self.max_length))
            out.extend(joiner.join(self.target_tokenizer_.tokens[i - self.SHIFT] for i in ids if i >= 4)
                       for ids in decoded)
        return out

    def score(self, X, y) -> float:
        return float(np.mean([p == t for p, t in zip(self.predict(X), _texts(y))]))

    def _fitted_state(self) -> dict[str, Any]:
        return {"source_tokenizer": self.source_tokenizer_.to_json(), "target_tokenizer": self.target_tokenizer_.to_json()}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        self.source_tokenizer_ = Tokenizer.from_json(state["source_tokenizer"])
        self.target_tokenizer_ = Tokenizer.from_json(state["target_tokenizer"])
