"""Tokenizers for labelled-sequence tasks (classification, tagging, seq2seq): text -> token ids.

Three levels: characters, words (runs of letters/digits, and each other non-space character on
its own, so "don't!" is `don ' t !`), or tokens (the input is already a list of tokens, as for
tagging). Options as in scikit-learn's vectorisers: `lowercase`,
`min_df` (keep tokens seen in at least this many documents), `max_features` (keep only the most
frequent). Id 0 is padding and id 1 the unknown token, so a vocabulary fitted on training text
reads any text. The fitted vocabulary is saved inside the model (`to_json` / `from_json`).

`hash_buckets=N` replaces the vocabulary by the hashing trick (Weinberger et al. 2009): a token's
id is 2 + (a fixed hash of it) mod N, so memory stays bounded however many distinct words the
data holds, unseen words get an id of their own bucket rather than the unknown one, and nothing
but N is stored; distinct tokens may share a bucket. The hash is CRC-32 of the UTF-8 text, the
same on every machine and run (Python's hash() is salted per process).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from typing import Iterable

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
MAX_BUCKETS = 10_000_000


class Tokenizer:
    def __init__(self, level: str = "char", lowercase: bool = False, min_df: int = 1,
                 max_features: int | None = None, hash_buckets: int | None = None) -> None:
        if level not in ("char", "word", "token"):
            raise ValueError(f"level must be 'char', 'word' or 'token' (got {level!r})")
        if min_df < 1:
            raise ValueError(f"min_df must be >= 1 (got {min_df})")
        if max_features is not None and max_features < 1:
            raise ValueError(f"max_features must be >= 1 or None (got {max_features})")
        if hash_buckets is not None and not 1 <= hash_buckets <= MAX_BUCKETS:
            raise ValueError(f"hash_buckets must be in 1..{MAX_BUCKETS:,} or None (got {hash_buckets})")
        self.level, self.lowercase, self.min_df, self.max_features = level, lowercase, min_df, max_features
        self.hash_buckets = hash_buckets
        self.tokens: list[str] = [PAD, UNK]
        self.index: dict[str, int] = {PAD: 0, UNK: 1}

    def split(self, text: str | list[str]) -> list[str]:
        if self.level == "token":
            return [t.lower() for t in text] if self.lowercase else list(text)
        if self.lowercase:
            text = text.lower()
        return list(text) if self.level == "char" else _WORD.findall(text)

    def fit(self, texts: Iterable[str] | Iterable[list[str]]) -> "Tokenizer":
        if self.hash_buckets is not None:
            return self  # nothing to learn: the buckets are fixed
        counts: Counter[str] = Counter()
        document_frequency: Counter[str] = Counter()
        for text in texts:
            pieces = self.split(text)
            counts.update(pieces)
            document_frequency.update(set(pieces))
        kept = [t for t, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
                if document_frequency[t] >= self.min_df]
        if self.max_features is not None:
            kept = kept[:self.max_features]
        self.tokens = [PAD, UNK, *kept]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        return self

    def __len__(self) -> int:
        return len(self.tokens) + (self.hash_buckets or 0)

    def encode(self, text: str | list[str]) -> list[int]:
        if self.hash_buckets is not None:
            return [2 + zlib.crc32(piece.encode("utf-8", "surrogatepass")) % self.hash_buckets
                    for piece in self.split(text)]
        return [self.index.get(piece, 1) for piece in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        joiner = "" if self.level == "char" else " "
        return joiner.join(self.tokens[i] if i < len(self.tokens) else f"#{i - 2}" for i in ids if i != 0)

    def to_json(self) -> dict:
        if self.hash_buckets is not None:
            return {"level": self.level, "lowercase": self.lowercase, "min_df": self.min_df,
                    "max_features": self.max_features, "hash_buckets": self.hash_buckets}
        return {"level": self.level, "lowercase": self.lowercase, "min_df": self.min_df,
                "max_features": self.max_features, "tokens": self.tokens}

    @classmethod
    def from_json(cls, data: dict) -> "Tokenizer":
        """A saved tokenizer; ValueError when the data is not one (edited or written by something else)."""
        tokenizer = cls(data["level"], data["lowercase"], data["min_df"], data["max_features"],
                        data.get("hash_buckets"))
        if tokenizer.hash_buckets is not None:
            return tokenizer
        tokens = data["tokens"]
        if (not isinstance(tokens, list) or tokens[:2] != [PAD, UNK] or not all(isinstance(t, str) for t in tokens)
                or len(set(tokens)) != len(tokens)):
            raise ValueError("tokens must be distinct strings starting with the padding and unknown tokens")
        tokenizer.tokens = list(tokens)
        tokenizer.index = {t: i for i, t in enumerate(tokenizer.tokens)}
        return tokenizer
