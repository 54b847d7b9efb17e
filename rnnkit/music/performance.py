"""Performance RNN (Oore et al. 2018): the one language model over MIDI event streams
(music.events), trained on MIDI files or on the Bach chorales that ship with music21, sampled
into playable .mid files.

Each performance is a document (END events END events ... END), trained from a fresh state up to
its END, exactly as tunes and documents mode are; the run directory is a checkpoint like any
other with `"task": "performance"`.

Sampling keeps the stream well formed unless asked not to (`strict=False`): a note cannot start
while it sounds or stop while it is silent, and the stream ends only when every note has stopped.
A note also lasts no longer than the longest note of the training performances: a model that loses
track of a voice would otherwise leave it hanging (the grammar forbids the restrike it then tries).
Once the asked length is reached, only the stops of sounding notes and then END may follow, so a
sample ends cleanly near that time. Shapes: N streams sampled together, V = 309 events + END.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import checkpoint
from ..api.model import TOKENS_FILE, language_model_of, resolve_device
from ..api.prepare import DEFAULT_TIME, write_tokens
from ..config import ModelConfig, TrainConfig, split_options
from ..data.documents import document_span, join_documents
from ..data.vocab import token_dtype
from ..errors import UsageError
from ..models.language_model import LanguageModel
from ..sampling import SamplingConfig, generate_tokens
from ..schema import COUNT, LANGUAGE_MODEL, Check, validate
from ..tasks.documents import document_nats
from . import events as ev

TASK = "performance"
DEFAULTS = {"seq_length": 256, "dropout": 0.2, "hidden_size": 384}
PERFORMANCE_SCHEMA = {**LANGUAGE_MODEL, "vocab": {"kind": Check(str, lambda v: v == "events", "events"),
                                                  "size": Check(int, lambda v: v == ev.NUM_EVENTS + 1, "309")},
                      "performances": {"source": str, "streams": COUNT, "seconds": float,
                                       "longest_note": Check(float, lambda v: 0 < v <= 3600, "seconds in (0, 3600]"),
                                       "pitch_shifts?": COUNT}}
QUARTER_SECONDS = 0.6  # chorales are rendered at 100 quarter notes a minute
CHORALE_VELOCITY = 80
MAX_EVENTS = 20_000  # the most events one sample may take


class EventVocabulary:
    """The 308 events and the end of a performance (id 308)."""
    kind = "events"
    symbols = tuple(ev.event_name(e) for e in range(ev.NUM_EVENTS)) + ("end",)
    end_id = start_id = ev.NUM_EVENTS
    token_dtype = token_dtype(ev.NUM_EVENTS + 1)

    def __len__(self) -> int:
        return len(self.symbols)

    def to_json(self) -> dict:
        return {"kind": self.kind, "size": len(self)}


def chorale_streams(progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    """Event streams of the Bach chorales in music21's corpus (all parts as one performance, ties
    joined, at a fixed tempo and loudness), built on first use and cached as .npz."""
    from ..data.bundled import cache_dir
    from .corpus import MUSIC21, music21_corpus
    files = sorted((music21_corpus() / "bach").glob("*.mxl"))
    if not files:
        raise UsageError(f"music21's corpus has no Bach chorales; reinstall it with `pip install {MUSIC21}`")
    path = cache_dir() / f"bach-chorales-events-v1-{len(files)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            return np.split(saved["events"], np.cumsum(saved["lengths"])[:-1])
    import music21
    streams = []
    for k, file in enumerate(files):
        try:
            score = music21.converter.parse(str(file))
        except Exception:  # music21 raises many kinds; a chorale it cannot read is left out
            continue
        notes = [ev.Note(int(p.midi), float(n.offset) * QUARTER_SECONDS,
                         float(n.offset + n.quarterLength) * QUARTER_SECONDS, CHORALE_VELOCITY)
                 for part in score.parts for n in part.flatten().stripTies().notes for p in n.pitches]
        if notes:
            streams.append(np.asarray(ev.notes_to_events(notes), dtype=np.int16))
        if progress is not None:
            progress(k + 1, len(files))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, events=np.concatenate(streams), lengths=np.array([len(s) for s in streams]))
    os.replace(tmp, path)
    return streams


def midi_streams(files: list[str | os.PathLike]) -> list[np.ndarray]:
    out = []
    for f in files:
        try:
            notes = ev.read_midi(f)
        except ev.MidiError as e:
            raise UsageError(f"{f}: {e}") from None
        except OSError as e:
            raise UsageError(f"{f}: {e.strerror or e}") from None
        if not notes:
            raise UsageError(f"{f} holds no notes on the piano's range (channel 10, drums, is left out)")
        out.append(np.asarray(ev.notes_to_events(notes), dtype=np.int16))
    return out


def train(files: list[str | os.PathLike] | None = None, *, corpus: str | None = None, out: str | os.PathLike,
          pitch_shifts: int = 3, log: Callable[[str], None] | None = None, progress: bool = True,
          **options: Any) -> "PerformanceModel":
    """Train a performance model on .mid files (or corpus="bach") and return it with its best weights.
    pitch_shifts: also train on every training performance moved up and down by 1..N semitones (Oore
    et al. 2018 used 3, as the default here: on the chorales 0.87-0.88 nats/event against 1.09 without;
    validation and test performances stay as they are). options: ModelConfig and
    TrainConfig fields; unset ones take `DEFAULTS`, then the configs'."""
    from .model import _fit, _say_default, write_documents
    say = log or _say_default
    if bool(files) == (corpus is not None):
        raise UsageError("give .mid files or --corpus bach (one of the two)")
    if corpus is not None and corpus != "bach":
        raise UsageError(f"--corpus with --events must be bach (got {corpus!r})")
    model_options, train_options = split_options({**{k: v for k, v in DEFAULTS.items() if k not in options},
                                                  **options})
    if not {"max_steps", "epochs", "time"} & set(train_options):
        train_options["time"] = DEFAULT_TIME
    train_config = TrainConfig(**train_options)
    ModelConfig(vocab_size=1, **model_options)  # flags checked before the files are read
    if isinstance(pitch_shifts, bool) or not isinstance(pitch_shifts, int) or not 0 <= pitch_shifts <= 12:
        raise UsageError(f"--pitch-shifts must be a whole number of semitones in 0..12 (got {pitch_shifts!r})")
    run_dir = Path(out)
    checkpoint.check_new_run_dir(run_dir)
    device = resolve_device(train_config.device)
    streams = chorale_streams() if corpus else midi_streams(files)
    order = np.random.default_rng(train_config.seed).permutation(len(streams))
    streams = [streams[i] for i in order]
    vocab = EventVocabulary()
    seconds = sum(ev.duration(s) for s in streams)
    say(f"read {len(streams):,} performances, {seconds / 60:.0f} minutes, {sum(map(len, streams)):,} events")
    n = len(streams)
    n_test, n_val = int(n * train_config.test_fraction), max(1, int(n * train_config.val_fraction))
    if n - n_val - n_test < 1:
        raise UsageError(f"{n} performance(s) are too few to hold out validation ones; give more")
    trained = [shifted for s in streams[:n - n_val - n_test] for shifted in _pitch_shifted(s, pitch_shifts)]
    pieces = trained + streams[n - n_val - n_test:]
    if pitch_shifts:
        say(f"training on {len(trained):,} performances: each moved by up to {pitch_shifts} semitones either way")
    ends = write_tokens(run_dir, lambda path: write_documents(pieces, ev.NUM_EVENTS, vocab.token_dtype, path))
    a = len(trained)
    splits = {"train": document_span(ends, 0, a), "val": document_span(ends, a, a + n_val),
              "test": document_span(ends, a + n_val, a + n_val + n_test)}
    corpus_info = {"source": corpus or str(files[0]), "sources": [str(f) for f in files or []][:1000],
                   "sha256": hashlib.sha256(b"".join(s.astype("<i2").tobytes() for s in pieces)).hexdigest(),
                   "num_tokens": int(ends[-1]) + 1, "tokens_file": TOKENS_FILE, "splits": splits,
                   "documents": "performances", "num_documents": len(pieces)}
    longest = max((n.end - n.start for s in streams for n in ev.events_to_notes(s)[0]), default=1.0)
    info = {"source": corpus or "midi", "streams": len(streams), "seconds": float(seconds), "pitch_shifts": pitch_shifts,
            "longest_note": float(min(max(longest, ev.STEP_SECONDS), 3600.0))}
    torch.manual_seed(train_config.seed)
    model = LanguageModel(ModelConfig(vocab_size=len(vocab), **model_options)).to(device)
    return _fit(run_dir, model, vocab, corpus_info, {"performances": info}, train_config, device, say, progress,
                task_name=TASK, what="performances", loader=load)


