"""`rnnkit embed`: one vector per text from a trained model, or the texts nearest to a query.

    rnnkit embed runs/lm texts.txt --out vectors.npy          # one row per non-blank line
    rnnkit embed runs/clf data.csv --text-col text > vectors.csv
    rnnkit embed runs/lm corpus.txt --query "a moving film" --top 10
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import UsageError
from ..models.classifier import POOLINGS
from .flags import add_which_and_device


def add_commands(sub, parser_class) -> dict:
    p = sub.add_parser("embed", help="sentence vectors from a trained model; nearest texts to a query",
                       description="Read each text with the recurrent stack of a language model, classifier, "
                       "regressor or tagger directory and pool its top layer's outputs into one vector per text. "
                       "A .txt file gives one text per non-blank line; a .csv file, the --text-col column of each "
                       "row. Characters a language model never saw are left out of its input.",
                       epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", metavar="DIR", help="a directory written by `rnnkit train`, `rnnkit classify "
                   "train` or `rnnkit tag train`")
    p.add_argument("data", metavar="FILE", help="texts.txt (one text per line) or data.csv")
    p.add_argument("--text-col", metavar="C", help="the CSV column with the texts (default: the column the model "
                   "was trained on, else 'text')")
    p.add_argument("--pool", choices=POOLINGS, default="mean", help="how the outputs over a text become one vector: "
                   "their mean, their maximum per unit, or the last one (default mean)")
    p.add_argument("--out", metavar="FILE.npy", help="write the vectors (float32, one row per text, in order) as a "
                   "NumPy file; without it they go to stdout as CSV (row, v0, v1, ...)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--query", metavar="TEXT", help="instead of writing vectors, print the texts most similar to "
                   "TEXT (cosine of the vectors): similarity, row number and text, tab-separated")
    p.add_argument("--top", type=int, default=10, metavar="N", help="how many texts --query prints (default 10)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="texts read at once (default 256)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_which_and_device(p)
    return {"embed": run}


def run(args: argparse.Namespace) -> int:
    from ..api import resolve_device
    from ..api.embed import SentenceEncoder
    from ..checkpoint import is_run_dir, read_meta
    from ..outputs import claim, write
    if args.top < 1:
        raise UsageError(f"--top must be >= 1 (got {args.top})")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1 (got {args.batch_size})")
    if args.query is not None and not args.query.strip():
        raise UsageError("--query is empty; give some text to look for")
    if args.query is not None and args.out:
        raise UsageError("--query prints the nearest texts; it writes no --out file (leave one of the two out)")
    out = claim([args.out], args.force)[0] if args.out else None
    if out is not None and out.suffix != ".npy":
        raise UsageError(f"--out {out} must end in .npy (the vectors are a NumPy array)")
    column = args.text_col
    if column is None and is_run_dir(args.model_dir):
        meta = read_meta(args.model_dir)
        column = meta.get("text_col") or meta.get("tokens_col")  # what a classifier or tagger was trained on
    rows, texts = read_texts(args.data, column if isinstance(column, str) else "text")
    encoder = SentenceEncoder.load(args.model_dir, str(resolve_device(args.device)))
    with tqdm(total=len(texts), desc="embedding", unit="text", file=sys.stderr,
              disable=True if args.quiet else None, leave=False) as bar:
        vectors = encoder.transform(texts, args.pool, args.batch_size, lambda k: bar.update(k - bar.n))
    if args.query is not None:
        for row, similarity in encoder.nearest(vectors, args.query, args.top, args.pool):
            print(f"{similarity:.4f}\t{rows[row]}\t{texts[row]}")
        return 0
    if out is not None:
        buffer = io.BytesIO()
        np.save(buffer, vectors)
        write(out, buffer.getvalue())
        print(f"wrote {out}: {vectors.shape[0]:,} vectors of {vectors.shape[1]} values", file=sys.stderr)
        return 0
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["row", *(f"v{j}" for j in range(vectors.shape[1]))])
    for row, vector in zip(rows, vectors):
        writer.writerow([row, *(f"{v:.6g}" for v in vector)])
    return 0


def read_texts(path: str, column: str) -> tuple[list[int], list[str]]:
    """(row numbers, texts): a .csv file's `column` (rows numbered from 1), else a UTF-8 text file's
    non-blank lines (numbered by line)."""
    if Path(path).suffix.lower() == ".csv":
        from .tasks import read_rows
        _, rows = read_rows(path, [column])
        return list(range(1, len(rows) + 1)), [r[column] for r in rows]
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file" if not p.exists() else f"{path} is not a regular file")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not valid UTF-8 (bad byte at offset {e.start}); save it as UTF-8") from None
    kept = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    if not kept:
        raise UsageError(f"{path} has no text (every line is blank)")
    return [n for n, _ in kept], [line for _, line in kept]
