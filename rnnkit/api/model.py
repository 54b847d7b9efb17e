"""Using a trained language model: `rnnkit.load(dir)` -> `Model`, which generates and scores text."""

from __future__ import annotations

import codecs
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import checkpoint
from ..config import ModelConfig, from_dict
from ..data import UnknownSymbols, Vocabulary, check_text_file, encode_tokens
from ..data.corpus import InvalidUTF8
from ..data.subwords import KINDS as SUBWORDS, encode_subwords
from ..data.vocab import vocabulary_from_json
from ..dynamic import DynamicConfig, dynamic_token_nats
from ..errors import UsageError
from ..models.language_model import LanguageModel
from ..data.documents import encode_documents, iter_documents, join_documents, split_documents
from ..sampling import SamplingConfig, generate_tokens, until_end
from ..tasks.documents import document_nats
from ..schema import check_language_model
from ..tasks.language_model import bits

TOKENS_FILE = "data/tokens.bin"  # the run's encoded corpus, inside the run directory


def resolve_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UsageError("--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu")
        return torch.device("cuda")
    return torch.device("cpu")


class Model:
    """A trained language model with its vocabulary: generate text, score text."""

    def __init__(self, module: LanguageModel, vocab: Vocabulary, meta: dict[str, Any], run_dir: Path,
                 device: torch.device) -> None:
        self.module = module
        self.vocab = vocab
        self.meta = meta
        self.run_dir = run_dir
        self.device = device

    @property
    def config(self) -> ModelConfig:
        return self.module.config

    @property
    def documents(self) -> str | None:
        """How the training text was cut into documents (documents mode), else None."""
        return self.meta.get("corpus", {}).get("documents")

    def encode(self, text: str | bytes, what: str) -> np.ndarray:
        """Token ids of `text` (int64); characters the model never saw are a UsageError."""
        try:
            return self.vocab.encode(text)
        except UnknownSymbols as e:
            raise UsageError(f"{what} contains characters outside the model's vocabulary: {e}; "
                             f"the model knows {len(self.vocab)} symbols (see `rnnkit info`)") from None

    def int8(self) -> "Model":
        """This model with int8 generation steps (rnnkit.quantized), on the CPU: faster one sample at
        a time. The prime is read by the float model."""
        from ..quantized import Int8LanguageModel
        module = self.module.cpu() if self.device.type != "cpu" else self.module
        return Model(Int8LanguageModel(module), self.vocab, self.meta, self.run_dir, torch.device("cpu"))

    def generate(self, prime: str = "", length: int = 500, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, greedy: bool = False,
                 seed: int | None = None, num_samples: int = 1,
                 stream: Callable[[str], None] | None = None) -> str | list[str]:
        """Sample text after `prime` (returned without the prime). With num_samples > 1 a list.
        `stream`, if given, receives sample 0's text piece by piece as it is generated."""
        config = SamplingConfig(length=length, temperature=temperature, top_k=top_k, top_p=top_p,
                                greedy=greedy, num_samples=num_samples, seed=seed)
        texts = self.sample(self.encode(prime, "the prime text") if prime else [], config, stream)
        return texts[0] if num_samples == 1 else texts

    def sample(self, prime_ids, config: SamplingConfig, stream: Callable[[str], None] | None = None) -> list[str]:
        """`config.num_samples` texts after the token ids `prime_ids`; `stream`, if given, receives
        sample 0's text piece by piece as it is generated."""
        start, end = self.vocab.start_id, self.vocab.end_id
        prime = list(map(int, prime_ids))
        if end is not None and prime:
            prime = [end, *prime]  # a document's first characters: read from where every document started
        on_tokens = None
        if stream is not None:
            decoder = self.vocab.decoder()
            on_tokens = lambda tokens: stream(decoder(int(tokens[0])))  # noqa: E731
        tokens = generate_tokens(self.module, prime, start, config, on_tokens, self.device, stop=end)
        if stream is not None:
            stream(decoder.flush())  # a byte model may end inside a multi-byte character
        return [self.vocab.decode(until_end(row.tolist(), end)) for row in tokens]

    def evaluate(self, text: str | bytes, dynamic: DynamicConfig | None = None) -> dict[str, float | int]:
        """Cross-entropy of the model on `text`: nats and bits per character. A model trained on
        documents cuts the text as it cut its corpus and scores each document from a fresh state,
        its end included. `dynamic`: score by dynamic evaluation (rnnkit.dynamic) instead."""
        self._check_dynamic(dynamic)
        if self.documents is None:
            tokens = self.encode(text, "the text")
            if self.vocab.kind in SUBWORDS:
                return self._score(tokens, len(text if isinstance(text, str) else text.decode("utf-8")), dynamic)
            return self._score(tokens, dynamic=dynamic)
        kind = self.vocab.kind
        if kind != "bytes" and isinstance(text, bytes):
            text = text.decode("utf-8")
        elif kind == "bytes" and isinstance(text, str):
            text = text.encode("utf-8")
        docs = split_documents(text, self.documents, kind)
        if not docs:
            raise UsageError(f"the text holds no documents when cut with --documents {self.documents}")
        end = self.vocab.end_id
        tokens = join_documents([self.encode(doc, "the text") for doc in docs], end)
        chars = sum(len(d) + 1 for d in docs) if kind in SUBWORDS else None  # each end counts as one
        return self._score_documents(tokens, np.flatnonzero(tokens == end), chars)

    def evaluate_file(self, path: str | os.PathLike, dynamic: DynamicConfig | None = None) -> dict[str, float | int]:
        """Like `evaluate`, for a file of any size: it is encoded in chunks to a temporary
        token file and read through a memory map."""
        self._check_dynamic(dynamic)
        path = check_text_file(path)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                if self.documents is not None:
                    ends = encode_documents([[path]], self.vocab, self.documents, Path(tmp) / "tokens.bin")
                    tokens = np.memmap(Path(tmp) / "tokens.bin", dtype=self.vocab.token_dtype, mode="r",
                                       shape=(int(ends[-1]) + 1,))
                    chars = sum(len(d) + 1 for docs in iter_documents([path], "chars", self.documents) for d in docs) \
                        if self.vocab.kind in SUBWORDS else None
                    return self._score_documents(tokens, ends, chars)
                if self.vocab.kind in SUBWORDS:
                    (count, chars), = encode_subwords([[path]], self.vocab, Path(tmp) / "tokens.bin")
                    tokens = np.memmap(Path(tmp) / "tokens.bin", dtype=self.vocab.token_dtype, mode="r", shape=(count,))
                    return self._score(tokens, chars, dynamic)
                count = encode_tokens([path], self.vocab, Path(tmp) / "tokens.bin")
            except UnknownSymbols as e:
                raise UsageError(f"{path} contains characters outside the model's vocabulary: {e}") from None
            except InvalidUTF8 as e:
                raise InvalidUTF8(e.path, e.offset, "this model reads UTF-8 text (a model trained "
                                                    "with --bytes reads any file)") from None
            tokens = np.memmap(Path(tmp) / "tokens.bin", dtype=self.vocab.token_dtype, mode="r", shape=(count,))
            return self._score(tokens, dynamic=dynamic)

    def file_tokens(self, path: str | os.PathLike, limit: int) -> np.ndarray:
        """Token ids of the first `limit` characters (or bytes) of a file, for tools that look at
        a sample of text (diagnostics, visualisation) rather than all of it."""
        path = check_text_file(path)
        with open(path, "rb") as f:
            head = f.read(limit * (4 if self.vocab.kind == "chars" else 1))
        if self.vocab.kind == "bytes":
            return self.encode(head, str(path))
        try:  # final=False: a character cut by the read limit is dropped, not an error
            text = codecs.getincrementaldecoder("utf-8")(errors="strict").decode(head, final=False)
        except UnicodeDecodeError as e:
            raise InvalidUTF8(path, e.start, "this model reads UTF-8 text (a model trained "
                                             "with --bytes reads any file)") from None
        return self.encode(text[:limit], str(path))

    def validation_sample(self, limit: int) -> np.ndarray | None:
        """The first `limit` tokens of the run's validation split, if its token file is still in
        the run directory (None if the directory was copied without data/)."""
        corpus = self.meta.get("corpus", {})
        path = self.run_dir / corpus.get("tokens_file", TOKENS_FILE)
        if not path.is_file() or "splits" not in corpus:
            return None
        start, end = corpus["splits"]["val"]
        tokens = np.memmap(path, dtype=self.vocab.token_dtype, mode="r")
        if end > len(tokens):
            return None
        return np.asarray(tokens[start:min(end, start + limit)], dtype=np.int64)

    def _check_dynamic(self, dynamic: DynamicConfig | None) -> None:
        if dynamic is not None and self.documents is not None:
            raise UsageError(f"--dynamic reads one continuous text, and this model was trained on documents "
                             f"(--documents {self.documents}); score it without --dynamic")

    def _score(self, tokens: np.ndarray, chars: int | None = None,
               dynamic: DynamicConfig | None = None) -> dict[str, float | int]:
        """Nats and bits per character; for word and BPE models (`chars` given: the text's
        characters) per token as well, the characters' share of the same total."""
        if len(tokens) < 2:
            raise UsageError("the text is too short to evaluate; it needs at least 2 tokens")
        if dynamic is None:
            nats, count = self.module.evaluate_tokens(tokens, device=self.device)
        else:
            per_token = dynamic_token_nats(self.module, tokens, dynamic, self.device)
            nats, count = float(per_token.mean()), len(per_token)
        if chars is None:
            return {"nats_per_char": nats, "bits_per_char": bits(nats), "chars": count}
        per_char = nats * count / max(chars - 1, 1)  # the first token is context, not predicted
        return {"nats_per_char": per_char, "bits_per_char": bits(per_char), "chars": chars,
                "nats_per_token": nats, "bits_per_token": bits(nats), "tokens": count}

    def _score_documents(self, tokens: np.ndarray, ends: np.ndarray, chars: int | None = None) -> dict[str, float | int]:
        """As `_score`, each document from a fresh state; `chars` (word and BPE models): the
        documents' characters, each end counted as one."""
        nats, count = document_nats(self.module, tokens, ends)
        if chars is None:
            return {"nats_per_char": nats, "bits_per_char": bits(nats), "chars": count, "documents": len(ends) - 1}
        per_char = nats * count / max(chars, 1)
        return {"nats_per_char": per_char, "bits_per_char": bits(per_char), "chars": chars,
                "nats_per_token": nats, "bits_per_token": bits(nats), "tokens": count, "documents": len(ends) - 1}

    def _best_bpc(self) -> float | None:
        """Bits per character at the best validation (for word and BPE models not the loss in bits:
        the loss is per token), from the metric history."""
        m = self.meta
        if m["best_val"] is None:
            return None
        rows = [row for row in m["metrics"] if row.get("step") == m["best_step"] and "val_bpc" in row]
        return rows[-1]["val_bpc"] if rows else bits(m["best_val"])

    def info(self) -> dict[str, Any]:
        m = self.meta
        return {"run_dir": str(self.run_dir), "rnnkit_version": m.get("rnnkit_version"),
                "num_parameters": self.module.num_parameters(), "vocab_size": len(self.vocab),
                "vocab_kind": self.vocab.kind, "model_config": m["model_config"],
                "train_config": m["train_config"], "corpus": {k: v for k, v in m["corpus"].items()},
                "step": m["step"], "elapsed_s": m["elapsed"], "best_val_nats": m["best_val"],
                "best_val_bpc": self._best_bpc(),
                "best_step": m["best_step"], "test": m.get("test"), "metrics": m["metrics"]}


