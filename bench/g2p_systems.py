"""The systems bench/g2p.py runs beside its seq2seq models: Phonetisaurus (the joint-sequence
baseline, whose aligner also cuts every training word into letter-phoneme chunks) and the aligned
taggers trained on those chunks (Yao & Zweig 2015's bidirectional LSTM tagger), one label per letter.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from rnnkit.estimators import RNNTagger

import g2p_cache
from g2p_rescore import n_best, tagger_scorer


def phonetisaurus(train: list[str], test: list[str], entries: dict[str, str], nbest: int = 0,
                  dev: tuple[str, ...] | list[str] = ()):
    """(guesses, fit seconds, decode seconds, its aligner's alignments of the training words, with
    nbest > 0 each test word's `nbest` best pronunciations as {pronunciation: cost}, the cost its
    negative natural log-probability, and the seconds that listing took) of Phonetisaurus trained on
    the same words, or None when its wheel is not installed (`make bench` installs it)."""
    if importlib.util.find_spec("phonetisaurus") is None:
        print("g2p.py: the phonetisaurus wheel is not installed (pip install --no-deps phonetisaurus==0.3.0); "
              "its row is left out", file=sys.stderr)
        return None
    import phonetisaurus as P  # only once it is known to be installed
    with tempfile.TemporaryDirectory() as scratch:
        model, corpus = Path(scratch) / "model.fst", Path(scratch) / "model.corpus"
        started = time.perf_counter()
        P.train({w: [entries[w].split()] for w in train}, model, corpus_path=corpus)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        guesses = {word: " ".join(phonemes) for word, phonemes in P.predict(test, model)}
        predict_s = time.perf_counter() - started
        started = time.perf_counter()
        listed = n_best(P, model, test + list(dev), Path(scratch) / "words.txt", nbest) if nbest > 0 else None
        listed_s = time.perf_counter() - started
        return ([guesses.get(w, "") for w in test], fit_s, predict_s, corpus.read_text(encoding="utf-8").splitlines(),
                listed, listed_s)


def letter_labels(alignments: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Phonetisaurus's alignments, one word per line (`p|h}F o}OW1 n}N e}_`: letters joined by | left
    of each }, the phonemes they spell right of it, joined by |, _ for none), as one label per letter:
    a chunk's phonemes go to its first letter and the chunk's other letters get _, so that reading
    the labels in order and dropping the _s spells the pronunciation."""
    letters, labels = [], []
    for line in alignments:
        word, tags = [], []
        for chunk in line.split():
            spelling, sound = chunk.rsplit("}", 1)
            parts = spelling.split("|")
            word += parts
            tags += [sound] + ["_"] * (len(parts) - 1)
        if word:
            letters.append(word)
            labels.append(tags)
    return letters, labels


def aligned_taggers(alignments: list[str], test: list[str], epochs: float, count: int, weight_drop: float,
                    cache: Path | None = None):
    """(rows, scorer): rows (name, guesses, fit seconds, predict seconds) of 2 x 256 bidirectional
    LSTM taggers trained on the letter labels of the aligned training words (the aligned
    bidirectional LSTM of Yao & Zweig 2015; no decoder, each letter's label read from both directions
    of the whole word): the first alone, then all `count` (seeds 0..count-1) by the mean of their
    label probabilities; and that mean as a rescoring scorer of the `test` words' candidates."""
    letters, labels = letter_labels(alignments)
    print(f"aligned tagger: {len(letters):,} aligned words, {len({t for row in labels for t in row})} labels",
          flush=True)
    words = [list(word) for word in test]
    probabilities, fit_seconds, predict_seconds = [], [], []
    for seed in range(count):
        model = RNNTagger(hidden_size=256, num_layers=2, embedding_size=64, dropout=0.2, weight_drop=weight_drop,
                          epochs=epochs, batch_size=128, lr=3e-3, validation_fraction=0.02, random_state=seed,
                          verbose=1)
        model, took = g2p_cache.fit(model, letters, labels, cache, "tagger")
        fit_seconds.append(took)
        started = time.perf_counter()
        probabilities.append(model.predict_proba(words))
        predict_seconds.append(time.perf_counter() - started)
        if seed == 0:
            classes = model.classes_  # the labels of all training words, whatever the seed: the same columns
        assert list(model.classes_) == list(classes)
    rows = []
    for used in sorted({1, count}):  # the first tagger alone, then all of them (the `mean` kept for scoring)
        mean = [sum(p[i] for p in probabilities[:used]) / used for i in range(len(words))]
        guessed = [[classes[j] for j in m.argmax(axis=1)] for m in mean]
        predicted = [" ".join(t.replace("|", " ") for t in tags if t != "_") for tags in guessed]
        name = "tagger (one model)" if used == 1 else f"taggers ({used} together)"
        rows.append((name, predicted, sum(fit_seconds[:used]), sum(predict_seconds[:used])))
    return rows, tagger_scorer(dict(zip(test, mean)), list(classes))
