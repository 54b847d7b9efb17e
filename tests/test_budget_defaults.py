"""The model a time budget picks: the long-budget model and its optimizer for long budgets, a wider
bf16 model on CPUs with bf16 matrix units for short ones; what the user chose is kept, and the log
names the cell."""

import pytest

import rnnkit
from rnnkit import native, precision

from .test_training import quiet


def test_long_time_budgets_get_the_long_budget_model_unless_told(corpus_file, tmp_path, monkeypatch):
    from rnnkit.api import training
    seen = []
    monkeypatch.setattr(training, "_run", lambda run_dir, model, vocab, info, config, *a, **k:
                        seen.append(model.config) or trained.append((config.optimizer, config.weight_decay)))
    trained = []  # the long-budget defaults are the CPU's (on a GPU the LSTM keeps cuDNN): device="cpu"
    monkeypatch.setattr(precision, "cpu_bf16_matrix_units", lambda: False)  # 130 s: the same on any CPU
    rnnkit.train(corpus_file, out=tmp_path / "a", time=600, device="cpu", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "b", time=600, hidden_size=64, device="cpu", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "c", time=130, device="cpu", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "d", time=600, cell="gru", device="cpu", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "e", time=600, autocast="bf16", device="cpu", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "f", time=600, zoneout=0.1, device="cpu", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "h", time=600, optimizer="adam", device="cpu", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "i", time=600, weight_decay=0.01, device="cpu", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "j", time=600, cell="mingru", device="cpu", **quiet)  # seen[8]
    rnnkit.train(corpus_file, out=tmp_path / "k", time=600, cell="minlstm", dropout=0.3, device="cpu", **quiet)
    long_cell = "lnlstm" if native.library() is not None else "lstm"
    monkeypatch.setenv("RNNKIT_NATIVE", "0")  # without the C kernels the LN-LSTM would run step by step
    native.library.cache_clear()
    try:
        rnnkit.train(corpus_file, out=tmp_path / "g", time=600, device="cpu", **quiet)  # seen[10]
    finally:
        native.library.cache_clear()  # loaded again once RNNKIT_NATIVE is restored
    assert (seen[0].cell, seen[0].hidden_size, seen[0].dropout) == (long_cell, 384, 0.2)
    assert (seen[1].cell, seen[1].hidden_size, seen[1].dropout) == (long_cell, 64, 0.2)  # what the user gave is kept
    assert (seen[2].cell, seen[2].hidden_size, seen[2].dropout) == ("lstm", 256, 0.0)
    assert [c.cell for c in seen[3:6]] == ["gru", "lstm", "lstm"]
    # the LN-LSTM default trains with AdamW and weight decay, unless the user chose either
    long_training = ("adamw", 0.1) if long_cell == "lnlstm" else ("adam", 0.0)
    assert trained[:2] == [long_training] * 2 and trained[2:6] == [("adam", 0.0)] * 4
    assert [c.cell for c in seen[6:8]] == [long_cell] * 2 and trained[6:8] == [("adam", 0.0), ("adam", 0.01)]
    # the parallel-scan cells measured better with less dropout; a dropout the user gives is kept
    assert [(c.cell, c.hidden_size, c.dropout) for c in seen[8:10]] == [("mingru", 384, 0.1), ("minlstm", 384, 0.3)]
    assert (seen[10].cell, trained[10]) == ("lstm", ("adam", 0.0))  # RNNKIT_NATIVE=0


def test_short_budgets_on_a_cpu_with_bf16_matrix_units_train_a_wider_model_in_bf16(corpus_file, tmp_path,
                                                                                    monkeypatch):
    from rnnkit.api import training
    seen, lines = [], []
    monkeypatch.setattr(training, "_run", lambda run_dir, model, vocab, info, config, *a, **k:
                        seen.append((model.config.cell, model.config.hidden_size, model.config.dropout,
                                     config.autocast)))
    monkeypatch.setattr(precision, "cpu_bf16_matrix_units", lambda: True)
    rnnkit.train(corpus_file, out=tmp_path / "a", time=130, device="cpu", log=lines.append)
    rnnkit.train(corpus_file, out=tmp_path / "b", time=130, device="cpu", autocast="off", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "c", time=130, device="cpu", hidden_size=64, **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "d", time=130, device="cpu", cell="gru", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "e", max_steps=5, device="cpu", **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "f", time=600, device="cpu", **quiet)
    long_cell = "lnlstm" if native.library() is not None else "lstm"
    assert seen[0] == ("lstm", 384, 0.1, "bf16")
    assert any("bf16 matrix units" in line and "--autocast bf16" in line and "--hidden-size 384" in line
               for line in lines), lines
    # whatever the user chose about the model or its precision keeps the float32 defaults; so do
    # step budgets and the long budget
    assert seen[1:5] == [("lstm", 256, 0.0, "off"), ("lstm", 64, 0.0, "off"), ("gru", 256, 0.0, "off"),
                         ("lstm", 256, 0.0, "off")]
    # the long budget's LN-LSTM is wider on such a (faster) CPU unless the user gave a size
    rnnkit.train(corpus_file, out=tmp_path / "h", time=600, device="cpu", hidden_size=64, **quiet)
    rnnkit.train(corpus_file, out=tmp_path / "i", time=600, device="cpu", cell="lstm", **quiet)
    assert seen[5:8] == [(long_cell, 512 if long_cell == "lnlstm" else 384, 0.2, "off"),
                         (long_cell, 64, 0.2, "off"), ("lstm", 384, 0.2, "off")]
    monkeypatch.setattr(precision, "cpu_bf16_matrix_units", lambda: False)
    rnnkit.train(corpus_file, out=tmp_path / "g", time=130, device="cpu", **quiet)
    assert seen[8] == ("lstm", 256, 0.0, "off")


@pytest.mark.skipif(native.library() is None, reason="the C kernels could not be built here")
def test_the_long_budget_cell_is_named_in_the_log(corpus_file, tmp_path, monkeypatch):
    from rnnkit.api import training
    monkeypatch.setattr(training, "_run", lambda *a, **k: None)
    lines = []
    rnnkit.train(corpus_file, out=tmp_path / "a", time=600, device="cpu", log=lines.append)
    assert any("long-budget defaults" in line and "--cell lnlstm" in line and "--optimizer adamw" in line
               and "--weight-decay 0.1" in line for line in lines), lines
