"""The token vocabulary of a music model: every ABC token seen in training, and the end of a tune.

Token files are laid out as documents mode lays them out (data.documents): END, tune, END, tune,
..., END; a tune is read from a fresh state starting at END and is trained to predict its own END.
"""

from __future__ import annotations

import numpy as np

from ..data.vocab import token_dtype
from ..errors import UsageError

END = "</tune>"
MAX_TOKEN_CHARS = 64


class UnknownTokens(UsageError):
    pass


class AbcVocabulary:
    kind = "abc"

    def __init__(self, symbols: tuple[str, ...]) -> None:
        if (not symbols or symbols[-1] != END or len(set(symbols)) != len(symbols)
                or not all(isinstance(s, str) and 0 < len(s) <= MAX_TOKEN_CHARS and s.isprintable() for s in symbols)):
            raise ValueError(f"symbols must be distinct printable tokens of 1-{MAX_TOKEN_CHARS} characters, "
                             f"ending with {END}")
        self.symbols = tuple(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def learn(cls, tunes: list[list[str]]) -> "AbcVocabulary":
        return cls(tuple(sorted({t for tune in tunes for t in tune})) + (END,))

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def end_id(self) -> int:
        return len(self.symbols) - 1

    @property
    def start_id(self) -> int:
        return self.end_id  # every tune starts after an END

    @property
    def token_dtype(self) -> np.dtype:
        return token_dtype(len(self.symbols))

    def ids(self, tokens: list[str]) -> np.ndarray:
        """Token strings -> ids; tokens the model never saw are an UnknownTokens error naming them."""
        unknown = sorted({t for t in tokens if t not in self.index})
        if unknown:
            shown = " ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
            raise UnknownTokens(shown)
        return np.fromiter((self.index[t] for t in tokens), dtype=np.int64, count=len(tokens))

    def tokens(self, ids) -> list[str]:
        """Ids -> token strings, up to (without) the first END."""
        out = []
        for i in ids:
            symbol = self.symbols[int(i)]
            if symbol == END:
                break
            out.append(symbol)
        return out

    def with_prefix(self, prefix: str) -> list[str]:
        """The values of a header field the model knows: with_prefix('K:') -> ['A', 'Am', ...]."""
        return [s[len(prefix):] for s in self.symbols if s.startswith(prefix)]

    def to_json(self) -> dict:
        return {"kind": self.kind, "symbols": list(self.symbols)}

    @classmethod
    def from_json(cls, data: dict) -> "AbcVocabulary":
        if not isinstance(data, dict) or data.get("kind") != cls.kind or not isinstance(data.get("symbols"), list):
            raise ValueError("not an ABC token vocabulary")
        return cls(tuple(data["symbols"]))
