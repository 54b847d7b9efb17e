"""Tunes from ABC files: read, tokenized, deduplicated, and the folk corpus that ships with music21.

`--corpus folk` is the three Irish and Scottish collections in music21's corpus folder (O'Neill's
1850, Ryan's Mammoth Collection, Aird's Airs; 4,248 tunes, read as latin-1, split on X:). The
package is found by path, without importing it (importing music21 takes seconds).

A tune that the tokenizer cannot read (several voices, a key without a tonic, a character that
is not ABC) is skipped and counted by reason; a tune whose notes equal an earlier tune's is a
duplicate and is dropped before any split, so the same tune never sits in training and in
validation.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from .abc import AbcError, is_note, split_tunes, tokenize
from .timing import add_beats
from .transpose import transpose

FOLK = ("oneills1850", "ryansMammoth", "airdsAirs")  # music21/corpus/<folder>/*.abc
MUSIC21 = "music21==10.5.1"
MAX_FILE_BYTES = 256 << 20


@dataclass
class Tunes:
    """Tokenized tunes and what was left out on the way."""
    tunes: list[list[str]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> tunes
    duplicates: int = 0
    files: int = 0
    keys: Counter = field(default_factory=Counter)  # key token -> tunes, as written (before any transposing)

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = "; ".join(f"{n} {reason}" for reason, n in self.skipped.most_common(3))
        return (f"{len(self.tunes):,} tunes from {self.files} file(s)"
                + (f", {skipped:,} skipped ({reasons})" if skipped else "")
                + (f", {self.duplicates:,} duplicates dropped" if self.duplicates else ""))


def music21_corpus() -> Path:
    """music21's corpus folder, found without importing the package."""
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"--corpus folk reads the tunes that ship with music21; install it with "
                         f"`pip install {MUSIC21}` (or `pip install 'rnnkit[music]'`)")
    return Path(list(spec.submodule_search_locations)[0]) / "corpus"


def folk_files() -> list[Path]:
    root = music21_corpus()
    files = [p for folder in FOLK for p in sorted((root / folder).glob("*.abc"))]
    if not files:
        raise UsageError(f"music21 is installed but its folk collections are missing from {root}; "
                         f"reinstall it with `pip install --force-reinstall {MUSIC21}`")
    return files


def read_text(path: Path) -> str:
    """An ABC file's text: UTF-8, or latin-1 (the older collections) when it is not UTF-8."""
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if not path.is_file():
        raise UsageError(f"{path} is not a regular file; give an .abc file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UsageError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MB; split it into smaller .abc files")
    data = path.read_bytes()
    if b"\x00" in data[:1 << 16]:
        raise UsageError(f"{path} is a binary file, not ABC text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def note_key(tokens: list[str]) -> tuple[str, ...]:
    """What makes two tunes the same tune: their key and their notes in order."""
    return (tokens[1], *(t for t in tokens[3:] if is_note(t)))


def read_tunes(paths: list[Path], chords: bool = False, tonic: str | None = None) -> Tunes:
    """Every readable tune of the files as the model reads it (with its beat marks, timing.add_beats),
    in file order, duplicates dropped; with `tonic`, every tune transposed to it first (so the same tune written in two keys is found twice). A
    UsageError when a file holds no tune at all, or when no tune can be read."""
    result, seen = Tunes(), set()
    for path in paths:
        texts = split_tunes(read_text(path))
        if not texts:
            raise UsageError(f"{path} holds no tunes: an ABC tune starts with a line such as `X:1`")
        result.files += 1
        for text in texts:
            try:
                tokens = tokenize(text, chords)
                key = tokens[1]
                if tonic is not None:
                    tokens = transpose(tokens, tonic)
                tokens = add_beats(tokens)
            except AbcError as e:
                result.skipped[_reason(str(e))] += 1
                continue
            if note_key(tokens) in seen:
                result.duplicates += 1
                continue
            seen.add(note_key(tokens))
            result.tunes.append(tokens)
            result.keys[key] += 1
    if not result.tunes:
        first = ", ".join(f"{n} {reason}" for reason, n in result.skipped.most_common(3))
        raise UsageError(f"no tune in {paths[0]}{' and the other files' if len(paths) > 1 else ''} could be read "
                         f"({first or 'none found'})")
    return result


def _reason(message: str) -> str:
    """A skip reason without the tune's own text, so reasons add up across tunes."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "...", message.split(" in the line ")[0])
