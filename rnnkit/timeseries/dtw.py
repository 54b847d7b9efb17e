"""1-nearest-neighbour classification under dynamic time warping, the baseline time-series
classifiers are measured against (Bagnall et al. 2017; Ratanamahatana & Keogh 2004).

Multivariate samples use dependent DTW (one warping path for all D dimensions, the cost of a
cell the squared Euclidean distance between the two D-vectors; Shokoohi-Yekta et al. 2017).
The dynamic programme runs over one query against all training samples at once (padded to the
longest), so Python loops only over the query's and the longest sample's steps."""

from __future__ import annotations

import numpy as np


def distances(query: np.ndarray, samples: list[np.ndarray]) -> np.ndarray:
    """DTW distance (no warping window) from query (n, D) to each sample (m_b, D)."""
    lengths = np.array([len(s) for s in samples])
    longest, n = int(lengths.max()), len(query)
    padded = np.zeros((len(samples), longest, query.shape[1]))
    for b, s in enumerate(samples):
        padded[b, :len(s)] = s
    cost = ((query[None, :, None, :] - padded[:, None, :, :]) ** 2).sum(axis=-1)  # (B, n, longest)
    total = np.full((len(samples), n + 1, longest + 1), np.inf)
    total[:, 0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, longest + 1):
            best = np.minimum(np.minimum(total[:, i - 1, j], total[:, i, j - 1]), total[:, i - 1, j - 1])
            total[:, i, j] = cost[:, i - 1, j - 1] + best
    return np.sqrt(total[np.arange(len(samples)), n, lengths])


def nearest_neighbour(train: list[np.ndarray], labels, test: list[np.ndarray]) -> np.ndarray:
    """The label of each test sample's nearest training sample under DTW."""
    labels = np.asarray(labels)
    train = [np.asarray(s, dtype=np.float64).reshape(len(s), -1) for s in train]
    return np.array([labels[np.argmin(distances(np.asarray(q, dtype=np.float64).reshape(len(q), -1), train))]
                     for q in test])