def read_vocabulary(data: dict, what: str):
    """The vocabulary saved in a run's description; one UsageError naming the run if it is not one."""
    try:
        return vocabulary_from_json(data)
    except (ValueError, TypeError, KeyError) as e:
        raise UsageError(f"{what} is corrupted (its vocabulary: {e})") from None


def load(run_dir: str | os.PathLike, which: str = "best", device: str = "auto") -> Model:
    """Load a trained model from a run directory ("best" or "last" weights) onto `device` (auto:
    cuda when PyTorch sees a GPU). Never unpickles."""
    run_dir = Path(run_dir)
    meta = checkpoint.read_meta(run_dir)
    if which not in ("best", "last"):
        raise UsageError(f"which must be 'best' or 'last' (got {which!r})")
    check_language_model(meta, run_dir)
    vocab = read_vocabulary(meta["vocab"], f"checkpoint {run_dir}")
    module, dev = language_model_of(run_dir, meta, len(vocab), which, device)
    return Model(module, vocab, meta, run_dir, dev)


def language_model_of(run_dir: Path, meta: dict[str, Any], vocab_size: int, which: str,
                      device: str, build: Callable[[ModelConfig], LanguageModel] = LanguageModel,
                      ) -> tuple[LanguageModel, torch.device]:
    """The LanguageModel a checked run description names, with its best (or last) weights, in
    evaluation mode on `device`; a UsageError when config, vocabulary and weights disagree.
    `build` makes the module from the config (a domain's variant of the LanguageModel)."""
    model_config = from_dict(ModelConfig, meta["model_config"], f"checkpoint {run_dir}")
    if model_config.vocab_size != vocab_size:
        raise UsageError(f"checkpoint {run_dir} is corrupted: its model has {model_config.vocab_size} symbols "
                         f"but its vocabulary {vocab_size}")
    role = "best" if which == "best" and "best" in meta["files"] else "model"
    dev = resolve_device(device)
    module = build(model_config)
    try:
        module.load_state_dict(checkpoint.load_tensors(run_dir, meta, role))
    except RuntimeError as e:
        raise UsageError(f"checkpoint {run_dir} is corrupted: its weights do not fit its model config "
                         f"({str(e).splitlines()[0]})") from None
    return module.to(dev).eval(), dev
