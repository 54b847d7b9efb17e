"""String to string (spelling to phonemes, reversal, ...): a bidirectional encoder and an
attentive decoder (rnnkit.models.seq2seq). X and y are sequences of strings, tokenized at
`source_level` / `target_level` ("char", or "word" for space-separated symbols such as phonemes).
`predict` decodes greedily, or with beam search when `beam_size` > 1; `score` is exact-match accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..data.sequences import pad
from ..data.tokenizers import Tokenizer
from ..models.seq2seq import Seq2SeqEnsembleModel, Seq2SeqModel
from ..tasks import Seq2SeqTask
from .base import PREDICT_BATCH, RNNEstimator, init_from_config, strings
from .configs import Seq2SeqConfig

BEAM_ROWS = 8192  # most decoder rows (sources x beams) in one beam-search batch


class Seq2Seq(RNNEstimator):
    """Hyperparameters: the fields of `Seq2SeqConfig`."""

    config_class = Seq2SeqConfig
    __init__ = init_from_config(Seq2SeqConfig)
    # Target ids: the target tokenizer's ids shifted by 2, so 2 and 3 are free for BOS and EOS.
    BOS, EOS, SHIFT = 2, 3, 2

    def _target_ids(self, text: str) -> list[int]:
        return [i + self.SHIFT if i >= 2 else i for i in self.target_tokenizer_.encode(text)]

    def _prepare(self, X, y):
        sources, targets = strings(X), strings(y, "y")
        if len(sources) != len(targets):
            raise ValueError(f"X has {len(sources)} items but y has {len(targets)}")
        for i, (a, b) in enumerate(zip(sources, targets)):
            if not a.strip() or not b.strip():
                raise ValueError(f"item {i} has an empty source or target")
        self.source_tokenizer_ = Tokenizer(self.source_level).fit(sources)
        self.target_tokenizer_ = Tokenizer(self.target_level).fit(targets)
        return [self.source_tokenizer_.encode(s) for s in sources], [self._target_ids(t) for t in targets]

    def _prepare_again(self, X, y):
        sources, targets = strings(X), strings(y, "y")
        if len(sources) != len(targets) or not all(a.strip() and b.strip() for a, b in zip(sources, targets)):
            return self._prepare(X, y)  # its checks and messages
        return [self.source_tokenizer_.encode(s) for s in sources], [self._target_ids(t) for t in targets]

    def _build_model(self) -> Seq2SeqModel:
        return Seq2SeqModel(len(self.source_tokenizer_), len(self.target_tokenizer_) + self.SHIFT, self.cell,
                            self.hidden_size, self.embedding_size, self.dropout, self.BOS, self.EOS)

    def _make_task(self, train, val, device):
        return Seq2SeqTask(*train, *val, self.batch_size, seed=self.random_state, device=device,
                           bos=self.BOS, eos=self.EOS)

    def predict(self, X) -> list[str]:
        check_is_fitted(self, "model_")
        self.config()  # beam_size and max_length may have been set since fit
        return _decode(self.model_, self.source_tokenizer_, self.target_tokenizer_, self.target_level, X,
                       self.beam_size, self.max_length)

    def score(self, X, y) -> float:
        return _exact_match(self.predict(X), y)

    def log_likelihood(self, X, y) -> np.ndarray:
        """(n,) the natural log-probability the model gives output y[i] for input X[i], its end
        included: how likely it finds a given guess, e.g. to rank another system's candidates. -inf
        where y[i] holds a token the model never saw in training."""
        check_is_fitted(self, "model_")
        return _log_likelihood(self.model_, self, X, y)

    def _fitted_state(self) -> dict[str, Any]:
        return {"source_tokenizer": self.source_tokenizer_.to_json(), "target_tokenizer": self.target_tokenizer_.to_json()}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        self.source_tokenizer_ = Tokenizer.from_json(state["source_tokenizer"])
        self.target_tokenizer_ = Tokenizer.from_json(state["target_tokenizer"])


def _decode(model, source_tokenizer: Tokenizer, target_tokenizer: Tokenizer, target_level: str, X,
            beam_size: int, max_length: int) -> list[str]:
    """Decode every string of X with `model` (one Seq2SeqModel or an ensemble of them)."""
    sources = strings(X)
    device = next(model.parameters()).device
    joiner = "" if target_level == "char" else " "
    out = []
    rows = max(1, min(PREDICT_BATCH, BEAM_ROWS // beam_size))  # beam search runs sources x beams rows
    for start in range(0, len(sources), rows):
        chunk = sources[start:start + rows]
        tokens, lengths = pad([source_tokenizer.encode(s) for s in chunk], device)
        decoded = (model.beam(tokens, lengths, max_length, beam_size) if beam_size > 1
                   else model.greedy(tokens, lengths, max_length))
        out.extend(joiner.join(target_tokenizer.tokens[i - Seq2Seq.SHIFT] for i in ids if i >= 4) for ids in decoded)
    return out


class Seq2SeqEnsemble:
    """Fitted Seq2Seq estimators that predict together: every decoding step reads the mean of their
    probabilities (rnnkit.models.seq2seq.Seq2SeqEnsembleModel). They must have been fitted on the
    same strings' tokens (the same source and target vocabularies), e.g. the same data with
    different `random_state`s; their sizes and other settings may differ.

        models = [Seq2Seq(random_state=seed).fit(X, y) for seed in (0, 1, 2)]
        Seq2SeqEnsemble(models, beam_size=5).predict(words)
    """

    def __init__(self, estimators, beam_size: int = 1, max_length: int | None = None) -> None:
        estimators = list(estimators)
        if not estimators:
            raise ValueError("Seq2SeqEnsemble needs at least one fitted Seq2Seq")
        for e in estimators:
            if not isinstance(e, Seq2Seq):
                raise TypeError(f"Seq2SeqEnsemble combines Seq2Seq estimators, not {type(e).__name__}")
            check_is_fitted(e, "model_")
        first = estimators[0]
        for e in estimators[1:]:
            if (e.source_tokenizer_.to_json(), e.target_tokenizer_.to_json(), e.target_level) != \
                    (first.source_tokenizer_.to_json(), first.target_tokenizer_.to_json(), first.target_level):
                raise ValueError("the models were fitted on different tokens (vocabularies); fit them on the same data")
        if not (isinstance(beam_size, int) and beam_size >= 1):
            raise ValueError(f"beam_size must be a whole number >= 1 (got {beam_size!r})")
        self.estimators, self.beam_size = estimators, beam_size
        self.max_length = max_length or max(e.max_length for e in estimators)
        device = next(first.model_.parameters()).device
        self.model_ = Seq2SeqEnsembleModel([e.model_.to(device) for e in estimators]).eval()

    def predict(self, X) -> list[str]:
        first = self.estimators[0]
        return _decode(self.model_, first.source_tokenizer_, first.target_tokenizer_, first.target_level, X,
                       self.beam_size, self.max_length)

    def score(self, X, y) -> float:
        """Exact-match accuracy."""
        return _exact_match(self.predict(X), y)

    def log_likelihood(self, X, y) -> np.ndarray:
        """(n,) log-probability of each y[i] under the ensemble (each step: the mean of the models'
        probabilities), as Seq2Seq.log_likelihood."""
        return _log_likelihood(self.model_, self.estimators[0], X, y)


def _log_likelihood(model, estimator: Seq2Seq, X, y) -> np.ndarray:
    """log P(y[i] | X[i]) for every pair, in batches; `estimator` holds the tokenizers."""
    sources, targets = strings(X), strings(y, "y")
    if len(sources) != len(targets):
        raise ValueError(f"X has {len(sources)} items but y has {len(targets)}")
    empty = next((i for i, a in enumerate(sources) if not a.strip()), None)
    if empty is not None:
        raise ValueError(f"item {empty} has an empty source")
    device = next(model.parameters()).device
    outputs = [estimator._target_ids(t) + [Seq2Seq.EOS] for t in targets]
    out = np.empty(len(sources))
    for start in range(0, len(sources), PREDICT_BATCH):
        chunk = slice(start, start + PREDICT_BATCH)
        tokens, lengths = pad([estimator.source_tokenizer_.encode(s) for s in sources[chunk]], device)
        target, _ = pad(outputs[chunk], device)
        out[chunk] = model.log_likelihood(tokens, lengths, target).cpu().numpy()
    unknown = np.array([1 in ids for ids in outputs], dtype=bool)  # 1: a token outside the vocabulary
    out[unknown] = -np.inf
    return out


def _exact_match(predicted: list[str], y) -> float:
    return float(np.mean([p == t for p, t in zip(predicted, strings(y, "y"))]))