def _pitch_shifted(stream: np.ndarray, shifts: int) -> list[np.ndarray]:
    """The stream moved by -shifts..+shifts semitones (itself at 0), leaving out moves that would
    take a note off the piano."""
    notes = stream < ev.TIME_SHIFT  # (events,) note on or off
    pitch = stream[notes] % ev.PITCHES
    out = []
    for d in range(-shifts, shifts + 1):
        if len(pitch) and (pitch.min() + d < 0 or pitch.max() + d >= ev.PITCHES):
            continue
        moved = stream.copy()
        moved[notes] += d
        out.append(moved)
    return out


class EventGrammar:
    """Per sample: which notes sound and how many 10 ms steps have passed. allowed(t) masks the
    events that would break the stream, and all but stops and END once `steps` have passed or the
    events left before `limit` are only enough to stop every note and end."""

    def __init__(self, num: int, steps: int, device: torch.device, limit: int = MAX_EVENTS,
                 longest: int | None = None) -> None:
        self.limit, self.longest = limit, longest  # longest: the most steps a note may sound
        self.sounding = torch.zeros(num, ev.PITCHES, dtype=torch.bool, device=device)  # (N, 88)
        self.started = torch.zeros(num, ev.PITCHES, dtype=torch.long, device=device)  # (N, 88) step of each start
        self.now = torch.zeros(num, dtype=torch.long, device=device)  # (N,) steps so far
        self.done = torch.zeros(num, dtype=torch.bool, device=device)
        self.steps = steps
        self.shift = torch.arange(1, ev.SHIFT_STEPS + 1, device=device)  # (100,) steps of each shift event

    def allowed(self, t: int) -> torch.Tensor:
        n = len(self.now)
        late = (self.now >= self.steps)[:, None] | (t >= self.limit - ev.PITCHES - 1)  # (N, 1)
        on = ~self.sounding & ~late
        off = self.sounding
        shift = (self.now[:, None] + self.shift[None, :] <= self.steps) & ~late  # no shift beyond the length
        velocity = ~late.expand(n, ev.VELOCITY_BINS)
        end = ~self.sounding.any(dim=1, keepdim=True) & ((self.now > 0)[:, None] | late)  # silent, not at once
        mask = torch.cat([on, off, shift, velocity, end], dim=1)  # (N, 309)
        if self.longest is not None:  # no shift past a note's longest; a note at its longest stops first
            age = torch.where(self.sounding, self.now[:, None] - self.started, torch.zeros_like(self.started))
            headroom = self.longest - age.max(dim=1).values  # (N,) steps the oldest sounding note may still last
            mask[:, ev.TIME_SHIFT:ev.VELOCITY] &= self.shift[None, :] <= headroom[:, None]
            overdue = self.sounding & (age >= self.longest)  # (N, 88)
            rows = overdue.any(dim=1)
            mask[rows] = False
            mask[rows, ev.NOTE_OFF:ev.TIME_SHIFT] = overdue[rows]
        mask[self.done] = True
        return mask

    def observe(self, tokens: torch.Tensor) -> None:
        live = ~self.done
        rows = torch.arange(len(tokens), device=tokens.device)
        is_on = (tokens < ev.NOTE_OFF) & live
        is_off = (tokens >= ev.NOTE_OFF) & (tokens < ev.TIME_SHIFT) & live
        is_shift = (tokens >= ev.TIME_SHIFT) & (tokens < ev.VELOCITY) & live
        pitch = torch.where(is_off, tokens - ev.NOTE_OFF, tokens).clamp(0, ev.PITCHES - 1)
        self.sounding[rows[is_on], pitch[is_on]] = True
        self.started[rows[is_on], pitch[is_on]] = self.now[is_on]
        self.sounding[rows[is_off], pitch[is_off]] = False
        self.now += torch.where(is_shift, tokens - ev.TIME_SHIFT + 1, torch.zeros_like(tokens))
        self.done |= tokens == ev.NUM_EVENTS


