"""Numeric sequences as classifier inputs: each sample a (T, D) array (T may differ between
samples; a 1-D array is one value per step), every feature standardised by the mean and
standard deviation of the training samples' steps (saved with the model)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse


def as_sequences(X):
    """X as the estimators read it: strings, or numeric sequences (an array, or a list of arrays).
    Array-likes (lists of number lists, objects with __array__, object arrays of numbers) become
    arrays; what cannot be read is a ValueError that says what is expected."""
    if sparse.issparse(X):
        raise ValueError("sparse input is not supported: give texts, or numeric sequences as a dense array")
    if isinstance(X, str):
        return X  # strings() refuses it with its own message
    if not isinstance(X, (list, tuple, np.ndarray)) and hasattr(X, "__array__"):
        X = np.asarray(X)
    if isinstance(X, np.ndarray):
        if X.dtype.kind == "c":
            raise ValueError("Complex data not supported: give real numbers")
        if X.dtype.kind == "O" and X.size and not isinstance(X.flat[0], str):
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError("X holds objects that are neither strings nor numbers") from None
        if X.dtype.kind in "fiub":
            if X.ndim == 1:
                raise ValueError("X is a 1-D array of numbers; Reshape your data: X.reshape(-1, 1) if each "
                                 "number is a sequence of one step, X.reshape(1, -1) if they are one sequence")
            if X.ndim >= 2 and X.shape[1] == 0:
                raise ValueError(f"0 feature(s) (shape={X.shape}) while a minimum of 1 is required: every "
                                 "sequence needs at least one step")
        return X
    items = list(X)
    if items and isinstance(items[0], (list, tuple)) and items[0] and not isinstance(items[0][0], str):
        try:
            return [np.asarray(x, dtype=np.float64) for x in items]
        except (TypeError, ValueError):
            raise ValueError("X holds lists that are not all numbers; give strings or numeric sequences") from None
    return items


def is_series_input(X) -> bool:
    """Whether X holds numeric sequences (a 2-D/3-D array, or a list of arrays) rather than strings."""
    if isinstance(X, np.ndarray):
        return X.dtype.kind in "fiu"
    items = list(X) if isinstance(X, (list, tuple)) else []
    return bool(items) and isinstance(items[0], np.ndarray)


class SeriesFeatures:
    def __init__(self, mean: np.ndarray | None = None, scale: np.ndarray | None = None) -> None:
        self.mean, self.scale = mean, scale

    @staticmethod
    def _arrays(X) -> list[np.ndarray]:
        out = []
        for i, x in enumerate(X):
            a = np.asarray(x, dtype=np.float64)
            if a.ndim == 1:
                a = a[:, None]
            if a.ndim != 2 or len(a) == 0:
                raise ValueError(f"sample {i} must be a non-empty (T,) or (T, D) array; got shape {a.shape}")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"sample {i} holds NaN or infinite values")
            out.append(a)
        if len({a.shape[1] for a in out}) > 1:
            raise ValueError("every sample must have the same number of features D")
        return out

    @property
    def size(self) -> int:
        return len(self.mean)

    def fit(self, X) -> "SeriesFeatures":
        steps = np.concatenate(self._arrays(X))
        self.mean, self.scale = steps.mean(axis=0), steps.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        return self

    def encode(self, X) -> list[np.ndarray]:
        arrays = self._arrays(X)
        if arrays and arrays[0].shape[1] != self.size:
            raise ValueError(f"the model reads {self.size} feature(s) per step; got {arrays[0].shape[1]}")
        return [((a - self.mean) / self.scale).astype(np.float32) for a in arrays]

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> "SeriesFeatures":
        mean, scale = np.asarray(state["mean"], dtype=np.float64), np.asarray(state["scale"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape or not 1 <= len(mean) <= 100_000 \
                or not np.all(np.isfinite(mean)) or not np.all(scale > 0):
            raise ValueError("series features must be equal-length lists of finite numbers (scales > 0)")
        return cls(mean, scale)
