"""Seasonal adjustment before the network: classical decomposition (Persons 1919; the
seasonal indices of the M4 competition's benchmarks, Makridakis et al. 2020).

For a series with season m, a centred moving average of one season (2 x m when m is even)
estimates the trend; the mean of (value - trend) at each place in the season, centred to sum to
zero, is that place's seasonal index. The network then models value - index (under transform log
this is a multiplicative adjustment of the original series) and the index of each future place is
added back to the forecast and to every quantile. The indices are a function of the history the
model is given, so they are computed again, from the history alone, at every forecast: nothing
is stored and a series never seen in training needs nothing either.

"auto" adjusts a series only when it has three full seasons or more and the autocorrelation of
its step changes at lag m is significant at the 90% level (Bartlett's bound, as in the M4
benchmarks' test, but on changes: a trend makes every lag of the levels' autocorrelation large
and so hides the season); shorter or aseasonal series are left as they are.
"""

from __future__ import annotations

import numpy as np

MODES = ("none", "auto", "always")
MIN_SEASONS = 3  # "auto" needs this many full seasons of history before it adjusts


def _moving_average(x: np.ndarray, season: int) -> np.ndarray:
    """Centred moving average of one season along axis 0 of (T, D); NaN where it does not fit."""
    if season % 2:
        weights = np.full(season, 1.0 / season)
    else:  # 2 x m: the two end points count half, so the window stays centred
        weights = np.full(season + 1, 1.0 / season)
        weights[0] = weights[-1] = 0.5 / season
    half = len(weights) // 2
    out = np.full(x.shape, np.nan)
    for d in range(x.shape[1]):
        out[half:len(x) - half, d] = np.convolve(x[:, d], weights, mode="valid")
    return out


def is_seasonal(x: np.ndarray, season: int) -> np.ndarray:
    """(D,) booleans: the lag-`season` autocorrelation of the step changes of each column of x (T, D)
    exceeds the 90% bound 1.645 * sqrt((1 + 2 * sum of squared autocorrelations below the lag) / T)."""
    if season < 2 or len(x) < MIN_SEASONS * season:
        return np.zeros(x.shape[1], dtype=bool)
    changes = np.diff(x, axis=0)
    T = len(changes)
    centred = changes - changes.mean(axis=0)
    variance = (centred ** 2).sum(axis=0)
    acf = np.stack([(centred[k:] * centred[:T - k]).sum(axis=0) for k in range(1, season + 1)])
    acf = acf / np.maximum(variance, 1e-300)  # (season, D)
    bound = 1.645 * np.sqrt((1 + 2 * (acf[:-1] ** 2).sum(axis=0)) / T)
    return (np.abs(acf[-1]) > bound) & (variance > 0)


def seasonal_indices(x: np.ndarray, season: int, phase: int, mode: str) -> np.ndarray | None:
    """(season, D) additive indices by place in the season (place 0 first) for the series x (T, D)
    whose first step is at place `phase`; None when `mode` leaves the series unadjusted. Columns
    that "auto" finds aseasonal get zero indices."""
    if mode == "none" or season < 2 or len(x) < 2 * season + 1:
        return None
    keep = np.ones(x.shape[1], dtype=bool) if mode == "always" else is_seasonal(x, season)
    if not keep.any():
        return None
    detrended = x - _moving_average(x, season)  # (T, D), NaN at both ends
    places = (phase + np.arange(len(x))) % season
    indices = np.zeros((season, x.shape[1]))
    for p in range(season):
        indices[p] = np.nanmean(detrended[places == p], axis=0)
    indices -= indices.mean(axis=0)
    return indices * keep


def at_places(indices: np.ndarray, phase: int, start: int, length: int) -> np.ndarray:
    """(length, D): the indices of steps start .. start + length - 1 of a series starting at `phase`."""
    return indices[(phase + start + np.arange(length)) % len(indices)]
