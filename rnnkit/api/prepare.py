"""Preparing a new run's corpus (rank 0 only): check the run directory, find the vocabulary,
encode the text(s) into the run's token file, and describe the splits.

Three layouts of the token file, by what the model reads: characters or bytes as one text (the
default), whole documents with an end symbol between them (`--documents`), or word or BPE tokens
learnt from the text (`--tokens word|bpe`). Each returns (run directory, vocabulary as JSON,
corpus description for rnnkit.json), and on bad input leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from pathlib import Path
from typing import Any, Callable

from .. import checkpoint, distributed
from ..config import TrainConfig
from ..data import StreamBatches, Vocabulary, check_text_file, encode_tokens, scan_vocabulary
from ..data import documents, subwords
from ..data.corpus import joined_size
from ..errors import UsageError
from .model import TOKENS_FILE

DEFAULT_TIME = 600.0


def _default_out(source: Path) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", source.stem) or "run"
    candidate, n = Path("runs") / stem, 1
    while candidate.exists():
        n += 1
        candidate = Path("runs") / f"{stem}-{n}"
    return candidate


def _splits(num_tokens: int, val_file_tokens: int, config: TrainConfig) -> dict[str, list[int]]:
    """Token ranges of the splits in the run's token file (the corpus, then any --val-file).
    Without a validation file, validation is the end of the corpus (before any test split)."""
    n_test = int(num_tokens * config.test_fraction)
    if val_file_tokens:
        a = num_tokens - n_test
        return {"train": [0, a], "val": [num_tokens, num_tokens + val_file_tokens], "test": [a, num_tokens]}
    n_val = int(num_tokens * config.val_fraction)
    a, b = num_tokens - n_val - n_test, num_tokens - n_test
    return {"train": [0, a], "val": [a, b], "test": [b, num_tokens]}


def check_sizes(source: str, splits: dict[str, list[int]], config: TrainConfig, processes: int = 1) -> None:
    need = StreamBatches.min_tokens(config.batch_size, config.seq_length) * processes
    have = splits["train"][1] - splits["train"][0]
    if have < need:
        each = f" for each of {processes} processes" if processes > 1 else ""
        raise UsageError(
            f"{source} is too short: its training split has {have} characters but one batch of "
            f"--batch-size {config.batch_size} x --seq-length {config.seq_length}{each} needs {need}; "
            f"use a longer text or smaller --batch-size/--seq-length")
    if splits["val"][1] - splits["val"][0] < 2:
        raise UsageError(f"{source} is too short to hold out a validation split; use a longer text, "
                         "a larger --val-fraction or a --val-file")


def vocab_kind(raw_bytes: bool, tokens: str) -> str:
    """The vocabulary kind a run reads: chars, bytes, word or bpe (--bytes is --tokens bytes)."""
    if raw_bytes and tokens not in ("char", "bytes"):
        raise UsageError(f"--bytes and --tokens {tokens} contradict each other; give one")
    return "bytes" if raw_bytes else {"char": "chars"}.get(tokens, tokens)


def prepare_corpus(source: list[Path], val_file, out, raw_bytes: bool, train_config: TrainConfig,
                    world: distributed.World, say, default_budget: bool,
                    base_vocab: Vocabulary | None = None) -> tuple[str, dict, dict[str, Any]]:
    """Check the run directory, find the vocabulary and encode the text(s) into the run's token
    file; returns (run directory, vocabulary as JSON, corpus description)."""
    run_dir = Path(out) if out is not None else _default_out(source[0])
    checkpoint.check_new_run_dir(run_dir)
    kind = "bytes" if raw_bytes or train_config.tokens == "bytes" else "chars"
    if train_config.documents is not None:
        return _prepare_documents(run_dir, source, val_file, kind, train_config, say, default_budget, base_vocab)
    if train_config.tokens in subwords.KINDS:
        return _prepare_subwords(run_dir, source, val_file, train_config, world, say, default_budget, base_vocab)
    vocab, sha, size, num_tokens = scan_vocabulary(source, kind)
    sources, val_tokens, val_info = list(source), 0, {}
    if val_file is not None:
        val_path = check_text_file(val_file)
        val_vocab, val_sha, _, val_tokens = scan_vocabulary(val_path, kind)
        vocab = vocab.union(val_vocab)  # as nanoGPT does: symbols of both texts
        sources.append(val_path)
        val_info = {"val_source": str(val_path), "val_sha256": val_sha}
    if base_vocab is not None:
        vocab = vocab.union(base_vocab)  # the base's symbols keep their weights, the text's new ones are added
    splits = _splits(num_tokens, val_tokens, train_config)
    check_sizes(source_name(source), splits, train_config, world.size)

    write_tokens(run_dir, lambda path: encode_tokens(sources, vocab, path, separated=len(source)))
    return str(run_dir), vocab.to_json(), _describe(source, sha, size, val_info, num_tokens + val_tokens, splits,
                                                    say, default_budget)


def _describe(source: list[Path], sha: str, size: int, val_info: dict, num_tokens: int,
              splits: dict[str, list[int]], say, default_budget: bool, **extra: Any) -> dict[str, Any]:
    """The corpus description saved in rnnkit.json (said once the input is known to be good)."""
    if default_budget:
        say(f"no --time, --max-steps or --epochs given: training for {DEFAULT_TIME:.0f} s")
    many = {"sources": [str(p) for p in source]} if len(source) > 1 else {}
    return {"source": source_name(source), **many, "sha256": sha, "size_bytes": size, **val_info,
            "num_tokens": num_tokens, "tokens_file": TOKENS_FILE, "splits": splits, **extra}


def write_tokens(run_dir: Path, encode: Callable[[Path], Any]) -> Any:
    """Run `encode(token file path)` inside the run's data folder, marked as rnnkit's; on any
    failure leave nothing half-made behind, removing only what this run made."""
    data = (run_dir / TOKENS_FILE).parent
    made = [p for p in (run_dir, data) if not p.exists()]  # folders this run creates
    data.mkdir(parents=True, exist_ok=True)
    marker = data / checkpoint.DATA_MARKER
    marker.write_text("rnnkit: this folder holds a run's encoded corpus\n")
    try:
        return encode(run_dir / TOKENS_FILE)
    except BaseException:
        (run_dir / TOKENS_FILE).unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
        raise


def _prepare_documents(run_dir: Path, source: list[Path], val_file, kind: str, train_config: TrainConfig, say,
                       default_budget: bool, base_vocab: Vocabulary | None) -> tuple[str, dict, dict[str, Any]]:
    """`_prepare_corpus` for documents mode: the splits are whole documents (data.documents)."""
    mode, subword = train_config.documents, train_config.tokens in subwords.KINDS
    extra = {}
    if subword:  # the tokenizer is learnt on the training documents only (a fine-tuned run keeps its base's)
        vocab, sha, size, count, chars = subwords.learn_documents(source, train_config.tokens, train_config.max_vocab,
                                                                  mode, base_vocab)
        extra = {"chars": chars}
    else:
        vocab, sha, size, count, _ = documents.scan_documents(source, kind, mode)
    groups, val_info = [source], {}
    if val_file is not None:
        val_path = check_text_file(val_file)
        val_vocab, val_sha, _, _, _ = documents.scan_documents([val_path], "chars" if subword else kind, mode)
        if not subword:
            vocab = vocab.union(val_vocab)
        groups.append([val_path])
        val_info = {"val_source": str(val_path), "val_sha256": val_sha}
    if base_vocab is not None and not subword:
        vocab = vocab.union(base_vocab)
    c = train_config
    n_train = count - (0 if val_file else max(1, int(count * c.val_fraction))) - int(count * c.test_fraction)
    if n_train < 1:
        raise UsageError(f"{source_name(source)} holds {count} document(s) when cut with --documents {mode}: too few to "
                         f"hold out validation documents and train on the rest; give more documents or a --val-file")
    ends = write_tokens(run_dir, lambda path: documents.encode_documents(groups, vocab, mode, path))
    splits = documents.document_splits(ends, count, val_file is not None, c.val_fraction, c.test_fraction)
    return str(run_dir), vocab.to_json(), _describe(source, sha, size, val_info, int(ends[-1]) + 1, splits, say,
                                                    default_budget, documents=mode, num_documents=len(ends) - 1, **extra)


def source_name(sources: list[Path]) -> str:
    return str(sources[0]) if len(sources) == 1 else f"{sources[0]} and {len(sources) - 1} more files"




def _prepare_subwords(run_dir: Path, source: list[Path], val_file, train_config: TrainConfig, world, say,
                      default_budget: bool, base_vocab) -> tuple[str, dict, dict[str, Any]]:
    """`prepare_corpus` for word and BPE tokens: the tokenizer is learnt on the training text only
    (a fine-tuned run keeps its base's), then every text is encoded with it."""
    kind = train_config.tokens
    if base_vocab is not None:
        vocab = base_vocab
        sha, size, chars = corpus_identity(source, kind)
    else:
        vocab, sha, size, chars = subwords.learn_vocabulary(source, kind, train_config.max_vocab)
    groups, val_info = [source], {}
    if val_file is not None:
        val_path = check_text_file(val_file)
        groups.append([val_path])
        val_info = {"val_source": str(val_path), "val_sha256": corpus_identity([val_path], kind)[0]}

    def encode(path: Path) -> tuple[int, dict[str, list[int]]]:
        """Token counts are known only once encoded: the size check runs here, so a text too short
        leaves nothing behind."""
        sizes = subwords.encode_subwords(groups, vocab, path)
        num_tokens, val_tokens = sizes[0][0], sizes[1][0] if val_file is not None else 0
        splits = _splits(num_tokens, val_tokens, train_config)
        check_sizes(source_name(source), splits, train_config, world.size)
        return num_tokens + val_tokens, splits

    total, splits = write_tokens(run_dir, encode)
    return str(run_dir), vocab.to_json(), _describe(source, sha, size, val_info, total, splits, say,
                                                    default_budget, chars=chars)


def corpus_identity(source: list[Path], kind: str) -> tuple[str, int, int]:
    """SHA-256, size in bytes and characters (or bytes) of a text, read as a run of `kind` reads it."""
    if kind in subwords.KINDS:
        digest, counts = hashlib.sha256(), {}
        for _ in subwords.text_pieces(source, digest, counts):
            pass
        return digest.hexdigest(), joined_size(source), counts.get("chars", 0)
    _, sha, size, count = scan_vocabulary(source, kind)
    return sha, size, count
