"""Checkpoints: crash safety, corruption detection, no code execution on load."""

import json
import os
import pickle
import signal
import subprocess
import time

import pytest
import torch

import rnnkit
from rnnkit import checkpoint
from rnnkit.errors import UsageError

from .conftest import TINY, python_cli


def _copy_run(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_loading_executes_no_code(trained_run, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("checkpoint loading must not unpickle")
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    model = rnnkit.load(trained_run)
    assert len(model.generate(length=20, seed=0)) == 20
    files = sorted(p.suffix for p in trained_run.iterdir() if p.is_file())
    assert set(files) == {".json", ".jsonl", ".safetensors"}  # rnnkit.json, metrics.jsonl, weights


def test_truncated_weights_are_reported(trained_run, tmp_path):
    run = _copy_run(trained_run, tmp_path / "run")
    meta = checkpoint.read_meta(run)
    weights = run / meta["files"]["best"]["file"]
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(UsageError, match="corrupted.*(checksum|does not match its size)"):
        rnnkit.load(run)


def test_corrupted_json_is_reported(trained_run, tmp_path):
    run = _copy_run(trained_run, tmp_path / "run")
    text = (run / "rnnkit.json").read_text()
    (run / "rnnkit.json").write_text(text[: len(text) // 2])
    with pytest.raises(UsageError, match="corrupted.*not valid JSON"):
        rnnkit.load(run)


def test_crash_before_commit_keeps_previous_checkpoint(trained_run, tmp_path, monkeypatch):
    run = _copy_run(trained_run, tmp_path / "run")
    before = checkpoint.read_meta(run)
    real_replace = os.replace

    def crash_on_json(src, dst):
        if str(dst).endswith(checkpoint.MARKER):
            raise OSError("simulated power cut")
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", crash_on_json)
    with pytest.raises(OSError):
        checkpoint.save(run, {"step": 999}, {"model": {"w": torch.zeros(3)}})
    monkeypatch.setattr(os, "replace", real_replace)
    assert checkpoint.read_meta(run) == before
    rnnkit.load(run)  # the old files are all still there and verify


def test_checkpoint_survives_kill_during_writing(corpus_file, tmp_path):
    """SIGKILL a run that checkpoints at every step, at several moments while it is writing;
    every time the run directory must load, and resuming must carry on from there."""
    out = tmp_path / "run"
    first = python_cli() + ["train", str(corpus_file), "--out", str(out), "--max-steps", "100000",
                            "--checkpoint-every", "1", "--eval-every", "50", "--num-layers", "1",
                            "--hidden-size", "32", "--embedding-size", "16", "--batch-size", "8",
                            "--seq-length", "32", "--eval-chars", "2000"]
    steps_seen = [0]
    for delay in (0.0, 0.37, 0.81, 0.13):
        cmd = python_cli() + ["train", "--resume", str(out)] if checkpoint.is_run_dir(out) else first
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:  # until this process has written a checkpoint of its own
            try:
                if checkpoint.read_meta(out)["step"] > steps_seen[-1]:
                    break
            except UsageError:
                pass
            time.sleep(0.02)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        model = rnnkit.load(out, which="last")
        assert model.meta["step"] > steps_seen[-1]
        steps_seen.append(model.meta["step"])
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= 1  # at most the one write the last kill interrupted


def test_sigterm_saves_and_exits_cleanly(corpus_file, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(python_cli() + ["train", str(corpus_file), "--out", str(out), "--time", "600",
                                            "--hidden-size", "32", "--batch-size", "8", "--seq-length", "32",
                                            "--checkpoint-every", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not checkpoint.is_run_dir(out) and time.time() < deadline:  # training has begun
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert f"rnnkit train --resume {out}" in err
    assert rnnkit.load(out, which="last").meta["step"] > 0


def test_metadata_is_plain_json(trained_run):
    meta = json.loads((trained_run / "rnnkit.json").read_text())
    assert meta["format"] == "rnnkit-checkpoint"
    assert meta["model_config"]["hidden_size"] == TINY["hidden_size"]
    assert meta["vocab"]["kind"] == "chars"
    assert {"model", "best", "resume"} <= set(meta["files"])


def test_ctrl_c_at_any_moment_then_resume_matches_uninterrupted(corpus_file, tmp_path):
    """A real SIGINT lands wherever the loop happens to be; the checkpoint it writes must still
    continue into exactly the weights of a run that was never interrupted."""
    flags = ["--max-steps", "600", "--checkpoint-every", "25", "--dropout", "0.1", "--num-layers", "2",
             "--hidden-size", "32", "--embedding-size", "8", "--batch-size", "8", "--seq-length", "16",
             "--eval-chars", "1000"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    subprocess.run(python_cli() + ["train", str(corpus_file), "--out", str(straight), *flags],
                   check=True, capture_output=True)
    proc = subprocess.Popen(python_cli() + ["train", str(corpus_file), "--out", str(stopped), *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not checkpoint.is_run_dir(stopped) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    interrupted_at = rnnkit.load(stopped, which="last").meta["step"]
    assert 0 < interrupted_at < 600
    subprocess.run(python_cli() + ["train", "--resume", str(stopped)], check=True, capture_output=True)
    a = rnnkit.load(straight, which="last").module.state_dict()
    b = rnnkit.load(stopped, which="last").module.state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_resume_from_description_missing_fields(trained_run, tmp_path):
    run = _copy_run(trained_run, tmp_path / "run")
    meta = json.loads((run / "rnnkit.json").read_text())
    del meta["corpus"]["splits"]
    (run / "rnnkit.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="corrupted.*corpus.splits"):
        rnnkit.train(resume=run, log=lambda line: None)
