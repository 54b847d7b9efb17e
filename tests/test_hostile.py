"""rnnkit under hostile input: tampered checkpoints and model directories (fuzzed), files that are
not files, output paths that belong to the user or to a run, signals during corpus encoding,
failing disks and outputs. Every case ends in a working result or one clean error; no user file
is lost."""

import copy
import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

import rnnkit
from rnnkit import checkpoint
from rnnkit.errors import UsageError
from rnnkit.estimators import RNNClassifier

from .conftest import python_cli
from .test_cli import assert_clean_error

HOSTILE_VALUES = [None, True, False, -1, 0, 1, 2.5, -0.0, 1e308, float("nan"), float("inf"), 2**70, -(2**70),
                  "", "x", "../../etc/passwd", "/dev/zero", [], [1, "a"], [[0, 1]], {}, {"a": 1}, {"file": "x"}]


def _paths(doc, prefix=()):
    """Every path to a value in a JSON tree (lists: their first three items)."""
    if prefix:
        yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc[:3]):
            yield from _paths(value, prefix + (i,))


def _mutated(doc: dict, paths: list, rng: random.Random) -> dict:
    doc = copy.deepcopy(doc)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        path = rng.choice(paths)
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if isinstance(parent, dict) and rng.random() < 0.2:
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
        except (KeyError, IndexError, TypeError):  # an earlier mutation removed the way there
            pass
    return doc


