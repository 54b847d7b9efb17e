"""The bar clock: where the music stands in its bar and its section, read by the tune model beside
each token.

A language model over ABC tokens has to count to keep the meter: the length of every note since
the last bar line, against the meter given in the header, through tuplets and chords. A model
trained for ten minutes counts badly (about 7 of 10 sampled bars had the right length). The
position in the bar is not something to learn, though: it follows from the tokens already
written. So the model is told it, as DeepBach (Hadjeres et al. 2017) is told the position within
the beat. After each token it reads:
- the room left in its bar (in 1/48 of a whole note, so triplet eighths and sixteenths count
  exactly; its own value once the bar overflows);
- how many bars its section has had (which is what an 8-bar part needs to know);
- what the last bar line left owing: how much shorter than the meter the bar it closed was (a
  part that ends short owes the next part's pickup);
- the length of the tune's opening pickup (which the bar before a repeat completes).
Each is an embedding added to the token's.

One tracker computes the clock for training and for sampling: `Clock`, the timing state of
`MeterGrammar` (music.meter) plus a bar count, run over the training tunes side by side once
when the run is prepared, and step by step while a tune is sampled. The model's input ids carry
both: id = token + V * clock, the clock being the four buckets in mixed radix (FEATURES); bucket
0 of each means "no clock" (the END that starts a tune, and the header) or "none yet".

Shapes: N tunes, V tokens, E embedding width; every state is an (N,) tensor.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models.language_model import LanguageModel
from .grammar import K, AbcGrammar
from .meter import EPS, MeterGrammar

ROOM_STEP = 1 / 48  # whole notes
ROOM_MAX = 96  # room is counted up to two 4/4 bars' worth, then clamped
ROOMS = ROOM_MAX + 3  # 0: no clock; 1 + room, for room 0..ROOM_MAX; the last: the bar is overfull
BAR_MAX = 16  # bars counted within a section, then clamped
BAR_SLOTS = BAR_MAX + 2  # 0: no clock; 1 + bars so far, for 0..BAR_MAX
SHORT_MAX = 48  # owed and pickup lengths are counted up to a 4/4 bar, in ROOM_STEPs
OWED_SLOTS = SHORT_MAX + 1  # 0: nothing owed (or no clock); the shortfall of the last bar closed
PICKUP_SLOTS = SHORT_MAX + 2  # 0: not known yet; 1 + the opening pickup's length (0: none)
FEATURES = (("rooms", ROOMS), ("bars", BAR_SLOTS), ("owed", OWED_SLOTS), ("pickups", PICKUP_SLOTS))
BATCH = 1024  # tunes tracked side by side when the training inputs are made


def encode(*buckets: torch.Tensor) -> torch.Tensor:
    """The four features' buckets -> one clock id (mixed radix, FEATURES' order)."""
    clock = torch.zeros_like(buckets[0])
    for bucket, (_, size) in zip(buckets, FEATURES):
        clock = clock * size + bucket
    return clock


def decode(clock: torch.Tensor) -> list[torch.Tensor]:
    """One clock id -> the four features' buckets (inverse of `encode`)."""
    buckets = []
    for _, size in reversed(FEATURES):
        buckets.append(clock % size)
        clock = torch.div(clock, size, rounding_mode="floor")
    return buckets[::-1]


def _steps(length: torch.Tensor) -> torch.Tensor:
    return torch.round(length / ROOM_STEP).long()


