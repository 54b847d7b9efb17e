"""The NumPy reference: hand-written BPTT against finite differences, the engine against the
reference, and the reference as a working (if slow) trainer."""

import numpy as np
import pytest

from rnnkit.reference import CELLS, ReferenceLanguageModel, gradcheck, numeric_gradients, relative_error
from rnnkit.reference import lstm as reference_lstm
from rnnkit.reference.gradcheck import ENGINE_TOLERANCE, REFERENCE_TOLERANCE

from .conftest import sentences


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("layers,embedding", [(1, 3), (2, 0)])
def test_gradcheck_meets_both_targets(cell, layers, embedding):
    report = gradcheck(cell, layers, embedding)
    assert max(report.reference_vs_numeric.values()) < REFERENCE_TOLERANCE
    assert max(report.engine_vs_reference.values()) < ENGINE_TOLERANCE
    assert max(report.engine_steps_vs_reference.values()) < ENGINE_TOLERANCE
    # every parameter and the initial state were checked against finite differences
    expected = {"head.weight", "head.bias", "state.h", *(f"recurrent.cells.{k}.{name}" for k in range(layers)
                                                         for name in CELLS[cell][0].PARAMS)}
    assert expected <= set(report.reference_vs_numeric)
    assert ("embed.weight" in report.reference_vs_numeric) == (embedding > 0)
    # ... and against the engine, except what the engine never trains (the echo state reservoir)
    fixed = getattr(CELLS[cell][0], "FIXED", ())
    engine_checked = {n for n in expected if n.rsplit(".", 1)[-1] not in fixed}
    assert engine_checked <= set(report.engine_vs_reference)
    assert not fixed or not {n for n in report.engine_vs_reference if n.rsplit(".", 1)[-1] in fixed}
    assert report.passed


def test_gradcheck_catches_a_wrong_batch_normalisation_backward(monkeypatch):
    """Leaving out that every row moves the batch's mean (a per-row normalisation gradient) fails
    both checks: finite differences see the whole batch."""
    from rnnkit.reference import batchnorm

    def per_row(dy, gain, saved):
        zhat, inverse = saved
        return dy * gain * inverse, (dy * zhat).sum(axis=0), dy.sum(axis=0)
    monkeypatch.setattr(batchnorm, "normalise_backward", per_row)
    report = gradcheck("bnlstm", 1, 3)
    assert report.reference_vs_numeric["recurrent.cells.0.weight_hh"] > 1e-3
    assert report.engine_vs_reference["recurrent.cells.0.weight_hh"] > 1e-3 and not report.passed


def test_gradcheck_catches_a_wrong_feedback_gradient(monkeypatch):
    """The weights that carry the other layers' states into the gated-feedback stack are checked:
    a 1% error in their gradient fails both checks."""
    from rnnkit.reference import feedback
    original = feedback.backward_stack

    def wrong_backward(layers, dtop, cache):
        dx, dstate0, grads = original(layers, dtop, cache)
        grads[0]["weight_feedback"] = grads[0]["weight_feedback"] * 1.01
        return dx, dstate0, grads
    monkeypatch.setattr(feedback, "backward_stack", wrong_backward)
    report = gradcheck("gfrnn", 2, 0)
    assert report.reference_vs_numeric["recurrent.cells.0.weight_feedback"] > 1e-3
    assert report.engine_vs_reference["recurrent.cells.0.weight_feedback"] > 1e-3 and not report.passed


def test_reference_echo_state_network_trains_its_readout_only():
    """Adagrad on the reference moves the readout and leaves the reservoir and embedding as drawn,
    as the engine does; the readout alone still lowers the loss."""
    text = sentences(2000)
    chars = sorted(set(text))
    tokens = np.array([chars.index(c) for c in text])
    model = ReferenceLanguageModel.random("esn", len(chars), 64, embedding_size=8, seed=1)
    drawn = {n: v.copy() for n, v in model.params.items()}
    losses = model.train(tokens, steps=150, seq_length=25, batch_size=16, lr=0.1)
    assert set(model.trained) == {"head.weight", "head.bias"}
    for name, value in model.params.items():
        assert np.array_equal(value, drawn[name]) == (name not in model.trained), name
    assert np.mean(losses[-10:]) < np.mean(losses[:5]) - 0.8


