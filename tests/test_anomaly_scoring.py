"""Anomaly scoring: the NAB rules on hand-computed cases, point-wise metrics, scores that use only
the past, and the baselines that a detector is measured against."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnkit.anomaly import RNNAnomalyDetector, baselines
from rnnkit.anomaly import metrics as M
from rnnkit.anomaly.nab import LabelledStream, nab_score, raw_score, row_credits, sweep
from rnnkit.anomaly.scoring import surprise

pytest.importorskip("pandas")


def sigma(x: float) -> float:
    return 2 / (1 + math.exp(5 * x)) - 1


# ---------------------------------------------------------------------------- NAB's rules
STREAM = LabelledStream(40, ((10, 14),))  # probation: floor(0.15 * 40) = 6 rows


def detections(*rows: int, n: int = 40) -> np.ndarray:
    scores = np.zeros(n)
    scores[list(rows)] = 1.0
    return scores


def test_nab_credit_of_a_detection_by_hand():
    full = 1.0  # at the window's left edge: the full true-positive weight
    right_edge = sigma(-1 / 5) / sigma(-1)  # last row of the 5-row window
    assert raw_score([STREAM], [detections(10)], "standard", 0.5) == pytest.approx(full)
    assert raw_score([STREAM], [detections(14)], "standard", 0.5) == pytest.approx(right_edge)
    # only the earliest detection in a window counts; later ones in it are free
    assert raw_score([STREAM], [detections(10, 12, 14)], "standard", 0.5) == pytest.approx(full)
    # a false positive before any window costs the whole fp weight; one just after a window costs less
    assert raw_score([STREAM], [detections(8, 10)], "standard", 0.5) == pytest.approx(full - 0.11)
    assert raw_score([STREAM], [detections(10, 15)], "standard", 0.5) == pytest.approx(full + 0.11 * sigma(1 / 4))
    assert raw_score([STREAM], [detections(10, 30)], "standard", 0.5) == pytest.approx(full - 0.11)  # past 3 widths
    # a detection in the probationary period is not scored; a missed window costs fn
    assert raw_score([STREAM], [detections(2)], "standard", 0.5) == pytest.approx(-1.0)
    assert raw_score([STREAM], [detections(2)], "reward_low_FN_rate", 0.5) == pytest.approx(-2.0)
    assert raw_score([STREAM], [detections(8, 10)], "reward_low_FP_rate", 0.5) == pytest.approx(full - 0.22)


def test_nab_normalises_between_never_firing_and_perfect():
    assert nab_score([STREAM], [detections()], threshold=0.5).score == pytest.approx(0.0)
    assert nab_score([STREAM], [detections(10)], threshold=0.5).score == pytest.approx(100.0)
    half = nab_score([STREAM], [detections(14)], threshold=0.5)
    assert half.score == pytest.approx(100 * (sigma(-0.2) / sigma(-1) + 1) / 2)
    with pytest.raises(ValueError, match="have none"):  # no windows: nothing to normalise by
        nab_score([LabelledStream(40, ())], [detections(10)])


def test_nab_sweep_finds_the_best_threshold_and_matches_direct_scoring():
    rng = np.random.default_rng(0)
    streams = [STREAM, LabelledStream(30, ((5, 7), (20, 25)))]
    scores = [rng.random(40), rng.random(30)]
    thresholds, totals = sweep(streams, scores, "standard")
    for t, total in zip(thresholds[::7], totals[::7]):
        assert raw_score(streams, scores, "standard", t) == pytest.approx(total)
        direct = 0.0  # the rules, row by row, for this threshold
        for stream, s in zip(streams, scores):
            credit, window = row_credits(stream, "standard")
            hit = (s >= t) & (window != -2)
            direct += credit[hit & (window == -1)].sum()
            for k in range(len(stream.windows)):
                inside = hit & (window == k)
                direct += credit[inside].max() if inside.any() else -1.0
        assert direct == pytest.approx(total)
    best = nab_score(streams, scores)
    assert best.raw == pytest.approx(totals.max()) and best.threshold in thresholds


# ---------------------------------------------------------------------------- metrics and scores
def test_point_adjusted_f1_credits_a_whole_segment_for_one_hit():
    labels = np.zeros(1000, dtype=int)
    labels[40:60] = 1
    scores = np.zeros(1000)
    scores[45] = 1.0  # one point of the 20-point segment
    assert M.best_f1(labels, scores) == pytest.approx(2 * 1 / (1 + 20))
    assert M.adjusted_f1(labels, scores) == pytest.approx(1.0)
    assert M.top_in_anomaly(labels, scores, margin=0) and M.roc_auc(labels, scores) > 0.5
    with pytest.raises(ValueError, match="both anomalous and normal"):
        M.pr_auc(np.zeros(5), np.zeros(5))


def test_scores_use_only_the_past():
    rng = np.random.default_rng(1)
    errors = np.abs(rng.standard_normal(500))
    base = surprise(errors, 100, 3)
    changed = errors.copy()
    changed[300:] *= 10
    assert np.array_equal(surprise(changed, 100, 3)[:300], base[:300])
    spiked = errors.copy()
    spiked[400] = 20.0
    assert np.argmax(surprise(spiked, 100, 1)) == 400
    for detector in (baselines.rolling_zscore, baselines.sliding_gaussian):
        values = np.sin(np.arange(500) / 5) + 0.1 * rng.standard_normal(500)
        other = values.copy()
        other[300:] += 5
        assert np.array_equal(detector(values)[:300], detector(other)[:300])


def test_empirical_surprise_counts_the_past_by_hand():
    from rnnkit.anomaly.scoring import empirical_surprise
    values = np.array([3.0, 1.0, 2.0, 5.0, 2.0] * 60)
    got = empirical_surprise(values, block=7)  # blocks smaller than the series: the sorted past is used
    for t in (0, 1, 2, 3, 4, 299):
        expected = -np.log10((1 + (values[:t] >= values[t]).sum()) / (1 + t))
        assert got[t] == pytest.approx(expected)
    assert got[3] == pytest.approx(np.log10(4))  # larger than all three before it
    shifted = np.r_[np.zeros(200), np.full(10, 9.0)]
    assert np.argmax(baselines.level_novelty(shifted, train=100)) == 200


def test_a_record_scores_by_how_far_it_tops_the_last_one_by_hand():
    from rnnkit.anomaly.scoring import empirical_surprise
    reference, values = np.array([0.0, 1.0, 2.0]), np.array([3.0, 2.5, 9.0])  # the reference: median 1, max 2
    plain = empirical_surprise(values, reference)
    assert plain == pytest.approx([np.log10(4), np.log10(2.5), np.log10(6)])
    got = empirical_surprise(values, reference, tail_index=2)
    # records: 3 tops 2 by twice the excess over the median (2 / 1), 9 tops 3 by four times it (8 / 2)
    assert got == pytest.approx(plain + [2 * np.log10(2), 0.0, 2 * np.log10(4)])
    # without a reference the median is 0, and the first value has no record to top
    assert empirical_surprise(values, tail_index=2) == pytest.approx(empirical_surprise(values) +
                                                                     [0.0, 0.0, 2 * np.log10(9 / 3)])
    with pytest.raises(Exception, match="--tail-index must be in 0..100"):
        RNNAnomalyDetector(tail_index=-1).fit(np.arange(50.0))


def test_range_breaks_by_hand():
    from rnnkit.anomaly.scoring import range_breaks, value_range
    values = np.array([1.0, 2.0, 3.0, 2.0, 3.05, 3.1, 0.5, np.nan, 5.0])
    # step 4: 3.05 > 3 + 0.02 x (3 - 1); step 5: 3.1 > 3.05 + 0.02 x 2.05; step 6: 0.5 < 1 - 0.02 x 2.1
    assert range_breaks(values, 0.02).astype(int).tolist() == [0, 1, 1, 0, 1, 1, 1, 0, 1]
    assert range_breaks(values, 0.02, np.array([0.0]), np.array([4.0])).astype(int).tolist() == [0] * 8 + [1]
    assert range_breaks(values, 0.2).astype(int).tolist() == [0, 1, 1, 0, 0, 0, 1, 0, 1]
    two = np.stack([np.r_[0.0, 1, 0.5, 0.5], np.r_[5.0, 5, 5, 9]], axis=1)  # (T, 2): any column breaks
    assert range_breaks(two, 0.0, *value_range([two[:2]])).astype(int).tolist() == [0, 0, 0, 1]
    assert value_range([np.array([np.nan, np.nan])]) is None


def test_quieten_keeps_only_scores_above_the_recent_past():
    from rnnkit.anomaly.scoring import quieten
    assert quieten(np.array([1.0, 3.0, 2.0, 3.0, 4.0, 0.5, 0.2, 0.1, 2.5]), 3).tolist() == \
        [1.0, 3.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 2.5]
    rng = np.random.default_rng(0)
    for steps in (1, 2, 5, 64):
        s = rng.random(300) * rng.integers(0, 3, 300)
        expected = [s[t] if t == 0 or s[t] > s[max(0, t - steps):t].max() else 0.0 for t in range(300)]
        assert quieten(s, steps).tolist() == expected
    assert quieten(s, 0).tolist() == s.tolist()


def test_isolation_forest_baseline_finds_a_spike():
    values = np.sin(np.arange(600) / 4)
    values[500] += 4
    scores = baselines.isolation_forest(values, lags=8, train=400)
    assert 500 <= np.argmax(scores) < 508


def test_matrix_profile_baseline_finds_a_discord():
    pytest.importorskip("stumpy")
    rng = np.random.default_rng(0)
    values = np.sin(2 * np.pi * np.arange(1200) / 40) + 0.05 * rng.standard_normal(1200)
    values[900:920] = 0.0
    left = baselines.matrix_profile(values, 32, online=True)  # early steps have little past to match
    assert 900 <= 200 + np.argmax(left[200:]) < 960
    assert 900 <= np.argmax(baselines.matrix_profile(values, 32, online=False)) < 960
