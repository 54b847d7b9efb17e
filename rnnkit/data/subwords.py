"""Word and subword vocabularies for the language model (`--tokens word|bpe`), learnt with the
Hugging Face `tokenizers` library (the `tokens` extra) and saved inside the run as its JSON.

word: the text is cut into words with their leading space (" cat"), single punctuation marks
    (" ,") and runs of white space ("\\n\\n"), so joining the tokens gives the text back; the most
    frequent `max_vocab` pieces are kept and any other piece reads as <unk> (word-rnn's model,
    without losing the spacing).
bpe: byte-level byte-pair encoding (Sennrich et al. 2016; the GPT-2 pre-tokenizer and byte
    alphabet): merges learnt up to `max_vocab` tokens; any text, in any script, encodes without
    an unknown token and decodes to itself.

Both streams of the corpus are read in chunks cut after a line break that precedes a printing
character, so a chunk boundary never splits a word or a run of white space: memory follows the
chunk size, not the corpus, as for characters.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import UsageError
from ..extras import require
from .corpus import DOCUMENT_SEPARATOR, joined_size, text_chunks
from .vocab import token_dtype

KINDS = ("word", "bpe")
UNK = "<unk>"
# Documents mode's end-of-document token: one id past the tokenizer's, never produced by encoding a
# text (the tokenizer does not know it), so no text can spell it. Its name can be no word piece
# (the NULs are pieces of their own) and no byte-level BPE token (those map NUL to another letter).
END_TOKEN = "\x00end\x00"
WORD_PIECES = r" ?\w+| ?[^\w\s]|\s+"  # every character lies in exactly one piece
_CUT = re.compile(r"\n(?=\S)")


def _tokenizers():
    require(("tokenizers",), "tokens", "--tokens word|bpe")
    import tokenizers
    return tokenizers


class SubwordVocabulary:
    """The token vocabulary of a word or BPE model: the interface of `Vocabulary` that the
    language model's training, sampling and scoring use, over a `tokenizers.Tokenizer`."""

    def __init__(self, kind: str, tokenizer, documents: bool = False) -> None:
        self.kind, self.tokenizer, self.documents = kind, tokenizer, documents
        symbols = tuple(tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size()))
        if not symbols or any(s is None for s in symbols) or END_TOKEN in symbols:
            raise ValueError("the tokenizer's ids are not 0..n-1")
        self.tokenizer_size = len(symbols)
        self.symbols = symbols + ((END_TOKEN,) if documents else ())

    @property
    def end_id(self) -> int | None:
        """The end-of-document token of a model trained on documents (the last id), else None."""
        return self.tokenizer_size if self.documents else None

    def with_end(self) -> "SubwordVocabulary":
        """The same tokens and the end-of-document token after them (fine-tuning into documents)."""
        return self if self.documents else SubwordVocabulary(self.kind, self.tokenizer, documents=True)

    @classmethod
    def learn(cls, kind: str, texts: Iterator[str], max_vocab: int, documents: bool = False) -> "SubwordVocabulary":
        tk = _tokenizers()
        if kind == "word":
            tokenizer = tk.Tokenizer(tk.models.WordLevel(unk_token=UNK))
            tokenizer.pre_tokenizer = tk.pre_tokenizers.Split(tk.Regex(WORD_PIECES), behavior="isolated")
            tokenizer.decoder = tk.decoders.Fuse()
            trainer = tk.trainers.WordLevelTrainer(vocab_size=max_vocab, special_tokens=[UNK], show_progress=False)
        else:
            tokenizer = tk.Tokenizer(tk.models.BPE())
            tokenizer.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
            tokenizer.decoder = tk.decoders.ByteLevel()
            trainer = tk.trainers.BpeTrainer(vocab_size=max_vocab, show_progress=False,
                                             initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(texts, trainer)
        return cls(kind, tokenizer, documents)

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def start_id(self) -> int:
        """The token a sample without a prime starts from: the end of a document for a model trained
        on documents (every document started there), else a newline, if one token is one."""
        if self.end_id is not None:
            return self.end_id
        ids = self.tokenizer.encode("\n").ids
        return ids[0] if len(ids) == 1 else 0

    @property
    def token_dtype(self) -> np.dtype:
        return token_dtype(len(self.symbols))

    def encode(self, text: str | bytes) -> np.ndarray:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)

    def decode(self, ids) -> str:
        """Text of token ids; the end-of-document token is no text and is left out."""
        return self.tokenizer.decode([int(i) for i in ids if int(i) != self.end_id], skip_special_tokens=False)

    def display(self, i: int) -> str:
        from .vocab import END_DISPLAY
        return END_DISPLAY if i == self.end_id else self.decode([i])

    def decoder(self) -> "SubwordStreamDecoder":
        return SubwordStreamDecoder(self)

    def to_json(self) -> dict:
        return {"kind": self.kind, "tokenizer": self.tokenizer.to_str(), **({"documents": True} if self.documents else {})}

    @classmethod
    def from_json(cls, data: dict) -> "SubwordVocabulary":
        tk = _tokenizers()
        documents = data.get("documents", False)
        if not isinstance(documents, bool):
            raise ValueError("the vocabulary's documents flag must be true or false")
        try:
            return cls(data["kind"], tk.Tokenizer.from_str(data["tokenizer"]), documents)
        except Exception as e:  # the library raises its own exception types for a bad tokenizer
            raise ValueError(f"not a tokenizer ({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})") from None


