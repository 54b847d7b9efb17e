"""The grammar of ABC, kept while a tune is sampled: at each step the tokens that would make the
text unreadable are masked out, and the model chooses among the rest in proportion to its own
probabilities (constrained decoding; the model's raw choices are `--free`).

What is kept is syntax that every ABC reader requires, not musical judgement:
- chords `[ ... ]` hold 1-4 notes only and close before anything else; grace groups `{ ... }`
  likewise, with up to 8 notes; neither nests;
- a tie `-` joins a note to the next note of the same pitch (bar lines may stand between); broken rhythm `>`/`<` stands between two
  notes of equal written length (abc2midi refuses others); a tuplet's notes come before any bar
  line;
- a beat mark (a space in the ABC) stands between two notes of one bar; a slur closes only when
  one is open; a key change stands at the start of a bar;
- a repeat `|:` is not opened twice, a second ending follows a first, and the tune ends only after
  a bar line, with notes before it and its repeats and endings closed.
Bar lengths are not forced: whether bars keep the meter is left to the model and measured.

Shapes: N tunes sampled together, V tokens in the vocabulary; every state is an (N,) tensor.
"""

from __future__ import annotations

import re

import torch

from .abc import is_bar, is_note, note_length
from .timing import BEAT

DECORATIONS = set("~.HLMOPSTuvJRk")

KINDS = ("other", "note", "rest", "bar", "chord_open", "chord_close", "grace_open", "grace_close", "tuplet",
         "tie", "broken", "ending_first", "ending_other", "header", "end", "banned", "slur_open", "slur_close",
         "decoration", "beat", "field")
K = {name: i for i, name in enumerate(KINDS)}
MAX_CHORD, MAX_GRACE = 4, 8  # notes in a chord (fiddle tunes: double stops) and in a grace group
BARS = {"|", "||", "|]", "|:", ":|", "::", ":|:", ":||:", "[|"}  # the bar lines every reader knows


def _kind(token: str, end: str) -> str:
    if token == end:
        return "end"
    if token == BEAT:
        return "beat"
    if token[:2] in ("M:", "K:", "L:"):
        return "header"
    if token.startswith("[K:"):
        return "field"
    if token.startswith(("[M:", "[L:", "Z")) or (is_bar(token) and token not in BARS):
        return "banned"  # meter and unit changes inside a tune, multi-bar rests, rare bar lines: not sampled
    if is_note(token):
        return "note"
    if token.startswith("z"):
        return "rest"
    if re.fullmatch(r"\[[0-9].*", token):
        return "ending_first" if token[1] == "1" else "ending_other"
    if is_bar(token):
        return "bar"
    if token.startswith("]"):
        return "chord_close"
    if token.startswith("(") and token[1:2].isdigit():
        return "tuplet"
    if token[0] in "<>":
        return "broken"
    if token[0] == "!" or token in DECORATIONS:
        return "decoration"
    return {"[": "chord_open", "{": "grace_open", "}": "grace_close", "-": "tie", "(": "slur_open",
            ")": "slur_close"}.get(token, "other")


