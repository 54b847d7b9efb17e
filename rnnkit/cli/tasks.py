"""`rnnkit classify`, `rnnkit tag` and `rnnkit seq2seq` (train | predict) from CSV files, over the estimators.

    rnnkit classify train DATA.csv --text-col text --label-col label --out DIR
    rnnkit classify predict DIR DATA.csv > predictions.csv
    rnnkit tag train DATA.csv --tokens-col tokens --tags-col tags --out DIR   # space-separated, aligned
    rnnkit tag predict DIR DATA.csv > tagged.csv
    rnnkit seq2seq train DATA.csv --source-col word --target-col phonemes --target-level word --out DIR
    rnnkit seq2seq predict DIR DATA.csv --beam-size 4 > out.csv

`predict` writes the input rows, in order, with a `prediction` column added, as CSV on stdout
(for tagging: the space-separated tags). Bad input (a missing file or column, an empty cell, tokens
and tags of different lengths, a used --out) is one line on stderr, exit 2. The model and training
flags of `train` are generated from the estimator's config (estimators/configs.py).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from ..errors import UsageError
from ..estimators.configs import ClassifierConfig, Seq2SeqConfig, TaggerConfig
from .flags import add_config_flags, config_values

# Flags for every config field but these; random_state is --seed on the command line, as for `train`.
NOT_FLAGS = ("verbose", "beam_size")
RENAME = {"random_state": "seed"}


def _options(args: argparse.Namespace, dests: dict[str, str]) -> dict:
    """The estimator's settings the user gave (validated when the estimator's config is built)."""
    return {**config_values(args, dests), "verbose": 1}


def _check_new_out(path: str) -> Path:
    out = Path(path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} already exists and is not empty; choose a new directory "
                         f"(nothing there is overwritten)")
    return out


def _load_model(cls, directory: str, command: str):
    from ..checkpoint import is_run_dir, read_meta
    if not is_run_dir(directory):
        raise UsageError(f"{directory} is not a model directory (no rnnkit.json); train one with "
                         f"`rnnkit {command} train`")
    return cls.load(directory), read_meta(directory)


def _write_predictions(header: list[str], rows: list[dict], predictions) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=[*header, "prediction"], lineterminator="\n")
    writer.writeheader()
    for row, prediction in zip(rows, predictions):
        writer.writerow({**row, "prediction": prediction})


def add_classify(sub, parser_class) -> None:
    p = sub.add_parser("classify", help="text classification from a CSV file (train, predict)",
                       description="Train a recurrent text classifier on a CSV file, or label new rows with one.")
    actions = p.add_subparsers(dest="action", required=True, parser_class=parser_class, metavar="ACTION")
    t = actions.add_parser("train", help="train on DATA.csv; the model goes to --out",
                           description="Train on the rows of DATA.csv: --text-col holds the text, --label-col "
                                       "the label (any strings). 10%% of the rows are held out to report "
                                       "validation loss per epoch.")
    t.add_argument("data", metavar="DATA.csv")
    t.add_argument("--text-col", required=True, metavar="NAME", help="column with the text")
    t.add_argument("--label-col", required=True, metavar="NAME", help="column with the label")
    t.add_argument("--out", required=True, metavar="DIR", help="where to save the model (a new directory)")
    t.set_defaults(flags=add_config_flags(t, ClassifierConfig, NOT_FLAGS, RENAME))
    pr = actions.add_parser("predict", help="label the rows of DATA.csv; CSV with a prediction column to stdout")
    pr.add_argument("model_dir", metavar="DIR", help="directory written by `rnnkit classify train`")
    pr.add_argument("data", metavar="DATA.csv")
    pr.add_argument("--text-col", default=None, metavar="NAME", help="column with the text (default: the training column)")


def _read_rows(path: str, columns: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file")
    with open(p, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise UsageError(f"{path} has no column {', '.join(repr(c) for c in missing)}; its columns are "
                             f"{', '.join(repr(c) for c in header) or '(none)'}")
        rows = list(reader)
    if not rows:
        raise UsageError(f"{path} has no rows")
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        for c in columns:
            if not (row.get(c) or "").strip():
                raise UsageError(f"{path}, line {number}: column {c!r} is empty")
    return header, rows


def run_classify(args: argparse.Namespace) -> int:
    from .. import checkpoint
    from ..estimators import RNNClassifier
    if args.action == "train":
        _, rows = _read_rows(args.data, [args.text_col, args.label_col])
        out = _check_new_out(args.out)
        texts, labels = [r[args.text_col] for r in rows], [r[args.label_col] for r in rows]
        if len(set(labels)) < 2:
            raise UsageError(f"column {args.label_col!r} has only one label ({labels[0]!r}); a classifier needs two or more")
        model = RNNClassifier(**_options(args, args.flags))
        model.config()  # bad settings are reported before any training
        model.fit(texts, labels)
        model.save(out)
        checkpoint.update_meta(out, text_col=args.text_col, label_col=args.label_col, history=model.history_)
        print(f"trained on {len(texts):,} rows, {len(model.classes_)} classes; validation loss "
              f"{model.history_[-1]['val_loss']:.4f}; saved in {out}", file=sys.stderr)
        return 0
    model, meta = _load_model(RNNClassifier, args.model_dir, "classify")
    text_col = args.text_col or meta.get("text_col", "text")
    header, rows = _read_rows(args.data, [text_col])
    _write_predictions(header, rows, model.predict([r[text_col] for r in rows]))
    return 0


def add_tag(sub, parser_class) -> None:
    p = sub.add_parser("tag", help="sequence tagging from a CSV file (train, predict)",
                       description="Train a recurrent tagger (a label for every token), or tag new rows with one. "
                                   "Tokens and tags are space-separated, one sentence per row.")
    actions = p.add_subparsers(dest="action", required=True, parser_class=parser_class, metavar="ACTION")
    t = actions.add_parser("train", help="train on DATA.csv; the model goes to --out",
                           description="Train on DATA.csv: --tokens-col holds space-separated tokens, --tags-col "
                                       "as many space-separated tags. 10%% of the rows are held out to report "
                                       "validation loss per epoch.")
    t.add_argument("data", metavar="DATA.csv")
    t.add_argument("--tokens-col", required=True, metavar="NAME", help="column with space-separated tokens")
    t.add_argument("--tags-col", required=True, metavar="NAME", help="column with one tag per token")
    t.add_argument("--out", required=True, metavar="DIR", help="where to save the model (a new directory)")
    t.set_defaults(flags=add_config_flags(t, TaggerConfig, NOT_FLAGS, RENAME))
    pr = actions.add_parser("predict", help="tag the rows of DATA.csv; CSV with a prediction column to stdout")
    pr.add_argument("model_dir", metavar="DIR", help="directory written by `rnnkit tag train`")
    pr.add_argument("data", metavar="DATA.csv")
    pr.add_argument("--tokens-col", default=None, metavar="NAME", help="column with the tokens (default: the training column)")


def run_tag(args: argparse.Namespace) -> int:
    from .. import checkpoint
    from ..estimators import RNNTagger
    if args.action == "train":
        _, rows = _read_rows(args.data, [args.tokens_col, args.tags_col])
        out = _check_new_out(args.out)
        tokens, tags = [r[args.tokens_col].split() for r in rows], [r[args.tags_col].split() for r in rows]
        for number, (x, y) in enumerate(zip(tokens, tags), start=2):
            if len(x) != len(y):
                raise UsageError(f"{args.data}, line {number}: {len(x)} tokens but {len(y)} tags; "
                                 f"give one tag per token")
        model = RNNTagger(**_options(args, args.flags))
        model.config()
        model.fit(tokens, tags)
        model.save(out)
        checkpoint.update_meta(out, tokens_col=args.tokens_col, tags_col=args.tags_col, history=model.history_)
        print(f"trained on {len(tokens):,} rows, {len(model.classes_)} tags; validation loss "
              f"{model.history_[-1]['val_loss']:.4f}; saved in {out}", file=sys.stderr)
        return 0
    model, meta = _load_model(RNNTagger, args.model_dir, "tag")
    tokens_col = args.tokens_col or meta.get("tokens_col", "tokens")
    header, rows = _read_rows(args.data, [tokens_col])
    predictions = model.predict([r[tokens_col].split() for r in rows])
    _write_predictions(header, rows, [" ".join(map(str, p)) for p in predictions])
    return 0


def add_seq2seq(sub, parser_class) -> None:
    p = sub.add_parser("seq2seq", help="string-to-string models from a CSV file (train, predict)",
                       description="Train an encoder-decoder with attention that maps one column to another "
                                   "(spelling to sounds, dates to a format, ...), or apply one to new rows.")
    actions = p.add_subparsers(dest="action", required=True, parser_class=parser_class, metavar="ACTION")
    t = actions.add_parser("train", help="train on DATA.csv; the model goes to --out",
                           description="Train on DATA.csv: --source-col is read, --target-col is to be written. "
                                       "5%% of the rows are held out to report validation loss per epoch.")
    t.add_argument("data", metavar="DATA.csv")
    t.add_argument("--source-col", required=True, metavar="NAME", help="column with the input strings")
    t.add_argument("--target-col", required=True, metavar="NAME", help="column with the output strings")
    t.add_argument("--out", required=True, metavar="DIR", help="where to save the model (a new directory)")
    t.set_defaults(flags=add_config_flags(t, Seq2SeqConfig, NOT_FLAGS, RENAME))
    pr = actions.add_parser("predict", help="apply a model to DATA.csv; CSV with a prediction column to stdout")
    pr.add_argument("model_dir", metavar="DIR", help="directory written by `rnnkit seq2seq train`")
    pr.add_argument("data", metavar="DATA.csv")
    pr.add_argument("--source-col", default=None, metavar="NAME", help="column to read (default: the training column)")
    pr.add_argument("--beam-size", type=int, default=1, metavar="N", help="beam search width; 1 = greedy (default 1)")


def run_seq2seq(args: argparse.Namespace) -> int:
    from .. import checkpoint
    from ..estimators import Seq2Seq
    if args.action == "train":
        _, rows = _read_rows(args.data, [args.source_col, args.target_col])
        out = _check_new_out(args.out)
        model = Seq2Seq(**_options(args, args.flags))
        model.config()
        model.fit([r[args.source_col] for r in rows], [r[args.target_col] for r in rows])
        model.save(out)
        checkpoint.update_meta(out, source_col=args.source_col, target_col=args.target_col, history=model.history_)
        print(f"trained on {len(rows):,} rows; validation loss {model.history_[-1]['val_loss']:.4f}; saved in {out}",
              file=sys.stderr)
        return 0
    if args.beam_size < 1:
        raise UsageError(f"--beam-size must be >= 1 (got {args.beam_size})")
    model, meta = _load_model(Seq2Seq, args.model_dir, "seq2seq")
    source_col = args.source_col or meta.get("source_col", "source")
    header, rows = _read_rows(args.data, [source_col])
    model.set_params(beam_size=args.beam_size)
    _write_predictions(header, rows, model.predict([r[source_col] for r in rows]))
    return 0


def add_commands(sub, parser_class) -> dict:
    add_classify(sub, parser_class)
    add_tag(sub, parser_class)
    add_seq2seq(sub, parser_class)
    return {"classify": run_classify, "tag": run_tag, "seq2seq": run_seq2seq}
