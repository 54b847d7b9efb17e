"""How the classifier's network and the NBSVM beside it are combined: stacking (Wolpert 1992), a
logistic regression over both models' log-probabilities, fitted on rows neither model trained on.

    p = softmax(W @ [log p_network ; log p_nbsvm] + b)      W (C, 2C), b (C,), C classes

It learns how much to trust each model and rescales an over-confident one; an average of
probabilities cannot (a network trained to a near-zero loss outvotes everything). Without held-out
rows the two count equally: W = [I/2, I/2], b = 0, the normalised geometric mean.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

FLOOR = 1e-7  # log-probabilities are clipped here, so a hard 0 cannot produce -inf


def _features(network: np.ndarray, other: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.concatenate([network, other], axis=1), FLOOR, 1.0))  # (N, 2C)


class Stacker:
    def __init__(self, weights: np.ndarray, bias: np.ndarray) -> None:
        weights, bias = np.asarray(weights, dtype=np.float64), np.asarray(bias, dtype=np.float64)
        classes = len(bias)
        if bias.ndim != 1 or classes < 2 or weights.shape != (classes, 2 * classes):
            raise ValueError("the stacker's weights must be (C, 2C) and its bias (C,) for C >= 2 classes")
        if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(bias))):
            raise ValueError("the stacker's weights must be finite numbers")
        self.weights, self.bias = weights, bias

    @classmethod
    def equal(cls, classes: int) -> "Stacker":
        half = np.eye(classes) / 2
        return cls(np.concatenate([half, half], axis=1), np.zeros(classes))

    @classmethod
    def fit(cls, network: np.ndarray, other: np.ndarray, truth: np.ndarray) -> "Stacker":
        """From both models' (N, C) probabilities on held-out rows and their classes (N,)."""
        classes = network.shape[1]
        if len(np.unique(truth)) < 2:
            return cls.equal(classes)  # one class held out: nothing to learn the combination from
        regression = LogisticRegression(max_iter=1000).fit(_features(network, other), truth)
        weights, bias = np.zeros((classes, 2 * classes)), np.zeros(classes)
        seen = regression.classes_
        if len(seen) == 2:  # scikit-learn keeps one row for two classes: the second's log-odds
            weights[seen[1]], bias[seen[1]] = regression.coef_[0], regression.intercept_[0]
        else:
            weights[seen], bias[seen] = regression.coef_, regression.intercept_
            bias[np.setdiff1d(np.arange(classes), seen)] = -30.0  # classes absent from the held-out rows
        return cls(weights, bias)

    def __call__(self, network: np.ndarray, other: np.ndarray) -> np.ndarray:
        logits = _features(network, other) @ self.weights.T + self.bias  # (N, C)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def network_share(self) -> float:
        """How much of the weight is on the network: |W_network| / |W|, for the log."""
        classes = len(self.bias)
        total = np.abs(self.weights).sum()
        return float(np.abs(self.weights[:, :classes]).sum() / total) if total else 0.5

    def to_json(self) -> dict:
        return {"weights": self.weights.tolist(), "bias": self.bias.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> "Stacker":
        return cls(np.asarray(data["weights"], dtype=np.float64), np.asarray(data["bias"], dtype=np.float64))