@dataclass
class PerformanceModel:
    module: LanguageModel
    vocab: EventVocabulary
    meta: dict[str, Any]
    run_dir: Path
    device: torch.device

    def sample(self, num: int = 1, seconds: float = 30.0, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, seed: int | None = None, strict: bool = True) -> list[np.ndarray]:
        """`num` event streams drawn in one batch, each ending near `seconds` (strict: well formed,
        stopping its notes then ending; strict=False: the model's raw events, cut at `seconds`)."""
        if not 0 < seconds <= 600:
            raise UsageError(f"--seconds must be in (0, 600] (got {seconds:g})")
        steps = max(1, int(round(seconds / ev.STEP_SECONDS)))
        config = SamplingConfig(length=MAX_EVENTS, temperature=temperature, top_k=top_k, top_p=top_p,
                                num_samples=num, seed=seed)
        longest = self.meta.get("performances", {}).get("longest_note")
        grammar = EventGrammar(num, steps, self.device, MAX_EVENTS,
                               None if longest is None else max(1, int(round(longest / ev.STEP_SECONDS))))
        rows = generate_tokens(self.module, [], self.vocab.start_id, config, device=self.device,
                               stop=self.vocab.end_id, allowed=grammar.allowed if strict else None,
                               on_tokens=grammar.observe)
        out = []
        for row in rows.tolist():
            stream = row[:row.index(ev.NUM_EVENTS)] if ev.NUM_EVENTS in row else row
            out.append(np.asarray(stream if strict else _cut(stream, steps), dtype=np.int64))
        return out

    def score(self, streams: list[np.ndarray]) -> dict[str, float]:
        """Cross-entropy over whole performances, each from a fresh state, its end included."""
        tokens = join_documents(streams, self.vocab.end_id)
        nats, count = document_nats(self.module, tokens, np.flatnonzero(tokens == self.vocab.end_id))
        return {"nats_per_event": nats, "events": count, "performances": len(streams)}


