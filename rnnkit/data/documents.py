"""Documents mode: a corpus of many short texts (names, titles, tweets) read as separate documents.

How a text is cut (`--documents`): `line` (each line is a document), `blank-line` (paragraphs:
documents separated by one or more empty or blank lines), or any other string, a literal
separator (written `\\n` and `\\t` in it stand for a newline and a tab). Each document loses its
leading and trailing line breaks; documents holding nothing but white space are dropped.

The token file holds one END, then every document followed by END:

    END d1 END d2 END ... dn END      ends = positions of the ENDs (ends[0] = 0)

so document k is read with inputs tokens[ends[k] : ends[k+1]] and targets one further on: every
document starts from END and a fresh state, and is trained to end by predicting END.
Both passes stream the files in chunks, as the plain corpus does: memory follows the chunk size
(and the longest document), never the corpus size.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import UsageError
from .corpus import DOCUMENT_SEPARATOR, joined_size, text_chunks
from .vocab import END, MAX_SYMBOL, Vocabulary, symbols_of

LINE, BLANK_LINE = "line", "blank-line"
MAX_SEPARATOR = 100  # characters of a literal separator
MAX_DOCUMENT_BYTES = 64 << 20  # one document held in memory while the file is cut


def check_separator(documents: str) -> str:
    """`documents` if it is a usable --documents value, else one UsageError."""
    if not isinstance(documents, str) or not documents or len(documents) > MAX_SEPARATOR:
        raise UsageError(f"--documents must be line, blank-line or a separator of 1-{MAX_SEPARATOR} characters "
                         f"(got {documents!r})")
    if documents not in (LINE, BLANK_LINE) and not literal(documents).strip():
        raise UsageError(f"--documents {documents!r} is only white space; for one document per line use "
                         "--documents line, for paragraphs --documents blank-line")
    return documents


def literal(documents: str) -> str:
    """A literal separator as typed on a command line, with \\n and \\t read as newline and tab."""
    return documents.replace("\\n", "\n").replace("\\t", "\t")


def _pattern(documents: str, kind: str) -> re.Pattern:
    if documents == LINE:
        source = r"\r?\n"
    elif documents == BLANK_LINE:
        source = r"\r?\n(?:[ \t]*\r?\n)+"
    else:
        source = re.escape(literal(documents))
    return re.compile(source.encode() if kind == "bytes" else source)


def output_separator(documents: str) -> str:
    """What `rnnkit sample` prints between generated documents: the corpus's own separator."""
    if documents == LINE:
        return "\n"
    if documents == BLANK_LINE:
        return "\n\n"
    separator = literal(documents)
    return ("" if separator.startswith("\n") else "\n") + separator + ("" if separator.endswith("\n") else "\n")


def split_documents(text: str | bytes, documents: str, kind: str) -> list:
    """The documents of one text held in memory (str for chars, bytes for bytes)."""
    return _clean(_pattern(documents, kind).split(text))


def _clean(parts: list) -> list:
    breaks = b"\r\n" if parts and isinstance(parts[0], bytes) else "\r\n"
    return [p.strip(breaks) for p in parts if p.strip()]


def iter_documents(paths: list[Path], kind: str, documents: str, digest=None) -> Iterator[list]:
    """Lists of documents, file by file and chunk by chunk. `digest` (a hashlib object), if given,
    sees the files' bytes with DOCUMENT_SEPARATOR between files, as the plain corpus hashes them."""
    kind = "bytes" if kind == "bytes" else "chars"  # word and BPE models cut the text as characters
    pattern = _pattern(documents, kind)
    empty: str | bytes = b"" if kind == "bytes" else ""
    for i, path in enumerate(paths):
        if i and digest is not None:
            digest.update(DOCUMENT_SEPARATOR.encode())
        carry = empty
        for piece in text_chunks(path, kind, on_bytes=None if digest is None else digest.update):
            parts = pattern.split(carry + piece)
            carry = parts.pop()  # may continue in the next chunk
            if len(carry) > MAX_DOCUMENT_BYTES:
                raise UsageError(f"{path} has a document longer than {MAX_DOCUMENT_BYTES >> 20} MB; is --documents "
                                 f"{documents!r} the separator this file uses?")
            yield _clean(parts)
        yield _clean([carry])


