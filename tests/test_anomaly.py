"""Anomaly detection: a detector that finds injected spikes, level shifts and frozen values, scores
that depend only on the past, save/load, ensembles, and the command line's clean errors."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from rnnkit.anomaly import RNNAnomalyDetector

pytest.importorskip("pandas")


# ---------------------------------------------------------------------------- the detector
def with_anomalies(n: int = 900, seed: int = 0):
    """A noisy sine, and a copy with a spike, a level shift and frozen values injected."""
    rng = np.random.default_rng(seed)
    clean = np.sin(2 * np.pi * np.arange(n) / 25) + 0.05 * rng.standard_normal(n)
    broken = clean.copy()
    broken[600] += 2.5  # spike
    broken[700:] += 1.5  # level shift
    broken[800:830] = broken[800]  # frozen values
    return clean, broken


ONSET = 1300


def injected(kind: str, n: int = 1500, seed: int = 0) -> np.ndarray:
    """The noisy sine of with_anomalies, with one anomaly from step ONSET on."""
    rng = np.random.default_rng(seed)
    values = np.sin(2 * np.pi * np.arange(n) / 25) + 0.05 * rng.standard_normal(n)
    if kind == "spike":
        values[ONSET] += 2.5
    elif kind == "level shift":
        values[ONSET:] += 1.5
    elif kind == "frozen":
        values[ONSET:ONSET + 30] = values[ONSET]
    return values


@pytest.fixture(scope="module", params=["reconstruction", "prediction", "echo state"])
def detector(request):
    if request.param == "echo state":  # an echo state autoencoder: the readout in closed form, no gradient steps
        fitted = RNNAnomalyDetector(cell="esn", hidden_size=64, random_state=0).fit(injected("none")[:1200])
        assert fitted.model_.decoder is None and fitted.n_steps_ == 0 and fitted.history_[0]["val_loss"] < 0.05
        return fitted
    return RNNAnomalyDetector(method=request.param, hidden_size=16, min_steps=250, epochs=1,
                              random_state=0).fit(injected("none")[:1200])


@pytest.mark.parametrize("kind", ["spike", "level shift", "frozen"])
def test_detector_finds_injected_anomalies(detector, kind):
    values = injected(kind)
    scores, flags = detector.score_samples(values), detector.predict(values)
    assert scores[ONSET:ONSET + 32].max() > detector.threshold_, (kind, scores[ONSET:ONSET + 32].max())
    normal = np.r_[100:1290]
    assert flags[normal].mean() < 0.01  # few flags where nothing happened


def test_range_breaks_and_quiet_steps_in_the_detector(detector):
    from rnnkit.anomaly.scoring import RANGE_BREAK
    shifted = injected("level shift")  # from ONSET on, peaks 1.5 above any normal value
    scores = detector.score_samples(shifted)
    detector.set_params(range_breaks=False)
    try:
        loud = detector.score_samples(shifted)
        detector.set_params(quiet_steps=100)
        quiet = detector.score_samples(shifted)
    finally:
        detector.set_params(range_breaks=True, quiet_steps=0)
    added = scores - loud  # the range breaks: the shift's first peak, and nothing before it
    assert added[ONSET] == RANGE_BREAK and not added[:ONSET].any() and set(np.unique(added)) <= {0, RANGE_BREAK}
    alarms = np.flatnonzero(quiet[ONSET:] > detector.threshold_)
    # the shift still raises an alarm, and fewer steps stay above the threshold than without quieting
    assert len(alarms) and alarms[0] < 32 and len(alarms) < (loud[ONSET:] > detector.threshold_).sum()
    assert np.all((quiet == loud) | (quiet == 0))


def test_online_scores_depend_only_on_the_past(detector):
    values = injected("spike")
    detector.set_params(update_every=100, update_steps=3)
    try:
        base = detector.score_samples(values, online=True, start=1000)
        changed = values.copy()
        changed[1350:] = 0.0
        again = detector.score_samples(changed, online=True, start=1000)
    finally:
        detector.set_params(update_every=1000, update_steps=10)
    assert np.allclose(base[:1350], again[:1350]) and not np.allclose(base[1350:], again[1350:])
    assert base[ONSET] > detector.threshold_


def test_detector_save_load_round_trip(detector, tmp_path):
    broken = injected("level shift")
    detector.save(tmp_path / "d")
    loaded = RNNAnomalyDetector.load(tmp_path / "d")
    assert loaded.threshold_ == detector.threshold_ and np.array_equal(loaded.range_, detector.range_)
    assert np.allclose(loaded.score_samples(broken), detector.score_samples(broken))
    mean, low, high = loaded.expected(broken)[0]
    known = np.isfinite(mean[:, 0])
    assert known[-1000:].all() and np.all(low[known] < mean[known]) and np.all(mean[known] < high[known])


def test_detector_rejects_bad_series():
    with pytest.raises(ValueError, match="NaN or infinite"):
        RNNAnomalyDetector().fit(np.array([1.0, np.nan, 2.0, 3.0, 4.0, 5.0]))
    with pytest.raises(ValueError, match="at least"):
        RNNAnomalyDetector().fit(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="needs at least 9"):
        RNNAnomalyDetector(method="prediction", horizon=5).fit(np.arange(8.0))
    with pytest.raises(ValueError, match="needs at least 33 .one --context-length window"):
        RNNAnomalyDetector().fit(np.arange(32.0))
    with pytest.raises(ValueError, match="trained on 2 series and scales each by its own statistics; got 3"):
        RNNAnomalyDetector(min_steps=2, epochs=1, hidden_size=4).fit([np.arange(40.0), np.arange(50.0)]) \
            .score_samples([np.arange(40.0)] * 3)
    with pytest.raises(Exception, match="--short-window must be shorter"):
        RNNAnomalyDetector(short_window=10, long_window=10).fit(np.arange(50.0))
    for setting in ({"transform": "log"}, {"deseasonalize": "auto"}, {"calibrate": True}):
        with pytest.raises(Exception, match="forecasting setting the anomaly detector does not use"):
            RNNAnomalyDetector(**setting).fit(np.arange(50.0) + 1)


@pytest.fixture(scope="module")
def block_detector():
    # 240 blocks to learn from: a score tops out near log10(500), so a 1-in-100 threshold
    return RNNAnomalyDetector(block_steps=5, hidden_size=16, min_steps=250, epochs=1, contamination=0.01,
                              random_state=0).fit(injected("none")[:1200])


def test_block_detector_scores_block_ends_and_finds_a_slower_cycle(block_detector):
    assert block_detector.block_ == 5
    values = injected("none")
    slow = np.arange(ONSET, ONSET + 100)
    values[slow] = np.sin(2 * np.pi * slow / 50) + 0.05 * np.random.default_rng(1).standard_normal(100)  # in range
    scores = block_detector.score_samples(values)
    ends = np.arange(4, 1500, 5)
    assert not np.delete(scores, ends).any()  # only a block's last step scores (no range breaks here)
    assert scores[ONSET:ONSET + 100].max() > block_detector.threshold_
    assert (scores[100:1290] > block_detector.threshold_).mean() < 0.01
    online = block_detector.score_samples(values, online=True, start=1000)
    changed = values.copy()
    changed[1352:] = 5.0
    again = block_detector.score_samples(changed, online=True, start=1000)
    # a block is scored once whole: step 1349 closes the last block before the change
    assert np.allclose(online[:1350], again[:1350]) and not np.allclose(online[1350:], again[1350:])


def test_block_detector_save_load_expected_and_explain(block_detector, tmp_path):
    from rnnkit.anomaly.blocks import block_means
    from rnnkit.anomaly.reconstruction import ScaledWindows, rebuilt_saliency
    values = injected("spike")
    block_detector.save(tmp_path / "d")
    loaded = RNNAnomalyDetector.load(tmp_path / "d")
    assert loaded.block_ == 5 and np.allclose(loaded.score_samples(values), block_detector.score_samples(values))
    mean, low, high = loaded.expected(values)[0]
    assert np.all(mean[160:165] == mean[160]) and np.all(low[160:] < mean[160:]) and np.all(mean[160:] < high[160:])
    why = loaded.explain_step(values, ONSET + 4)  # the spike's block ends at step 1304
    assert why["value"][0] == pytest.approx(values[ONSET:ONSET + 5].mean())
    assert list(why["steps"]) == list(range(ONSET + 5 - 32 * 5, ONSET + 5)) and why["contribution"].shape == (160, 1)
    # each step's gradient x input through its block's mean adds up to the block's own
    means = block_means([values.reshape(-1, 1)], 5)
    _, per_block, _ = rebuilt_saliency(loaded.model_, ScaledWindows(means, loaded.location_, loaded.spread_, 32),
                                       (ONSET + 4) // 5)
    assert np.allclose(why["contribution"].reshape(32, 5, 1).sum(axis=1), per_block)
    assert not np.allclose(why["contribution"][:5], why["contribution"][0])  # steps of a block differ
    with pytest.raises(ValueError, match="inside a block of 5 steps.*last step .1304"):
        loaded.explain_step(values, ONSET)


def test_blocks_shrink_for_short_series_and_need_reconstruction():
    short = RNNAnomalyDetector(block_steps=12, hidden_size=4, min_steps=2, epochs=1).fit(injected("none")[:200])
    assert short.block_ == 200 // 34  # 34 = a window of 32 blocks and two more
    with pytest.raises(Exception, match="--block-steps above 1 needs --method reconstruction"):
        RNNAnomalyDetector(block_steps=2, method="prediction").fit(np.arange(50.0))
    with pytest.raises(Exception, match="--block-steps must be in 1"):
        RNNAnomalyDetector(block_steps=0).fit(np.arange(50.0))


def test_an_ensemble_averages_networks_trained_as_detectors_of_their_own_seeds(tmp_path):
    import torch
    from rnnkit.anomaly.reconstruction import NetworkEnsemble, members
    values, settings = injected("spike"), dict(block_steps=5, hidden_size=8, min_steps=60, epochs=1, update_every=50,
                                               validation_fraction=0.0, early_stopping=False, update_steps=3)
    alone = [RNNAnomalyDetector(**settings, random_state=seed).fit(values[:1000]) for seed in (3, 4)]
    ensemble = RNNAnomalyDetector(**settings, networks=2, random_state=3).fit(values[:1000])
    assert isinstance(ensemble.model_, NetworkEnsemble)
    for network, single in zip(members(ensemble.model_), alone):  # network k: the detector of seed 3 + k
        weights = zip(network.state_dict().values(), single.model_.state_dict().values())
        assert all(torch.equal(a, b) for a, b in weights)
    # online too, each network learns as its own detector would: the root mean square of their errors
    for online in (False, True):
        errors = [d.raw_errors(values, online=online, start=1000)[0] for d in alone]
        both = ensemble.raw_errors(values, online=online, start=1000)[0]
        scored = np.isfinite(both)
        root_mean_square = np.sqrt((errors[0] ** 2 + errors[1] ** 2) / 2)
        assert scored.sum() > 250 and np.allclose(both[scored], root_mean_square[scored])
    assert ensemble.score_samples(values)[ONSET:ONSET + 5].max() > ensemble.threshold_
    ensemble.save(tmp_path / "d")
    loaded = RNNAnomalyDetector.load(tmp_path / "d")
    assert isinstance(loaded.model_, NetworkEnsemble) and loaded.networks == 2
    assert np.allclose(loaded.score_samples(values, online=True, start=1000),
                       ensemble.score_samples(values, online=True, start=1000))
    mean, _, _ = loaded.expected(values)[0]  # the networks' mean rebuilt block
    rebuilt = [d.expected(values)[0][0] for d in alone]
    assert np.allclose(mean[200:], (rebuilt[0][200:] + rebuilt[1][200:]) / 2, atol=1e-6)
    with pytest.raises(Exception, match="--networks above 1 needs --method reconstruction"):
        RNNAnomalyDetector(networks=2, method="prediction").fit(np.arange(50.0))
    with pytest.raises(Exception, match="would pass the largest seed"):
        RNNAnomalyDetector(networks=3, random_state=2**63 - 2).fit(np.arange(50.0))


# ---------------------------------------------------------------------------- command line
@pytest.fixture
def stream_files(tmp_path):
    clean, broken = with_anomalies()
    for name, values in (("normal.csv", clean[:550]), ("new.csv", broken)):
        (tmp_path / name).write_text("t,load\n" + "".join(f"{i},{v:.5f}\n" for i, v in enumerate(values)))
    return tmp_path / "normal.csv", tmp_path / "new.csv"


def test_cli_train_and_score(cli, stream_files, tmp_path):
    normal, new = stream_files
    status, _, err = cli("anomaly", "train", normal, "--time-col", "t", "--value-col", "load", "--out",
                         tmp_path / "m", "--hidden-size", "16", "--min-steps", "200", "--epochs", "1", "--quiet")
    assert status == 0, err
    status, out, err = cli("anomaly", "score", tmp_path / "m", new, "--plot", tmp_path / "p.png")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["t", "load", "score", "anomaly"] and len(rows) == 900
    assert any(r["anomaly"] == "1" for r in rows[600:604]) and "steps flagged" in err
    assert (tmp_path / "p.png").stat().st_size > 1000
    status, out, err = cli("anomaly", "score", tmp_path / "m", new, "--online", "--start", "500")
    assert status == 0 and len(out.splitlines()) == 901, err
    status, out, err = cli("anomaly", "explain", tmp_path / "m", new, "--at", "600", "--out", tmp_path / "why.png",
                           "--top", "3")
    assert status == 0, err
    assert out.splitlines()[0] == "time,value,gradient_x_input,share_of_influence" and len(out.splitlines()) == 4
    assert "600: value" in err and "above the expected 99% range" in err and "flagged" in err
    assert (tmp_path / "why.png").stat().st_size > 1000


def test_cli_block_model_explains_a_block_at_its_last_step(cli, stream_files, tmp_path):
    normal, new = stream_files
    status, _, err = cli("anomaly", "train", normal, "--time-col", "t", "--value-col", "load", "--out",
                         tmp_path / "m", "--block-steps", "5", "--hidden-size", "8", "--min-steps", "50", "--epochs",
                         "1")
    # 110 blocks: no block can rank as a one-in-1,000 error, and the user is told
    assert status == 0 and "so only range breaks will flag; raise --contamination" in err, err
    status, out, err = cli("anomaly", "score", tmp_path / "m", new)
    scores = [float(r["score"]) for r in csv.DictReader(io.StringIO(out))]
    assert status == 0 and len(scores) == 900, err
    between = [scores[t] for t in range(900) if t % 5 != 4]  # a step inside a block: 0, or a range break
    assert all(x == 0 or x >= 10 for x in between) and max(scores[4::5]) > 0
    status, out, err = cli("anomaly", "explain", tmp_path / "m", new, "--at", "604", "--out", tmp_path / "why.png")
    assert status == 0 and "604: the mean of 5 steps" in err and (tmp_path / "why.png").exists(), err
    status, out, err = cli("anomaly", "explain", tmp_path / "m", new, "--at", "600", "--out", tmp_path / "w.png")
    assert status == 2 and out == "" and "explains a block at its last step; this step's block ends at 604" in err
    assert len(err.strip().splitlines()) == 1
    cut = tmp_path / "cut.csv"  # 898 steps: the last three are not yet a whole block
    cut.write_text("".join(new.read_text().splitlines(keepends=True)[:899]))
    status, out, err = cli("anomaly", "explain", tmp_path / "m", cut, "--at", "897", "--out", tmp_path / "w.png")
    assert status == 2 and "ends after the end of the series" in err, err


def test_cli_bad_inputs(cli, stream_files, tmp_path):
    from rnnkit.timeseries import RNNForecaster
    normal, new = stream_files

    def bad(*argv, message):
        status, out, err = cli(*argv)
        assert status == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err, err

    base = ["--time-col", "t", "--value-col", "load"]
    bad("anomaly", "train", normal, "--time-col", "when", "--value-col", "load", "--out", tmp_path / "x",
        message="no column 'when'")
    bad("anomaly", "train", normal, *base, "--out", tmp_path / "x", "--short-window", "9000",
        message="--short-window must be shorter")
    bad("anomaly", "train", normal, *base, "--out", tmp_path / "x", "--range-margin", "-0.1",
        message="--range-margin must be in [0, 100]")
    bad("anomaly", "train", normal, *base, "--out", tmp_path / "x", "--quiet-steps", "-1", message="--quiet-steps")
    bad("anomaly", "train", normal, *base, "--out", tmp_path / "x", "--block-steps", "0",
        message="--block-steps must be in 1..")
    bad("anomaly", "train", normal, *base, "--out", tmp_path / "x", "--tail-index", "-1",
        message="--tail-index must be in 0..100")
    bad("anomaly", "train", normal, *base, "--out", tmp_path / "x", "--weight-drop", "-0.1",
        message="--weight-drop must be in [0, 1)")
    bad("anomaly", "train", normal, *base, "--out", tmp_path / "x", "--networks", "0",
        message="--networks must be in 1..")
    bad("anomaly", "train", normal, *base, "--out", tmp_path / "x", "--networks", "2", "--method", "prediction",
        message="--networks above 1 needs --method reconstruction")
    assert not (tmp_path / "x").exists()  # nothing written for a refused command
    short = tmp_path / "short.csv"
    short.write_text("t,load\n0,1\n1,2\n2,3\n")
    bad("anomaly", "train", short, *base, "--out", tmp_path / "x", message="needs at least")
    bad("anomaly", "score", tmp_path / "nothing", new, message="not a model directory")
    bad("anomaly", "score", tmp_path / "nothing", new, "--start", "-1", message="--start must be >= 0")
    RNNForecaster(hidden_size=4, min_steps=2, epochs=1).fit(np.sin(np.arange(40.0))).save(tmp_path / "f")
    bad("anomaly", "score", tmp_path / "f", new, message="not a RNNAnomalyDetector")
    (tmp_path / "mine.png").write_bytes(b"a user's picture")
    bad("anomaly", "score", tmp_path / "f", new, "--plot", tmp_path / "mine.png", message="--force")
    assert (tmp_path / "mine.png").read_bytes() == b"a user's picture"


def test_cli_many_series_in_one_file(cli, tmp_path):
    clean, broken = with_anomalies()
    rows = [f"{name},2024-01-01T{i // 60:02d}:{i % 60:02d},{v:.5f}\n"
            for name, values in (("a", clean[:400]), ("b", broken[300:700])) for i, v in enumerate(values)]
    data = tmp_path / "two.csv"
    data.write_text("sensor,time,load\n" + "".join(rows))
    status, _, err = cli("anomaly", "train", data, "--time-col", "time", "--value-col", "load", "--id-col", "sensor",
                         "--out", tmp_path / "m", "--hidden-size", "8", "--min-steps", "30", "--epochs", "1", "--quiet")
    assert status == 0, err
    status, out, err = cli("anomaly", "score", tmp_path / "m", data)
    assert status == 0, err
    scored = list(csv.DictReader(io.StringIO(out)))
    assert list(scored[0]) == ["sensor", "time", "load", "score", "anomaly"] and len(scored) == 800
    assert scored[0]["time"] == "2024-01-01T00:00:00" and scored[400]["sensor"] == "b"
    status, _, err = cli("anomaly", "explain", tmp_path / "m", data, "--series", "b", "--at", "2024-01-01T05:00",
                         "--out", tmp_path / "w.png")
    assert status == 0 and "2024-01-01T05:00:00: value" in err, err


@pytest.mark.parametrize("field, value", [("spread", [[-1.0]]), ("location", "high"), ("reference", {"a": 1}),
                                          ("scaling_ids", [1, 2]), ("threshold", None), ("range", [[0.0], [1.0], [2.0]]),
                                          ("range", [["low"], ["high"]]), ("block", 0), ("block", 2.5)])
def test_a_tampered_detector_is_refused_in_one_line(cli, tmp_path, field, value):
    import json
    RNNAnomalyDetector(min_steps=2, epochs=1, hidden_size=4).fit(np.sin(np.arange(100.0))).save(tmp_path / "d")
    meta = json.loads((tmp_path / "d" / "rnnkit.json").read_text())
    meta["fitted"][field] = value
    (tmp_path / "d" / "rnnkit.json").write_text(json.dumps(meta))
    (tmp_path / "s.csv").write_text("t,v\n" + "".join(f"{i},{np.sin(i):.4f}\n" for i in range(50)))
    status, out, err = cli("anomaly", "score", tmp_path / "d", tmp_path / "s.csv")
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1 and "fitted state or weights" in err, err
