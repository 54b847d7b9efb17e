"""Why a fitted `RNNAnomalyDetector` scored a step as it did: what its network expected there,
the range it expected the step in, and the steps that set that expectation (gradient x input;
Simonyan et al. 2014; Shrikumar et al. 2017). `rnnkit anomaly explain` and `score --plot` draw
these; the detector's `expected` and `explain_step` call them.

Prediction: the one-step forecast and its central `level` interval. Reconstruction: the rebuilt
value and the range 99% of the training steps were rebuilt within (the detector's `band_`); with
blocks (`block_` > 1) the rebuilt block mean, shown over each step of the block, and each step's
gradient x input through the mean it enters (the mean weighs each step 1 / k).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..timeseries.data import Panel
from ..timeseries.forecaster import _phases, as_series
from ..timeseries.network import quantiles
from ..timeseries.windows import MIN_CONTEXT, Windows
from .blocks import block_means, blocked, over_steps
from .reconstruction import SCORE_BATCH, ScaledWindows, rebuilt_saliency


@torch.no_grad()
def expected_values(detector, y, level: float = 0.99) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For every series, the fitted network's one-step forecast of each step: (mean, low, high)
    as (T, D) arrays, [low, high] its central `level` interval (NaN for the first steps)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) (got {level})")
    check_is_fitted(detector, "model_")
    series, _ = as_series(y)
    if detector.method == "reconstruction" and detector.block_ > 1:
        B = detector.block_
        per_block = _expected_rebuilt(detector, blocked(y, series, B), block_means(series, B), level)
        return [tuple(over_steps(a, len(s), B) for a in triple) for triple, s in zip(per_block, series)]
    if detector.method == "reconstruction":
        return _expected_rebuilt(detector, y, series, level)
    model = detector.model_
    windows = Windows(series, detector.context_length_, 1, detector.season_, _phases(y, detector.season_))
    device = next(model.parameters()).device
    out = []
    for i, s in enumerate(series):
        mean, low, high = (np.full(s.shape, np.nan) for _ in range(3))
        rows = np.arange(MIN_CONTEXT, len(s))
        for start in range(0, len(rows), SCORE_BATCH):
            cuts = rows[start:start + SCORE_BATCH]
            context, lengths, location, scale = windows.batch(np.stack([np.full(len(cuts), i), cuts], 1),
                                                              device, False)
            predicted = model.distribution(model(context, lengths))
            bands = quantiles(predicted, [(1 - level) / 2, (1 + level) / 2])[:, 0]  # (B, D, 2)
            loc, sc = location.double().cpu().numpy(), scale.double().cpu().numpy()
            mean[cuts] = loc + sc * predicted.mean[:, 0].double().cpu().numpy()
            low[cuts], high[cuts] = loc + sc * bands[..., 0], loc + sc * bands[..., 1]
        out.append((mean, low, high))
    return out


def _expected_rebuilt(detector, y, series: list[np.ndarray], level: float):
    """Reconstruction: the rebuilt value of each step, and the range 99% of the training steps were
    rebuilt within."""
    if abs(level - 0.99) > 1e-9:
        raise ValueError("a reconstruction model knows its 99% range only (level=0.99)")
    location, spread = detector._scaling(y, len(series))
    windows = ScaledWindows(series, location, spread, detector.context_length_)
    out = []
    for i, s in enumerate(series):
        mean = np.full(s.shape, np.nan)
        pairs = windows.pairs(i)
        if len(pairs):
            _, rebuilt = detector._rebuild_errors(detector.model_, windows, pairs, rebuilt=True)
            mean[pairs[:, 1]] = location[i] + spread[i] * rebuilt
        out.append((mean, mean - detector.band_ * spread[i], mean + detector.band_ * spread[i]))
    return out


def explain_step(detector, y, t: int, level: float = 0.99) -> dict:
    """Why step t of one series (y: one series, or a Panel of one) scored as it did: the value
    `expected` there, its `level` range (`low`, `high`; per value column) and `contribution`, the
    gradient x input of that expectation for each step the network read, (n, D) for the steps
    `steps`; `value`, what the expectation is of (the step's values, or its block's mean)."""
    series, _ = as_series(y)
    if len(series) != 1 or not 0 <= t < len(series[0]):
        raise ValueError(f"explain_step needs one series and a step inside it (got {len(series)} series, step {t})")
    if detector.method == "prediction":
        from ..timeseries.forecaster import saliency
        if t < MIN_CONTEXT:
            raise ValueError(f"step {t} has fewer than {MIN_CONTEXT} steps before it to forecast from")
        before = y.subset([0], [t]) if isinstance(y, Panel) else [series[0][:t]]
        contribution = saliency(detector, before, 1)[0]  # (L, D), the last L steps before t
        mean, bands = detector.forecast(before, [(1 - level) / 2, (1 + level) / 2])
        n = min(t, len(contribution))
        return {"expected": mean[0, 0], "low": bands[0, 0, :, 0], "high": bands[0, 0, :, 1],
                "contribution": contribution[-n:], "steps": np.arange(t - n, t), "value": series[0][t]}
    L, B = detector.context_length_, detector.block_
    if t < L * B - 1:
        raise ValueError(f"step {t} is inside the first window; reconstruction scores from step {L * B - 1} on")
    if t % B != B - 1:  # (a step that ends a block ends a whole one)
        raise ValueError(f"step {t} is inside a block of {B} steps; a block is scored, and explained, at its last "
                         f"step ({t // B * B + B - 1})")
    steps = np.arange(t - L * B + 1, t + 1)
    location, spread = detector._scaling(y, 1)
    read = (series[0][steps] - location[0]) / spread[0]  # (L * B, D): the steps, scaled as the network sees them
    if B > 1:
        y, series = blocked(y, series, B), block_means(series, B)
    rebuilt, contribution, gradient = rebuilt_saliency(detector.model_, ScaledWindows(series, location, spread, L),
                                                       t // B)
    if B > 1:  # d rebuilt / d step = d rebuilt / d block mean / B: each step's own gradient x input
        contribution = np.repeat(gradient / B, B, axis=0) * read
    expected = location[0] + spread[0] * rebuilt
    band = detector.band_ * spread[0]
    return {"expected": expected, "low": expected - band, "high": expected + band, "contribution": contribution,
            "steps": steps, "value": series[0][t // B]}
