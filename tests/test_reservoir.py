"""Echo state networks: the reservoir is scaled as asked, the readout is the ridge solution, the
network learns a delay system and runs free; bad settings are one clear error."""

import numpy as np
import pytest

from rnnkit.errors import UsageError
from rnnkit.reservoir import EchoStateNetwork, ReservoirConfig, mackey_glass


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
