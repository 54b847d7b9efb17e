"""The scoring rules of the Numenta Anomaly Benchmark (Lavin & Ahmad 2015, "Evaluating real-time
anomaly detection algorithms"), written from the paper and its published behaviour.

A detector gives every row of every stream a score; one threshold per profile turns scores into
detections (score >= threshold). Each labelled anomaly window [a, b] (row indices, width
w = b - a + 1) earns the credit of its earliest detection only:

    credit(i) = tp * sigma(-(b - i + 1) / w) / sigma(-1),  sigma(x) = 2 / (1 + exp(5x)) - 1

so detecting at the window's left edge earns the full tp weight and credit falls towards 0 at
its right edge; a window with no detection costs -fn. Every detection outside a window costs
fp * sigma(d / (w' - 1)) (d = rows since the previous window ended, w' its width; sigma is
negative here and -1 beyond 3 widths), and fp * -1 before the first window. Rows in the
probationary period (the first min(15% of the stream, 750) rows, where a detector is still
learning) are not scored. The threshold of a profile is the one that maximises the detector's
raw total over the corpus; the reported score is normalised so that a detector that never fires
scores 0 and one that detects every window at its left edge scores 100:

    score = 100 * (raw - null) / (perfect - null),  null = -fn * windows,  perfect = tp * windows
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# (true-positive, false-positive, false-negative) weights of NAB's three application profiles
PROFILES = {
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}
PROBATION_FRACTION = 0.15
PROBATION_CAP = 750  # rows: 15% of 5,000


def scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """2 / (1 + exp(5 x)) - 1, and -1 beyond x = 3 (far past a window)."""
    position = np.asarray(position, dtype=np.float64)
    value = 2.0 / (1.0 + np.exp(np.clip(5.0 * position, -700, 700))) - 1.0
    return np.where(position > 3.0, -1.0, value)


@dataclass(frozen=True)
class LabelledStream:
    """One stream's length and its anomaly windows as inclusive (first row, last row) index pairs
    in time order."""

    length: int
    windows: tuple[tuple[int, int], ...]

    def probation(self) -> int:
        """Rows at the start that are never scored."""
        return int(min(math.floor(PROBATION_FRACTION * self.length), PROBATION_CAP))


def row_credits(stream: LabelledStream, profile: str) -> tuple[np.ndarray, np.ndarray]:
    """(credit, window) per row: what a detection there would add to the raw score, and the index
    of the window holding the row (-1 outside every window, -2 in the probationary period)."""
    tp, fp, _ = PROFILES[profile]
    n = stream.length
    rows = np.arange(n)
    credit = np.full(n, -fp)  # before any window: a false positive far from every window
    window = np.full(n, -1)
    for k, (a, b) in enumerate(stream.windows):
        if not 0 <= a <= b < n:
            raise ValueError(f"window {k} ({a}, {b}) lies outside the stream's {n} rows")
        width = b - a + 1
        inside = rows[a:b + 1]
        credit[a:b + 1] = scaled_sigmoid(-(b - inside + 1) / width) * tp / scaled_sigmoid(-1.0)
        window[a:b + 1] = k
        end = stream.windows[k + 1][0] if k + 1 < len(stream.windows) else n
        after = rows[b + 1:end]
        credit[b + 1:end] = scaled_sigmoid((after - b) / max(width - 1, 1)) * fp
    window[:stream.probation()] = -2
    return credit, window


def _corpus_rows(streams: list[LabelledStream], scores: list[np.ndarray], profile: str):
    """Scored rows of all streams: (score, credit, corpus-wide window id or -1), and the number of
    windows that have at least one scored row."""
    all_scores, all_credits, all_windows, offset = [], [], [], 0
    for stream, score in zip(streams, scores, strict=True):
        score = np.asarray(score, dtype=np.float64)
        if score.shape != (stream.length,):
            raise ValueError(f"a stream of {stream.length} rows got {score.shape} scores")
        credit, window = row_credits(stream, profile)
        keep = window != -2
        present = np.unique(window[keep & (window >= 0)])
        renumber = np.full(len(stream.windows) + 1, -1)  # window k -> corpus id; the extra entry: none
        renumber[present] = offset + np.arange(len(present))
        offset += len(present)
        all_scores.append(score[keep])
        all_credits.append(credit[keep])
        all_windows.append(np.where(window[keep] >= 0, renumber[window[keep]], -1))
    return np.concatenate(all_scores), np.concatenate(all_credits), np.concatenate(all_windows), offset


def sweep(streams: list[LabelledStream], scores: list[np.ndarray], profile: str) -> tuple[np.ndarray, np.ndarray]:
    """The raw corpus score at every threshold worth trying: (thresholds, raw scores), thresholds
    descending from one above the highest score (nothing detected) to the lowest score."""
    _, _, fn = PROFILES[profile]
    score, credit, window, counted = _corpus_rows(streams, scores, profile)
    order = np.argsort(-score, kind="stable")
    score, credit, window = score[order], credit[order], window[order]
    # a window's value is the best credit detected so far (or -fn): the running maximum within each
    # window, in detection order; its increments are what each row adds to the total
    inside = np.flatnonzero(window >= 0)
    gain = np.where(window >= 0, 0.0, credit)
    if len(inside):
        w = window[inside]
        by_window = np.lexsort((inside, w))  # rows of window 0 in detection order, then window 1, ...
        rows, groups = inside[by_window], w[by_window]
        span = 10.0 * (abs(fn) + 2.0)  # keeps each window's values above every earlier window's
        running = np.maximum.accumulate(groups * span + np.maximum(credit[rows], -fn)) - groups * span
        previous = np.where(np.r_[True, groups[1:] != groups[:-1]], -fn, np.r_[-fn, running[:-1]])
        gain[rows] = running - previous
    totals = -fn * counted + np.cumsum(gain)
    last_of_tie = np.r_[score[1:] != score[:-1], True] if len(score) else np.zeros(0, bool)
    top = score[0] + 1.0 if len(score) else 1.0
    return np.r_[top, score[last_of_tie]], np.r_[-fn * counted, totals[last_of_tie]]


def _total_at(thresholds: np.ndarray, totals: np.ndarray, threshold: float) -> float:
    """The swept total when every row scoring >= threshold is a detection."""
    reached = np.flatnonzero(thresholds >= threshold)
    return float(totals[reached[-1]]) if len(reached) else float(totals[0])


def raw_score(streams: list[LabelledStream], scores: list[np.ndarray], profile: str, threshold: float) -> float:
    """The raw corpus score when every row scoring >= threshold is a detection."""
    return _total_at(*sweep(streams, scores, profile), threshold)


@dataclass(frozen=True)
class NabResult:
    score: float  # normalised: 0 = never fires, 100 = perfect
    raw: float
    threshold: float
    null: float
    perfect: float


def nab_score(streams: list[LabelledStream], scores: list[np.ndarray], profile: str = "standard",
              threshold: float | None = None) -> NabResult:
    """The normalised NAB score of a detector on a corpus; threshold None: the best one (NAB's rule)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)} (got {profile!r})")
    if not any(s.windows for s in streams):  # then never firing is perfect: the normalised score has no scale
        raise ValueError("the NAB score needs at least one labelled anomaly window among the streams; these have none")
    tp = PROFILES[profile][0]
    thresholds, totals = sweep(streams, scores, profile)
    if threshold is None:
        best = int(np.argmax(totals))  # the first maximum: the highest threshold among equals
        threshold, raw = float(thresholds[best]), float(totals[best])
    else:
        raw = _total_at(thresholds, totals, threshold)
    null = float(totals[0])  # nothing detected: every counted window missed
    perfect = tp * sum(len(s.windows) for s in streams)
    return NabResult(100.0 * (raw - null) / (perfect - null), raw, threshold, null, perfect)
