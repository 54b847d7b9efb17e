"""Rolling-origin evaluation: the last `folds` x horizon steps of every series are forecast in
`folds` consecutive blocks of `horizon` steps, each from the history before it. The network is
trained once, on the data before the first origin, and forecasts every block from the history
up to its origin (it never sees a block's values before forecasting it); the classical
baselines are refitted at every origin, which favours them. Multi-column series are scored
column by column."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .baselines import METHODS
from .data import Panel
from .evaluation import scores, summarise

LEVELS = [0.1, 0.5, 0.9]


@dataclass
class Backtest:
    horizon: int
    folds: int
    season: int
    summary: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> measure -> value
    seconds: dict[str, float] = field(default_factory=dict)  # method -> time spent fitting and forecasting
    last_fold: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # rnnkit's (S, H, D), (S, H, D, Q)

    def best_baseline(self, measure: str = "gmase") -> str:
        return min((m for m in self.summary if m != "rnnkit"), key=lambda m: self.summary[m][measure])

    def table(self) -> str:
        measures = ("mase", "gmase", "smape", "rmse", "coverage80", "pinball")
        lines = [f"{'method':<16}" + "".join(f"{m:>12}" for m in measures) + f"{'seconds':>10}"]
        for method, row in self.summary.items():
            lines.append(f"{method:<16}" + "".join(f"{row[m]:>12.4g}" for m in measures) +
                         f"{self.seconds[method]:>10.1f}")
        return "\n".join(lines)


def origins(lengths: list[int], horizon: int, folds: int) -> list[list[int]]:
    """origins[k][i]: where fold k's forecast of series i starts."""
    return [[n - (folds - k) * horizon for n in lengths] for k in range(folds)]


def run_backtest(forecaster, data, folds: int, season: int, methods=tuple(METHODS),
                 progress: bool = True) -> Backtest:
    """Backtest a configured, unfitted RNNForecaster (its horizon) against the baselines in `methods`.
    `data`: a Panel (the network then knows each step's calendar place in the season) or a list of
    (T, D) arrays."""
    H = forecaster.horizon
    series = data.values if isinstance(data, Panel) else data
    cuts = origins([len(s) for s in series], H, folds)

    def before(k: int):
        if isinstance(data, Panel):
            return data.subset(list(range(len(series))), cuts[k])
        return [s[:c] for s, c in zip(series, cuts[k])]
    result = Backtest(H, folds, season)
    started = time.perf_counter()
    forecaster.fit(before(0), season=season)
    rows = []
    for k in range(folds):
        known = before(k)
        history = known.values if isinstance(known, Panel) else known
        mean, bands = forecaster.forecast(known, LEVELS)
        for i, s in enumerate(series):
            for d in range(s.shape[1]):
                actual = s[cuts[k][i]:cuts[k][i] + H, d]
                rows.append(scores(actual, mean[i, :, d], bands[i, :, d], LEVELS, history[i][:, d], season))
        if k == folds - 1:
            result.last_fold["rnnkit"] = (mean, bands)
    result.summary["rnnkit"], result.seconds["rnnkit"] = summarise(rows), time.perf_counter() - started
    jobs = [(k, i, d) for k in range(folds) for i, s in enumerate(series) for d in range(s.shape[1])]
    for method in methods:
        started, rows = time.perf_counter(), []
        for k, i, d in tqdm(jobs, desc=method, disable=None if progress else True, leave=False):
            history = series[i][:cuts[k][i], d]
            actual = series[i][cuts[k][i]:cuts[k][i] + H, d]
            mean, bands = METHODS[method](history, H, season, LEVELS)
            rows.append(scores(actual, mean, bands, LEVELS, history, season))
        result.summary[method], result.seconds[method] = summarise(rows), time.perf_counter() - started
    return result
