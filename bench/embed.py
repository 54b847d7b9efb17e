"""Sentence vectors from a character language model, probed on Rotten Tomatoes (the fixed 80/20
split of bench/sentiment.py): is what a language model learns from unlabelled snippets enough to
tell fresh from rotten with a linear classifier on top?

1. A character language model is trained with `rnnkit.train` on the training snippets' text only
   (one snippet per document, no labels, never the test snippets).
2. `SentenceEncoder` (what `rnnkit embed` runs) turns every snippet into one vector (mean, max and
   last pooling); a logistic regression (standardised inputs, C by 5-fold cross-validation on the
   training rows) is fitted on the training vectors and scored on the test vectors.
3. Baselines in the same run: TF-IDF + logistic regression (bench/sentiment.py's), and averaged
   GloVe 6B 50d word vectors + logistic regression.
4. A sentiment unit (Radford et al. 2017): every unit of the vectors is ranked by its correlation
   with the label on the training rows with the unit finder (diagnostics/units.py); the best unit
   alone, with a threshold fitted on the training rows, is scored on the test rows.
5. Speed: seconds to embed 10,000 snippets.

    .venv/bin/python bench/embed.py [--lm-time 600] [--no-write]

Stores "embed" in bench/results.json and the table in docs/tasks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import rnnkit
from rnnkit.api.embed import SentenceEncoder
from rnnkit.data.tokenizers import Tokenizer
from rnnkit.diagnostics.units import correlations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentiment import split  # noqa: E402
from store import ROOT, publish  # noqa: E402

POOLS = ("mean", "max", "last")


def probe(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of a logistic regression on standardised vectors, C chosen on the training rows."""
    model = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=[0.001, 0.01, 0.1, 1.0], cv=5, max_iter=3000))
    model.fit(train, y_train)
    return float(np.mean(model.predict(test) == y_test))


def averaged_glove(texts: list[str]) -> np.ndarray:
    """The mean GloVe 6B 50d vector of each text's words (words without a vector are skipped)."""
    from rnnkit.data.word_vectors import vectors_for
    tokenizer = Tokenizer("word", True)
    words = [tokenizer.split(t) for t in texts]
    vocabulary = sorted({w for ws in words for w in ws})
    rows, hits = vectors_for("glove-50d", vocabulary)
    row_of = {w: i for i, (w, hit) in enumerate(zip(vocabulary, hits)) if hit}
    return np.stack([rows[[row_of[w] for w in ws if w in row_of]].mean(axis=0) if any(w in row_of for w in ws)
                     else np.zeros(rows.shape[1], np.float32) for ws in words])


def sentiment_unit(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> dict:
    """The unit whose value tracks the label best on the training rows, and its accuracy alone."""
    r = correlations(train, {"fresh": y_train.astype(float)})["fresh"]
    unit = int(np.argmax(np.abs(r)))
    alone = LogisticRegression().fit(train[:, [unit]], y_train)
    return {"unit": unit, "r_train": round(float(r[unit]), 3),
            "accuracy": round(float(np.mean(alone.predict(test[:, [unit]]) == y_test)), 4),
            "r_second": round(float(np.sort(np.abs(r))[-2]), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lm-time", type=float, default=600.0, help="seconds of language-model training")
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json and the doc alone")
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-learn's notes on future defaults
    X_train, y_train_text, X_test, y_test_text = split()
    y_train, y_test = np.asarray(y_train_text) == "fresh", np.asarray(y_test_text) == "fresh"
    print(f"{len(X_train):,} training and {len(X_test):,} test snippets", flush=True)
    rows = []

    started = time.perf_counter()
    tfidf = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                          LogisticRegression(C=4, max_iter=2000)).fit(X_train, y_train)
    rows.append({"model": "TF-IDF (words + bigrams) + logistic regression", "accuracy":
                 round(float(np.mean(tfidf.predict(X_test) == y_test)), 4),
                 "seconds": round(time.perf_counter() - started, 1)})
    started = time.perf_counter()
    glove = probe(averaged_glove(X_train), y_train, averaged_glove(X_test), y_test)
    rows.append({"model": "averaged GloVe 6B 50d + logistic regression", "accuracy": round(glove, 4),
                 "seconds": round(time.perf_counter() - started, 1)})
    for row in rows:
        print(f"{row['model']}: {row['accuracy']:.4f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        unlabelled = Path(tmp) / "snippets.txt"
        unlabelled.write_text("\n".join(" ".join(t.split()) for t in X_train) + "\n", encoding="utf-8")
        started = time.perf_counter()
        lm = rnnkit.train(unlabelled, out=Path(tmp) / "lm", time=args.lm_time, hidden_size=args.hidden_size,
                          num_layers=1, documents="line", dropout=0.1, log=lambda line: None, progress=False)
        lm_seconds = time.perf_counter() - started
        print(f"language model: 1 x {args.hidden_size} LSTM, {lm_seconds:.0f} s on "
              f"{unlabelled.stat().st_size / 1e6:.2f} MB, held-out {lm.meta['best_val']:.3f} nats/char", flush=True)
        encoder = SentenceEncoder.of_language_model(lm)
        started = time.perf_counter()
        encoder.transform(X_train[:10_000], "mean")
        speed = time.perf_counter() - started
        print(f"embedding 10,000 snippets: {speed:.2f} s", flush=True)
        units = {}
        for pool in POOLS:
            started = time.perf_counter()
            train, test = encoder.transform(X_train, pool), encoder.transform(X_test, pool)
            accuracy = probe(train, y_train, test, y_test)
            rows.append({"model": f"rnnkit LM vectors ({pool} pooling) + logistic regression",
                         "accuracy": round(accuracy, 4),
                         "seconds": round(time.perf_counter() - started, 1)})
            units[pool] = sentiment_unit(train, y_train, test, y_test)
            print(f"{rows[-1]['model']}: {accuracy:.4f}; best single unit {units[pool]}", flush=True)

    results = {"train": len(X_train), "test": len(X_test), "lm": {
        "hidden_size": args.hidden_size, "seconds": round(lm_seconds), "val_nats_per_char": round(lm.meta["best_val"], 4)},
        "embed_10000_seconds": round(speed, 2), "results": rows, "sentiment_unit": units}
    publish("embed", results, table(results), ROOT / "docs" / "tasks.md", write=not args.no_write)


def table(results: dict) -> str:
    lm = results["lm"]
    lines = ["| features + logistic regression | test accuracy | seconds |", "|---|---|---|"]
    lines += [f"| {r['model']} | {r['accuracy']:.4f} | {r['seconds']:g} |" for r in results["results"]]
    lines += ["", f"Language model: one LSTM layer of {lm['hidden_size']} units, {lm['seconds']} s on the training "
              f"snippets (held-out {lm['val_nats_per_char']:.3f} nats/char). Embedding 10,000 snippets: "
              f"{results['embed_10000_seconds']:.2f} s.", "",
              "| pooling | best single unit | r with the label (train) | next best r | that unit alone: test accuracy |",
              "|---|---|---|---|---|"]
    lines += [f"| {pool} | {u['unit']} | {u['r_train']:+.3f} | {u['r_second']:.3f} | {u['accuracy']:.4f} |"
              for pool, u in results["sentiment_unit"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