class AbcGrammar:
    """Masks for `sampling.generate_tokens(allowed=...)`; `observe` is given each step's tokens."""

    def __init__(self, symbols: tuple[str, ...], end: str, num_rows: int, device, header_slots: int = 3) -> None:
        kinds = [_kind(s, end) for s in symbols]
        self.kind = torch.tensor([K[k] for k in kinds], device=device)  # (V,)
        self.length = torch.tensor([float(note_length(s) or 0) if k in ("note", "rest") else 0.0
                                    for s, k in zip(symbols, kinds)], device=device)  # (V,)
        self.opens = torch.tensor([k == "bar" and s.endswith(":") for s, k in zip(symbols, kinds)], device=device)
        self.closes = torch.tensor([k == "bar" and s.startswith(":") for s, k in zip(symbols, kinds)], device=device)
        pitches = {re.sub(r"[0-9/]+$", "", s) for s, k in zip(symbols, kinds) if k == "note"}
        pitch_id = {p: i for i, p in enumerate(sorted(pitches))}
        self.pitch = torch.tensor([pitch_id[re.sub(r"[0-9/]+$", "", s)] if k == "note" else -1
                                   for s, k in zip(symbols, kinds)], device=device)  # (V,) a note's pitch
        self.tuplet_size = torch.tensor([int(s[1]) if k == "tuplet" else 0 for s, k in zip(symbols, kinds)],
                                        device=device)
        self.header_slots, self.steps, self._masks = header_slots, 0, {}
        n, zeros = num_rows, lambda dtype: torch.zeros(num_rows, dtype=dtype, device=device)  # noqa: E731
        self.in_chord, self.in_grace = zeros(torch.bool), zeros(torch.bool)
        self.inside = zeros(torch.long)  # notes so far in the open chord or grace group
        self.tuplet_left = zeros(torch.long)
        self.previous = torch.full((n,), K["bar"], dtype=torch.long, device=device)  # kind of the last token
        self.last_length = zeros(torch.float)  # written length of the last note
        self.last_pitch = torch.full((n,), -1, dtype=torch.long, device=device)
        self.tied_pitch = torch.full((n,), -1, dtype=torch.long, device=device)  # the pitch a tie waits for
        self.broken_length = torch.full((n,), -1.0, device=device)  # the length the next note must have
        self.just_broken = zeros(torch.bool)  # the last note closed a broken-rhythm pair
        self.bar_empty = torch.ones(n, dtype=torch.bool, device=device)
        self.repeat_open, self.first_ending = zeros(torch.bool), zeros(torch.bool)
        self.has_notes = zeros(torch.bool)
        self.slurs = zeros(torch.long)  # slurs open
        self.decorations = zeros(torch.long)  # decorations in a row just before

    def _is(self, *names: str) -> torch.Tensor:
        """(V,) mask of the tokens of these kinds (made once per set of kinds)."""
        if names not in self._masks:
            self._masks[names] = torch.isin(self.kind, torch.tensor([K[n] for n in names], device=self.kind.device))
        return self._masks[names]

    def allowed(self, step: int) -> torch.Tensor | None:
        """(N, V) mask of the tokens each tune may take next (None in the header slots)."""
        if step < self.header_slots:
            return None
        N, V = self.in_chord.shape[0], self.kind.shape[0]
        free = ~self._is("header", "banned", "chord_close", "grace_close")  # outside chords and grace groups
        mask = free.expand(N, V).clone()
        row = lambda state: state.unsqueeze(1)  # noqa: E731  (N,) -> (N, 1), to combine with (V,) masks
        notes = self._is("note")
        in_group = self.in_chord | self.in_grace
        room = torch.where(self.in_chord, self.inside < MAX_CHORD, self.inside < MAX_GRACE)
        group = (notes & row(room)) | (self._is("chord_close") & row(self.in_chord & (self.inside > 0))) \
            | (self._is("grace_close") & row(self.in_grace & (self.inside > 0)))
        mask = torch.where(row(in_group), group.expand(N, V), mask)
        bars, endings = self._is("bar"), self._is("ending_first", "ending_other")
        # a tie waits for the next note of its pitch; only bar lines may come between
        tied = self.tied_pitch >= 0
        mask &= ~row(tied) | (notes & (self.pitch == row(self.tied_pitch))) | self._is("bar", "beat")
        mask &= ~self._is("tie") | row((self.previous == K["note"]) & ~in_group)
        # broken rhythm: only right after a note, and then a note of the same written length
        mask &= ~self._is("broken") | row((self.previous == K["note"]) & (self.tuplet_left == 0) & ~self.just_broken)
        waiting = self.broken_length >= 0
        mask &= ~row(waiting) | (notes & (self.length == row(self.broken_length)))
        # no bar line, ending or end inside a tuplet
        mask &= ~row(self.tuplet_left > 0) | ~(bars | endings | self._is("end", "tuplet"))
        # a beat mark stands between notes, never twice, never at a bar line
        mask &= ~self._is("beat") | row(~self.bar_empty & (self.previous != K["beat"]) & ~in_group)
        mask &= ~(bars | endings | self._is("end")) | row(self.previous != K["beat"])
        # a decoration stands before a note, a chord or a grace group (or one more decoration); grace notes
        # before a note or a chord
        mask &= ~row(self.previous == K["decoration"]) | notes | self._is("chord_open", "grace_open") \
            | (self._is("decoration") & row(self.decorations < 2))
        mask &= ~row(self.previous == K["grace_close"]) | notes | self._is("chord_open")
        # a slur closes only once opened; a key change comes at the start of a bar
        mask &= ~self._is("slur_close") | row(self.slurs > 0)
        mask &= ~self._is("field") | row(self.bar_empty & (self.previous == K["bar"]))
        # repeats and endings
        mask &= ~(self.opens & ~self.closes) | ~row(self.repeat_open | self.first_ending)
        mask &= ~self._is("ending_first") | row(~self.first_ending & self.bar_empty)
        mask &= ~self._is("ending_other") | row(self.first_ending & self.bar_empty)
        mask &= ~bars | ~row(self.bar_empty & (self.previous == K["bar"])) | self.opens  # no empty bars
        can_end = self.bar_empty & ~self.repeat_open & ~self.first_ending & ~in_group & (self.tuplet_left == 0) \
            & (self.previous == K["bar"]) & ~tied & self.has_notes
        mask[:, self._is("end")] = row(can_end)
        stuck = ~mask.any(dim=1)
        if bool(stuck.any()):  # no rule should leave a tune without a way on; if one does, let it end
            mask[stuck] = self._is("end")
        return mask

    def observe(self, tokens: torch.Tensor) -> None:
        """Advance every tune's state by the token it just took (N,)."""
        self.steps += 1
        if self.steps <= self.header_slots:
            return
        kind, length = self.kind[tokens], self.length[tokens]
        note = kind == K["note"]
        opened_chord, opened_grace = kind == K["chord_open"], kind == K["grace_open"]
        closed = (kind == K["chord_close"]) | (kind == K["grace_close"])
        self.inside = torch.where(opened_chord | opened_grace | closed, 0, self.inside + (note & (
            self.in_chord | self.in_grace)).long())
        self.in_chord = (self.in_chord | opened_chord) & ~closed
        self.in_grace = (self.in_grace | opened_grace) & ~closed
        counted = (note | (kind == K["rest"])) & ~self.in_chord & ~self.in_grace | (kind == K["chord_close"])
        self.tuplet_left = torch.where(kind == K["tuplet"], self.tuplet_size[tokens],
                                       (self.tuplet_left - counted.long()).clamp(min=0))
        self.just_broken = torch.where(note, self.broken_length >= 0, self.just_broken & ~(kind == K["bar"]))
        self.broken_length = torch.where(kind == K["broken"], self.last_length,
                                         torch.where(note, torch.full_like(length, -1.0), self.broken_length))
        self.last_length = torch.where(note, length, self.last_length)
        self.has_notes |= note
        self.decorations = torch.where(kind == K["decoration"], self.decorations + 1, 0)
        self.slurs = (self.slurs + (kind == K["slur_open"]).long() - (kind == K["slur_close"]).long()).clamp(min=0)
        in_group = self.in_chord | self.in_grace
        self.tied_pitch = torch.where(kind == K["tie"], self.last_pitch,
                                      torch.where(note & ~in_group, -1, self.tied_pitch))
        self.last_pitch = torch.where(note & ~in_group, self.pitch[tokens], self.last_pitch)
        bar = kind == K["bar"]
        self.repeat_open = torch.where(bar & self.closes[tokens], False, self.repeat_open)
        self.repeat_open = self.repeat_open | (bar & self.opens[tokens])
        self.first_ending = (self.first_ending | (kind == K["ending_first"])) & ~(kind == K["ending_other"])
        self.bar_empty = torch.where(bar, True, self.bar_empty & ~(counted | (kind == K["chord_open"])))
        # decorations and closing slurs leave "the last token" as it was: (dB)>c is a broken rhythm
        self.previous = torch.where((kind == K["other"]) | (kind == K["slur_close"]) | (kind == K["field"]),
                                    self.previous, kind)
