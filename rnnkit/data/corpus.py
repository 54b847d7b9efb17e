"""Encode a text file once into a memory-mapped token file.

Two streaming passes over the file in fixed-size chunks: the first finds the vocabulary (and the
file's SHA-256, which identifies the corpus on resume), the second writes token ids. Memory use
depends on the chunk size, never on the corpus size, so multi-GB corpora train on a laptop.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import os
import stat
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import UsageError
from .vocab import MAX_SYMBOL, Vocabulary, symbols_of

CHUNK_BYTES = 8 << 20  # per chunk: the bytes, the text, its code points (4 B each) and ids


class InvalidUTF8(UsageError):
    def __init__(self, path: Path, offset: int, hint: str = "pass --bytes to train on raw bytes") -> None:
        self.path, self.offset = path, offset
        super().__init__(f"{path} is not valid UTF-8 (bad byte at offset {offset}); {hint}")


DOCUMENT_SEPARATOR = "\n\n"  # between the files of a text given as several files


def text_files(arguments: list[str | os.PathLike]) -> list[Path]:
    """The files several inputs name, in order: a file, a directory (its files, recursively, sorted,
    hidden ones left out) or a glob pattern the shell did not expand; each checked as a text file."""
    files: list[Path] = []
    for argument in map(str, arguments):
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not any(
                part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise UsageError(f"{path} is a directory with no files in it")
            files.extend(found)
        elif not path.exists() and any(c in argument for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(argument, recursive=True) if Path(p).is_file())
            if not found:
                raise UsageError(f"{argument} matches no file")
            files.extend(found)
        else:
            files.append(path)
    return [check_text_file(f) for f in files]


def joined_size(paths: list[Path]) -> int:
    """Bytes of the text the files make when joined by DOCUMENT_SEPARATOR."""
    return sum(p.stat().st_size for p in paths) + len(DOCUMENT_SEPARATOR) * (len(paths) - 1)


def check_text_file(path: str | os.PathLike) -> Path:
    """A readable, non-empty regular file, or a UsageError saying what is wrong."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{p}: no such file")
    if p.is_dir():
        raise UsageError(f"{p} is a directory; give a text file")
    mode = p.stat().st_mode
    if not stat.S_ISREG(mode):
        what = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise UsageError(f"{p} is {what}; give a regular text file (rnnkit reads its corpus twice)")
    if not os.access(p, os.R_OK):
        raise UsageError(f"{p}: permission denied")
    if p.stat().st_size == 0:
        raise UsageError(f"{p} is empty; give a text file with some content")
    return p


def text_chunks(path: Path, kind: str, on_bytes: Callable[[bytes], None] | None = None) -> Iterator[str | bytes]:
    """Yield the file's text chunk by chunk (str for chars, raw bytes for bytes); a UTF-8 error
    names its byte offset. `on_bytes` sees every block of the file as read (for its hash)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    consumed = 0
    with open(path, "rb") as f:
        while True:
            data = f.read(CHUNK_BYTES)
            final = not data
            if on_bytes is not None and data:
                on_bytes(data)
            if kind == "bytes":
                if final:
                    return
                yield data
                continue
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError as e:
                raise InvalidUTF8(path, consumed - pending + e.start) from None
            consumed += len(data)
            if text:
                yield text
            if final:
                return


def _chunks(path: Path, kind: str, on_bytes: Callable[[bytes], None] | None = None) -> Iterator[np.ndarray]:
    """The file's symbols chunk by chunk."""
    for text in text_chunks(path, kind, on_bytes):
        yield symbols_of(text, kind)


def scan_vocabulary(paths: Path | list[Path], kind: str) -> tuple[Vocabulary, str, int, int]:
    """First pass: the sorted set of symbols, the SHA-256, the size in bytes, and the number of
    symbols (tokens) of the text: one file, or several joined by DOCUMENT_SEPARATOR (the hash and
    counts are those of the joined text). Invalid UTF-8 is found here, before anything is written."""
    paths = [paths] if isinstance(paths, Path) else paths
    digest = hashlib.sha256()
    seen = np.zeros(MAX_SYMBOL[kind] + 1, dtype=bool)
    count = size = 0
    for i, path in enumerate(paths):
        if i:
            separator = DOCUMENT_SEPARATOR.encode()
            digest.update(separator)
            seen[symbols_of(separator, "bytes")] = True  # newlines: the same ids as bytes or as code points
            count, size = count + len(separator), size + len(separator)
        for symbols in _chunks(path, kind, on_bytes=digest.update):
            seen[symbols] = True
            count += symbols.size
        size += path.stat().st_size
    present = np.flatnonzero(seen)
    if present.size == 0:
        raise UsageError(f"{paths[0]} holds no characters")
    return Vocabulary(kind, tuple(int(s) for s in present)), digest.hexdigest(), size, count


def encode_tokens(paths: list[Path], vocab: Vocabulary, tokens_path: Path, separated: int = 1) -> int:
    """Second pass: write the token ids of the files, one after another, to `tokens_path`
    (under a temporary name, then renamed); returns the count. The first `separated` files are
    one text and get DOCUMENT_SEPARATOR between them, as `scan_vocabulary` counted it."""
    tokens_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tokens_path.with_name(tokens_path.name + ".tmp")
    count = 0
    try:
        with open(tmp, "wb") as out:
            for i, path in enumerate(paths):
                if 0 < i < separated:
                    ids = vocab.lookup(symbols_of(DOCUMENT_SEPARATOR.encode(), "bytes"), vocab.token_dtype)
                    out.write(ids.tobytes())
                    count += ids.size
                for symbols in _chunks(path, vocab.kind):
                    ids = vocab.lookup(symbols, vocab.token_dtype)
                    out.write(ids.tobytes())
                    count += ids.size
        os.replace(tmp, tokens_path)
    except BaseException:  # an error, a full disk, Ctrl-C: no half-written file stays behind
        tmp.unlink(missing_ok=True)
        raise
    return count
