"""Transposing a tune's tokens to another tonic (folk-rnn's second version trained on tunes all
transposed to C: one model then learns each mode once instead of once per key).

Transposition is diatonic: every note moves by the same number of letter names (d) and the
same number of semitones (s) as the tonic. Within the key signature the scale maps onto the new
key's scale, so a note without an accidental only changes its letter; a note with an explicit
accidental gets the accidental that gives its pitch plus s on the new letter. An accidental
holds to the end of the bar in ABC, and because one letter always maps to one letter, the notes
that inherit it inherit the right one.
"""

from __future__ import annotations

import re

from .abc import AbcError, is_note

LETTERS = "CDEFGAB"
SEMITONES = (0, 2, 4, 5, 7, 9, 11)  # C D E F G A B above C
ACCIDENTALS = {"__": -2, "_": -1, "=": 0, "^": 1, "^^": 2}
WRITTEN = {v: k for k, v in ACCIDENTALS.items()}
_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([,']*)(.*)")
_KEY = re.compile(r"(\[?K:)([A-G])([#b]?)(.*)")


def tonic_of(key_token: str) -> tuple[int, int]:
    """(letter index, pitch class) of a key token's tonic: 'K:F#m' -> (3, 6)."""
    m = _KEY.fullmatch(key_token)
    if not m:
        raise AbcError(f"{key_token!r} is not a key")
    letter = LETTERS.index(m.group(2))
    return letter, (SEMITONES[letter] + {"#": 1, "b": -1, "": 0}[m.group(3)]) % 12


def interval(source_key: str, target_tonic: str) -> tuple[int, int]:
    """(letters, semitones) from the tonic of `source_key` to `target_tonic` ('C', 'D', 'Bb', ...),
    the nearer way (at most 6 semitones; down on a tie)."""
    letter, pitch = tonic_of(source_key)
    to_letter, to_pitch = tonic_of("K:" + target_tonic)
    up = (to_pitch - pitch) % 12
    letters = (to_letter - letter) % 7
    return (letters - 7, up - 12) if up >= 6 else (letters, up)


def _move_note(token: str, letters: int, semitones: int) -> str:
    m = _NOTE.fullmatch(token)
    accidental, letter, marks, length = m.groups()
    octave = (5 if letter.islower() else 4) + marks.count("'") - marks.count(",")
    step = octave * 7 + LETTERS.index(letter.upper()) + letters
    new_octave, new_letter = divmod(step, 7)
    written = ""
    if accidental is not None:
        pitch = octave * 12 + SEMITONES[LETTERS.index(letter.upper())] + ACCIDENTALS[accidental] + semitones
        alteration = pitch - (new_octave * 12 + SEMITONES[new_letter])
        if alteration not in WRITTEN:
            raise AbcError(f"{token} transposed needs an accidental beyond a double sharp or flat")
        written = WRITTEN[alteration]
    name = LETTERS[new_letter]
    if new_octave >= 5:
        return written + name.lower() + "'" * (new_octave - 5) + length
    return written + name + "," * (4 - new_octave) + length


def _move_key(token: str, letters: int, semitones: int) -> str:
    m = _KEY.fullmatch(token)
    opening, mode_and_close = m.group(1), m.group(4)
    letter, pitch = tonic_of("K:" + m.group(2) + m.group(3))
    new_letter = (letter + letters) % 7
    alteration = ((pitch + semitones) - SEMITONES[new_letter] + 6) % 12 - 6
    if alteration not in (-1, 0, 1):
        raise AbcError(f"{token} transposed is not a key with at most one sharp or flat on its tonic")
    return opening + LETTERS[new_letter] + {-1: "b", 0: "", 1: "#"}[alteration] + mode_and_close


def transpose(tokens: list[str], tonic: str) -> list[str]:
    """The tune moved so that its (first) key has `tonic`; key changes inside it move alike."""
    letters, semitones = interval(tokens[1], tonic)
    if letters == 0 and semitones == 0:
        return list(tokens)
    out = []
    for token in tokens:
        if is_note(token):
            out.append(_move_note(token, letters, semitones))
        elif _KEY.fullmatch(token):
            out.append(_move_key(token, letters, semitones))
        else:
            out.append(token)
    return out
