"""Denormal numbers treated as zero (as rnnkit trains, predicts and samples: rnnkit/precision.py)
against x86's default, side by side in one run: one training step (forward and backward) of a
one-layer rnnkit LSTM.

Layers: 100 units over 784 steps (a sequential image read pixel by pixel) from PyTorch's uniform
initialisation, where the gradient fades through the denormal range on its way back, and from
rnnkit's own initialisation; 256 units over 128 steps (a language model's chunk). Each at one
thread and at this machine's threads. Batch 64, float32; time per step is the median of --repeats
after one warm-up, the two modes taking turns within each repeat; the ratio is the default's time
over the flushing one's. Writes bench/results.json ("denormals") and the table in
docs/performance.md.

usage: python bench/denormals.py [--repeats 5] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store import ROOT, publish  # noqa: E402

from rnnkit.memory import keep_freed_memory  # noqa: E402
from rnnkit.recurrent import Recurrent  # noqa: E402

BATCH = 64
CASES = {  # name: (hidden = input width, steps, initialisation)
    "100 units, 784 steps, PyTorch's init": (100, 784, "pytorch"),
    "100 units, 784 steps, rnnkit's init": (100, 784, None),
    "256 units, 128 steps, rnnkit's init": (256, 128, None),
}


def step_times(layer: Recurrent, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median seconds per training step with denormals flushed and without; the modes take turns."""
    times: dict[str, list[float]] = {"flushed": [], "default": []}
    for k in range(repeats + 1):
        for mode in times:
            torch.set_flush_denormal(mode == "flushed")
            start = time.perf_counter()
            out = layer(x)[0]
            out[:, -1].sum().backward()  # the loss at the last step only, as a sequence classifier's
            if k:  # the first call warms up allocators and kernels
                times[mode].append(time.perf_counter() - start)
            layer.zero_grad(set_to_none=True)
    torch.set_flush_denormal(False)
    return {mode: statistics.median(t) for mode, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    if not torch.set_flush_denormal(False):
        sys.exit("bench/denormals.py: this CPU has no mode that treats denormals as zero; nothing to compare")
    keep_freed_memory()  # as `rnnkit` does at start (rnnkit/memory.py)
    machine_threads = torch.get_num_threads()
    rows = {}
    for threads in sorted({1, machine_threads}):
        torch.set_num_threads(threads)
        for name, (hidden, steps, init) in CASES.items():
            torch.manual_seed(0)
            layer = Recurrent("lstm", hidden, hidden)
            if init:
                for cell in layer.cells:
                    cell.reset_parameters(init)
            t = step_times(layer, torch.randn(BATCH, steps, hidden), args.repeats)
            rows[f"{name}, {threads} thread{'s' if threads > 1 else ''}"] = {
                "default_ms": round(t["default"] * 1000, 1), "flushed_ms": round(t["flushed"] * 1000, 1),
                "speed_up": round(t["default"] / t["flushed"], 2)}
    torch.set_num_threads(machine_threads)
    lines = ["| LSTM layer | x86 default ms | denormals as zero ms | speed-up |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['default_ms']} | {r['flushed_ms']} | {r['speed_up']}x |" for name, r in rows.items()]
    table = "\n".join(lines) + (f"\n\none training step (forward + backward), batch {BATCH}, median of {args.repeats}; "
                                "command: `python bench/denormals.py`")
    publish("denormals", rows, table, ROOT / "docs" / "performance.md", write=not args.no_write)


if __name__ == "__main__":
    main()
