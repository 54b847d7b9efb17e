"""Forecast accuracy, the measures of the M competitions and of probabilistic forecasting.
Every function takes one series' held-out values `actual` (H,), the forecast (H,) and, where a
scale is needed, its history (T,) and season length m.

  MASE      mean |error| / mean |y_t - y_{t-m}| over the history (Hyndman & Koehler 2006);
            below 1: better than the in-sample seasonal naive forecast
  sMAPE     200 x mean |error| / (|actual| + |forecast|), in percent (M3/M4's definition)
  RMSE      root mean squared error, in the series' units
  coverage  share of held-out values inside the central interval (80%: the 0.1 and 0.9 quantiles)
  pinball   mean quantile (pinball) loss over the levels, divided by the MASE scale so series of
            any size average together (the scaled pinball loss of M5)
Across series, MASE is summarised by its mean (as the M competitions do) and geometric mean
(robust to a few series with a tiny scale).
"""

from __future__ import annotations

import numpy as np


def mase_scale(history: np.ndarray, season: int) -> float:
    m = season if len(history) > season else 1
    scale = float(np.mean(np.abs(history[m:] - history[:-m]))) if len(history) > m else 0.0
    return scale if scale > 0 else float(np.mean(np.abs(history))) or 1.0


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, season: int) -> float:
    return float(np.mean(np.abs(actual - forecast))) / mase_scale(history, season)


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(np.abs(actual - forecast), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(200 * ratio.mean())


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.sqrt(np.mean((actual - forecast) ** 2)))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    return float(np.mean((actual >= lower) & (actual <= upper)))


def pinball(actual: np.ndarray, bands: np.ndarray, levels: list[float], history: np.ndarray, season: int) -> float:
    """bands: (H, Q) forecast quantiles at `levels`."""
    q = np.asarray(levels)[None, :]
    error = actual[:, None] - bands
    loss = np.maximum(q * error, (q - 1) * error).mean()
    return float(loss) / mase_scale(history, season)


def scores(actual, forecast, bands, levels, history, season) -> dict[str, float]:
    """All measures for one series; `bands` (H, Q) must include the levels 0.1 and 0.9."""
    lower, upper = bands[:, levels.index(0.1)], bands[:, levels.index(0.9)]
    return {"mase": mase(actual, forecast, history, season), "smape": smape(actual, forecast),
            "rmse": rmse(actual, forecast), "coverage80": coverage(actual, lower, upper),
            "pinball": pinball(actual, bands, levels, history, season)}


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Means over series (and the geometric mean of MASE); coverage is pooled over all points."""
    out = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    positive = np.maximum([r["mase"] for r in rows], 1e-12)
    out["gmase"] = float(np.exp(np.mean(np.log(positive))))
    return out
