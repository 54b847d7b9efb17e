"""Data-parallel training under torchrun: two CPU processes (gloo) on a tiny model."""

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from rnnkit import checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")
TINY_FLAGS = ["--hidden-size", "32", "--num-layers", "1", "--embedding-size", "8", "--batch-size", "8",
              "--seq-length", "24", "--eval-chars", "2000", "--device", "cpu"]  # gloo, on any machine


def torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           *args], capture_output=True, text=True, timeout=300)


def test_two_ranks_keep_identical_weights_on_different_data_and_learn(tmp_path):
    done = torchrun(str(WORKER), "trainer", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    weights = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    logs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name
    assert logs[0]["first_batch"] != logs[1]["first_batch"]  # each rank reads its own share
    losses = logs[0]["losses"]
    assert losses == logs[1]["losses"]  # the logged loss is agreed on by both ranks
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5


def test_torchrun_cli_only_rank_0_writes_and_resume_continues_exactly(tmp_path, corpus_file):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    done = torchrun("-m", "rnnkit", "train", str(corpus_file), "--max-steps", "24", "--out", str(straight), *TINY_FLAGS)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("done: 24 steps") == 1  # one rank prints
    assert "data-parallel: 2 processes" in done.stderr
    meta = checkpoint.read_meta(straight)
    assert meta["world_size"] == 2 and meta["step"] == 24

    # the same run stopped after step 13 (its last checkpoint: step 12), then resumed to 24
    stopped = torchrun(str(WORKER), "interrupted", str(corpus_file), str(resumed))
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert checkpoint.read_meta(resumed)["step"] == 12
    again = torchrun("-m", "rnnkit", "train", "--resume", str(resumed))
    assert again.returncode == 0, again.stderr[-2000:]
    a = checkpoint.load_tensors(straight, checkpoint.read_meta(straight), "model")
    b = checkpoint.load_tensors(resumed, checkpoint.read_meta(resumed), "model")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)

    # one process cannot continue a two-process run: a clean error, and nothing is changed
    before = checkpoint.read_meta(resumed)
    single = subprocess.run([sys.executable, "-m", "rnnkit", "train", "--resume", str(resumed), "--max-steps", "30"],
                            capture_output=True, text=True)
    assert single.returncode == 2
    assert single.stderr.count("\n") == 1 and "trained by 2 process(es)" in single.stderr
    assert checkpoint.read_meta(resumed) == before


def test_more_processes_than_gpus_is_one_clean_error(monkeypatch):
    import pytest
    from rnnkit import distributed
    from rnnkit.errors import UsageError
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # two processes, one GPU
    with pytest.raises(UsageError, match="--nproc-per-node 1"):
        distributed.join("cuda")