class SubwordStreamDecoder:
    """Token ids -> text one at a time: a BPE token may end inside a multi-byte character, so the
    text is decoded as a whole and only what has become final is handed out."""

    def __init__(self, vocab: SubwordVocabulary) -> None:
        self.vocab, self.ids, self.sent = vocab, [], 0

    def __call__(self, token: int) -> str:
        self.ids.append(int(token))
        text = self.vocab.decode(self.ids)
        if text.endswith("\ufffd"):  # an unfinished character: wait for its next byte
            return ""
        piece, self.sent = text[self.sent:], len(text)
        if len(self.ids) > 64:  # keep the window short; whole characters only are behind us
            self.ids, self.sent = [], 0
        return piece

    def flush(self) -> str:
        text = self.vocab.decode(self.ids)
        return text[self.sent:]


def text_pieces(paths: list[Path], digest=None, counts: dict | None = None) -> Iterator[str]:
    """The files' text (several joined by DOCUMENT_SEPARATOR) in chunks cut where no piece
    continues; `digest` sees the bytes as the character corpus hashes them; `counts["chars"]`
    adds up the characters."""
    for i, path in enumerate(paths):
        carry = ""
        if i:
            if digest is not None:
                digest.update(DOCUMENT_SEPARATOR.encode())
            carry = DOCUMENT_SEPARATOR
        for text in text_chunks(path, "chars", on_bytes=None if digest is None else digest.update):
            text = carry + text
            cut = None
            for cut in _CUT.finditer(text):
                pass
            if cut is None:
                carry = text
                continue
            carry = text[cut.end():]
            piece = text[:cut.end()]
            if counts is not None:
                counts["chars"] = counts.get("chars", 0) + len(piece)
            yield piece
        if carry:
            if counts is not None:
                counts["chars"] = counts.get("chars", 0) + len(carry)
            yield carry


def learn_vocabulary(paths: list[Path], kind: str, max_vocab: int) -> tuple[SubwordVocabulary, str, int, int]:
    """First pass: the tokenizer learnt on the text, its SHA-256, size in bytes and characters."""
    digest, counts = hashlib.sha256(), {}
    vocab = SubwordVocabulary.learn(kind, text_pieces(paths, digest, counts), max_vocab)
    if not counts.get("chars"):
        raise UsageError(f"{paths[0]} holds no characters")
    return vocab, digest.hexdigest(), joined_size(paths), counts["chars"]


def learn_documents(paths: list[Path], kind: str, max_vocab: int, mode: str,
                    base: SubwordVocabulary | None) -> tuple[SubwordVocabulary, str, int, int, int]:
    """First pass of documents mode: the tokenizer learnt on the documents (or the base's, for
    fine-tuning), with the end-of-document token; SHA-256, size in bytes, documents, characters."""
    from .documents import iter_documents
    digest, counted = hashlib.sha256(), {"documents": 0, "chars": 0}

    def texts() -> Iterator[str]:
        for docs in iter_documents(paths, "chars", mode, digest):
            counted["documents"] += len(docs)
            counted["chars"] += sum(map(len, docs))
            yield from docs
    if base is None:
        vocab = SubwordVocabulary.learn(kind, texts(), max_vocab, documents=True)
    else:
        vocab = base.with_end()
        for _ in texts():
            pass
    if counted["documents"] == 0:
        raise UsageError(f"{paths[0]} holds no documents when cut with --documents {mode}")
    return vocab, digest.hexdigest(), joined_size(paths), counted["documents"], counted["chars"]


def document_ids(docs: list[str], vocab: SubwordVocabulary) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of documents one after another, and each document's length in tokens."""
    rows = [e.ids for e in vocab.tokenizer.encode_batch(docs)]
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    return np.fromiter((i for row in rows for i in row), dtype=vocab.token_dtype, count=int(lengths.sum())), lengths


def encode_subwords(groups: list[list[Path]], vocab: SubwordVocabulary, tokens_path: Path) -> list[tuple[int, int]]:
    """Second pass: write the token ids of each group of files (the corpus, then a validation
    file) one after another; returns (tokens, characters) per group."""
    tmp = tokens_path.with_name(tokens_path.name + ".tmp")
    sizes = []
    try:
        with open(tmp, "wb") as out:
            for paths in groups:
                tokens, counts = 0, {}
                for piece in text_pieces(paths, counts=counts):
                    ids = np.asarray(vocab.tokenizer.encode(piece).ids, dtype=vocab.token_dtype)
                    out.write(ids.tobytes())
                    tokens += ids.size
                sizes.append((tokens, counts.get("chars", 0)))
        os.replace(tmp, tokens_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return sizes


def characters_of(path: Path) -> int:
    """Characters (code points) of a UTF-8 file, read in chunks."""
    decoder, count = codecs.getincrementaldecoder("utf-8")(errors="replace"), 0
    with open(path, "rb") as f:
        while data := f.read(1 << 22):
            count += len(decoder.decode(data))
    return count + len(decoder.decode(b"", final=True))
