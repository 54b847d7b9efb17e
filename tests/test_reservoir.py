"""Echo state networks: the reservoir is scaled as asked, the readout is the ridge solution, the
network learns a delay system and runs free; bad settings are one clear error."""

import numpy as np
import pytest
import torch

from rnnkit.errors import UsageError
from rnnkit.reservoir import EchoStateNetwork, ReservoirConfig, mackey_glass, ridge_readout


def test_reservoir_has_the_spectral_radius_asked_for():
    esn = EchoStateNetwork(ReservoirConfig(units=80, spectral_radius=0.7, density=0.1))
    assert np.max(np.abs(np.linalg.eigvals(esn.W))) == pytest.approx(0.7)
    assert 0.05 < np.mean(esn.W != 0) < 0.15


def test_readout_is_the_ridge_solution_and_the_echo_fades():
    rng = np.random.default_rng(0)
    u = rng.standard_normal((300, 2))
    y = np.stack([u[:, 0] * 0.5, np.roll(u[:, 1], 1)], axis=1)  # now, and one step back
    config = ReservoirConfig(units=50, washout=20, ridge=1e-3)
    esn = EchoStateNetwork(config, inputs=2, outputs=2).fit(u, y)
    states = esn.run(u, np.zeros(50))
    Z = np.concatenate([np.ones((300, 1)), u, states], axis=1)[20:]
    expected = np.linalg.solve(Z.T @ Z + 1e-3 * np.eye(Z.shape[1]), Z.T @ y[20:]).T
    np.testing.assert_allclose(esn.W_out, expected, rtol=1e-6, atol=1e-9)
    fit = Z @ esn.W_out.T
    assert np.mean((fit - y[20:]) ** 2) < 0.05 * np.var(y)  # the reservoir remembers a step back
    # echo state property: two different starts forget themselves under the same input
    a, b = esn.run(u, np.ones(50)), esn.run(u, -np.ones(50))
    assert np.abs(a[-1] - b[-1]).max() < 1e-6


def test_an_esn_runs_mackey_glass_free_for_84_steps():
    series = mackey_glass(2600)
    series = (series - series.mean()) / series.std()
    assert series.std() == pytest.approx(1) and np.abs(np.diff(series)).max() < 0.5  # smooth, not noise
    train = series[:2001]
    esn = EchoStateNetwork(ReservoirConfig(units=300, ridge=1e-7)).fit(train[:-1, None], train[1:, None])
    errors = []
    for start in range(2001, 2400, 80):
        esn.state = np.zeros(300)
        esn.run(series[start - 200:start - 1, None])
        free = esn.generate(series[start - 1:start], 84)[:, 0]
        errors.append(free[-1] - series[start + 83])
    assert np.sqrt(np.mean(np.square(errors))) < 0.1


@pytest.mark.parametrize("options, message", [
    (dict(spectral_radius=0.0), "spectral radius must be > 0"), (dict(spectral_radius=-1.0), "> 0"),
    (dict(units=0), "units"), (dict(leak=0.0), "leak"),
])
def test_bad_reservoir_settings(options, message):
    with pytest.raises(UsageError, match=message):
        ReservoirConfig(**options)


def test_ridge_readout_recovers_a_linear_map_and_penalises_noise():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 12))
    W = rng.standard_normal((12, 3))
    clean = X @ W + np.array([1.0, -2.0, 0.5])
    noisy = clean + 0.01 * rng.standard_normal(clean.shape)
    fitted, bias, alpha, held_out = ridge_readout(X, noisy)
    np.testing.assert_allclose(fitted, W, atol=0.01)
    np.testing.assert_allclose(bias, [1.0, -2.0, 0.5], atol=0.01)
    # the leave-one-out residuals are those of refitting without each row (checked for a few rows)
    for i in (0, 17, 399):
        keep = np.arange(400) != i
        Xk, Yk = X[keep] - X[keep].mean(0), noisy[keep] - noisy[keep].mean(0)
        Wk = np.linalg.solve(Xk.T @ Xk + alpha * np.eye(12), Xk.T @ Yk)
        bk = noisy[keep].mean(0) - X[keep].mean(0) @ Wk
        np.testing.assert_allclose(held_out[i], noisy[i] - X[i] @ Wk - bk, rtol=1e-6, atol=1e-9)
    # targets that are pure noise: cross-validation chooses a far stronger penalty, and the readout shrinks
    _, _, noise_alpha, _ = ridge_readout(X, rng.standard_normal((400, 3)))
    assert noise_alpha > 1000 * alpha


def test_ridge_readout_chooses_its_penalty_on_later_rows_when_told():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((400, 30))
    Y = X[:, :2] @ np.array([[1.0], [-1.0]]) + 0.5 * rng.standard_normal((400, 1))
    fit, check = np.arange(400) < 300, np.arange(400) >= 320  # a gap of 20 rows between them

    def ridge(rows, alpha):
        Xc, Yc = X[rows] - X[rows].mean(0), Y[rows] - Y[rows].mean(0)
        W = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(30), Xc.T @ Yc)
        return W, Y[rows].mean(0) - X[rows].mean(0) @ W
    W, b, alpha, residuals = ridge_readout(X, Y, fit, check)
    assert residuals.shape == (80, 1)
    W_fit, b_fit = ridge(fit, alpha * 300 / 400)  # the readout that chose the penalty: fit rows only
    np.testing.assert_allclose(residuals, Y[check] - X[check] @ W_fit - b_fit, rtol=1e-6, atol=1e-9)
    W_all, b_all = ridge(np.ones(400, dtype=bool), alpha)  # the one returned: every row
    np.testing.assert_allclose(W, W_all, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b, b_all, rtol=1e-6, atol=1e-9)
    # 28 of the 30 inputs are noise: the check prefers a real penalty to none
    assert alpha > 1e-3 * np.linalg.eigvalsh((X - X.mean(0)).T @ (X - X.mean(0))).mean()


def test_forecaster_with_a_reservoir_fits_its_readout_in_closed_form(tmp_path):
    """`cell="esn"`: nothing is trained by gradient descent (the projection and the reservoir keep
    their drawn weights), the head is the ridge readout of the final states, and the forecast of a
    noisy seasonal series beats seasonal naive; save/load keeps it."""
    from rnnkit.timeseries import RNNForecaster
    from rnnkit.timeseries.evaluation import mase
    rng = np.random.default_rng(1)
    t = np.arange(300)
    series = 10 + 3 * np.sin(2 * np.pi * t / 12) + np.sin(2 * np.pi * t / 5) + 0.2 * rng.standard_normal(300)
    history, future = series[:-12], series[-12:]
    model = RNNForecaster(cell="esn", hidden_size=200, horizon=12, season=12, random_state=0)
    drawn = RNNForecaster(cell="esn", hidden_size=200, horizon=12, season=12, random_state=0)
    model.fit(history)
    drawn.num_values_, drawn.season_ = 1, 12
    torch.manual_seed(0)  # as fit does before it builds the network
    fresh = drawn._build_model()
    for name, value in fresh.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(value, model.model_.state_dict()[name].cpu()), name
    forecast = model.predict(history)
    seasonal_naive = history[-12:]  # the last season repeated
    assert mase(future, forecast, history, 12) < 0.5 * mase(future, seasonal_naive, history, 12)
    bands = model.predict_quantiles(history, [0.1, 0.9])
    assert np.all(bands[:, 0] < forecast) and np.all(forecast < bands[:, 1])
    model.save(tmp_path / "esn")
    again = RNNForecaster.load(tmp_path / "esn")
    np.testing.assert_allclose(again.predict(history), forecast, rtol=1e-6)
