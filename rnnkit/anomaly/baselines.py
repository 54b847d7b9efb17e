"""The detectors a practitioner tries first, each giving a (T,) score, higher = more anomalous,
and each using only the past at every step unless it says otherwise:

  sliding_gaussian  the value's two-sided tail surprise (-log10 p) under a Gaussian fitted to the
                    previous `window` values (NAB's windowed Gaussian, with a long window)
  rolling_zscore    |value - mean| / sd of the previous `window` values (a short window)
  level_novelty     how rare the value's distance from the median of the first `train` steps is
                    among all earlier distances (scoring.empirical_surprise): no model, no
                    distribution, only "never this far out before"
  isolation_forest  scikit-learn's IsolationForest (Liu et al. 2008) on lag vectors of the last
                    `lags` values, fitted on the first `train` steps only
  matrix_profile    distance of the subsequence ending at each step to its nearest neighbour
                    (z-normalised Euclidean; Yeh et al. 2016) with stumpy: among earlier
                    subsequences only (the left matrix profile, online), or among all (offline:
                    the classic discord)
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr

from ..extras import require
from .scoring import empirical_surprise

BASELINES = ("sliding_gaussian", "rolling_zscore", "level_novelty", "isolation_forest", "matrix_profile")


def _past_moments(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation and count of x[t - window : t] for every t (O(T))."""
    # centred on the first value so the cumulative sums stay accurate for large levels
    x = x - x[0] if len(x) else x
    s1 = np.concatenate([[0.0], np.cumsum(x)])
    s2 = np.concatenate([[0.0], np.cumsum(x * x)])
    t = np.arange(len(x))
    start = np.maximum(t - window, 0)
    count = t - start
    mean = (s1[t] - s1[start]) / np.maximum(count, 1)
    var = (s2[t] - s2[start]) / np.maximum(count, 1) - mean ** 2
    return mean, np.sqrt(np.maximum(var, 0.0)), count


def rolling_zscore(x: np.ndarray, window: int = 50) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    mean, sd, count = _past_moments(x, window)
    x0 = x - x[0] if len(x) else x
    z = np.abs(x0 - mean) / (sd + 1e-9 * (1 + np.abs(mean)))
    return np.where(count >= 2, np.minimum(z, 1e6), 0.0)


def sliding_gaussian(x: np.ndarray, window: int = 6400) -> np.ndarray:
    z = rolling_zscore(x, window)
    return -(log_ndtr(-z) + np.log(2.0)) / np.log(10.0)  # -log10 P(|N(0, 1)| > z)


def level_novelty(x: np.ndarray, train: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    centre = np.median(x[:train or len(x)]) if len(x) else 0.0
    return empirical_surprise(np.abs(x - centre))


def isolation_forest(x: np.ndarray, lags: int = 16, train: int | None = None, seed: int = 0) -> np.ndarray:
    """Scores of the lag vector ending at each step; the first lags - 1 steps (no full vector) score
    as the most normal step."""
    from sklearn.ensemble import IsolationForest
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(len(x))
    if len(x) < lags + 1:
        return out
    vectors = np.lib.stride_tricks.sliding_window_view(x, lags)  # row k ends at step k + lags - 1
    train = len(vectors) if train is None else min(max(train - lags + 1, 2), len(vectors))
    forest = IsolationForest(n_estimators=100, random_state=seed).fit(vectors[:train])
    scores = -forest.score_samples(vectors)
    out[lags - 1:] = scores
    out[:lags - 1] = scores.min()
    return out


def matrix_profile(x: np.ndarray, m: int = 32, online: bool = True) -> np.ndarray:
    """Each step's score is the profile of the subsequence that ends there (0 before the first)."""
    require(("stumpy",), "anomaly", "the matrix-profile baseline")
    import stumpy
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(len(x))
    if len(x) < 2 * m:
        return out
    profile = stumpy.stump(x, m)  # columns: distance, index, left index, right index
    if online:
        left = profile[:, 2].astype(np.int64)
        distance = np.zeros(len(left))
        has = left >= 0
        if has.any():
            windows = np.lib.stride_tricks.sliding_window_view(x, m)
            a, b = windows[has], windows[left[has]]
            za = (a - a.mean(1, keepdims=True)) / (a.std(1, keepdims=True) + 1e-12)
            zb = (b - b.mean(1, keepdims=True)) / (b.std(1, keepdims=True) + 1e-12)
            distance[has] = np.sqrt(((za - zb) ** 2).sum(1))
    else:
        distance = profile[:, 0].astype(np.float64)
    out[m - 1:] = np.nan_to_num(distance, nan=0.0, posinf=0.0)
    return out
