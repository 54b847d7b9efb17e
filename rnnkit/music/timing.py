"""Where each token of a tune falls in time, and the beat marks derived from it.

`timeline` walks a tune's body and gives, after each token, the time elapsed in the current bar
(in whole notes): notes and rests take their written length times the unit length, a chord the
length of its first note times the chord's own, a tuplet's notes q/p of theirs; grace notes take
none. Meter and unit changes inside the tune are followed.

`add_beats` inserts the token BEAT wherever the music reaches a beat inside a bar (a dotted
quarter in 6/8, 9/8 and 12/8; a half note in 2/2 and 4/4; a quarter in 2/4 and 3/4). It is what
ABC writers express with the spaces that break beams (`dAA FAd|`), and for the model it turns
counting a whole bar into counting one beat at a time. Written back as ABC a BEAT is a space.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Iterator

from .abc import is_bar, length_of, note_length, parse_meter

BEAT = " "
ATTACHED = {"-", ")"}  # tokens that belong to the note before them
COMPOUND = {Fraction(6, 8), Fraction(9, 8), Fraction(12, 8)}
BEATS = {Fraction(1): Fraction(1, 2), Fraction(2, 4): Fraction(1, 4), Fraction(3, 4): Fraction(1, 4)}


def beat_of(meter: Fraction) -> Fraction:
    if meter in COMPOUND or meter == Fraction(3, 8):
        return Fraction(3, 8)
    return BEATS.get(meter, Fraction(1, 4))


def tuplet_ratio(token: str, meter: Fraction) -> tuple[Fraction, int]:
    """(p:q:r -> (q/p, r): the next r notes last q/p of their written length (ABC's defaults for q)."""
    parts = token[1:].split(":")
    p = int(parts[0])
    q = int(parts[1]) if len(parts) > 1 and parts[1] else (3 if p in (2, 4, 8) else 2 if p in (3, 6) else
                                                             3 if meter in COMPOUND else 2)
    r = int(parts[2]) if len(parts) > 2 and parts[2] else p
    return Fraction(q, p), r


def timeline(tokens: list[str]) -> Iterator[tuple[str, Fraction, Fraction, bool]]:
    """(token, time elapsed in its bar after it, the meter in force, whether it is a sounding note
    or rest outside a chord's inside) for each body token; at a bar line, the finished bar's
    length (the next token starts a new bar)."""
    header = {t[0]: t[2:] for t in tokens[:3]}
    meter, unit = parse_meter(header["M"]), Fraction(header["L"])
    elapsed, chord_first, in_chord, in_grace = Fraction(0), None, False, False
    ratio, left = Fraction(1), 0
    for token in tokens[3:]:
        sounding = False
        written = None
        if token.startswith("[M:"):
            meter = parse_meter(token[3:-1])
        elif token.startswith("[L:"):
            unit = Fraction(token[3:-1])
        elif token in ("{", "}"):
            in_grace = token == "{"
        elif token.startswith("(") and token[1:2].isdigit():
            ratio, left = tuplet_ratio(token, meter)
        elif token == "[":
            in_chord, chord_first = True, None
        elif token.startswith("]"):
            in_chord = False
            if chord_first is not None and not in_grace:
                written = chord_first * length_of(token[1:])
        elif token.startswith("Z"):
            elapsed += meter * int(token[1:] or 1)
        elif is_bar(token):
            yield token, elapsed, meter, False
            elapsed = Fraction(0)
            continue
        elif (length := note_length(token)) is not None and not in_grace:
            if in_chord:
                chord_first = length if chord_first is None else chord_first
            else:
                written, sounding = length, True
        if written is not None:
            elapsed += written * unit * (ratio if left else 1)
            left = max(left - 1, 0)
        yield token, elapsed, meter, sounding or (written is not None)


def add_beats(tokens: list[str]) -> list[str]:
    """The tune with a BEAT wherever the music reaches a beat inside a bar (any BEAT already there
    is placed again). A beat reached by a note waits for the tie, slur end or broken-rhythm sign
    that belongs to that note (`c2-c` and `A>B` stay whole); a bar line takes its place."""
    out, before, due = list(tokens[:3]), Fraction(0), False
    body = [t for t in tokens if t != BEAT]
    for token, elapsed, meter, _ in timeline(body):
        if is_bar(token) or re.fullmatch(r"\[[0-9].*", token):
            out.append(token)
            before, due = Fraction(0), False
            continue
        if due and token not in ATTACHED and token[0] not in "<>":
            out.append(BEAT)
            due = False
        out.append(token)
        if elapsed != before and 0 < elapsed < meter and elapsed % beat_of(meter) == 0:
            due = True
        before = elapsed
    return out