def _cut(stream: list[int], steps: int) -> list[int]:
    """The events of a stream up to `steps` of time."""
    now = 0
    for i, e in enumerate(stream):
        if ev.TIME_SHIFT <= e < ev.VELOCITY:
            now += e - ev.TIME_SHIFT + 1
            if now > steps:
                return stream[:i]
    return stream


def load(run_dir: str | os.PathLike, which: str = "best", device: str = "auto") -> PerformanceModel:
    """A performance model from its run directory; never unpickles; a UsageError for anything else."""
    run_dir = Path(run_dir)
    meta = checkpoint.read_meta(run_dir)
    if meta.get("task") != TASK:
        raise UsageError(f"{run_dir} holds a {meta.get('task', 'language_model')!r} model, not a performance "
                         "model; give a directory written by `rnnkit music train --events`")
    validate(meta, PERFORMANCE_SCHEMA, "rnnkit.json", f"checkpoint {run_dir}")
    if which not in ("best", "last"):
        raise UsageError(f"which must be 'best' or 'last' (got {which!r})")
    module, dev = language_model_of(run_dir, meta, ev.NUM_EVENTS + 1, which, device)
    return PerformanceModel(module, EventVocabulary(), meta, run_dir, dev)


def split_streams(model: PerformanceModel, split: str = "val") -> list[np.ndarray]:
    """The performances of the run's "train" or "val" split, read back from its token file."""
    corpus = model.meta["corpus"]
    path = model.run_dir / corpus["tokens_file"]
    if not path.is_file() or path.is_symlink():
        return []
    tokens = np.fromfile(path, dtype=EventVocabulary.token_dtype).astype(np.int64)
    start, end = corpus["splits"][split]
    part = tokens[start:end]
    ends = np.flatnonzero(part == ev.NUM_EVENTS)
    return [part[a + 1:b] for a, b in zip(ends[:-1], ends[1:])]
