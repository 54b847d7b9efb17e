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

from . import adding, gradients, language, tricks

EXPERIMENTS: dict[str, tuple[Callable, str]] = {
    "vanishing": (gradients.run, "gradient norm by distance for rnn/irnn/lstm/gru, at init and trained"),
    "relu-init": (tricks.run_relu_init, "ReLU RNN: Gaussian vs identity recurrence (IRNN) on the adding problem"),
    "clipping": (tricks.run_clipping, "gradient clipping on vs off at the same learning rate"),
    "forget-bias": (tricks.run_forget_bias, "LSTM forget-gate bias 1 vs 0 on a long dependency"),
    "adding": (adding.run, "the adding problem at several lengths for the four cells"),
    "long-range": (language.run_long_range, "seq_length 25: are brackets opened > 25 characters back closed right?"),
    "embedding": (language.run_embedding, "one-hot input vs learned embedding at equal time"),
}


def run_experiment(name: str, size: str = "full", out: str | Path = "experiments",
                   log: Callable[[str], None] = print) -> dict:
    """Run one experiment; returns its results (also written to OUT/NAME.json beside OUT/NAME.png)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run, _ = EXPERIMENTS[name]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        results = run(size, out, Path(work), log)
    results = {"experiment": name, "size": size, "seconds": round(time.perf_counter() - started, 1), **results}
    (out / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    return results
