"""Sweep of training settings for the --time budgets, on tiny Shakespeare (val-file protocol of
bench/time_to_quality.py: train on the first 90%, score the last 10%). Each setting is one
`rnnkit train --time B` run with the named flags on top of the defaults; results go to
bench/results.json ("sweep") and docs/performance.md (bench/report.py). Runs one at a time:
a wall-clock budget is only fair when nothing else shares the CPU.

usage: python bench/sweep.py --budget 130 [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from time_to_quality import CORPUS, RESULTS, run_once, split_corpus

SETTINGS = {
    130: {
        "defaults": [],
        "lr 4e-3": ["--lr", "4e-3"],
        "lr 1e-2": ["--lr", "1e-2"],
        "seq 128": ["--seq-length", "128"],
        "batch 64": ["--batch-size", "64"],
        "2 x 320": ["--hidden-size", "320"],
        "3 x 256": ["--num-layers", "3"],
        "gru": ["--cell", "gru"],
    },
    600: {
        "defaults": [],
        "2 x 384, dropout 0.2": ["--hidden-size", "384", "--dropout", "0.2"],
        "2 x 512, dropout 0.25": ["--hidden-size", "512", "--dropout", "0.25"],
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, choices=sorted(SETTINGS), required=True)
    parser.add_argument("--only", nargs="+", help="names of settings to run (default: all for the budget)")
    args = parser.parse_args()
    if not CORPUS.exists():
        sys.exit(f"sweep: {CORPUS} not found (it lives in ../shared beside the checkout)")
    settings = SETTINGS[args.budget]
    names = args.only or list(settings)
    unknown = [n for n in names if n not in settings]
    if unknown:
        sys.exit(f"sweep: unknown setting(s) {unknown}; choose from {list(settings)}")
    with tempfile.TemporaryDirectory() as tmp:
        train_txt, val_txt = split_corpus(Path(tmp))
        for i, name in enumerate(names):
            row = run_once(train_txt, val_txt, Path(tmp) / f"run-{i}", args.budget, "val-file", settings[name])
            results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
            results.setdefault("sweep", {})[f"{name}@{args.budget}s"] = {
                "budget_s": args.budget, "name": name, "args": " ".join(settings[name]) or "(none)",
                "steps": row["steps"], "val_nats_per_char": row["val_nats_per_char"]}
            RESULTS.write_text(json.dumps(results, indent=1))
            print(f"{args.budget} s {name:>24}: val {row['val_nats_per_char']:.4f} nats/char, {row['steps']} steps",
                  flush=True)


if __name__ == "__main__":
    main()
