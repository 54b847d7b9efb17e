"""Freed memory kept for reuse (rnnkit/memory.py): large tensors stop costing page faults."""

import subprocess
import sys

import pytest

from rnnkit.memory import keep_freed_memory

# 20 rounds of making and filling a 64 MB tensor; prints the minor page faults they took
ROUNDS = """
import resource, sys, torch
from rnnkit.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
torch.empty(16 << 20).fill_(1)  # the first one faults in either case
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.empty(16 << 20).fill_(1)
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, env: dict | None = None) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_kept_memory_makes_large_tensors_without_page_faults():
    kept, with_keeping = _faults("keep")
    if kept != "True":
        pytest.skip("this C library has no mallopt (not glibc)")
    _, without = _faults("default")
    assert without > 20 * 10_000  # 16,384 pages per 64 MB tensor, faulted in every round
    assert with_keeping < without / 10


def test_kept_memory_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("RNNKIT_KEEP_MEMORY", "0")
    assert keep_freed_memory() is False