class Snapshot:
    """A directory's files, put back exactly after each case (a resume may write a checkpoint)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = {p.relative_to(directory): p.read_bytes() for p in directory.rglob("*") if p.is_file()}

    def restore(self) -> None:
        for path in self.directory.rglob("*"):
            if path.is_file() and path.relative_to(self.directory) not in self.files:
                path.unlink()
        for name, data in self.files.items():
            target = self.directory / name
            if not target.is_file() or target.read_bytes() != data:
                target.write_bytes(data)


def _clean_or_working(action) -> str:
    try:
        action()
        return "worked"
    except UsageError:
        return "refused"


def _copy(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())
    return target


def test_fuzzed_run_descriptions_and_tensor_headers_load_or_fail_cleanly(trained_run, tmp_path):
    run = _copy(trained_run, tmp_path / "run")
    snapshot = Snapshot(run)
    pristine = json.loads((run / "rnnkit.json").read_text())
    paths = list(_paths(pristine))
    rng = random.Random(20261130)
    outcomes = {"worked": 0, "refused": 0}

    def use() -> None:
        model = rnnkit.load(run)
        model.info()
        model.generate(length=3, seed=0)

    def resume() -> None:
        rnnkit.train(resume=run, max_steps=1, log=lambda line: None)

    started = time.perf_counter()
    for case in range(1100):
        if case < 800:  # the description
            doc = _mutated(pristine, paths, rng)
        else:  # a tensor file's header, with the checksum made to match so the header is what is read
            doc = copy.deepcopy(pristine)
            role = rng.choice(("model", "best", "resume"))
            entry = doc["files"][role]
            blob = bytearray((run / entry["file"]).read_bytes())
            header_end = 8 + int.from_bytes(blob[:8], "little")
            for _ in range(rng.randint(1, 4)):
                blob[rng.randrange(header_end)] = rng.randrange(256)
            (run / entry["file"]).write_bytes(bytes(blob))
            entry["sha256"] = hashlib.sha256(blob).hexdigest()
        (run / "rnnkit.json").write_text(json.dumps(doc))
        outcomes[_clean_or_working(resume if case % 4 == 0 else use)] += 1
        snapshot.restore()
    assert outcomes["refused"] > 500 and outcomes["worked"] > 50, outcomes
    assert time.perf_counter() - started < 60


def test_fuzzed_model_directories_load_or_fail_cleanly(tmp_path):
    X = ["aab", "abb", "ab", "bba", "aaab", "bbba"] * 8
    y = [x.count("a") > x.count("b") for x in X]
    RNNClassifier(hidden_size=8, embedding_size=4, epochs=1).fit(X, y).save(tmp_path / "clf")
    pristine = json.loads((tmp_path / "clf" / "rnnkit.json").read_text())
    paths = list(_paths(pristine))
    rng = random.Random(7)
    outcomes = {"worked": 0, "refused": 0}
    for _ in range(400):
        (tmp_path / "clf" / "rnnkit.json").write_text(json.dumps(_mutated(pristine, paths, rng)))
        outcomes[_clean_or_working(lambda: RNNClassifier.load(tmp_path / "clf").predict(["abab", "b"]))] += 1
    assert outcomes["refused"] > 100 and outcomes["worked"] > 20, outcomes


@pytest.mark.parametrize("make", ["fifo", "link out of the run", "link to a device", "directory"])
def test_tensor_files_that_are_not_files_are_refused_at_once(trained_run, tmp_path, make):
    run = _copy(trained_run, tmp_path / "run")
    target = run / checkpoint.read_meta(run)["files"]["best"]["file"]
    target.unlink()
    if make == "fifo":
        os.mkfifo(target)
    elif make == "link out of the run":
        (tmp_path / "elsewhere.safetensors").write_bytes(b"x" * 100)
        target.symlink_to(tmp_path / "elsewhere.safetensors")
    elif make == "link to a device":
        target.symlink_to("/dev/zero")
    else:
        target.mkdir()
    # in a child process with a deadline: reading a FIFO or /dev/zero would otherwise hang the suite
    result = subprocess.run([*python_cli(), "sample", str(run), "--length", "5"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "corrupted" in result.stderr


def test_a_fifo_as_corpus_is_named(cli, tmp_path):
    os.mkfifo(tmp_path / "pipe")
    assert_clean_error(*cli("train", tmp_path / "pipe", "--out", tmp_path / "r"), "is a FIFO")


# ----------------------------------------------------------------------------- the user's files
def test_a_data_folder_rnnkit_did_not_make_is_left_alone(cli, corpus_file, tmp_path):
    out = tmp_path / "run"
    (out / "data").mkdir(parents=True)
    (out / "data" / "tokens.bin").write_bytes(b"the user's own data")
    assert_clean_error(*cli("train", corpus_file, "--out", out, "--max-steps", "1"), "data folder rnnkit did not make")
    assert (out / "data" / "tokens.bin").read_bytes() == b"the user's own data"


def test_outputs_never_replace_the_users_files_or_a_runs(cli, trained_run, corpus_file, tmp_path):
    corpus_copy = tmp_path / "text.txt"
    corpus_copy.write_text(corpus_file.read_text())
    run = _copy(trained_run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert_clean_error(*cli("viz", run, corpus_copy, "-o", corpus_copy), "was not written by rnnkit", "--force")
    assert corpus_copy.read_text() == corpus_file.read_text()
    for args in (["plot", run, "-o", run / "rnnkit.json", "--force"],
                 ["diagnose", run, corpus_file, "--out", run / "rnnkit", "--force"],
                 ["viz", run, corpus_file, "-o", run / "metrics.jsonl", "--force"],
                 ["viz", run, corpus_file, "-o", run / checkpoint.read_meta(run)["files"]["best"]["file"], "--force"]):
        assert_clean_error(*cli(*args), "part of the rnnkit run")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    rnnkit.load(run)
    # rnnkit's own outputs are replaced without --force; another file only with it
    page = tmp_path / "page.html"
    assert cli("viz", run, corpus_file, "-o", page)[0] == 0
    assert cli("viz", run, corpus_file, "-o", page, "--chars", "50")[0] == 0
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"not a figure of ours")
    assert_clean_error(*cli("plot", run, "-o", notes), "was not written by rnnkit")
    assert cli("plot", run, "-o", notes, "--force")[0] == 0 and notes.read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".*.tmp")) and not list(run.glob(".*.tmp"))


def test_sigterm_while_encoding_removes_only_what_it_made(corpus_file, tmp_path):
    big = tmp_path / "big.txt"
    line = corpus_file.read_text()
    with open(big, "w") as f:
        for _ in range(max(1, 40_000_000 // len(line))):
            f.write(line)
    (tmp_path / "keep.txt").write_text("mine")
    out = tmp_path / "new-run"
    process = subprocess.Popen([*python_cli(), "train", str(big), "--out", str(out), "--max-steps", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "data" / checkpoint.DATA_MARKER).exists() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert not out.exists()  # the run folder was made by this run: nothing of it stays
    assert (tmp_path / "keep.txt").read_text() == "mine" and big.stat().st_size > 0


# ----------------------------------------------------------------------------- failing disks and outputs
def test_a_full_disk_while_checkpointing_keeps_the_last_checkpoint(corpus_file, tmp_path, monkeypatch):
    from .conftest import TINY
    out = tmp_path / "r"
    rnnkit.train(corpus_file, out=out, max_steps=10, eval_every=5, **TINY, log=lambda line: None)
    before = checkpoint.read_meta(out)
    real_write = checkpoint.write
    calls = []

    def fill_up(path, data):
        calls.append(path)
        if len(calls) == 2:  # the second file of the next checkpoint
            raise OSError(28, "No space left on device")
        real_write(path, data)
    monkeypatch.setattr(checkpoint, "write", fill_up)
    with pytest.raises(OSError):
        rnnkit.train(resume=out, max_steps=20, log=lambda line: None)
    assert checkpoint.read_meta(out) == before  # the previous checkpoint, whole
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(
        ["rnnkit.json", "metrics.jsonl", *(entry["file"] for entry in before["files"].values())])
    rnnkit.load(out)


def test_unwritable_outputs_and_stdout_are_one_line(trained_run, tmp_path):
    result = subprocess.run([*python_cli(), "plot", str(trained_run), "-o", "/proc/rnnkit-plot.png"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    with open("/dev/full", "w") as full:
        result = subprocess.run([*python_cli(), "sample", str(trained_run), "--length", "200"], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 2 and "No space left" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- odd data and numbers
def test_odd_csv_files_are_one_line(cli, tmp_path):
    (tmp_path / "latin1.csv").write_bytes("text,label\ncaf\xe9,a\nthe,b\n".encode("latin-1"))
    assert_clean_error(*cli("classify", "train", tmp_path / "latin1.csv", "--text-col", "text", "--label-col",
                            "label", "--out", tmp_path / "m1"), "not valid UTF-8")
    (tmp_path / "huge.csv").write_text("text,label\n" + '"' + "x" * 200_000 + '",a\nthe,b\n')
    assert_clean_error(*cli("classify", "train", tmp_path / "huge.csv", "--text-col", "text", "--label-col",
                            "label", "--out", tmp_path / "m2"), "not a CSV file rnnkit can read")
    (tmp_path / "one.csv").write_text("tokens,tags\na b,X Y\n")
    assert_clean_error(*cli("tag", "train", tmp_path / "one.csv", "--tokens-col", "tokens", "--tags-col", "tags",
                            "--out", tmp_path / "m3"), "at least 2 samples")
    for name in ("m1", "m2", "m3"):
        assert not (tmp_path / name).exists()


def test_long_texts_are_cut_to_a_stated_length():
    X = ["ab" * 5, "ba" * 5] * 20 + ["a" * 100_000]
    y = [0, 1] * 20 + [0]
    model = RNNClassifier(hidden_size=8, embedding_size=4, epochs=1).fit(X, y)
    assert model.max_tokens_ == 64  # 4 x the 90th-percentile length (10), at least 64
    started = time.perf_counter()
    model.predict(["a" * 1_000_000])
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("args, message", [
    (["--hidden-size", str(10**9)], "GiB but this machine has"),
    (["--hidden-size", "0"], "--hidden-size must be > 0"),
    (["--max-features", "0"], "--max-features must be > 0"),
    (["--lr", "nan"], "--lr must be a finite number"),
])
def test_nonsense_task_settings(cli, tmp_path, args, message):
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"t{i % 3},{i % 2}\n" for i in range(20)))
    assert_clean_error(*cli("classify", "train", tmp_path / "d.csv", "--text-col", "text", "--label-col", "label",
                            "--out", tmp_path / "m", *args), message)
    assert not (tmp_path / "m").exists()


def test_resume_before_the_first_checkpoint_says_so(cli, corpus_file, tmp_path):
    out = tmp_path / "r"
    (out / "data").mkdir(parents=True)
    (out / "data" / checkpoint.DATA_MARKER).write_text("rnnkit")
    (out / "data" / "tokens.bin").write_bytes(b"\0" * 10)
    assert_clean_error(*cli("train", "--resume", out), "stopped before its first checkpoint", "--out")


def test_a_checkpoint_comes_within_a_minute_even_before_the_first_evaluation(corpus_file, tmp_path, monkeypatch):
    from rnnkit import training

    from .conftest import TINY
    monkeypatch.setattr(training, "CHECKPOINT_SECONDS", 0.0)  # stands for "a minute has passed"
    steps = []
    out = tmp_path / "r"

    def stop_at_3(step, loss):
        steps.append(step)
        if step == 3:
            meta = checkpoint.read_meta(out)
            assert meta["step"] == 3 and not meta["metrics"]  # saved without evaluating (eval every 50)
            raise KeyboardInterrupt
    with pytest.raises(rnnkit.training.TrainingInterrupted):
        rnnkit.train(corpus_file, out=out, max_steps=100, eval_every=50, on_step=stop_at_3, **TINY,
                     log=lambda line: None)


@pytest.mark.parametrize("args, message", [
    (["units", "{run}", "{corpus}", "--chars", str(10**12)], "--chars must be in 2..200,000"),
    (["viz", "{run}", "{corpus}", "--chars", str(10**12)], "--chars must be in 2..100,000"),
    (["train", "{corpus}", "--out", "{tmp}/r", "--hidden-size", str(10**9)], "GiB but this machine has"),
    (["train", "{corpus}", "--out", "{tmp}/r", "--batch-size", str(10**9)], "--batch-size must be in"),
])
def test_sizes_beyond_reason_are_one_line(cli, trained_run, corpus_file, tmp_path, args, message):
    assert_clean_error(*cli(*[a.format(run=trained_run, corpus=corpus_file, tmp=tmp_path) for a in args]), message)
    assert not (tmp_path / "r").exists()


def test_divergence_under_classify_names_that_command(cli, tmp_path):
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"{'ab' * (i % 5 + 1)},{i % 2}\n" for i in range(40)))
    status, out, err = cli("classify", "train", tmp_path / "d.csv", "--text-col", "text", "--label-col", "label",
                           "--out", tmp_path / "m", "--lr", "1e30", "--clip", "0", "--cell", "irnn", "--epochs", "3")
    assert status == 1 and "Traceback" not in err
    assert "rnnkit classify train: training diverged" in err and "lower --lr" in err
    assert not (tmp_path / "m").exists()
