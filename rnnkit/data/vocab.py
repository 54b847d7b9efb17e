"""Vocabularies of Unicode code points ("chars") or raw byte values ("bytes").

A vocabulary is the sorted list of symbols (ints) seen in the corpus; a token id is a symbol's
index in that list. Symbols are stored as integers, so the vocabulary survives JSON whatever
characters it holds (control characters, lone surrogates never appear: we decode strictly).
A model trained on documents also knows the end-of-document symbol END (one past the largest code
point or byte, so it can never be confused with text): it sorts last and decodes to nothing.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import UsageError

MAX_SYMBOL = {"chars": 0x10FFFF, "bytes": 0xFF}
END = {"chars": 0x110000, "bytes": 0x100}  # the end-of-document symbol of each kind
END_DISPLAY = "\u2403"  # ␃ (SYMBOL FOR END OF TEXT), how tools that show tokens draw it


def token_dtype(size: int) -> np.dtype:
    """The smallest unsigned type that holds every token id of a vocabulary of `size`."""
    return np.dtype(np.uint8 if size <= 256 else np.uint16 if size <= 65536 else np.uint32)


@dataclass(frozen=True)
class Vocabulary:
    kind: str  # "chars" (Unicode code points) | "bytes" (byte values 0-255)
    symbols: tuple[int, ...]  # sorted

    def __post_init__(self) -> None:
        if self.kind not in ("chars", "bytes"):
            raise UsageError(f"unknown vocabulary kind {self.kind!r}")
        if not self.symbols:
            raise UsageError("empty vocabulary")

    def union(self, other: "Vocabulary") -> "Vocabulary":
        return Vocabulary(self.kind, tuple(sorted(set(self.symbols) | set(other.symbols))))

    def with_end(self) -> "Vocabulary":
        """This vocabulary plus the end-of-document symbol."""
        return Vocabulary(self.kind, tuple(sorted(set(self.symbols) | {END[self.kind]})))

    @property
    def start_id(self) -> int:
        """The token a sample without a prime starts from: the end of a document for a model
        trained on documents (every document started there), else a newline if known."""
        if self.end_id is not None:
            return self.end_id
        return self.symbols.index(10) if 10 in self.symbols else 0

    @property
    def end_id(self) -> int | None:
        """Token id of the end-of-document symbol, or None for a vocabulary of plain text."""
        return len(self.symbols) - 1 if self.symbols[-1] == END[self.kind] else None

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def token_dtype(self) -> np.dtype:
        return token_dtype(len(self.symbols))

    @cached_property
    def _table(self) -> np.ndarray:
        """Dense symbol -> id table (-1 for symbols outside the vocabulary): one gather per chunk."""
        table = np.full(END[self.kind] + 1, -1, dtype=np.int32)
        table[list(self.symbols)] = np.arange(len(self.symbols), dtype=np.int32)
        return table

    def lookup(self, values: np.ndarray, dtype: np.dtype | type = np.int64) -> np.ndarray:
        """Symbols (int array) -> token ids (of `dtype`). Raises UnknownSymbols naming the strangers."""
        ids = self._table[values]
        if ids.min(initial=0) < 0:
            unknown = ids < 0
            raise UnknownSymbols(sorted(set(values[unknown].tolist())), self.kind)
        return ids.astype(dtype)

    def encode(self, text: str | bytes) -> np.ndarray:
        """Text (str for chars, bytes for bytes) -> token ids (int64). Raises UnknownSymbols."""
        return self.lookup(symbols_of(text, self.kind))

    def decode(self, ids) -> str:
        """Token ids -> text. For byte vocabularies, invalid UTF-8 shows as U+FFFD."""
        end = END[self.kind]
        values = [v for v in (self.symbols[int(i)] for i in ids) if v != end]
        if self.kind == "chars":
            return "".join(map(chr, values))
        return bytes(values).decode("utf-8", errors="replace")

    def display(self, i: int) -> str:
        """One token as a displayable string: the character, or for a byte outside printable
        ASCII its escape (a lone byte of a multi-byte character is not a character)."""
        value = self.symbols[int(i)]
        if value == END[self.kind]:
            return END_DISPLAY
        if self.kind == "chars" or 32 <= value < 127 or value in (9, 10):
            return chr(value)
        return f"\\x{value:02x}"

    def decoder(self) -> "StreamDecoder":
        return StreamDecoder(self)

    def to_json(self) -> dict:
        return {"kind": self.kind, "symbols": list(self.symbols)}

    @classmethod
    def from_json(cls, data: dict) -> "Vocabulary":
        return cls(kind=data["kind"], symbols=tuple(int(s) for s in data["symbols"]))


def vocabulary_from_json(data: dict):
    """A saved vocabulary of any kind: characters or bytes (`Vocabulary`), words or BPE tokens
    (`subwords.SubwordVocabulary`). ValueError/UsageError when it is not one."""
    if data.get("kind") in ("word", "bpe"):
        from .subwords import SubwordVocabulary
        return SubwordVocabulary.from_json(data)
    return Vocabulary.from_json(data)


class UnknownSymbols(UsageError):
    def __init__(self, missing: list[int], kind: str) -> None:
        self.missing = missing
        shown = ", ".join((repr(chr(s)) if kind == "chars" else f"byte 0x{s:02x}") for s in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        super().__init__(f"{shown}{more}")


def symbols_of(text: str | bytes, kind: str) -> np.ndarray:
    """Code points (chars, uint32) or byte values (bytes, uint8) of a text; read-only views, kept
    narrow because the corpus encoder holds one chunk's worth of them at a time."""
    if kind == "chars":
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        # UTF-32-LE gives one uint32 per code point: vectorised, no Python loop over characters.
        return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype="<u4")
    if isinstance(text, str):
        text = text.encode("utf-8")
    return np.frombuffer(text, dtype=np.uint8)


class StreamDecoder:
    """Turns token ids into printable text one at a time, holding back incomplete UTF-8 sequences."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def __call__(self, token: int) -> str:
        symbol = self.vocab.symbols[int(token)]
        if symbol == END[self.vocab.kind]:
            return ""
        if self.vocab.kind == "chars":
            return chr(symbol)
        return self._utf8.decode(bytes([symbol]))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True) if self.vocab.kind == "bytes" else ""
