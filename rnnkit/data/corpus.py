"""Encode a text file once into a memory-mapped token file.

Two streaming passes over the file in fixed-size chunks: the first finds the vocabulary (and the
file's SHA-256, which identifies the corpus on resume), the second writes token ids. Memory use
depends on the chunk size, never on the corpus size, so multi-GB corpora train on a laptop.
"""

from __future__ import annotations

import codecs
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


def _chunks(path: Path, kind: str, on_bytes: Callable[[bytes], None] | None = None) -> Iterator[np.ndarray]:
    """Yield the file's symbols chunk by chunk; a UTF-8 error names its byte offset."""
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
                yield symbols_of(data, "bytes")
                continue
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError as e:
                raise InvalidUTF8(path, consumed - pending + e.start) from None
            consumed += len(data)
            if text:
                yield symbols_of(text, "chars")
            if final:
                return


def scan_vocabulary(path: Path, kind: str) -> tuple[Vocabulary, str, int, int]:
    """First pass: the sorted set of symbols, the SHA-256, the size in bytes, and the number of
    symbols (tokens) of the file. Invalid UTF-8 is found here, before anything is written."""
    digest = hashlib.sha256()
    seen = np.zeros(MAX_SYMBOL[kind] + 1, dtype=bool)
    count = 0
    for symbols in _chunks(path, kind, on_bytes=digest.update):
        seen[symbols] = True
        count += symbols.size
    present = np.flatnonzero(seen)
    if present.size == 0:
        raise UsageError(f"{path} holds no characters")
    return Vocabulary(kind, tuple(int(s) for s in present)), digest.hexdigest(), path.stat().st_size, count


def encode_tokens(paths: list[Path], vocab: Vocabulary, tokens_path: Path) -> int:
    """Second pass: write the token ids of the files, one after another, to `tokens_path`
    (under a temporary name, then renamed); returns the count."""
    tokens_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tokens_path.with_name(tokens_path.name + ".tmp")
    count = 0
    try:
        with open(tmp, "wb") as out:
            for path in paths:
                for symbols in _chunks(path, vocab.kind):
                    ids = vocab.lookup(symbols, vocab.token_dtype)
                    out.write(ids.tobytes())
                    count += ids.size
        os.replace(tmp, tokens_path)
    except BaseException:  # an error, a full disk, Ctrl-C: no half-written file stays behind
        tmp.unlink(missing_ok=True)
        raise
    return count
