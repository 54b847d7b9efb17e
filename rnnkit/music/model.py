"""Training and sampling a tune model: the language model over ABC tokens, one tune per document.

`train` reads and tokenizes the tunes (music.corpus), shuffles them once with the run's seed,
writes them in the documents layout (END tune END tune ... END; the last --val-fraction of the
shuffled tunes validate) and trains the one LanguageModel with the one Trainer on a DocumentTask.
The run directory is a checkpoint like any other, with `"task": "music"` so that the character
commands refuse it and `rnnkit music` reads it.

`MusicModel.sample` asks for tunes by meter and key the way folkrnn.org does, by starting the
tune with them; the header's three slots are constrained to tokens of their field, in order, so
every sample has a well-formed header, and header fields never appear in a body.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from .. import checkpoint
from ..api.model import TOKENS_FILE, language_model_of, resolve_device
from ..api.prepare import DEFAULT_TIME, write_tokens
from ..config import ModelConfig, TrainConfig, split_options, to_dict
from ..data import documents
from ..errors import UsageError
from ..models.language_model import LanguageModel
from ..sampling import SamplingConfig, generate_tokens
from ..schema import COUNT, LANGUAGE_MODEL, Check, validate
from ..tasks.documents import DocumentTask, document_nats
from ..training import Trainer
from ..version import __version__
from .abc import HEADER_FIELDS, AbcError, detokenize, normal_key
from .clock import Clock, clocked_inputs, clocked_model
from .corpus import Tunes, folk_files, read_tunes
from .grammar import AbcGrammar
from .meter import MeterGrammar
from .transpose import transpose as transpose_tune
from .vocab import END, AbcVocabulary, UnknownTokens

TASK = "music"
# Defaults for tune models, chosen by measurement on the folk corpus (docs/music.md): tunes are
# documents of ~150 tokens, so a chunk of 256 holds most of one in a single step.
DEFAULTS = {"seq_length": 256, "dropout": 0.2, "hidden_size": 384}
MAX_TUNE_TOKENS = 2000  # the most tokens a sampled tune may take (the longest training tune: ~1,200)
# Tunes are drawn from the nucleus (Holtzman et al. 2020) of each note's distribution: the smallest
# set of tokens holding 90% of the probability. The tail it drops is where a model trained for ten
# minutes keeps its slips (a note too long for the bar). On 1,000 tunes of a default 600 s run the
# share whose bars keep the meter went 0.71 (whole distribution), 0.86 (0.95), 0.91 (0.9), against
# 0.90 for real tunes; 0.89 at 0.9 in two more runs (docs/music.md). The header (meter, key) is
# drawn from the whole distribution, so rare meters and modes keep their share.
DEFAULT_TOP_P = 0.9
INPUTS_FILE = "data/inputs.bin"  # with the bar clock: the ids the model reads, aligned with the tokens

MUSIC_SCHEMA = {**LANGUAGE_MODEL,
                "vocab": {"kind": Check(str, lambda v: v == "abc", "abc"), "symbols": [str]},
                "music": {"chords": bool, "transpose": (str, None), "keys": dict, "tunes": COUNT, "duplicates": COUNT,
                          "skipped": dict, "clock?": bool}}


def _say_default(line: str) -> None:
    tqdm.write(line, file=sys.stderr)


def train(files: list[str | os.PathLike] | None = None, *, corpus: str | None = None, out: str | os.PathLike,
          chords: bool = False, transpose: str | None = "C", clock: bool = True, log: Callable[[str], None] | None = None,
          progress: bool = True, **options: Any) -> "MusicModel":
    """Train a tune model on ABC files (or corpus="folk") and return it with its best weights.
    transpose: the tonic every tune is moved to (None: keep each tune's key); chords: keep chord
    symbols; clock: the model also reads the bar clock (music.clock). options are ModelConfig and
    TrainConfig fields; unset ones take `DEFAULTS`, then the configs'."""
    say = log or _say_default
    if bool(files) == (corpus is not None):
        raise UsageError("give ABC files or --corpus folk (one of the two)")
    if corpus is not None and corpus != "folk":
        raise UsageError(f"--corpus must be folk (got {corpus!r})")
    paths = folk_files() if corpus == "folk" else [Path(f) for f in files]
    model_options, train_options = split_options({**{k: v for k, v in DEFAULTS.items() if k not in options},
                                                  **options})
    if not {"max_steps", "epochs", "time"} & set(train_options):
        train_options["time"] = DEFAULT_TIME
    for name in ("tokens", "documents"):
        if name in train_options:
            raise UsageError(f"--{name} does not apply to tunes: a tune model reads ABC tokens, one tune per document")
    train_config = TrainConfig(**train_options)
    checked = ModelConfig(vocab_size=1, **model_options)  # flags checked before the files are read
    if clock and checked.embedding_size == 0:
        raise UsageError("the bar clock is added to the token embedding: give --embedding-size > 0 or --no-clock")
    run_dir = Path(out)
    checkpoint.check_new_run_dir(run_dir)
    device = resolve_device(train_config.device)

    if transpose is not None:
        transpose = _tonic(transpose, "--transpose")
        if chords:
            raise UsageError("--chords keeps chord symbols, which are not transposed; add --transpose none")
    tunes = read_tunes(paths, chords, transpose)
    say(f"read {tunes.summary()}")
    order = np.random.default_rng(train_config.seed).permutation(len(tunes.tunes))
    shuffled = [tunes.tunes[i] for i in order]
    vocab = AbcVocabulary.learn(shuffled)
    ends = write_tokens(run_dir, lambda path: _write_tunes(shuffled, vocab, path, clock))
    splits = documents.document_splits(ends, len(shuffled), False, train_config.val_fraction,
                                       train_config.test_fraction)
    if splits["train"][1] - splits["train"][0] < 2 or splits["val"][1] - splits["val"][0] < 2:
        raise UsageError(f"{len(shuffled)} tune(s) are too few to hold out validation tunes; give more tunes")
    corpus_info = {"source": "folk" if corpus else str(paths[0]), "sources": [str(p) for p in paths][:1000],
                   "sha256": _sha256(paths), "num_tokens": int(ends[-1]) + 1, "tokens_file": TOKENS_FILE,
                   "splits": splits, "documents": "tunes", "num_documents": len(shuffled)}
    music_info = {"chords": chords, "transpose": transpose, "keys": dict(tunes.keys.most_common()), "tunes": len(shuffled), "duplicates": tunes.duplicates,
                  "skipped": dict(tunes.skipped), "clock": clock}
    model_config = ModelConfig(vocab_size=len(vocab), **model_options)
    torch.manual_seed(train_config.seed)
    model = (clocked_model if clock else LanguageModel)(model_config).to(device)
    inputs = np.memmap(run_dir / INPUTS_FILE, dtype=np.int64, mode="r") if clock else None
    return _fit(run_dir, model, vocab, corpus_info, {"music": music_info}, train_config, device, say, progress,
                inputs=inputs)


def _write_tunes(tunes: list[list[str]], vocab: AbcVocabulary, path: Path, clock: bool) -> np.ndarray:
    pieces = [vocab.ids(tune) for tune in tunes]
    if clock:  # the ids the model reads, beside the tokens it predicts
        inputs = path.with_name(Path(INPUTS_FILE).name)
        try:
            write_documents(clocked_inputs(pieces, vocab.symbols, END), vocab.end_id, np.int64, inputs)
        except BaseException:
            inputs.unlink(missing_ok=True)
            raise
    return write_documents(pieces, vocab.end_id, vocab.token_dtype, path)


def write_documents(pieces: list[np.ndarray], end_id: int, dtype: np.dtype, path: Path) -> np.ndarray:
    """END, then each piece (tune, performance) followed by END, written under a temporary name
    then renamed; returns the positions of the ENDs."""
    tokens = documents.join_documents(pieces, end_id).astype(dtype)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(tokens.tobytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return np.flatnonzero(tokens == end_id)


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _tonic(value: str, flag: str) -> str:
    match = re.fullmatch(r"([A-Ga-g])([#b]?)", value.strip())
    if not match:
        raise UsageError(f"{flag} must be a tonic such as C, D, Bb or F# (or none); got {value!r}")
    return match.group(1).upper() + match.group(2)


def _fit(run_dir: Path, model: LanguageModel, vocab, corpus_info: dict, extra: dict,
         train_config: TrainConfig, device: torch.device, say, progress: bool, task_name: str = TASK,
         what: str = "tunes", loader: Callable | None = None, inputs: np.ndarray | None = None):
    """Train on the run's token file (END piece END piece ... END) with the one Trainer; return the
    model loaded back from its best checkpoint. Shared by tune models and performance models
    (task_name, what and loader: "performance", "performances", performance.load); `extra` joins
    the run description; `inputs`: the ids the model reads, aligned with the token file (the clock)."""
    tokens = np.memmap(run_dir / TOKENS_FILE, dtype=vocab.token_dtype, mode="r", shape=(corpus_info["num_tokens"],))
    (a, b), (c, d) = corpus_info["splits"]["train"], corpus_info["splits"]["val"]
    train_ends = documents.document_ends(tokens[a:b], vocab.end_id)
    val_ends = documents.document_ends(tokens[c:d], vocab.end_id)
    task = DocumentTask(tokens[a:b], train_ends, tokens[c:d], val_ends, train_config.batch_size,
                        train_config.seq_length, train_config.eval_chars, train_config.seed, device,
                        train_inputs=None if inputs is None else inputs[a:b],
                        val_inputs=None if inputs is None else inputs[c:d]).bind(model)
    task.units = "tokens"

    def describe() -> dict[str, Any]:
        return {"rnnkit_version": __version__, "task": task_name, "model_config": to_dict(model.config),
                "train_config": to_dict(train_config), "vocab": vocab.to_json(), "corpus": corpus_info,
                **extra, "num_parameters": model.num_parameters(), "device": str(device)}

    say(f"training {model.config.cell} {model.config.num_layers} x {model.config.hidden_size} "
        f"({model.num_parameters():,} parameters) on {corpus_info['num_documents']:,} {what} "
        f"({corpus_info['num_tokens']:,} tokens, vocabulary {len(vocab)}), device {device}")
    say(f"model: {to_dict(model.config)}")
    say(f"training: {to_dict(train_config)}")
    trainer = Trainer(model, task, train_config, run_dir, describe, device, log=say, progress=progress)
    result = trainer.fit()
    say(f"done: {result.step} steps in {result.elapsed:.0f} s; best val {result.best_val:.4f} nats/token at step "
        f"{result.best_step}; saved in {run_dir}" if result.best_val is not None else
        f"done: {result.step} steps; no finite validation loss")
    return (loader or load)(run_dir, device=str(device))


@dataclass
class MusicModel:
    module: LanguageModel
    vocab: AbcVocabulary
    meta: dict[str, Any]
    run_dir: Path
    device: torch.device

    @property
    def clocked(self) -> bool:
        """Whether the model reads the bar clock beside each token (music.clock)."""
        return bool(self.meta["music"].get("clock"))

    @property
    def transposed_to(self) -> str | None:
        """The tonic the training tunes were moved to (None: trained in their own keys)."""
        return self.meta["music"].get("transpose")

    def known(self, field: str) -> list[str]:
        """The values of header field M, K or L that the model saw in training (K: as written,
        before any transposing)."""
        if field == "K":
            return sorted(k[2:] for k in self.meta["music"]["keys"])
        return self.vocab.with_prefix(field + ":")

    def _header_id(self, token: str, flag: str, value: str, known: list[str]) -> int:
        if token not in self.vocab.index:
            raise UsageError(f"{flag} {value} never occurs in this model's tunes; it knows {' '.join(known)}")
        return self.vocab.index[token]

    def _slots(self, meter: str | None, key: str | None) -> list[torch.Tensor]:
        """(V,) masks of the tokens allowed in the header's three slots: M, K, L."""
        chosen = {}
        if meter is not None:
            chosen["M"] = self._header_id("M:" + meter.strip(), "--meter", meter, self.known("M"))
        if key is not None:
            try:
                written = normal_key(key)
            except AbcError as e:
                raise UsageError(f"--key {key}: {e}") from None
            if self.transposed_to is None:
                chosen["K"] = self._header_id("K:" + written, "--key", key, self.known("K"))
            else:  # the model knows modes on one tonic: ask for the mode, move the tune afterwards
                mode = re.sub(r"^[A-G][#b]?", "", written)
                modes = sorted({re.sub(r"^[A-G][#b]?", "", k) or "major" for k in self.vocab.with_prefix("K:")})
                chosen["K"] = self._header_id(f"K:{self.transposed_to}{mode}", "--key", key,
                                              [f"any tonic with the mode {' '.join(modes)}"])
        slots = []
        for field in HEADER_FIELDS:
            mask = torch.zeros(len(self.vocab), dtype=torch.bool, device=self.device)
            if field in chosen:
                mask[chosen[field]] = True
            else:
                mask[[i for i, s in enumerate(self.vocab.symbols) if s.startswith(field + ":")]] = True
            slots.append(mask)
        return slots

    def sample(self, num_tunes: int = 1, meter: str | None = None, key: str | None = None,
               temperature: float = 1.0, top_k: int | None = None, top_p: float | None = DEFAULT_TOP_P,
               seed: int | None = None, max_tokens: int = MAX_TUNE_TOKENS, strict: bool = True,
               keep_meter: bool = False) -> list[list[str]]:
        """`num_tunes` tunes (token lists, header first), drawn together in one batch, keeping the
        grammar of ABC (music.grammar; `strict=False`: the model's raw choices; `keep_meter`: every
        bar also filled to the meter, music.meter). `top_k` and `top_p` apply from the first note
        on (`top_p=None` or 1: the whole distribution; see DEFAULT_TOP_P). A model
        trained on transposed tunes writes them in `key`'s tonic, or without a key in a tonic drawn
        from the training tunes' own keys of the sampled mode."""
        slots = self._slots(meter, key)
        config = SamplingConfig(length=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                num_samples=num_tunes, seed=seed)
        body = torch.tensor([s[:2] not in ("M:", "K:", "L:") for s in self.vocab.symbols], device=self.device)
        if keep_meter and not strict:
            raise UsageError("--keep-meter works on top of the ABC grammar; drop --free")
        where = (self.vocab.symbols, END, num_tunes, self.device, len(slots))
        if self.clocked:  # one tracker keeps the grammar and tells the model the clock (also with --free)
            tracker = Clock(*where, keep_meter)
        else:
            tracker = (MeterGrammar if keep_meter else AbcGrammar)(*where) if strict else None
        grammar = tracker if strict else None
        V = len(self.vocab)

        def allowed(t: int) -> torch.Tensor:
            if t < len(slots):
                return slots[t]
            return body if grammar is None else body & grammar.allowed(t)

        rows = generate_tokens(self.module, [], self.vocab.start_id, config, device=self.device,
                               stop=self.vocab.end_id, allowed=allowed,
                               on_tokens=None if tracker is None else tracker.observe,
                               feed=(lambda tokens: tokens + V * tracker.ids()) if self.clocked else None,
                               filter_from=len(slots))
        tunes = [self.vocab.tokens(row.tolist()) for row in rows]
        if self.transposed_to is None:
            return tunes
        rng = np.random.default_rng(seed)
        return [self._retonic(tune, key, rng) for tune in tunes]

    def _retonic(self, tune: list[str], key: str | None, rng: np.random.Generator) -> list[str]:
        """A tune sampled in the training tonic, moved to `key`'s tonic or to one drawn from the
        training keys of its mode."""
        mode = re.sub(r"^[A-G][#b]?", "", tune[1][2:])
        if key is not None:
            tonic = re.match(r"[A-G][#b]?", normal_key(key)).group(0)
        else:
            keys = {k: n for k, n in self.meta["music"]["keys"].items()
                    if isinstance(n, int) and n > 0 and re.sub(r"^K:[A-G][#b]?", "", k) == mode}
            if not keys:
                return tune
            names = sorted(keys)
            weights = np.array([keys[k] for k in names], dtype=float)
            tonic = re.match(r"K:([A-G][#b]?)", names[rng.choice(len(names), p=weights / weights.sum())]).group(1)
        try:
            return transpose_tune(tune, tonic)
        except AbcError:
            return tune  # a double-sharp too far: keep the training tonic

    def abc(self, tunes: list[list[str]], first: int = 1) -> str:
        """Tunes as one ABC text, numbered from `first`, a blank line between them."""
        return "\n".join(detokenize(tune, first + i) for i, tune in enumerate(tunes))

    def score(self, tunes: list[list[str]]) -> dict[str, float]:
        """Cross-entropy over whole tunes (each from a fresh state, its end included): nats per
        token, and the same total per character of the tunes' ABC text (without the X: lines)."""
        try:
            pieces = [self.vocab.ids(tune) for tune in tunes]
        except UnknownTokens as e:
            raise UsageError(f"the tunes hold tokens this model never saw: {e}") from None
        tokens = documents.join_documents(pieces, self.vocab.end_id)
        inputs = (documents.join_documents(clocked_inputs(pieces, self.vocab.symbols, END), self.vocab.end_id)
                  if self.clocked else None)
        nats, count = document_nats(self.module, tokens, np.flatnonzero(tokens == self.vocab.end_id), inputs=inputs)
        chars = sum(len(detokenize(t).split("\n", 1)[1]) for t in tunes)
        return {"nats_per_token": nats, "nats_per_char": nats * count / chars, "tokens": count, "chars": chars,
                "tunes": len(tunes)}


def load(run_dir: str | os.PathLike, which: str = "best", device: str = "auto") -> MusicModel:
    """A tune model from its run directory; never unpickles; a UsageError for anything else."""
    run_dir = Path(run_dir)
    meta = checkpoint.read_meta(run_dir)
    what = f"checkpoint {run_dir}"
    if meta.get("task") == "performance":
        raise UsageError(f"{run_dir} holds a performance model (MIDI events); sample it with "
                         "`rnnkit music sample DIR --events --out FILE.mid`")
    if meta.get("task") != TASK:
        raise UsageError(f"{run_dir} holds a {meta.get('task', 'language_model')!r} model, not a tune model; "
                         "give a directory written by `rnnkit music train`")
    validate(meta, MUSIC_SCHEMA, "rnnkit.json", what)
    try:
        vocab = AbcVocabulary.from_json(meta["vocab"])
    except ValueError as e:
        raise UsageError(f"{what} is corrupted (its vocabulary: {e})") from None
    if which not in ("best", "last"):
        raise UsageError(f"which must be 'best' or 'last' (got {which!r})")
    build = clocked_model if meta["music"].get("clock") else LanguageModel
    module, dev = language_model_of(run_dir, meta, len(vocab), which, device, build=build)
    return MusicModel(module, vocab, meta, run_dir, dev)


def split_tunes(model: MusicModel, split: str = "val") -> list[list[str]]:
    """The tunes of the run's "train" or "val" split, read back from its token file (empty if
    data/ is gone)."""
    corpus = model.meta["corpus"]
    path = model.run_dir / corpus["tokens_file"]
    if not path.is_file() or path.is_symlink():
        return []
    tokens = np.fromfile(path, dtype=model.vocab.token_dtype)
    start, end = corpus["splits"][split]
    ids = tokens[start:end].tolist()
    tunes, current = [], []
    for i in ids[1:]:
        if i == model.vocab.end_id:
            tunes.append(model.vocab.tokens(current))
            current = []
        elif 0 <= i < len(model.vocab):
            current.append(i)
    return tunes


__all__ = ["train", "load", "MusicModel", "Tunes", "END", "split_tunes"]
