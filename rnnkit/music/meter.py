"""Sampling that also keeps the meter (`rnnkit music sample --keep-meter`): on top of the grammar
of ABC (music.grammar), a note, rest or chord that would overfill its bar is masked, and a bar
line may come only when the bar is full; the first bar may be a pickup, and a short bar may close
at a repeat or section end when it completes the pickup. The model still chooses every note; the
mask only removes the choices that break the count.

This forces what the bar check measures, so tunes sampled this way say nothing about how well the
model itself counts: docs/music.md reports both, side by side.

Shapes: N tunes, V tokens; every state is an (N,) tensor; times are in whole notes.
"""

from __future__ import annotations

from fractions import Fraction

import torch

from .abc import length_of, parse_meter
from .grammar import K, AbcGrammar
from .timing import tuplet_ratio

EPS = 1e-6


class MeterGrammar(AbcGrammar):
    def __init__(self, symbols: tuple[str, ...], end: str, num_rows: int, device, header_slots: int = 3) -> None:
        super().__init__(symbols, end, num_rows, device, header_slots)
        as_tensor = lambda values: torch.tensor(values, dtype=torch.float64, device=device)  # noqa: E731
        self.meter_of = as_tensor([float(parse_meter(s[2:])) if s.startswith("M:") else 0.0 for s in symbols])
        self.unit_of = as_tensor([float(Fraction(s[2:])) if s.startswith("L:") else 0.0 for s in symbols])
        self.multiplier = as_tensor([float(length_of(s[1:])) if s.startswith("]") else 0.0 for s in symbols])
        self.ratio_of = as_tensor([float(tuplet_ratio(s, 1)[0]) if s.startswith("(") and s[1:2].isdigit() else 1.0
                                   for s in symbols])
        self.written = self.length.double()  # (V,) a note's or rest's written length, in unit lengths
        full = lambda value: torch.full((num_rows,), value, dtype=torch.float64, device=device)  # noqa: E731
        self.meter, self.unit, self.elapsed = full(1.0), full(1 / 8), full(0.0)
        self.pickup = full(-1.0)  # the first bar's length once it is closed (-1: not yet)
        self.chord_first, self.ratio = full(0.0), full(1.0)
        self.boundary = self.closes | torch.tensor([s in ("||", "|]") for s in symbols], device=device)

    def _time(self, written: torch.Tensor) -> torch.Tensor:
        """(N, V) or (N,) whole notes that written lengths take in each tune, tuplets counted."""
        scale = self.unit * torch.where(self.tuplet_left > 0, self.ratio, torch.ones_like(self.ratio))
        return written * (scale.unsqueeze(1) if written.dim() == 2 else scale)

    def allowed(self, step: int) -> torch.Tensor | None:
        mask = super().allowed(step)
        if mask is None:
            return None
        N, V = mask.shape
        room = (self.meter - self.elapsed).unsqueeze(1) + EPS  # (N, 1)
        sounding = self._is("note", "rest")
        outside = ~(self.in_chord | self.in_grace).unsqueeze(1)
        fits = self._time(self.written.expand(N, V)) <= room  # (N, V) as single notes
        mask &= ~(sounding & outside) | fits
        first_in_chord = (self.in_chord & (self.inside == 0)).unsqueeze(1)
        mask &= ~(self._is("note") & first_in_chord) | fits
        chord_time = self._time(self.chord_first.unsqueeze(1) * self.multiplier.expand(N, V))
        mask &= ~self._is("chord_close") | (chord_time <= room)
        broken_fits = self._time(self.last_length.double()) <= room.squeeze(1)
        mask &= ~self._is("broken") | broken_fits.unsqueeze(1)
        # a full bar takes nothing that must be followed by a note: it has room for none
        mask &= ~self._is("tuplet", "chord_open", "grace_open", "decoration", "slur_open") | (room > 2 * EPS)
        full = (self.elapsed - self.meter).abs() < EPS
        pickup = (self.pickup < 0) & (self.elapsed > EPS)
        completes = (self.elapsed > EPS) & ((self.elapsed + self.pickup - self.meter).abs() < EPS)
        unfillable = ~(sounding & fits).any(dim=1)  # what is left is shorter than any note: close it short
        bar_ok = (full | pickup | self.bar_empty | unfillable).unsqueeze(1) | (self.boundary & completes.unsqueeze(1))
        mask &= ~self._is("bar") | bar_ok
        stuck = ~mask.any(dim=1)
        if bool(stuck.any()):  # a bar that no note of the vocabulary can fill: close it short
            mask[stuck] = self._is("bar", "end")
        return mask

    def observe(self, tokens: torch.Tensor) -> None:
        if self.steps < self.header_slots:
            self.meter = torch.where(self.meter_of[tokens] > 0, self.meter_of[tokens], self.meter)
            self.unit = torch.where(self.unit_of[tokens] > 0, self.unit_of[tokens], self.unit)
        else:
            kind = self.kind[tokens]
            outside = ~(self.in_chord | self.in_grace)
            sounding = ((kind == K["note"]) | (kind == K["rest"])) & outside
            added = torch.where(sounding, self._time(self.written[tokens]), 0.0)
            chord_end = kind == K["chord_close"]
            added = torch.where(chord_end, self._time(self.chord_first * self.multiplier[tokens]), added)
            self.elapsed = self.elapsed + added
            first = (kind == K["note"]) & self.in_chord & (self.inside == 0)
            self.chord_first = torch.where(first, self.written[tokens], self.chord_first)
            self.ratio = torch.where(kind == K["tuplet"], self.ratio_of[tokens], self.ratio)
            bar = kind == K["bar"]
            closing_first = bar & (self.pickup < 0) & (self.elapsed > EPS)
            self.pickup = torch.where(closing_first, torch.where(self.elapsed < self.meter - EPS, self.elapsed,
                                                                 torch.zeros_like(self.elapsed)), self.pickup)
            self.elapsed = torch.where(bar, torch.zeros_like(self.elapsed), self.elapsed)
        super().observe(tokens)