def test_reference_batch_normalised_lstm_trains_but_does_not_sample():
    text = sentences(2000)
    chars = sorted(set(text))
    tokens = np.array([chars.index(c) for c in text])
    model = ReferenceLanguageModel.random("bnlstm", len(chars), 32, seed=1)
    losses = model.train(tokens, steps=150, seq_length=25, batch_size=16, lr=0.1)
    assert np.mean(losses[-10:]) < 1.0 < np.mean(losses[:5])
    with pytest.raises(ValueError, match="batch statistics"):
        model.sample([0], 5)


def test_gradcheck_catches_a_wrong_backward(monkeypatch):
    """A backward pass that forgets the forget gate on the cell path must fail the check."""
    original = reference_lstm.backward

    def wrong_backward(p, dhs, dstate, cache):
        dx, dstate0, grads = original(p, dhs, dstate, cache)
        grads["weight_hh"] = grads["weight_hh"] * 1.01  # a 1% error in one tensor
        return dx, dstate0, grads
    monkeypatch.setattr(reference_lstm, "backward", wrong_backward)
    report = gradcheck("lstm")
    assert report.reference_vs_numeric["recurrent.cells.0.weight_hh"] > 1e-3
    assert report.engine_vs_reference["recurrent.cells.0.weight_hh"] > 1e-3
    assert not report.passed


def test_numeric_gradients_of_a_known_function():
    w = {"a": np.array([1.0, -2.0, 3.0])}
    grads = numeric_gradients(lambda: float((w["a"] ** 3).sum()), w)
    assert relative_error(grads["a"], 3 * w["a"] ** 2) < 1e-9
    assert np.array_equal(w["a"], [1.0, -2.0, 3.0])  # restored after perturbing


def test_round_trip_through_the_engine_keeps_every_weight():
    model = ReferenceLanguageModel.random("gru", 7, 5, num_layers=2, embedding_size=4, seed=3)
    back = ReferenceLanguageModel.from_engine(model.to_engine())
    assert set(back.params) == set(model.params)
    for name in model.params:
        assert np.array_equal(back.params[name], model.params[name])


def test_gradcheck_catches_a_wrong_scan_cell_backward(monkeypatch):
    """The minimal cells' loop is held to finite differences and to the engine's log-space scan: a
    wrong derivative of g fails both."""
    from rnnkit.reference import minimal
    monkeypatch.setattr(minimal, "g_prime", lambda v: np.ones_like(v))
    report = gradcheck("mingru", 1, 3)
    assert report.reference_vs_numeric["recurrent.cells.0.weight_ih"] > 1e-3
    assert report.engine_vs_reference["recurrent.cells.0.weight_ih"] > 1e-3 and not report.passed


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "mingru"])
def test_reference_trainer_learns_the_grammar(cell):
    text = sentences(2000)
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    tokens = np.array([index[c] for c in text])
    model = ReferenceLanguageModel.random(cell, len(chars), 32, seed=1)
    losses = model.train(tokens, steps=300, seq_length=25, batch_size=16, lr=0.1)
    assert np.mean(losses[:5]) > 2.0  # ~ ln 25 at the start
    assert np.mean(losses[-20:]) < 0.35  # the grammar's own entropy is ~0.18 nats/char
    sample = "".join(chars[i] for i in model.sample([index["t"]], 200, temperature=0.5, seed=0))
    words = {w.strip(".") for line in sample.splitlines()[1:-1] for w in line.split()}
    assert words and words <= set(" ".join(sentences(2000).split()).replace(".", "").split())
