"""Is a tune well made? Checks a musician would make, computed from its tokens.

- bars: every complete bar lasts what the meter says. The first bar may be a pickup and the last
  may be short; a short bar at a repeat, section end or ending may pair with its short neighbour
  across that line, or with the pickup (the bar before `:|` completes the opening pickup).
- repeats: every `|:` is closed by a `:|` before the next `|:` and before the end (a `:|` with no
  `|:` repeats from the start or the last section, as ABC allows), and every first ending is
  followed by a second.
- shape: the common dance-tune form of two repeated 8-bar parts (AABB).
- novelty: the longest run of consecutive notes, and of whole bars, that also occurs in one of
  the training tunes (`longest_shared_runs`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .abc import SECTION_ENDS, is_bar, is_note
from .timing import timeline

@dataclass
class Bar:
    length: Fraction  # in whole notes
    meter: Fraction  # the bar length the meter asks for
    closer: str | None  # the bar line that ends it (None: the end of the tune)
    ending: str | None  # "1", "2", ... when the bar starts an ending
    notes: tuple[str, ...]  # its note tokens, for the novelty check


def bars(tokens: list[str]) -> list[Bar]:
    """The tune's bars with their lengths; `tokens` start with the M:, K:, L: header tokens."""
    result: list[Bar] = []
    notes, ending, grace = [], None, False
    elapsed, meter = Fraction(0), Fraction(1)
    for token, elapsed, meter, _ in timeline(tokens):
        if token in ("{", "}"):
            grace = token == "{"
        elif re.fullmatch(r"\[[0-9].*", token):
            ending = token[1:]
        elif is_bar(token):
            result.append(Bar(elapsed, meter, token, ending, tuple(notes)))
            notes, ending, elapsed = [], None, Fraction(0)
        elif is_note(token) and not grace:
            notes.append(token)
    if elapsed or notes:
        result.append(Bar(elapsed, meter, None, ending, tuple(notes)))
    return [b for b in result if b.length or b.notes or b.ending]


def _boundary(bar: Bar) -> bool:
    return bar.closer is not None and (bar.closer in SECTION_ENDS or ":" in bar.closer)


def bars_ok(tune_bars: list[Bar]) -> bool:
    """Every complete bar has the meter's length (see the module's rule for short bars)."""
    if not tune_bars:
        return False
    pickup = tune_bars[0].length if tune_bars[0].length < tune_bars[0].meter else Fraction(0)
    for i, bar in enumerate(tune_bars):
        if bar.length == bar.meter or (bar.length < bar.meter and i in (0, len(tune_bars) - 1)):
            continue
        if bar.length > bar.meter:
            return False
        after = tune_bars[i + 1] if i + 1 < len(tune_bars) else None
        before = tune_bars[i - 1] if i else None
        pairs = []
        if after is not None and (_boundary(bar) or after.ending):
            pairs.append(after.length)
        if before is not None and (_boundary(before) or bar.ending):
            pairs.append(before.length)
        if _boundary(bar) or (after is not None and after.ending):
            pairs.append(pickup)
        if not any(bar.length + other == bar.meter for other in pairs):
            return False
    return True


def repeats_ok(tokens: list[str]) -> bool:
    """Repeat signs and endings are balanced (see the module's rule)."""
    opened = first_ending = False
    for token in tokens[3:]:
        if is_bar(token):
            if token.startswith(":"):
                opened = False
            if token.endswith(":"):
                if opened:
                    return False
                opened = True
        elif re.fullmatch(r"\[[0-9].*", token):
            if token[1] == "1":
                if first_ending:
                    return False
                first_ending = True
            else:
                first_ending = False
    return not opened and not first_ending


def sections(tune_bars: list[Bar]) -> list[tuple[Fraction, bool]]:
    """(length in bars, repeated) of each section: sections end at repeats and double bars; the
    bars of second and later endings are alternatives and are not counted."""
    result, length, repeated, alternative = [], Fraction(0), False, False
    for i, bar in enumerate(tune_bars):
        if bar.ending:
            alternative = not bar.ending.startswith("1")
            repeated = True
        if not alternative:
            length += bar.length / bar.meter
        closes = _boundary(bar) or bar.closer is None
        following = tune_bars[i + 1] if i + 1 < len(tune_bars) else None
        if closes and not (following is not None and following.ending and not following.ending.startswith("1")):
            repeated = repeated or (bar.closer or "").startswith(":")
            if length:
                result.append((length, repeated))
            length, repeated, alternative = Fraction(0), False, False
    return result


def is_aabb(tune_bars: list[Bar]) -> bool:
    parts = sections(tune_bars)
    return len(parts) == 2 and all(repeated and round(length) == 8 for length, repeated in parts)


def mode_of(tokens: list[str]) -> str:
    mode = re.sub(r"^[A-G][#b]?", "", tokens[1][2:])
    return {"": "major", "m": "minor"}.get(mode, mode)


def total_variation(a: Counter, b: Counter) -> float:
    """Total-variation distance between two empirical distributions."""
    na, nb = sum(a.values()) or 1, sum(b.values()) or 1
    return 0.5 * sum(abs(a[k] / na - b[k] / nb) for k in set(a) | set(b))


# ---------------------------------------------------------------- novelty
_BASE = np.uint64(1_000_003)


def _grams(sequences: list[np.ndarray], n: int) -> np.ndarray:
    """Sorted 64-bit rolling hashes of every n-gram inside each sequence (none across two)."""
    hashes = []
    for seq in sequences:
        if len(seq) < n:
            continue
        h = np.zeros(len(seq) - n + 1, dtype=np.uint64)
        for j in range(n):
            h = h * _BASE + seq[j:len(seq) - n + 1 + j]
        hashes.append(h)
    return np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.uint64)


def longest_shared_runs(queries: list[list], corpus: list[list]) -> list[int]:
    """For each query sequence, the length of its longest run of consecutive items that also occurs
    in some corpus sequence (items are any hashable values)."""
    ids: dict = {}
    encode = lambda seq: np.array([ids.setdefault(x, len(ids) + 1) for x in seq], dtype=np.uint64)  # noqa: E731
    corpus_ids = [encode(s) for s in corpus]
    query_ids = [encode(s) for s in queries]
    tables: dict[int, np.ndarray] = {}

    def shares(q: np.ndarray, n: int) -> bool:
        if n not in tables:
            tables[n] = _grams(corpus_ids, n)
        table, mine = tables[n], _grams([q], n)
        at = np.searchsorted(table, mine).clip(max=max(len(table) - 1, 0))
        return bool(len(table) and (table[at] == mine).any())

    result = []
    for q in query_ids:
        low, high = 0, len(q)  # the answer lies in [low, high]; a run of length low is shared
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if shares(q, mid) else (low, mid - 1)
        result.append(low)
    return result
