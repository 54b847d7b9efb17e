"""Numeric sequences as classifier inputs: each sample a (T, D) array (T may differ between
samples; a 1-D array is one value per step), every feature standardised by the mean and
standard deviation of the training samples' steps (saved with the model)."""

from __future__ import annotations

from typing import Any

import numpy as np


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
