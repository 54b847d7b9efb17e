"""The quality report of a set of tunes (`rnnkit music check`, bench/music.py): the share that
two independent ABC readers accept, that keep the meter in every bar, that balance their repeats,
that have the AABB dance form; meter and mode distributions; and, against a training set, how much
is copied.

Shares are over all tunes given, so a tune the tokenizer cannot read counts against every check.
"""

from __future__ import annotations

from collections import Counter
from statistics import median
from typing import Callable, Iterable

from tqdm import tqdm

from .abc import detokenize
from .check import bars, bars_ok, is_aabb, longest_shared_runs, mode_of, repeats_ok, total_variation
from .export import Renderer, abc2midi_path, abc2midi_reads

COPY_BARS = 8  # a tune copies a training tune when this many whole bars in a row are the same


def _share(flags: Iterable[bool], total: int) -> float:
    return round(sum(flags) / max(total, 1), 4)


def report(tunes: list[list[str]], unreadable: int = 0, training: list[list[str]] | None = None,
           music21: bool = True, abc2midi: bool = True, progress: bool = False,
           say: Callable[[str], None] | None = None) -> dict:
    """The report of `tunes` (token lists; `unreadable` more that did not tokenize) as a JSON-ready
    dict. `training`, if given, adds the novelty figures and the distance of the meter and mode
    distributions from the training tunes'."""
    total = len(tunes) + unreadable
    tune_bars = [bars(t) for t in tunes]
    out: dict = {"tunes": total, "readable": _share([True] * len(tunes), total),
                 "bars_keep_meter": _share(map(bars_ok, tune_bars), total),
                 "repeats_balanced": _share(map(repeats_ok, tunes), total),
                 "aabb": _share(map(is_aabb, tune_bars), total),
                 "median_bars": median(len(b) for b in tune_bars) if tunes else 0}
    texts = [detokenize(t) for t in tunes]
    show = progress and len(tunes) > 20
    if music21:
        with Renderer() as renderer:
            out["music21"] = _share(map(renderer.reads, tqdm(texts, desc="music21", disable=not show, leave=False)),
                                    total)
    if abc2midi:
        if abc2midi_path() is None:
            out["abc2midi"] = None
            if say:
                say("abc2midi is not installed (Debian: apt-get install abcmidi); its check is skipped")
        else:
            out["abc2midi"] = _share(map(abc2midi_reads, tqdm(texts, desc="abc2midi", disable=not show, leave=False)),
                                     total)
    meters, modes = Counter(t[0][2:] for t in tunes), Counter(mode_of(t) for t in tunes)
    out["meters"] = dict(meters.most_common())
    out["modes"] = dict(modes.most_common())
    if training is not None:
        out["meter_tv_distance"] = round(total_variation(meters, Counter(t[0][2:] for t in training)), 4)
        out["mode_tv_distance"] = round(total_variation(modes, Counter(mode_of(t) for t in training)), 4)
        out.update(novelty(tunes, training))
    return out


def novelty(tunes: list[list[str]], training: list[list[str]]) -> dict:
    """The longest run of notes, and of whole bars, each tune shares with any training tune."""
    notes = longest_shared_runs([[n for b in bars(t) for n in b.notes] for t in tunes],
                                [[n for b in bars(t) for n in b.notes] for t in training])
    whole_bars = longest_shared_runs([[b.notes for b in bars(t)] for t in tunes],
                                     [[b.notes for b in bars(t)] for t in training])
    return {"median_longest_copied_notes": median(notes) if notes else 0,
            "median_longest_copied_bars": median(whole_bars) if whole_bars else 0,
            f"share_copying_{COPY_BARS}_bars": _share((n >= COPY_BARS for n in whole_bars), len(tunes))}
