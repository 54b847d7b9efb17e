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


def empirical_surprise(values: np.ndarray, reference: np.ndarray | None = None, block: int = 1024,
                       tail_index: float = 0.0) -> np.ndarray:
    """-log10 of the share of earlier values (and of `reference` values, known before the first)
    at least as large as each value, counting the value itself:
    (1 + #{reference >= v_t} + #{s < t: v_s >= v_t}) / (1 + len(reference) + t). No distribution is
    assumed; a value larger than everything before it scores log10(1 + len(reference) + t).
    O(T log T): the past is kept sorted, a block at a time.

    With `tail_index` a > 0 the tail beyond the largest value seen, M, is taken as a power law
    (a Pareto tail) over the reference's median c: a record v is ((v - c) / (M - c))^a times rarer
    than one that just tops M, so it scores a * log10((v - c) / (M - c)) more. A record after a
    short past then scores by how far it tops that past, not only by how long the past was."""
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
    if tail_index > 0 and len(v):
        referenced = reference is not None and len(reference) > 0
        center = float(np.median(reference)) if referenced else 0.0
        first = float(np.max(reference)) if referenced else -np.inf
        before = np.maximum.accumulate(np.concatenate([[first], v]))[:-1]  # the largest value before each
        record = (v > before) & (before > center)
        out[record] += tail_index * np.log10((v[record] - center) / (before[record] - center))
    return out


RANGE_BREAK = 10.0  # added to the score of a range break: above any empirical surprise among fewer than 10^10 errors


def value_range(series: list[np.ndarray]) -> np.ndarray | None:
    """(2, D): the lowest and highest value of each column over all series (T, D); None when a
    column has no finite value."""
    values = np.concatenate([np.asarray(s, dtype=np.float64).reshape(len(s), -1) for s in series])
    finite = np.where(np.isfinite(values), values, np.nan)
    if len(values) == 0 or np.isnan(finite).all(axis=0).any():
        return None
    return np.stack([np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)])


def range_breaks(values: np.ndarray, margin: float, low: np.ndarray | None = None,
                 high: np.ndarray | None = None) -> np.ndarray:
    """(T,) True where a step's value (any column of values (T, D)) lies outside the range of all
    earlier values, and of [low, high] (D,) known before the first, by more than `margin` times that
    range's width. Numenta's detector adds the same check to its network (a level never seen is an
    anomaly whatever the sequence model says); a recurrent network trained on a narrower range can
    rebuild an out-of-range value too well. Steps with nothing before them never break a range."""
    v = np.asarray(values, dtype=np.float64)
    v = v.reshape(len(v), -1)
    known = low is not None and high is not None and len(low) == v.shape[1]
    first_low = np.asarray(low, dtype=np.float64) if known else np.full(v.shape[1], np.inf)
    first_high = np.asarray(high, dtype=np.float64) if known else np.full(v.shape[1], -np.inf)
    # NaN (a missing value) neither breaks nor widens a range
    lowest = np.minimum.accumulate(np.vstack([first_low, np.where(np.isnan(v), np.inf, v)]))[:-1]
    highest = np.maximum.accumulate(np.vstack([first_high, np.where(np.isnan(v), -np.inf, v)]))[:-1]
    seen = np.isfinite(lowest) & np.isfinite(highest)
    width = np.where(seen, highest - lowest, 0.0)
    with np.errstate(invalid="ignore"):
        broken = seen & ((v > highest + margin * width) | (v < lowest - margin * width))
    return broken.any(axis=1)


def quieten(scores: np.ndarray, steps: int) -> np.ndarray:
    """Scores that do not exceed every score of the `steps` steps before them become 0 (0: no
    change). An anomaly usually disturbs many steps in a row; the first and any rising scores
    keep the alarm, the rest would be repeats of it, each a false alarm by the Numenta Anomaly
    Benchmark's rules. O(T) whatever `steps` is (scipy's running maximum)."""
    s = np.asarray(scores, dtype=np.float64)
    if steps <= 0 or len(s) == 0:
        return s.copy()
    from scipy.ndimage import maximum_filter1d
    padded = np.concatenate([np.full(steps, -np.inf), s])
    # window [i, i + steps) of padded, i.e. scores[t - steps : t] for t = i
    before = maximum_filter1d(padded, size=steps, mode="nearest", origin=-(steps // 2))[:len(s)]
    return np.where(s > before, s, 0.0)
