"""Trained models kept between runs of bench/g2p.py (`--cache DIR`), so that a run that changes only
the rescoring, or adds one more model, trains only what it has not trained before.

Each fit is saved in DIR under a name drawn from everything that decides it: the model's kind, its
class and settings (seed included) and its training data. A later fit with the same name is loaded
instead of trained, and reports the seconds the original training took (kept beside it), so the
table's fit seconds stay those of training. Training is deterministic on one machine, so a loaded
model is the one the run would have trained; on another machine it may differ in the last digits.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path


def fit(model, X: list, y: list, cache: Path | None, kind: str):
    """(the fitted model, the seconds its training took): `model` fitted on (X, y), or the same fit
    loaded from `cache` (None: always train, save nothing)."""
    if cache is not None:
        recipe = json.dumps([kind, type(model).__name__, model.get_params(), X, y], sort_keys=True, default=str)
        where = cache / f"{kind}-{hashlib.sha256(recipe.encode()).hexdigest()[:20]}"
        seconds = where.with_suffix(".seconds.json")
        if seconds.exists() and where.is_dir():
            print(f"g2p: {kind} loaded from {where}", flush=True)
            return type(model).load(where), float(json.loads(seconds.read_text())["fit_seconds"])
    started = time.perf_counter()
    model.fit(X, y)
    took = time.perf_counter() - started
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        model.save(where)
        seconds.write_text(json.dumps({"fit_seconds": took}) + "\n")  # written last: the fit is complete
    return model, took
