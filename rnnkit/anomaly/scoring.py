"""From one-step prediction errors to anomaly scores, each using only the past.

A raw error e_t is the forecast's standardised miss |y_t - mean_t| / sd_t (root mean square over
value columns). Errors are not compared with a fixed cut-off: a stream's typical error drifts, so
each is judged against the errors before it, as in Numenta's anomaly likelihood (Ahmad et al.
2017, "Unsupervised real-time anomaly detection for streaming data"):

    mu_t, sd_t = mean and standard deviation of e over the `long` steps before t
    m_t        = mean of e over the `short` steps up to and including t
    score_t    = -log10 P(N(0, 1) > (m_t - mu_t) / sd_t)

so a score of 4 is a one-in-10,000 rise of the recent error above its usual level. Averaging a
few recent errors trades a little delay for far fewer flags on noisy streams (LSTM-AD, Malhotra
et al. 2015, modelled the errors as a Gaussian in the same spirit).
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr

MIN_HISTORY = 5  # errors needed before a score means anything; earlier steps score 0


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of values[max(0, t - window + 1) : t + 1] for every t (O(n), cumulative sums)."""
    total = np.concatenate([[0.0], np.cumsum(values)])
    t = np.arange(1, len(values) + 1)
    start = np.maximum(t - window, 0)
    return (total[t] - total[start]) / (t - start)


def surprise(errors: np.ndarray, long: int, short: int) -> np.ndarray:
    """(T,) scores from (T,) raw errors (NaN: no forecast there, counts as no error)."""
    e = np.nan_to_num(np.asarray(errors, dtype=np.float64), nan=0.0)
    T = len(e)
    # the long window's statistics end just before t: sums over e[t - long : t]
    s1 = np.concatenate([[0.0], np.cumsum(e)])
    s2 = np.concatenate([[0.0], np.cumsum(e * e)])
    t = np.arange(T)
    start = np.maximum(t - long, 0)
    count = t - start
    mean = (s1[t] - s1[start]) / np.maximum(count, 1)
    var = (s2[t] - s2[start]) / np.maximum(count, 1) - mean ** 2
    # a floor on the spread: a flat stretch of near-identical errors must not make any change infinite
    spread = np.sqrt(np.maximum(var, 0.0)) + 0.01 * np.abs(mean) + 1e-6
    z = (trailing_mean(e, short) - mean) / spread
    score = -log_ndtr(-z) / np.log(10.0)
    score[count < MIN_HISTORY] = 0.0
    return score


def empirical_surprise(values: np.ndarray, reference: np.ndarray | None = None, block: int = 1024) -> np.ndarray:
    """-log10 of the share of earlier values (and of `reference` values, known before the first)
    at least as large as each value, counting the value itself:
    (1 + #{reference >= v_t} + #{s < t: v_s >= v_t}) / (1 + len(reference) + t). No distribution is
    assumed; a value larger than everything before it scores log10(1 + len(reference) + t).
    O(T log T): the past is kept sorted, a block at a time."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)
    out = np.zeros(len(v))
    past = np.sort(np.asarray(reference, dtype=np.float64)) if reference is not None else np.zeros(0)
    known = len(past)
    for start in range(0, len(v), block):
        chunk = v[start:start + block]
        at_least = len(past) - np.searchsorted(past, chunk, side="left")  # the reference and earlier blocks
        earlier = np.tri(len(chunk), k=-1, dtype=bool)  # [t, s]: s comes before t in this block
        at_least += ((chunk[None, :] >= chunk[:, None]) & earlier).sum(axis=1)
        seen = known + start + np.arange(len(chunk))
        out[start:start + len(chunk)] = -np.log10((1 + at_least) / (1 + seen))
        past = np.sort(np.concatenate([past, np.sort(chunk)]), kind="stable")  # merges two sorted runs
    return out
