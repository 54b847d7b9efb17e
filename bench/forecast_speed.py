"""Forecasting speed: training throughput (windows per second) of the default RNNForecaster and
the time to forecast 10,000 series of length 200 with quantiles, on synthetic seasonal series.

usage: python bench/forecast_speed.py [--no-write]
Writes bench/results.json["forecast_speed"] and the table in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from store import publish  # noqa: E402
from rnnkit.timeseries import RNNForecaster  # noqa: E402

DOC = ROOT / "docs" / "performance.md"


def series(count: int, length: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return [rng.uniform(10, 1000) * (1 + 0.3 * np.sin(2 * np.pi * (t + rng.integers(12)) / 12))
            + rng.normal(0, 5, length) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    steps = 300
    model = RNNForecaster(horizon=12, season=12, min_steps=steps, epochs=0.001, early_stopping=False)
    train = series(200, 200, 0)
    started = time.perf_counter()
    model.fit(train)
    train_seconds = time.perf_counter() - started
    windows_per_s = steps * model.batch_size / train_seconds
    many = series(10_000, 200, 1)
    started = time.perf_counter()
    mean, bands = model.forecast(many, [0.1, 0.5, 0.9])
    predict_seconds = time.perf_counter() - started
    assert mean.shape == (10_000, 12, 1) and bands.shape == (10_000, 12, 1, 3)
    results = {"date": time.strftime("%Y-%m-%d"), "cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
               "context_length": model.context_length_, "hidden_size": model.hidden_size,
               "train_windows_per_s": round(windows_per_s), "train_seconds_for_300_batches": round(train_seconds, 1),
               "predict_10k_series_seconds": round(predict_seconds, 2),
               "predict_series_per_s": round(10_000 / predict_seconds)}
    table = "\n".join([
        "| measure | value |", "|---|---|",
        f"| training, batches of 64 windows (context {model.context_length_}, horizon 12) | "
        f"{results['train_windows_per_s']:,} windows/s ({steps} batches in {train_seconds:.1f} s, validation included) |",
        f"| forecasting 10,000 series of length 200 with 3 quantiles | {predict_seconds:.2f} s "
        f"({results['predict_series_per_s']:,} series/s; goal: under 60 s) |",
        f"| machine | {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs, measured {results['date']} |"])
    publish("forecast_speed", results, table, DOC, write=not args.no_write)


if __name__ == "__main__":
    main()
