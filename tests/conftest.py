import random
import sys
from pathlib import Path

import pytest
import torch

import rnnkit

torch.set_num_threads(2)

SUBJECTS = ["the cat", "a dog", "my friend", "the old king", "her brother"]
VERBS = ["sees", "likes", "follows", "greets"]
OBJECTS = ["the moon", "a bird", "the river", "our house", "his horse"]


def sentences(n: int, seed: int = 0) -> str:
    """Text from a tiny grammar: 100 equally likely sentences of ~25 characters, so about
    0.18 nats/char of real uncertainty; a unigram model scores about 2.8 nats/char."""
    rng = random.Random(seed)
    lines = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}." for _ in range(n)]
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "grammar.txt"
    path.write_text(sentences(3000), encoding="utf-8")
    return path


def straight_and_resumed(text, tmp_path, stop_at: int, **settings):
    """The (step, loss) pairs of a run trained straight through (in tmp_path/straight) and of the
    same run stopped by Ctrl-C after step `stop_at`, then resumed (tmp_path/resumed)."""
    from rnnkit.training import TrainingInterrupted
    straight, interrupted = [], []
    rnnkit.train(text, out=tmp_path / "straight", on_step=lambda s, l: straight.append((s, l)), **settings)

    def stop(step, loss):
        interrupted.append((step, loss))
        if step == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match=f"step {stop_at}"):
        rnnkit.train(text, out=tmp_path / "resumed", on_step=stop, **settings)
    rnnkit.train(resume=tmp_path / "resumed", on_step=lambda s, l: interrupted.append((s, l)),
                 log=settings.get("log"), progress=settings.get("progress", True))
    return straight, interrupted


TINY = dict(num_layers=1, hidden_size=64, embedding_size=16, batch_size=16, seq_length=32, lr=1e-2, eval_chars=4000)


@pytest.fixture(scope="session")
def trained_run(corpus_file, tmp_path_factory) -> Path:
    """A small model trained once per session, for the sampling/eval/info tests."""
    out = tmp_path_factory.mktemp("runs") / "grammar"
    rnnkit.train(corpus_file, out=out, max_steps=150, log=lambda line: None, **TINY)
    return out


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process: returns (exit status, stdout, stderr)."""
    from rnnkit.cli import main

    def run(*argv: str):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as e:  # argparse exits for --help and bad flags
            status = e.code
        out, err = capsys.readouterr()
        return status, out, err
    return run


def python_cli() -> list[str]:
    return [sys.executable, "-m", "rnnkit"]


CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


def serving(app):
    """Run an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
