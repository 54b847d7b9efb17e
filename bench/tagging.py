"""Tagging Python source: every token of the standard library labelled with its `tokenize` type
(NAME, OP, NUMBER, STRING, COMMENT, NEWLINE, NL, INDENT, DEDENT, ...). The files in sorted order;
the last 10% of files are held out. rnnkit's RNNTagger against a most-frequent-tag-per-token
baseline (unseen tokens get the most frequent tag overall).

    .venv/bin/python bench/tagging.py [--train-tokens 300000] [--epochs 4]

Prints a markdown table and stores the numbers as "tagging" in bench/results.json.
"""

from __future__ import annotations

import argparse
import io
import sys
import sysconfig
import time
import token as token_types
import tokenize
from collections import Counter, defaultdict
from pathlib import Path

import torch

from rnnkit.estimators import RNNTagger

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store import record  # noqa: E402

CHUNK = 64  # tokens per training sequence


def file_tokens(path: Path) -> list[tuple[str, str]]:
    """(token text, type name) for one file; DEDENT/ENDMARKER, which have no text, get a marker."""
    out = []
    try:
        source = path.read_text(encoding="utf-8")
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == token_types.ENDMARKER:
                continue
            text = tok.string if tok.string else "<dedent>"
            out.append((text, token_types.tok_name[tok.type]))
    except (UnicodeDecodeError, SyntaxError, tokenize.TokenError, IndentationError):
        return []
    return out


def corpus() -> tuple[list[Path], list[Path]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages", "encodings", "pydoc_data", "__pycache__"}
    files = [f for f in sorted(stdlib.rglob("*.py")) if not skip.intersection(f.relative_to(stdlib).parts)]
    cut = int(len(files) * 0.9)
    return files[:cut], files[cut:]


def chunks(files: list[Path], limit: int) -> tuple[list[list[str]], list[list[str]]]:
    X, Y, count = [], [], 0
    for f in files:
        pairs = file_tokens(f)
        for start in range(0, len(pairs), CHUNK):
            piece = pairs[start:start + CHUNK]
            X.append([t for t, _ in piece])
            Y.append([y for _, y in piece])
            count += len(piece)
            if count >= limit:
                return X, Y
    return X, Y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-tokens", type=int, default=300_000)
    parser.add_argument("--test-tokens", type=int, default=100_000)
    parser.add_argument("--epochs", type=float, default=4.0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    train_files, test_files = corpus()
    X, Y = chunks(train_files, args.train_tokens)
    Xt, Yt = chunks(test_files, args.test_tokens)
    n_train, n_test = sum(map(len, X)), sum(map(len, Xt))

    by_token: dict[str, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for xs, ys in zip(X, Y):
        for x, y in zip(xs, ys):
            by_token[x][y] += 1
            overall[y] += 1
    fallback = overall.most_common(1)[0][0]
    best = {x: c.most_common(1)[0][0] for x, c in by_token.items()}
    pairs = [(best.get(x, fallback), y) for xs, ys in zip(Xt, Yt) for x, y in zip(xs, ys)]
    baseline = sum(p == y for p, y in pairs) / len(pairs)

    started = time.perf_counter()
    tagger = RNNTagger(hidden_size=128, embedding_size=64, min_df=2, epochs=args.epochs, lr=3e-3).fit(X, Y)
    seconds = time.perf_counter() - started
    accuracy = tagger.score(Xt, Yt)
    unseen = [(p, y) for xs, ys, ps in zip(Xt, Yt, tagger.predict(Xt)) for x, y, p in zip(xs, ys, ps) if x not in best]
    unseen_baseline = sum(fallback == y for _, y in unseen) / max(len(unseen), 1)
    unseen_rnn = sum(p == y for p, y in unseen) / max(len(unseen), 1)

    print(f"{n_train:,} training tokens ({len(train_files)} files available), {n_test:,} test tokens from "
          f"{len(test_files)} held-out files; {len(unseen):,} test tokens never seen in training\n")
    print("| model | per-token accuracy | on unseen tokens | fit seconds |\n|---|---|---|---|")
    print(f"| most frequent tag per token | {baseline:.4f} | {unseen_baseline:.4f} | 0 |")
    print(f"| RNNTagger: BiLSTM 128, embedding 64, {args.epochs:g} epochs | {accuracy:.4f} | {unseen_rnn:.4f} | {seconds:.0f} |")
    record("tagging", {"train_tokens": n_train, "test_tokens": n_test, "unseen_tokens": len(unseen),
                       "baseline": baseline, "baseline_unseen": unseen_baseline, "rnn": accuracy,
                       "rnn_unseen": unseen_rnn, "fit_seconds": seconds})


if __name__ == "__main__":
    main()
