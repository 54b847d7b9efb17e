"""Numeric series: reading CSV files, the forecaster learning and calibrating, save/load, the
`rnnkit forecast` commands and their bad inputs (one line on stderr, exit 2, nothing written)."""

import csv
import io
import json

import numpy as np
import pytest
import torch

from rnnkit.errors import UsageError
from rnnkit.timeseries import RNNForecaster, read_panel
from rnnkit.timeseries.baselines import METHODS
from rnnkit.timeseries.evaluation import mase

FAST = dict(hidden_size=32, min_steps=300, epochs=1, lr=1e-2)


def seasonal(n: int, season: int = 12, noise: float = 0.3, seed: int = 0, level: float = 10.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 3 * np.sin(2 * np.pi * t / season) + rng.normal(0, noise, n)


def write_csv(path, rows, header=("t", "y")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# ---------------------------------------------------------------------------- data
def test_read_panel_many_series_dates_and_fill(tmp_path):
    rows = [("a", f"2024-01-{d:02d}", d) for d in (1, 2, 3, 5, 6)] + [("b", f"2024-01-{d:02d}", 10 * d) for d in range(1, 6)]
    path = write_csv(tmp_path / "d.csv", [(t, v, s) for s, t, v in rows], ("t", "y", "id"))
    with pytest.raises(UsageError, match="cannot infer a regular frequency"):
        read_panel(path, "t", ["y"], "id")
    with pytest.raises(UsageError, match="missing step.*--fill"):
        read_panel(path, "t", ["y"], "id", freq="D")
    panel = read_panel(path, "t", ["y"], "id", fill="interpolate", freq="D")
    assert panel.ids == ["a", "b"] and panel.season() == 7
    assert panel.values[0][:, 0].tolist() == [1, 2, 3, 4, 5, 6]  # the gap on the 4th interpolated
    ffilled = read_panel(path, "t", ["y"], "id", fill="ffill", freq="D")
    assert ffilled.values[0][3, 0] == 3
    assert [str(t.date()) for t in panel.future_times(1, 2)] == ["2024-01-06", "2024-01-07"]


def test_read_panel_integer_time_and_inferred_monthly(tmp_path):
    panel = read_panel(write_csv(tmp_path / "i.csv", [(t, t * 2) for t in range(0, 20, 5)]), "t", ["y"])
    assert panel.freq == 5 and panel.future_times(0, 2) == [20, 25] and panel.season() == 1
    months = write_csv(tmp_path / "m.csv", [(f"2020-{m:02d}", m) for m in range(1, 13)])
    panel = read_panel(months, "t", ["y"])
    assert panel.freq == "MS" and panel.season() == 12


@pytest.mark.parametrize("rows, message", [
    ([(1, 1), (3, 2), (2, 3)], "comes before"),
    ([(1, 1), (2, 2), (2, 3)], "repeats the time"),
    ([(1, 1), (2, "abc"), (3, 3)], "not a number"),
    ([(1, 1), (2, "inf"), (3, 3)], "infinite"),
    ([(1, 1), ("yesterday", 2), (3, 3)], "neither a date"),
    ([], "no rows"),
])
def test_read_panel_bad_files(tmp_path, rows, message):
    with pytest.raises(UsageError, match=message):
        read_panel(write_csv(tmp_path / "bad.csv", rows), "t", ["y"])


# ---------------------------------------------------------------------------- learning
@pytest.fixture(scope="module")
def seasonal_model():
    y = seasonal(360)
    return RNNForecaster(horizon=12, **FAST).fit(y[:-12], season=12), y


def test_forecaster_learns_a_seasonal_series_better_than_seasonal_naive(seasonal_model):
    model, y = seasonal_model
    history, actual = y[:-12], y[-12:]
    ours = mase(actual, model.predict(history), history, 12)
    snaive = mase(actual, METHODS["seasonal_naive"](history, 12, 12, [0.5])[0], history, 12)
    # the noise alone gives about 0.7 of seasonal naive's error (sqrt(1/2)); a network that
    # had not learned the season would be far above it
    assert ours < 0.85 * snaive, (ours, snaive)


def test_saliency_points_at_the_steps_that_move_the_forecast(seasonal_model):
    from rnnkit.timeseries.forecaster import saliency
    model, y = seasonal_model
    history = y[:-12]
    influence = saliency(model, history, step=1)  # (L,)
    assert influence.shape == (model.context_length_,)
    # nudging the most influential past step moves the forecast more than nudging the least one
    order = np.argsort(np.abs(influence[:-1]))  # the last step is the reference point of the scaling
    moved = []
    for k in (order[-1], order[0]):
        nudged = history.copy()
        nudged[len(history) - len(influence) + k] += 0.5
        moved.append(abs(model.predict(nudged)[0] - model.predict(history)[0]))
    assert moved[0] > 2 * moved[1], moved
    short = saliency(model, history[:5])
    assert short.shape == (model.context_length_,) and np.all(short[:-5] == 0)


def test_quantiles_are_calibrated_on_gaussian_noise():
    rng = np.random.default_rng(1)
    series = [5 + rng.normal(0, 1, 150) for _ in range(40)]
    history, actual = [s[:-4] for s in series], np.stack([s[-4:] for s in series])
    model = RNNForecaster(horizon=4, **FAST).fit(history)
    bands = model.predict_quantiles(history, [0.1, 0.5, 0.9])  # (40, 4, 1, 3)
    inside = (actual >= bands[:, :, 0, 0]) & (actual <= bands[:, :, 0, 2])
    assert 0.7 <= inside.mean() <= 0.92, inside.mean()
    assert np.all(bands[..., 0] < bands[..., 1]) and np.all(bands[..., 1] < bands[..., 2])
    # the forecast of iid noise is its mean, not the last value
    assert abs(model.predict(history).mean() - 5) < 0.3


def test_save_load_round_trip_and_shapes(tmp_path):
    y = seasonal(100, season=4)
    model = RNNForecaster(horizon=3, likelihood="studentt", hidden_size=16, min_steps=20, epochs=1).fit(y)
    model.save(tmp_path / "m")
    loaded = RNNForecaster.load(tmp_path / "m")
    assert np.allclose(model.predict(y), loaded.predict(y)) and model.predict(y).shape == (3,)
    assert loaded.predict_quantiles(y, [0.5]).shape == (3, 1)
    two = np.stack([y, 2 * y], axis=1)
    assert RNNForecaster(horizon=2, min_steps=5, epochs=1).fit([two, two[:50]]).predict([two]).shape == (1, 2, 2)
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        loaded.predict_quantiles(y, [1.5])
    with pytest.raises(ValueError, match="needs at least"):
        RNNForecaster(horizon=10).fit(y[:8])


def test_weight_drop_acts_in_training_only_and_is_saved(tmp_path):
    y = seasonal(100, season=4)
    model = RNNForecaster(horizon=2, hidden_size=16, min_steps=20, epochs=1, weight_drop=0.4).fit(y)
    network = model.model_
    context, lengths = torch.randn(3, 8, network.project.in_features), torch.tensor([8, 8, 5])
    context = context.to(next(network.parameters()).device)  # where it was fitted
    network.train()
    assert not torch.allclose(network(context, lengths), network(context, lengths))  # a new mask per call
    network.eval()
    assert torch.equal(network(context, lengths), network(context, lengths))
    model.save(tmp_path / "m")
    loaded = RNNForecaster.load(tmp_path / "m")
    assert loaded.weight_drop == 0.4 and np.allclose(loaded.predict(y), model.predict(y))
    from rnnkit.anomaly.reconstruction import ReconstructionNetwork  # the anomaly detector's other network
    rebuild = ReconstructionNetwork(1, weight_drop=0.4)
    assert rebuild.encoder.weight_drop == rebuild.decoder.weight_drop == 0.4


def test_log_transform_models_growing_seasonal_swings(tmp_path):
    """A series whose seasonal swing grows with its level (multiplicative): under transform log the
    forecasts and quantiles come back in the series' units, ordered and positive, and the choice is
    saved with the model; transform auto takes log only when every value is positive."""
    t = np.arange(144)
    rng = np.random.default_rng(3)
    y = np.exp(4.5 + 0.012 * t + 0.2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.02, len(t)))
    history, actual = y[:-12], y[-12:]
    model = RNNForecaster(horizon=12, transform="log", **FAST).fit(history, season=12)
    forecast = model.predict(history)
    bands = model.predict_quantiles(history, [0.1, 0.5, 0.9])
    assert np.allclose(bands[:, 1], forecast, rtol=1e-6)  # the point forecast is the median
    assert np.all(bands[:, 0] < bands[:, 1]) and np.all(bands[:, 1] < bands[:, 2]) and np.all(bands > 0)
    snaive = METHODS["seasonal_naive"](history, 12, 12, [0.5])[0]
    assert mase(actual, forecast, history, 12) < mase(actual, snaive, history, 12)  # growth learnt, not copied
    model.save(tmp_path / "m")
    assert np.allclose(RNNForecaster.load(tmp_path / "m").predict(history), forecast)
    with pytest.raises(ValueError, match="transform log needs every value > 0"):
        model.predict(np.append(history, 0.0))
    auto = dict(FAST, min_steps=5, transform="auto")
    assert RNNForecaster(horizon=2, **auto).fit(history).log_
    assert not RNNForecaster(horizon=2, **auto).fit(seasonal(60) - 10).log_


def test_intervals_are_widened_when_the_held_out_steps_are_wilder_than_training(tmp_path):
    """Split conformal calibration: the held-out last steps are far noisier than the rest, so the
    network's own intervals (learnt on calm steps) are too narrow there; the calibrated model widens
    every interval by one factor around the same median, and keeps it through save/load."""
    import copy
    y = seasonal(120, noise=0.05, seed=4)
    y[-12:] += np.random.default_rng(5).normal(0, 6.0, 12)
    calibrated = RNNForecaster(horizon=12, calibrate=True, **{**FAST, "min_steps": 150}).fit(y, season=12)
    assert calibrated.interval_scale_ > 1.5
    plain = copy.deepcopy(calibrated)
    plain.interval_scale_ = 1.0
    a, b = plain.predict_quantiles(y, [0.1, 0.5, 0.9]), calibrated.predict_quantiles(y, [0.1, 0.5, 0.9])
    assert np.allclose(a[:, 1], b[:, 1])  # the same network: only the spread moves
    assert np.allclose(b[:, 2] - b[:, 1], calibrated.interval_scale_ * (a[:, 2] - a[:, 1]), rtol=1e-6)
    calibrated.save(tmp_path / "m")
    assert RNNForecaster.load(tmp_path / "m").interval_scale_ == calibrated.interval_scale_
    assert RNNForecaster(horizon=12, min_steps=5, epochs=1).fit(y).interval_scale_ == 1.0  # off by default


# ---------------------------------------------------------------------------- command line
@pytest.fixture
def sales(tmp_path):
    rows = [(s, f"2015-{1 + m % 12:02d}-01".replace("2015", str(2015 + m // 12)), f"{v:.3f}")
            for s, level in (("north", 10), ("south", 50)) for m, v in enumerate(seasonal(72, level=level, seed=level))]
    return write_csv(tmp_path / "sales.csv", rows, ("store", "month", "sales"))


def test_cli_train_predict_backtest(cli, sales, tmp_path):
    data = ["--time-col", "month", "--value-col", "sales", "--id-col", "store", "--horizon", "6"]
    status, _, err = cli("forecast", "train", sales, *data, "--out", tmp_path / "run", "--min-steps", "50",
                         "--epochs", "1", "--quiet")
    assert status == 0, err
    status, out, err = cli("forecast", "predict", tmp_path / "run", sales, "--quantiles", "0.1,0.9")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["store", "month", "forecast", "q0.1", "q0.9"] and len(rows) == 12
    assert rows[0]["month"] == "2021-01-01" and rows[6]["store"] == "south"
    assert all(float(r["q0.1"]) < float(r["forecast"]) < float(r["q0.9"]) for r in rows)
    status, out, err = cli("forecast", "explain", tmp_path / "run", sales, "--series", "south", "--out",
                           tmp_path / "why.png", "--top", "3")
    assert status == 0, err
    assert out.splitlines()[0] == "time,value,gradient_x_input,share_of_influence" and len(out.splitlines()) == 4
    assert (tmp_path / "why.png").stat().st_size > 1000
    status, out, err = cli("forecast", "backtest", sales, *data, "--folds", "2", "--min-steps", "50", "--epochs", "1",
                           "--baselines", "naive,seasonal_naive", "--json", "--plot", tmp_path / "b.png", "--quiet")
    assert status == 0, err
    result = json.loads(out)
    assert set(result["summary"]) == {"rnnkit", "naive", "seasonal_naive"} and result["season"] == 12
    assert 0 <= result["summary"]["rnnkit"]["coverage80"] <= 1 and (tmp_path / "b.png").stat().st_size > 1000


def test_cli_echo_state_networks_train_in_closed_form(cli, sales, tmp_path):
    """`--cell esn` forecasters and anomaly detectors fit their readouts without gradient steps and
    report a validation loss like any other run."""
    data = ["--time-col", "month", "--value-col", "sales", "--id-col", "store"]
    status, _, err = cli("forecast", "train", sales, *data, "--horizon", "6", "--cell", "esn", "--out", tmp_path / "f")
    assert status == 0 and "validation loss" in err, err
    status, out, err = cli("forecast", "predict", tmp_path / "f", sales)
    assert status == 0 and len(out.splitlines()) == 13, err
    status, _, err = cli("anomaly", "train", sales, *data, "--cell", "esn", "--context-length", "12", "--out",
                         tmp_path / "a")
    assert status == 0, err
    status, out, err = cli("anomaly", "score", tmp_path / "a", sales)
    assert status == 0 and len(out.splitlines()) == 145, err


def _bad(cli, tmp_path, *argv, message):
    status, out, err = cli(*argv)
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "new").exists()


def test_cli_bad_inputs(cli, sales, tmp_path):
    base = ["--time-col", "month", "--value-col", "sales", "--id-col", "store"]
    train = ["forecast", "train", sales, *base, "--out", tmp_path / "new"]
    _bad(cli, tmp_path, *train, "--horizon", "0", message="--horizon must be in 1..")
    _bad(cli, tmp_path, *train, "--horizon", "2", "--weight-drop", "1", message="--weight-drop must be in [0, 1)")
    _bad(cli, tmp_path, *train, "--horizon", "2", "--cell", "esn", "--weight-drop", "0.2",
         message="which the esn cell does not learn")
    _bad(cli, tmp_path, *train[:3], "--time-col", "when", *base[2:], "--horizon", "3", "--out", tmp_path / "new",
         message="no column 'when'")
    _bad(cli, tmp_path, *train, "--horizon", "70", message="needs at least")
    empty = write_csv(tmp_path / "empty.csv", [], ("store", "month", "sales"))
    _bad(cli, tmp_path, "forecast", "train", empty, *base, "--horizon", "3", "--out", tmp_path / "new",
         message="no rows")
    words = write_csv(tmp_path / "w.csv", [("a", "2020-01-01", "12"), ("a", "2020-02-01", "twelve")],
                      ("store", "month", "sales"))
    _bad(cli, tmp_path, "forecast", "train", words, *base, "--horizon", "1", "--out", tmp_path / "new",
         message="not a number")
    assert cli("forecast", "train", sales, *base, "--horizon", "2", "--out", tmp_path / "run", "--min-steps", "5",
               "--epochs", "1", "--quiet")[0] == 0
    _bad(cli, tmp_path, "forecast", "predict", tmp_path / "run", sales, "--quantiles", "0,0.5", message="in (0, 1)")
    other = write_csv(tmp_path / "o.csv", [("a", "2020-01-01", "1")], ("shop", "month", "sales"))
    _bad(cli, tmp_path, "forecast", "predict", tmp_path / "run", other, message="the model was trained on")
    _bad(cli, tmp_path, "forecast", "backtest", sales, *base, "--horizon", "3", "--baselines", "prophet",
         message="unknown 'prophet'")


# ---------------------------------------------------------------------------- classification
def shapes(n: int, seed: int = 0):
    """Variable-length 2-D sequences of two classes that differ only in the order of their
    halves (a rise then a fall, or a fall then a rise), so a bag of values cannot tell them apart."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        length, label = int(rng.integers(12, 30)), i % 2
        ramp = np.linspace(0, 1, length // 2)
        wave = np.concatenate([ramp, ramp[::-1]] if label else [ramp[::-1], ramp])
        X.append(np.stack([wave, -wave], axis=1) + rng.normal(0, 0.1, (len(wave), 2)))
        y.append(["fall-rise", "rise-fall"][label])
    return X, np.array(y)


def test_classifier_learns_numeric_sequences_and_round_trips(tmp_path):
    from rnnkit.estimators import RNNClassifier
    X, y = shapes(200)
    Xt, yt = shapes(100, seed=1)
    model = RNNClassifier(hidden_size=32, epochs=15, lr=1e-2, validation_fraction=0).fit(X, y)
    assert (model.predict(Xt) == yt).mean() >= 0.95
    model.save(tmp_path / "m")
    loaded = RNNClassifier.load(tmp_path / "m")
    assert np.allclose(model.predict_proba(Xt), loaded.predict_proba(Xt))
    with pytest.raises(ValueError, match="feature"):
        loaded.predict([x[:, :1] for x in Xt])
    with pytest.raises(ValueError, match="NaN"):
        RNNClassifier().fit([np.array([1.0, np.nan]), np.array([2.0, 3.0])], ["a", "b"])


def test_dtw_matches_the_plain_dynamic_programme():
    from rnnkit.timeseries.dtw import distances, nearest_neighbour

    def plain(a, b):
        total = np.full((len(a) + 1, len(b) + 1), np.inf)
        total[0, 0] = 0
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                total[i, j] = ((a[i - 1] - b[j - 1]) ** 2).sum() + min(total[i - 1, j], total[i, j - 1],
                                                                       total[i - 1, j - 1])
        return np.sqrt(total[-1, -1])
    rng = np.random.default_rng(0)
    a, bs = rng.normal(size=(7, 3)), [rng.normal(size=(k, 3)) for k in (5, 9, 7)]
    assert np.allclose(distances(a, bs), [plain(a, b) for b in bs])
    assert distances(bs[0], [bs[0]])[0] == 0
    X, y = shapes(40)
    assert (nearest_neighbour(X, y, X) == y).all()


def write_ts(path, X, y):
    lines = ["@problemName test", "@dimensions 2", "@data"]
    lines += [":".join(",".join(f"{v:.4f}" for v in x[:, d]) for d in range(x.shape[1])) + f":{label}"
              for x, label in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_classify_ts_files(cli, tmp_path):
    X, y = shapes(120)
    train = write_ts(tmp_path / "train.ts", X, y)
    status, _, err = cli("classify", "train", train, "--out", tmp_path / "m", "--epochs", "12", "--hidden-size", "32",
                         "--lr", "0.01", "--validation-fraction", "0", "--quiet")
    assert status == 0, err
    status, out, err = cli("classify", "predict", tmp_path / "m", write_ts(tmp_path / "test.ts", *shapes(40, seed=2)))
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 40 and np.mean([r["label"] == r["prediction"] for r in rows]) >= 0.9
    bad = tmp_path / "bad.ts"
    bad.write_text("@data\n1,2,3:4,5:a\n")
    _bad(cli, tmp_path, "classify", "train", bad, "--out", tmp_path / "new", message="same length")
    bad.write_text("@data\n1,?,3:a\n")
    _bad(cli, tmp_path, "classify", "train", bad, "--out", tmp_path / "new", message="missing")
    _bad(cli, tmp_path, "classify", "predict", tmp_path / "m", train.with_suffix(".csv"), message="numeric sequences")


def test_seasonal_place_comes_from_the_calendar_not_the_file_start(tmp_path):
    months = [f"{2000 + m // 12}-{m % 12 + 1:02d}-01" for m in range(2, 122)]  # from March 2000
    y = seasonal(120, seed=3)
    full = read_panel(write_csv(tmp_path / "full.csv", list(zip(months, y))), "t", ["y"])
    later = read_panel(write_csv(tmp_path / "later.csv", list(zip(months[5:], y[5:]))), "t", ["y"])
    assert full.phases().tolist() == [2] and later.phases().tolist() == [7]
    model = RNNForecaster(horizon=3, hidden_size=16, min_steps=20, epochs=1).fit(full)
    assert model.season_ == 12 and model.context_length_ < len(later.values[0])
    # the same last steps at the same months: the same forecast, however much earlier history the file has
    assert np.allclose(model.predict(full), model.predict(later))
    shifted = model.predict([later.values[0]])  # an array: its first value is taken as place 0
    assert not np.allclose(model.predict(full), shifted)


def test_backtest_api_scores_rnnkit_beside_the_baselines():
    y = seasonal(120, season=4, seed=5)
    result = RNNForecaster(horizon=4, season=4, hidden_size=16, min_steps=30, epochs=1).backtest(
        y, folds=2, baselines=("naive", "seasonal_naive"))
    assert set(result.summary) == {"rnnkit", "naive", "seasonal_naive"}
    naive = result.summary["naive"]
    # the naive forecast of a 4-step season misses by about the season's amplitude: far above 1
    assert naive["mase"] > 1.5 and result.summary["seasonal_naive"]["mase"] < naive["mase"]
    assert result.best_baseline() == "seasonal_naive" and "rnnkit" in result.table()
