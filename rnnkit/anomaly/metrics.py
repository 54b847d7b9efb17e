"""Point-wise detection metrics for labelled series (labels: (T,) 0/1, scores: (T,), higher = more
anomalous):

  roc_auc, pr_auc  threshold-free (PR-AUC as average precision: the one to read when anomalies are rare)
  best_f1          F1 at the best threshold
  adjusted_f1      the same after point adjustment (Xu et al. 2018): flagging any point of a labelled
                   segment counts the whole segment as found. It is reported because papers do, and
                   beside plain F1 because it inflates scores: Kim et al. 2022 show random scores
                   reach high point-adjusted F1 on long segments.
  top_in_anomaly   whether the highest score falls inside a labelled segment (widened by `margin`
                   steps each side): the UCR anomaly archive's criterion (Wu & Keogh 2021)
"""

from __future__ import annotations

import numpy as np


def _check(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(bool)
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be matching 1-D arrays")
    if not labels.any() or labels.all():
        raise ValueError("labels must hold both anomalous and normal points")
    return labels, scores


def roc_auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(*_check(labels, scores)))


def pr_auc(labels, scores) -> float:
    from sklearn.metrics import average_precision_score
    return float(average_precision_score(*_check(labels, scores)))


def _best_f1(labels: np.ndarray, scores: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(labels[order])
    ends = np.r_[scores[order][1:] != scores[order][:-1], True]  # thresholds between distinct scores
    tp = hits[ends]
    flagged = (np.arange(1, len(scores) + 1))[ends]
    f1 = 2 * tp / (flagged + labels.sum())
    return float(f1.max())


def best_f1(labels, scores) -> float:
    return _best_f1(*_check(labels, scores))


def segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index of every run of 1s."""
    edges = np.diff(np.r_[0, np.asarray(labels).astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def adjusted_f1(labels, scores) -> float:
    """Best F1 when each labelled segment counts as found, all of it, once any point in it is
    flagged: every point of a segment takes the segment's highest score."""
    labels, scores = _check(labels, scores)
    adjusted = scores.copy()
    for a, b in segments(labels):
        adjusted[a:b + 1] = scores[a:b + 1].max()
    return _best_f1(labels, adjusted)


def top_in_anomaly(labels, scores, margin: int = 100) -> bool:
    labels, scores = _check(labels, scores)
    top = int(np.argmax(scores))
    return any(a - margin <= top <= b + margin for a, b in segments(labels))


def summary(labels, scores) -> dict[str, float]:
    return {"roc_auc": roc_auc(labels, scores), "pr_auc": pr_auc(labels, scores), "best_f1": best_f1(labels, scores),
            "adjusted_f1": adjusted_f1(labels, scores)}
