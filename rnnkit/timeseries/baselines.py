"""The forecasts a practitioner tries first, each fitted to one series' history (T,) and giving
the mean (H,) and quantiles (H, Q) of the next H steps:

  naive           the last value; the error grows as a random walk's (sigma x sqrt(h))
  seasonal_naive  the value one season earlier (Hyndman & Athanasopoulos, FPP3 5.2)
  drift           the line through the first and last values
  ets             exponential smoothing state-space models (statsmodels ETSModel), additive errors,
                  trend none / additive / damped, seasonality none / additive / multiplicative,
                  the lowest AICc kept (FPP3 8.6)
  arima           (S)ARIMA with d from the KPSS test, seasonal D = 1 for seasonal data, p, q <= 2,
                  P, Q <= 1, the lowest AIC kept: a small version of auto.arima (Hyndman & Khandakar 2008)
Intervals of the first three assume Gaussian one-step errors; ETS and ARIMA use statsmodels'.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
from scipy.stats import norm

CLASSICAL = ("naive", "seasonal_naive", "drift", "ets", "arima")


def _quietly(fit):
    """fit(), without statsmodels' convergence warnings; None when the model cannot be fitted."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit()
    except (ValueError, np.linalg.LinAlgError):
        return None
    return result


def _gaussian(mean: np.ndarray, sd: np.ndarray, levels: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return mean, mean[:, None] + np.maximum(sd, 1e-12)[:, None] * norm.ppf(levels)[None, :]


def naive(history, horizon, season, levels):
    sd = np.std(np.diff(history)) if len(history) > 2 else 0.0
    return _gaussian(np.full(horizon, history[-1]), sd * np.sqrt(np.arange(1, horizon + 1)), levels)


def seasonal_naive(history, horizon, season, levels):
    m = season if len(history) > season else 1
    h = np.arange(horizon)
    mean = history[len(history) - m + h % m]
    residuals = history[m:] - history[:-m]
    sd = np.std(residuals) if len(residuals) > 1 else 0.0
    return _gaussian(mean, sd * np.sqrt(h // m + 1), levels)


def drift(history, horizon, season, levels):
    n, h = len(history), np.arange(1, horizon + 1)
    slope = (history[-1] - history[0]) / max(n - 1, 1)
    residuals = np.diff(history) - slope
    sd = np.std(residuals) if n > 2 else 0.0
    return _gaussian(history[-1] + slope * h, sd * np.sqrt(h * (1 + h / max(n - 1, 1))), levels)


def ets(history, horizon, season, levels):
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    y = pd.Series(np.asarray(history, dtype=np.float64))
    seasonal = [None]
    if season > 1 and len(y) >= 2 * season + 2:
        seasonal += ["add", "mul"] if (y > 0).all() else ["add"]
    best = None
    for trend, damped in ((None, False), ("add", False), ("add", True)):
        for kind in seasonal:
            if kind == "mul" and trend is None:
                continue
            fit = _quietly(lambda: ETSModel(y, error="add", trend=trend, damped_trend=damped, seasonal=kind,
                                            seasonal_periods=season if kind else None).fit(disp=False))
            if fit is not None and np.isfinite(fit.aicc) and (best is None or fit.aicc < best.aicc):
                best = fit
    if best is None:
        return naive(history, horizon, season, levels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prediction = best.get_prediction(start=len(y), end=len(y) + horizon - 1)
        mean = np.asarray(prediction.predicted_mean, dtype=np.float64)
        bands = np.empty((horizon, len(levels)))
        for k, q in enumerate(levels):  # a level q is one end of the central 1 - 2 min(q, 1 - q) interval
            frame = prediction.summary_frame(alpha=2 * min(q, 1 - q))
            bands[:, k] = mean if q == 0.5 else np.asarray(frame["pi_lower" if q < 0.5 else "pi_upper"])
    return mean, bands


def _differences(y: np.ndarray) -> int:
    from statsmodels.tsa.stattools import kpss
    d = 0
    while d < 2 and len(y) > 8:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p_value = kpss(y, regression="c", nlags="auto")[1]
        if p_value >= 0.05:  # stationary enough
            break
        y, d = np.diff(y), d + 1
    return d


def arima(history, horizon, season, levels):
    from statsmodels.tsa.arima.model import ARIMA
    y = np.asarray(history, dtype=np.float64)
    seasonal = season > 1 and len(y) >= 3 * season
    D = 1 if seasonal else 0
    d = _differences(y[season:] - y[:-season] if seasonal else y)
    best = None
    seasonal_orders = list(itertools.product((0, 1), (0, 1))) if seasonal else [(0, 0)]
    for p, q in itertools.product(range(3), range(3)):
        for P, Q in seasonal_orders:
            fit = _quietly(lambda: ARIMA(y, order=(p, d, q), trend={0: "c", 1: "t"}.get(d + D, "n"),
                                         seasonal_order=(P, D, Q, season) if seasonal else (0, 0, 0, 0)).fit())
            if fit is not None and np.isfinite(fit.aic) and (best is None or fit.aic < best.aic):
                best = fit
    if best is None:
        return naive(history, horizon, season, levels)
    forecast = best.get_forecast(horizon)
    return _gaussian(np.asarray(forecast.predicted_mean), np.asarray(forecast.se_mean), levels)


METHODS = {"naive": naive, "seasonal_naive": seasonal_naive, "drift": drift, "ets": ets, "arima": arima}