def _symbols(docs: list, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The documents' symbols one after another, and each document's length in symbols."""
    joined = (b"" if kind == "bytes" else "").join(docs)
    return symbols_of(joined, kind), np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))


def _ids(docs: list, vocab) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of documents one after another, and each document's length in tokens."""
    if vocab.kind in ("word", "bpe"):
        from .subwords import document_ids
        return document_ids(docs, vocab)
    symbols, lengths = _symbols(docs, vocab.kind)
    return vocab.lookup(symbols, vocab.token_dtype), lengths


def scan_documents(paths: list[Path], kind: str, documents: str) -> tuple[Vocabulary, str, int, int, int]:
    """First pass: vocabulary (END included), SHA-256, size in bytes, number of documents and of
    tokens (as `encode_documents` will write them)."""
    digest = hashlib.sha256()
    seen = np.zeros(MAX_SYMBOL[kind] + 1, dtype=bool)
    count, tokens = 0, 1
    for docs in iter_documents(paths, kind, documents, digest):
        symbols, lengths = _symbols(docs, kind)
        seen[symbols] = True
        count, tokens = count + len(docs), tokens + symbols.size + len(docs)
    if count == 0:
        raise UsageError(f"{paths[0]} holds no documents when cut with --documents {documents}")
    symbols = tuple(int(s) for s in np.flatnonzero(seen))
    return Vocabulary(kind, symbols + (END[kind],)), digest.hexdigest(), joined_size(paths), count, tokens


def encode_documents(groups: list[list[Path]], vocab: Vocabulary, documents: str, tokens_path: Path) -> np.ndarray:
    """Second pass: write END, then each document followed by END, for every group of files in
    turn (the corpus, then a validation file), under a temporary name then renamed. Returns the
    positions of the END tokens (int64), which mark where each document starts and ends."""
    end = vocab.end_id
    tmp = tokens_path.with_name(tokens_path.name + ".tmp")
    ends, written = [np.zeros(1, dtype=np.int64)], 1
    try:
        with open(tmp, "wb") as out:
            out.write(np.array([end], dtype=vocab.token_dtype).tobytes())
            for paths in groups:
                for docs in iter_documents(paths, vocab.kind, documents):
                    if not docs:
                        continue
                    ids, lengths = _ids(docs, vocab)
                    out.write(np.insert(ids, np.cumsum(lengths), end).tobytes())  # END after each document
                    ends.append(written + np.cumsum(lengths + 1) - 1)
                    written += ids.size + len(docs)
        os.replace(tmp, tokens_path)
    except BaseException:  # an error, a full disk, Ctrl-C: no half-written file stays behind
        tmp.unlink(missing_ok=True)
        raise
    return np.concatenate(ends)


def join_documents(pieces, end_id: int) -> np.ndarray:
    """The layout above in memory: END, then each document's token ids followed by END."""
    end = np.array([end_id])
    return np.concatenate([end] + [part for piece in pieces for part in (np.asarray(piece), end)])


def document_ends(tokens: np.ndarray, end_id: int, block: int = 1 << 24) -> np.ndarray:
    """Positions of END in a token file (memory map), read block by block."""
    found = [np.flatnonzero(np.asarray(tokens[i:i + block]) == end_id) + i for i in range(0, len(tokens), block)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def document_splits(ends: np.ndarray, corpus_documents: int, val_file: bool, val_fraction: float,
                    test_fraction: float) -> dict[str, list[int]]:
    """Token spans [start, end) of the splits, cut between documents (a span starts at an END and
    ends just after one, so neighbouring spans share that END). Without a validation file the
    last documents of the corpus validate (before any test documents), as the plain text does."""
    n = corpus_documents
    n_test = int(n * test_fraction)
    if val_file:
        cuts = {"train": (0, n - n_test), "test": (n - n_test, n), "val": (n, len(ends) - 1)}
    else:
        n_val = max(1, int(n * val_fraction))
        a, b = n - n_val - n_test, n - n_test
        cuts = {"train": (0, a), "val": (a, b), "test": (b, n)}
    return {name: document_span(ends, i, j) for name, (i, j) in cuts.items()}


def document_span(ends: np.ndarray, i: int, j: int) -> list[int]:
    """The token span [start, end) of documents i..j-1: from the END before document i to just
    after the END of document j - 1 (empty at ends[i] when j <= i)."""
    return [int(ends[i]), int(ends[j]) + 1] if j > i else [int(ends[i]), int(ends[i])]
