"""Parallel scan against the sequential kernels: one training step (forward and backward) of a
one-layer recurrent layer over sequences of 64 to 4,096 steps, side by side in one run.

Compared: rnnkit's `mingru` and `minlstm` (Feng et al. 2024; the whole sequence is one call of
rnnkit/cells/scan.py: a C pass over time per column where rnnkit's kernels are built, else a chunked
scan in linear space; no Python loop over every step) against PyTorch's fused
`nn.GRU` and `nn.LSTM` (oneDNN on CPU), all at batch 8, input width 64, hidden 256, float32, this
machine's threads. Time per step is the median of --repeats after one warm-up, the layers taking
turns within each repeat; the ratio is nn.GRU's time over minGRU's. Writes
bench/results.json ("scan") and the table in docs/performance.md.

usage: python bench/scan.py [--lengths 64 256 1024 4096] [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store import ROOT, publish  # noqa: E402

from rnnkit.recurrent import Recurrent  # noqa: E402
from rnnkit.memory import keep_freed_memory  # noqa: E402

BATCH, INPUT, HIDDEN = 8, 64, 256


def step_times(layers: dict[str, nn.Module], T: int, repeats: int) -> dict[str, float]:
    """Median seconds per training step of each layer; the layers take turns, so a change in the
    machine's speed during the run reaches all of them alike."""
    x = torch.randn(BATCH, T, INPUT, requires_grad=True)
    times: dict[str, list[float]] = {name: [] for name in layers}
    for k in range(repeats + 1):
        for name, layer in layers.items():
            start = time.perf_counter()
            out = layer(x)[0]
            out.square().mean().backward()
            if k:  # the first call warms up allocators and kernels
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    # as `rnnkit` does at start (rnnkit/memory.py): PyTorch's layers, timed in this process too, gain alike
    keep_freed_memory()
    torch.manual_seed(0)
    layers = {"nn.GRU": nn.GRU(INPUT, HIDDEN, batch_first=True), "nn.LSTM": nn.LSTM(INPUT, HIDDEN, batch_first=True),
              "mingru": Recurrent("mingru", INPUT, HIDDEN), "minlstm": Recurrent("minlstm", INPUT, HIDDEN)}
    rows = {}
    for T in args.lengths:
        rows[T] = {name: round(seconds * 1000, 2) for name, seconds in step_times(layers, T, args.repeats).items()}
        rows[T]["gru_over_mingru"] = round(rows[T]["nn.GRU"] / rows[T]["mingru"], 1)
        rows[T]["lstm_over_minlstm"] = round(rows[T]["nn.LSTM"] / rows[T]["minlstm"], 1)
    lines = ["| steps | nn.GRU ms | mingru ms | speed-up | nn.LSTM ms | minlstm ms | speed-up |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {T:,} | {r['nn.GRU']} | {r['mingru']} | {r['gru_over_mingru']}x | {r['nn.LSTM']} | {r['minlstm']} | "
              f"{r['lstm_over_minlstm']}x |" for T, r in rows.items()]
    table = "\n".join(lines) + (f"\n\none training step (forward + backward), batch {BATCH}, input {INPUT}, hidden "
                                f"{HIDDEN}, {torch.get_num_threads()} threads; command: `python bench/scan.py`")
    publish("scan", {str(T): r for T, r in rows.items()}, table, ROOT / "docs" / "performance.md",
            write=not args.no_write)


if __name__ == "__main__":
    main()
