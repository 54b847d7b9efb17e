"""The shape of a run's description (rnnkit.json), checked in one place before anything reads it.

A description comes from disk and may have been edited, truncated or written by something else,
so every field a reader touches is checked here for presence, type and range; a failure is one
UsageError naming the field (`checkpoint runs/x is corrupted (rnnkit.json: files.best.sha256 must
be ...)`). Values that configs own (model_config, train_config, an estimator's config) are then
checked again, field by field, when the config is built.

A schema is a type (int, float, str, bool, dict, list), a tuple of alternatives (None allowed
where it is listed), a list holding one item schema, a dict of field -> schema (a field name
ending in "?" is optional), or a `Check`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from .errors import UsageError

MAX_CODE_POINT = 0x10FFFF


@dataclass(frozen=True)
class Check:
    """A schema with a predicate: `what` says in words what the value must be."""
    base: Any
    test: Callable[[Any], bool]
    what: str


def _in(low: float, high: float = math.inf) -> Callable[[Any], bool]:
    return lambda v: low <= v <= high


COUNT = Check(int, _in(0), "a whole number >= 0")
NUMBER = Check(float, math.isfinite, "a finite number")
SHA256 = Check(str, lambda v: re.fullmatch(r"[0-9a-f]{64}", v) is not None, "64 hexadecimal digits")
FILE_NAME = Check(str, lambda v: re.fullmatch(r"[A-Za-z0-9_.-]{1,200}", v) is not None and v not in (".", ".."),
                  "a plain file name inside the run directory")
RELATIVE_PATH = Check(str, lambda v: re.fullmatch(r"[A-Za-z0-9_.-]{1,200}(/[A-Za-z0-9_.-]{1,200})?", v) is not None
                      and ".." not in v.split("/"), "a path inside the run directory")
SPAN = Check([int], lambda v: len(v) == 2 and 0 <= v[0] <= v[1], "[start, end] with 0 <= start <= end")

FILES = {"model?": {"file": FILE_NAME, "sha256": SHA256}, "best?": {"file": FILE_NAME, "sha256": SHA256},
         "resume?": {"file": FILE_NAME, "sha256": SHA256}}

ENVELOPE = {"format": str, "version": Check(int, _in(0), "a whole number"), "files": FILES, "step?": COUNT}

CHARACTERS = Check({"kind": Check(str, lambda v: v in ("chars", "bytes"), "chars or bytes"), "symbols": [COUNT]},
                   lambda v: 0 < len(v["symbols"]) == len(set(v["symbols"]))
                   and max(v["symbols"]) <= (MAX_CODE_POINT + 1 if v["kind"] == "chars" else 256)
                   and list(v["symbols"]) == sorted(v["symbols"]),
                   "sorted, distinct code points (0..0x10FFFF) or bytes (0..255), at least one, and "
                   "0x110000 or 256 for the end of a document")
SUBWORDS = {"kind": Check(str, lambda v: v in ("word", "bpe"), "word or bpe"),
            "tokenizer": Check(str, lambda v: 0 < len(v) <= 64 << 20, "a tokenizer's JSON (at most 64 MB)")}
VOCABULARY = (CHARACTERS, SUBWORDS)

METRIC_ROW = Check(dict, lambda row: isinstance(row.get("step"), int) and all(
    isinstance(value, (int, float)) and not isinstance(value, bool) for value in row.values()),
                   "an object of numbers with a whole-number step")

LANGUAGE_MODEL = {
    **ENVELOPE,
    "model_config": dict, "train_config": dict, "vocab": VOCABULARY,
    "corpus": {"source": str, "sha256": SHA256, "num_tokens": COUNT, "tokens_file": RELATIVE_PATH,
               "splits": {"train": SPAN, "val": SPAN, "test": SPAN},
               "documents?": Check(str, lambda v: 0 < len(v) <= 100, "a document separator (1-100 characters)")},
    "step": COUNT, "elapsed": Check(float, _in(0), "a number of seconds >= 0"),
    # a validation loss may be inf or NaN (a model that blew up in validation)
    "best_val": (float, None), "best_step": (COUNT, None), "metrics": [METRIC_ROW],
    "world_size?": Check(int, _in(1, 1 << 16), "a whole number of processes >= 1"),
    "test?": dict,
}

# What `--resume` needs on top: where the data stood, and the optimizer's plain state.
RESUMABLE = {
    "cursor": {"epoch": COUNT, "index": COUNT},
    "optimizer": {"state": dict, "param_groups": [dict]},
    "files": {**FILES, "model": FILES["model?"], "resume": FILES["resume?"]},
}

ESTIMATOR = {**ENVELOPE, "task": str, "fitted": dict}


def validate(value: Any, schema: Any, where: str, what: str) -> None:
    """Raise UsageError("{what} is corrupted ({where}...)") unless value fits schema."""
    problem = _problem(value, schema, where)
    if problem:
        raise UsageError(f"{what} is corrupted ({problem}); it was changed or written by something else")


def _problem(value: Any, schema: Any, where: str) -> str | None:
    if isinstance(schema, Check):
        return _problem(value, schema.base, where) or (
            None if _safely(schema.test, value) else f"{where} must be {schema.what}")
    if isinstance(schema, tuple):
        problems = [_problem(value, option, where) for option in schema if option is not None]
        if (value is None and None in schema) or None in problems:
            return None
        return problems[0] if problems else f"{where} must be null"
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{where} must be an object, not {_kind(value)}"
        for key, item in schema.items():
            name, optional = key.rstrip("?"), key.endswith("?")
            if name not in value:
                if optional:
                    continue
                return f"{where}.{name} is missing"
            problem = _problem(value[name], item, f"{where}.{name}")
            if problem:
                return problem
        return None
    if isinstance(schema, list):
        if not isinstance(value, list):
            return f"{where} must be a list, not {_kind(value)}"
        for i, item in enumerate(value):
            problem = _problem(item, schema[0], f"{where}[{i}]")
            if problem:
                return problem
        return None
    ok = {int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          bool: lambda v: isinstance(v, bool)}.get(schema, lambda v: isinstance(v, schema))(value)
    return None if ok else f"{where} must be {'a whole number' if schema is int else _names[schema]}, not {_kind(value)}"


_names = {float: "a number", str: "a string", bool: "true or false", dict: "an object", list: "a list"}


def _kind(value: Any) -> str:
    return {type(None): "null", bool: "true/false", int: "a whole number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _safely(test: Callable[[Any], bool], value: Any) -> bool:
    try:
        return bool(test(value))
    except (TypeError, ValueError, KeyError, AttributeError):
        return False


def check_language_model(meta: dict, run_dir: Any, resumable: bool = False) -> None:
    """A language model's description, complete (and, with `resumable`, fit to continue training)."""
    what = f"checkpoint {run_dir}"
    task = meta.get("task", "language_model")
    if task != "language_model":
        raise UsageError(f"{run_dir} holds a {task!r} model, not a language model; use the command that "
                         "trained it (rnnkit classify | tag | seq2seq predict, rnnkit music)")
    validate(meta, {**LANGUAGE_MODEL, **RESUMABLE} if resumable else LANGUAGE_MODEL, "rnnkit.json", what)
    corpus = meta["corpus"]
    for name, (start, end) in corpus["splits"].items():
        if end > corpus["num_tokens"]:
            validate(None, Check(int, lambda v: False, "within the corpus's num_tokens"),
                     f"rnnkit.json.corpus.splits.{name}", what)

