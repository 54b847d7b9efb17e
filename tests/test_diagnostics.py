"""Gradient-flow diagnostics, `rnnkit gradcheck` and `rnnkit diagnose`."""

import json

import numpy as np
import pytest
import torch

from rnnkit.config import ModelConfig
from rnnkit.diagnostics import decay_per_step, diagnose, gradient_by_distance, recurrent_spectra
from rnnkit.models.language_model import LanguageModel

from .conftest import sentences


def test_decay_rate_of_a_known_linear_recurrence():
    """A tanh RNN kept in its linear regime (tiny inputs, W_hh = 0.5 I) passes gradients back
    multiplied by exactly 0.5 per step; the measured rate must say so."""
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(vocab_size=10, cell="rnn", hidden_size=8, num_layers=1, embedding_size=4))
    cell = model.recurrent.cells[0]
    with torch.no_grad():
        cell.weight_hh.copy_(0.5 * torch.eye(8))
        cell.weight_ih.mul_(1e-4)
        cell.bias_ih.zero_()
        cell.bias_hh.zero_()
    norms = gradient_by_distance(model, np.arange(500) % 10, span=20, batch=4, warmup=10)
    assert norms.shape == (1, 20)
    assert decay_per_step(norms[0]) == pytest.approx(0.5, rel=1e-3)


def test_spectral_radius_of_orthogonal_and_identity_recurrences():
    for cell, scheme in (("rnn", "orthogonal"), ("irnn", "identity")):
        model = LanguageModel(ModelConfig(vocab_size=10, cell=cell, hidden_size=6, num_layers=2, init=scheme))
        spectra = recurrent_spectra(model)
        assert len(spectra) == 2
        assert spectra[0]["recurrence"]["spectral_radius"] == pytest.approx(1.0, abs=1e-6)
        assert np.allclose(spectra[1]["recurrence"]["singular_values"], 1.0, atol=1e-5)


def test_diagnose_report_on_a_fresh_lstm():
    model = LanguageModel(ModelConfig(vocab_size=12, cell="lstm", hidden_size=8, num_layers=2, embedding_size=4))
    tokens = np.random.default_rng(0).integers(0, 12, 3000)
    report = diagnose(model, tokens, span=15, batch=4)
    flow = report["gradient_by_distance"]
    assert np.array(flow["norm"]).shape == (2, 15)
    assert all(rate is not None and 0 < rate < 2 for rate in flow["decay_per_step"])
    assert set(report["recurrent_spectra"][0]) == {"input_gate", "forget_gate", "candidate", "output_gate"}
    assert set(report["saturation"][1]) == {"input_gate", "forget_gate", "output_gate"}
    for layer in report["saturation"]:
        for frac in layer.values():
            assert 0 <= frac["low"] <= 1 and 0 <= frac["high"] <= 1 and frac["low"] + frac["high"] <= 1
    assert np.array(report["hidden_norm"]).shape[0] == 2
    json.dumps(report)  # JSON-ready


def test_gradcheck_cli(cli):
    status, out, err = cli("gradcheck", "--cell", "irnn", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["cell"] == "irnn" and report["passed"] is True
    assert max(report["reference_vs_numeric"].values()) < 1e-6
    assert max(report["engine_vs_reference"].values()) < 1e-8
    status, out, _ = cli("gradcheck", "--cell", "rnn", "--cell", "lstm", "--layers", "2")
    assert status == 0 and out.count("PASS") == 2


def test_diagnose_cli_writes_figure_and_json(cli, trained_run, corpus_file, tmp_path):
    prefix = tmp_path / "out" / "diag"
    status, out, err = cli("diagnose", trained_run, corpus_file, "--out", prefix, "--span", "30", "--batch", "4")
    assert status == 0, err
    assert (tmp_path / "out" / "diag.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "out" / "diag.json").read_text())
    assert len(report["gradient_by_distance"]["norm"][0]) == 30 and report["untrained"] is False
    assert "spectral radius" in out


@pytest.mark.parametrize("args,message", [
    (["gradcheck", "--layers", "0"], "--layers must be between 1 and 4"),
    (["gradcheck", "--embedding-size", "-1"], "--embedding-size must be >= 0"),
    (["gradcheck", "--cell", "transformer"], "invalid choice"),
    (["diagnose", "{run}", "{short}"], "too short for these diagnostics"),
    (["diagnose", "{run}", "{corpus}", "--span", "0"], "--span must be >= 1"),
    (["diagnose", "{run}", "missing.txt"], "missing.txt: no such file"),
    (["diagnose", "{run}", "{foreign}"], "outside the model's vocabulary"),
    (["experiment", "nonsense"], "invalid choice"),
])
def test_bad_input_gets_one_clean_line(cli, trained_run, corpus_file, tmp_path, args, message):
    (tmp_path / "short.txt").write_text("the cat sees the moon.\n")
    (tmp_path / "foreign.txt").write_text("ΩΩΩ " + sentences(100))
    names = {"run": trained_run, "corpus": corpus_file, "short": tmp_path / "short.txt",
             "foreign": tmp_path / "foreign.txt"}
    status, out, err = cli(*[a.format(**names) for a in args])
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
