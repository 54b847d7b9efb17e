"""rnnkit's messages go through `logging` (logger "rnnkit"): an application's handlers receive them,
the estimators print them on stderr when verbose and nothing is configured, and the command line
prints them once per command and restores the logger afterwards."""

import logging

import numpy as np

from rnnkit import logs
from rnnkit.estimators import RNNClassifier

TINY_FLAGS = ["--num-layers", "1", "--hidden-size", "16", "--embedding-size", "8", "--batch-size", "8",
              "--seq-length", "16", "--eval-chars", "500"]
TINY = dict(level="char", hidden_size=8, embedding_size=4, epochs=1, bidirectional=False, ensemble="none",
            random_state=0)


def _texts(n: int = 40):
    rng = np.random.default_rng(0)
    X = ["".join(rng.choice(list("ab"), 8)) for _ in range(n)]
    return X, np.array([x.count("a") > 4 for x in X])


def _bare(monkeypatch, request, root_handlers=()) -> logging.Logger:
    """Set aside the root's handlers (pytest's capture among them) and rnnkit's: a plain script.
    Called inside the test, after pytest has attached its handlers for the test's call."""
    monkeypatch.setattr(logging.getLogger(), "handlers", list(root_handlers))
    logger = logging.getLogger(logs.ROOT)
    monkeypatch.setattr(logger, "handlers", [])
    request.addfinalizer(lambda level=logger.level: logger.setLevel(level))  # setLevel also clears the cache
    return logger


def test_estimator_notes_reach_the_applications_handlers(caplog):
    caplog.set_level(logging.INFO, logger=logs.ROOT)
    RNNClassifier(**TINY, verbose=1, max_tokens=4).fit(*_texts())
    mine = [r for r in caplog.records if r.name.startswith("rnnkit.")]
    assert any("longer than 4 steps" in r.getMessage() and r.levelno == logging.INFO for r in mine)
    caplog.clear()
    RNNClassifier(**TINY, verbose=0, max_tokens=4).fit(*_texts())
    assert not [r for r in caplog.records if r.name.startswith("rnnkit.") and r.levelno >= logging.INFO]


def test_verbose_estimator_prints_on_stderr_when_nothing_is_configured(monkeypatch, request, capsys):
    bare_logging = _bare(monkeypatch, request)
    RNNClassifier(**TINY, verbose=1, max_tokens=4).fit(*_texts())
    err = capsys.readouterr().err
    assert "longer than 4 steps" in err
    assert [type(h) for h in bare_logging.handlers] == [logs.ConsoleHandler]
    logs.console()  # a second call adds nothing
    assert len(bare_logging.handlers) == 1


def test_console_leaves_a_configured_application_alone(monkeypatch, request):
    logger = _bare(monkeypatch, request, [logging.NullHandler()])
    logs.console()
    assert logger.handlers == []


def test_command_prints_its_lines_once_and_restores_the_logger(cli, corpus_file, tmp_path):
    logger = logging.getLogger(logs.ROOT)
    before = logger.handlers[:], logger.propagate, logger.level
    status, _, err = cli("train", corpus_file, "--out", tmp_path / "r", "--max-steps", "3", *TINY_FLAGS)
    assert status == 0 and err.count("done: 3 steps") == 1
    assert (logger.handlers, logger.propagate, logger.level) == before
    status, _, err = cli("train", corpus_file, "--out", tmp_path / "q", "--max-steps", "3", "--quiet", *TINY_FLAGS)
    assert status == 0 and "done:" not in err
