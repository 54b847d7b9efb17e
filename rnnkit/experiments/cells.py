"""Experiment `cells`: recurrent cells as character language models on the bundled Shakespeare
corpus (the 37 plays, 5 M characters) at an equal wall-clock budget, each with the same size
(rnnkit's defaults: 2 layers of 256, embedding 64) and every other setting the same. The claims it checks:

- gated feedback (Chung et al. 2015): a GF-LSTM stack beats an equally sized stacked LSTM on
  character-level language modelling (their Table 2, per step, on a GPU); here at equal time on a
  CPU, where the LSTM runs on a fused kernel and the GF-LSTM on rnnkit's C kernels (or its step
  path where no compiler built them);
- minGRU / minLSTM (Feng et al. 2024): trained by a parallel scan, close to the LSTM (the paper's
  1.548 for minGRU on Shakespeare);
- an echo state reservoir (Jaeger 2001) with only its softmax readout trained: how far a fixed
  random recurrence gets on text, for contrast.

The smoke size trains each for a few steps on generated text (no corpus needed).
"""

from __future__ import annotations

from pathlib import Path

from .language import equal_time_runs

CELLS = ("lstm", "gfrnn", "mingru", "minlstm", "esn")
SIZES = {
    "smoke": dict(chars=20_000, time=None, steps=10),
    "full": dict(chars=None, time=300, steps=None),
}


def run(size: str, out: Path, work: Path, log) -> dict:
    s = SIZES[size]
    # the same model for every cell: 2 x 256, embedding 64 (rnnkit's default size below 600 s)
    variants = {cell: dict(cell=cell, hidden_size=256, num_layers=2, embedding_size=64, dropout=0.0) for cell in CELLS}
    runs = equal_time_runs(variants, s, size, work, log, "cells", "Cells at equal wall-clock time, 2 x 256",
                           out / "cells.png")
    return {"settings": s, "runs": runs}
