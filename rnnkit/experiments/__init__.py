"""Runnable experiments that reproduce classic claims about training RNNs.

Each writes NAME.png and NAME.json to its output folder. "smoke" sizes run in seconds (the test
suite runs them all); "full" sizes are the ones reported in docs/experiments.md.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from ..outputs import claim, write
from . import adding, cells, gradients, images, language, reservoir, tricks

EXPERIMENTS: dict[str, tuple[Callable, str]] = {
    "vanishing": (gradients.run, "gradient norm by distance for rnn/irnn/lstm/gru, at init and trained"),
    "relu-init": (tricks.run_relu_init, "ReLU RNN: Gaussian vs identity recurrence (IRNN) on the adding problem"),
    "clipping": (tricks.run_clipping, "gradient clipping on vs off at the same learning rate"),
    "forget-bias": (tricks.run_forget_bias, "LSTM forget-gate bias 1 vs 0 on a long dependency"),
    "adding": (adding.run, "the adding problem at several lengths for the four cells"),
    "long-range": (language.run_long_range, "seq_length 25: are brackets opened > 25 characters back closed right?"),
    "embedding": (language.run_embedding, "one-hot input vs learned embedding at equal time"),
    "esn": (reservoir.run, "echo state network vs LSTM (BPTT) on Mackey-Glass: 84 steps running free"),
    "cells": (cells.run, "LSTM vs gated-feedback LSTM vs minGRU vs minLSTM vs ESN on Shakespeare, equal time"),
    "sequential-images": (images.run, "images read row by row and pixel by pixel: LSTM vs BN-LSTM vs IRNN vs IndRNN"),
    "bnlstm-recipe": (images.run_recipe, "pixel by pixel with the BN-LSTM paper's recipe (RMSProp, 100 units): "
                      "LSTM vs BN-LSTM"),
}


def run_experiment(name: str, size: str = "full", out: str | Path = "experiments",
                   log: Callable[[str], None] = print, force: bool = False) -> dict:
    """Run one experiment; returns its results (also written to OUT/NAME.json beside OUT/NAME.png).
    Files at those paths that rnnkit did not write are refused unless `force` (see `outputs`)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the experiment's figure and numbers")
    claim([out / f"{name}.png", out / f"{name}.json"], force)
    run, _ = EXPERIMENTS[name]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        results = run(size, out, Path(work), log)
    results = {"written_by": "rnnkit experiment", "experiment": name, "size": size,
               "seconds": round(time.perf_counter() - started, 1), **results}
    write(out / f"{name}.json", (json.dumps(results, indent=1) + "\n").encode())
    return results