class Clock(MeterGrammar):
    """MeterGrammar's count of time, exposed as clock ids; masks as AbcGrammar unless keep_meter."""

    def __init__(self, symbols: tuple[str, ...], end: str, num_rows: int, device, header_slots: int = 3,
                 keep_meter: bool = False) -> None:
        super().__init__(symbols, end, num_rows, device, header_slots)
        self.keep_meter = keep_meter
        self.bars = torch.zeros(num_rows, dtype=torch.long, device=device)
        self.owed = torch.zeros(num_rows, dtype=torch.float64, device=device)
        self.section_start = self.boundary | self.opens  # (V,) bar lines after which a section begins

    def allowed(self, step: int) -> torch.Tensor | None:
        return super().allowed(step) if self.keep_meter else AbcGrammar.allowed(self, step)

    def observe(self, tokens: torch.Tensor) -> None:
        before = self.elapsed  # a bar line adds no time: this is the length of the bar it closes
        body = self.steps >= self.header_slots
        super().observe(tokens)
        bar = (self.kind[tokens] == K["bar"]) & body
        self.bars = torch.where(bar & self.section_start[tokens], 0, self.bars + bar.long())
        closes = bar & (before > EPS)  # `:| |:` closes an empty bar between: what is owed stays owed
        short = before < self.meter - EPS
        self.owed = torch.where(closes, torch.where(short, self.meter - before, 0.0), self.owed)

    def ids(self) -> torch.Tensor:
        """(N,) the clock after the tokens observed so far (0 until the header is complete)."""
        room = _steps(self.meter - self.elapsed)
        rooms = torch.where(room < 0, ROOMS - 1, 1 + room.clamp(max=ROOM_MAX))
        bars = 1 + self.bars.clamp(max=BAR_MAX)
        owed = _steps(self.owed).clamp(0, SHORT_MAX)
        pickups = torch.where(self.pickup < 0, 0, 1 + _steps(self.pickup).clamp(0, SHORT_MAX))
        clock = encode(rooms, bars, owed, pickups)
        return clock if self.steps >= self.header_slots else torch.zeros_like(clock)


def clocked_inputs(pieces: list[np.ndarray], symbols: tuple[str, ...], end: str) -> list[np.ndarray]:
    """The model's input ids (token + V * clock) for each tune's token ids, computed by the same
    Clock that sampling runs (tunes side by side, longest batches padded with END)."""
    V, end_id = len(symbols), symbols.index(end)
    out: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(pieces)
    order = np.argsort([len(p) for p in pieces], kind="stable")
    for i in range(0, len(order), BATCH):
        rows = order[i:i + BATCH]
        width = max(len(pieces[k]) for k in rows)
        grid = np.full((len(rows), width), end_id, dtype=np.int64)
        for r, k in enumerate(rows):
            grid[r, :len(pieces[k])] = pieces[k]
        tokens = torch.from_numpy(grid)
        clock = Clock(symbols, end, len(rows), "cpu")
        clocks = torch.empty_like(tokens)
        for t in range(width):
            clock.observe(tokens[:, t])
            clocks[:, t] = clock.ids()
        inputs = (tokens + V * clocks).numpy()
        for r, k in enumerate(rows):
            out[k] = inputs[r, :len(pieces[k])]
    return out


class ClockedEmbedding(nn.Module):
    """Input ids (token + V * clock) -> the token's embedding plus one per clock feature."""

    def __init__(self, vocab_size: int, width: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.tokens = nn.Embedding(vocab_size, width)
        nn.init.normal_(self.tokens.weight, std=1.0)
        self.features = nn.ModuleDict({name: nn.Embedding(size, width) for name, size in FEATURES})
        for table in self.features.values():
            nn.init.normal_(table.weight, std=0.5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        clock = torch.div(ids, self.vocab_size, rounding_mode="floor")
        x = self.tokens(ids - clock * self.vocab_size)
        for table, bucket in zip(self.features.values(), decode(clock)):
            x = x + table(bucket)
        return x


def clocked_model(config) -> LanguageModel:
    """The one LanguageModel, reading clocked input ids (config.embedding_size > 0)."""
    model = LanguageModel(config)
    model.embed = ClockedEmbedding(config.vocab_size, config.embedding_size)
    if not model.recurrent.trainable:  # a fixed reservoir reads a fixed embedding
        model.embed.requires_grad_(False)
    return model
