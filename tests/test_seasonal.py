"""Seasonal adjustment before the forecasting network: the seasonality test, the classical
decomposition's indices, and the forecaster adding them back in the right place."""

import numpy as np
import pytest

from rnnkit.timeseries import RNNForecaster
from rnnkit.timeseries.evaluation import mase
from rnnkit.timeseries.seasonal import at_places, is_seasonal, seasonal_indices

PATTERN = np.array([3.0, 1, -2, -4, -1, 0, 2, 5, 1, -3, -1, -1])  # sums to zero


def trending(n: int, phase: int = 0, noise: float = 0.2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (20 + 0.3 * t + PATTERN[(phase + t) % 12] + rng.normal(0, noise, n))[:, None]


def test_seasonality_test_finds_a_season_and_ignores_noise_and_short_series():
    rng = np.random.default_rng(1)
    assert is_seasonal(trending(60), 12).tolist() == [True]
    assert is_seasonal(rng.normal(size=(200, 1)), 12).tolist() == [False]
    assert is_seasonal(trending(35), 12).tolist() == [False]  # under three seasons
    both = np.concatenate([trending(72), rng.normal(size=(72, 1))], axis=1)
    assert is_seasonal(both, 12).tolist() == [True, False]


def test_indices_recover_the_pattern_by_place_whatever_the_first_place():
    for phase in (0, 5):
        indices = seasonal_indices(trending(96, phase), 12, phase, "auto")
        assert indices.shape == (12, 1)
        assert np.allclose(indices[:, 0], PATTERN, atol=0.25), (phase, indices[:, 0])
        assert abs(indices.sum()) < 1e-9
    assert seasonal_indices(trending(96), 12, 0, "none") is None
    assert seasonal_indices(trending(96), 1, 0, "always") is None  # no season
    noise = np.random.default_rng(2).normal(size=(96, 1))
    assert seasonal_indices(noise, 12, 0, "auto") is None and seasonal_indices(noise, 12, 0, "always") is not None
    assert np.array_equal(at_places(np.arange(12.0)[:, None], 5, 10, 4)[:, 0], [3, 4, 5, 6])


def test_forecast_moves_with_the_seasonal_pattern_exactly():
    """Adding a zero-sum periodic pattern to the history changes every index by that pattern and
    leaves what the network reads unchanged, so the forecast moves by the pattern's future values,
    at the right places; without adjustment it does not."""
    history = trending(72)[:, 0]
    extra = 2.0 * np.roll(PATTERN, 3)[np.arange(72) % 12]
    future = 2.0 * np.roll(PATTERN, 3)[np.arange(72, 78) % 12]
    for mode in ("always", "none"):
        model = RNNForecaster(horizon=6, season=12, deseasonalize=mode, hidden_size=16, min_steps=20,
                              epochs=1).fit(history)
        moved = model.predict(history + extra) - model.predict(history)
        bands = model.predict_quantiles(history + extra, [0.1, 0.9]) - model.predict_quantiles(history, [0.1, 0.9])
        if mode == "always":
            assert np.allclose(moved, future, atol=1e-4) and np.allclose(bands, future[:, None], atol=1e-4)
        else:
            assert not np.allclose(moved, future, atol=0.1)


def test_adjusted_network_learns_trend_and_season_from_four_years(tmp_path):
    """Four seasons of a trending monthly series: adjusted, the network forecasts the next year
    better than seasonal naive (which misses the trend), and the setting survives save/load."""
    y = trending(60, noise=0.5)[:, 0]
    history, actual = y[:-12], y[-12:]
    model = RNNForecaster(horizon=12, season=12, deseasonalize="auto", hidden_size=32, min_steps=300, epochs=1,
                          lr=1e-2, early_stopping=False).fit(history)
    snaive = history[-12:]  # each month a year before
    assert mase(actual, model.predict(history), history, 12) < 0.6 * mase(actual, snaive, history, 12)
    model.save(tmp_path / "m")
    loaded = RNNForecaster.load(tmp_path / "m")
    assert loaded.deseasonalize == "auto" and np.allclose(loaded.predict(history), model.predict(history))


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="deseasonalize"):
        RNNForecaster(horizon=2, deseasonalize="sometimes").fit(trending(40)[:, 0])
