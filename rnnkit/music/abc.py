"""ABC notation <-> tokens, one token per musical unit (the token scheme of folk-rnn, Sturm et al. 2016).

A tune becomes three header tokens and a body:

    M:6/8  K:Dmix  L:1/8  |:  D  F  A  d2 e  |  ...  :|

- Header: meter, key, unit note length, in that order (the key before the unit length so that a
  tune can be asked for by meter and key and the model still chooses the rest). Other header
  fields (title, composer, notes, tempo...) are dropped, as folk-rnn did. `M:C` is read as 4/4,
  `M:C|` as 2/2; a missing `L:` takes the standard's default (1/16 below 3/4, else 1/8); the key
  is written as tonic plus mode (`K:G`, `K:Am`, `K:Edor`, `K:Amix`).
- Body: a note is one token with its accidental, octave marks and length (`^c'3/2`, `B,/2`);
  rests likewise (`z2`); bar lines and repeats (`|`, `||`, `|:`, `:|`, `::`, `|]`), endings
  (`[1`, `[2`), broken rhythm (`>`, `<`), ties (`-`), slurs (`(`, `)`), tuplets (`(3`), grace
  groups (`{`, `}`), chords (`[`, then notes, then `]` with the chord's length), decorations (`~`,
  `.`, `T`, `!trill!`; `k` is an accent in Ryan's collection), and key, meter or unit changes inside the tune (`[K:G]`).
- Chord symbols and annotations in quotes are dropped (or kept with `chords=True`); comments,
  lyrics, spacing, line breaks and beaming are not music and are dropped.

Lengths are written canonically (`A/` is `A/2`, `A//` is `A/4`), so `tokenize(detokenize(t)) == t`
for every token list `tokenize` returns, and `detokenize` writes valid ABC that music21 and
abc2midi read as the same notes.
"""

from __future__ import annotations

import re
from fractions import Fraction

MODES = {"": "", "maj": "", "ion": "", "m": "m", "min": "m", "aeo": "m", "mix": "mix", "dor": "dor",
         "phr": "phr", "lyd": "lyd", "loc": "loc"}
HEADER_FIELDS = ("M", "K", "L")  # kept, in token order
BODY_FIELDS = "KLMPQTWwNRIVUsrm"  # field lines that may appear between lines of music
SECTION_ENDS = {"||", "|]", ":|", "::", ":||", ":|]", "[|"}


class AbcError(ValueError):
    """A tune this tokenizer cannot read (the message says why)."""


_LENGTH = r"\d*(?:/+\d*)?"
_BODY = re.compile(r"""
    (?P<space>[\s`$y\\]+)
  | (?P<quoted>"[^"\n]*")
  | (?P<field>\[[A-Za-z]:[^\]\n]*\])
  | (?P<deco>![^!\n]{1,40}!|\+[^+\n]{1,40}\+|[~.HLMOPSTuvJRk])
  | (?P<bar>:*\[?\|+\]?:*|:{2,})(?P<barend>[0-9]+(?:[-,][0-9]+)*)?
  | (?P<ending>\[[0-9]+(?:[-,][0-9]+)*)
  | (?P<tuplet>\([2-9](?::[0-9]?)?(?::[0-9]?)?)
  | (?P<note>(?:\^\^|\^|__|_|=)?[A-Ga-g][,']*)(?P<notelen>""" + _LENGTH + r""")
  | (?P<rest>[zx])(?P<restlen>""" + _LENGTH + r""")
  | (?P<bars>Z\d*)
  | (?P<chordend>\])(?P<chordlen>""" + _LENGTH + r""")
  | (?P<single>[\[{}()\-]|<{1,3}|>{1,3})
""", re.VERBOSE)


def length_of(written: str) -> Fraction:
    """The length a note's suffix writes, in unit lengths: '' 1, '2' 2, '/' 1/2, '//' 1/4, '3/2' 3/2."""
    if not written:
        return Fraction(1)
    top, _, bottom = written.partition("/")
    numerator = int(top) if top else 1
    if "/" not in written:
        return Fraction(numerator)
    slashes = written.count("/")
    digits = bottom.strip("/")
    denominator = int(digits) if digits else 2 ** slashes
    if denominator == 0:
        raise AbcError(f"a note length {written!r} divides by zero")
    return Fraction(numerator, denominator)


def write_length(length: Fraction) -> str:
    if length == 1:
        return ""
    if length.denominator == 1:
        return str(length.numerator)
    return f"{length.numerator if length.numerator != 1 else ''}/{length.denominator}"


def parse_meter(value: str) -> Fraction:
    """A meter as the length of one bar in whole notes: '6/8' 3/4, 'C' 1, '2+3/8' 5/8."""
    value = value.strip()
    if value in ("C", "C|"):
        return Fraction(1)
    match = re.fullmatch(r"\(?(\d+(?:\+\d+)*)\)?/(\d+)", value)
    if not match or int(match.group(2)) == 0:
        raise AbcError(f"meter {value!r} is not a fraction such as 6/8")
    return Fraction(sum(int(n) for n in match.group(1).split("+")), int(match.group(2)))


def normal_meter(value: str) -> str:
    value = re.sub(r"\s+", "", value)
    if value == "C":
        return "4/4"
    if value == "C|":
        return "2/2"
    if not value or value.lower() == "none":
        raise AbcError("the tune has no meter (M:)")
    meter = parse_meter(value)
    if not 0 < meter <= 4:
        raise AbcError(f"meter {value!r} is out of range")
    return value


def normal_key(value: str) -> str:
    """`K:` value -> tonic + mode ('G Major' -> 'G', 'A minor' -> 'Am', 'D Mixolydian' -> 'Dmix')."""
    words = value.split("%")[0].split()
    words = [w for w in words if "=" not in w]  # clef=..., middle=..., transpose=...
    if not words:
        raise AbcError("the tune has no key (K:)")
    match = re.fullmatch(r"([A-Ga-g])([#b]?)(.*)", words[0])
    if not match:
        raise AbcError(f"key {value.strip()!r} has no tonic A-G (Highland pipe and 'none' keys are not read)")
    tonic, accidental, rest = match.groups()
    mode_word = (rest or (words[1] if len(words) > 1 else "")).lower()
    if len(words) > (1 if rest else 2) or (rest and len(words) > 1):
        raise AbcError(f"key {value.strip()!r} carries explicit accidentals, which are not read")
    mode = MODES.get(mode_word[:3] if len(mode_word) >= 3 else mode_word)
    if mode is None:
        raise AbcError(f"key {value.strip()!r} has an unknown mode {mode_word!r}")
    return tonic.upper() + accidental + mode


def normal_unit(value: str) -> str:
    match = re.fullmatch(r"1/(\d+)", re.sub(r"\s+", "", value))
    if not match or int(match.group(1)) not in (1, 2, 4, 8, 16, 32, 64):
        raise AbcError(f"unit note length {value.strip()!r} is not 1/1 ... 1/64")
    return f"1/{match.group(1)}"


def default_unit(meter: str) -> str:
    return "1/16" if parse_meter(meter) < Fraction(3, 4) else "1/8"


def _field(letter: str, value: str) -> str | None:
    """A kept field as a token, or None for one that is dropped."""
    if letter == "M":
        return "M:" + normal_meter(value)
    if letter == "K":
        return "K:" + normal_key(value)
    if letter == "L":
        return "L:" + normal_unit(value)
    if letter in "V":
        raise AbcError("the tune has several voices (V:), which are not read")
    return None


def tokenize(tune: str, chords: bool = False) -> list[str]:
    """The tokens of one tune (text from its X: line, or from its first header line)."""
    header: dict[str, str] = {}
    body: list[str] = []
    in_body = False
    for raw in tune.splitlines():
        line = raw.split("%", 1)[0] if not raw.startswith("%%") else ""
        if not line.strip():
            continue
        field = re.match(r"([A-Za-z]):(?![|:])(.*)", line)
        if not in_body:
            if not field:
                raise AbcError(f"header line {raw.strip()[:40]!r} is not a field and no K: line came before it")
            letter, value = field.groups()
            token = _field(letter, value) if letter in "MKLV" else None
            if token is not None:
                header[letter] = token
            in_body = letter == "K"
            continue
        if field and field.group(1) in BODY_FIELDS:
            token = _field(*field.groups())
            if token is not None:
                body.append(f"[{token}]")
            continue
        body.extend(_body_tokens(line, chords))
    if "K" not in header:
        raise AbcError("the tune has no K: line")
    if "M" not in header:
        raise AbcError("the tune has no meter (M:)")
    header.setdefault("L", "L:" + default_unit(header["M"][2:]))
    if not any(is_note(t) for t in body):
        raise AbcError("the tune has no notes")
    return [header[f] for f in HEADER_FIELDS] + body


def _body_tokens(line: str, chords: bool) -> list[str]:
    tokens, at = [], 0
    while at < len(line):
        m = _BODY.match(line, at)
        if not m:
            raise AbcError(f"cannot read {line[at:at + 12]!r} in the line {line.strip()[:60]!r}")
        at = m.end()
        kind = m.lastgroup if m.lastgroup not in ("notelen", "restlen", "barend", "chordlen") else None
        g = m.groupdict()
        if g["space"] is not None:
            continue
        if g["quoted"] is not None:
            text = g["quoted"][1:-1]
            if chords and text and text[0] not in "^_<>@":  # a chord symbol, not an annotation
                tokens.append(g["quoted"])
            continue
        if g["field"] is not None:
            token = _field(g["field"][1], g["field"][3:-1])
            if token is not None:
                tokens.append(f"[{token}]")
        elif g["deco"] is not None:
            deco = g["deco"]
            tokens.append("!" + deco[1:-1] + "!" if deco[0] == "+" else deco)
        elif g["bar"] is not None:
            tokens.append(g["bar"])
            if g["barend"]:
                tokens.append("[" + g["barend"])
        elif g["ending"] is not None:
            tokens.append(g["ending"])
        elif g["tuplet"] is not None:
            tokens.append(g["tuplet"].rstrip(":"))
        elif g["note"] is not None:
            tokens.append(g["note"] + write_length(length_of(g["notelen"])))
        elif g["rest"] is not None:
            tokens.append("z" + write_length(length_of(g["restlen"])))
        elif g["bars"] is not None:
            tokens.append(g["bars"])
        elif g["chordend"] is not None:
            tokens.append("]" + write_length(length_of(g["chordlen"])))
        elif g["single"] is not None:
            tokens.append(g["single"])
        else:  # pragma: no cover - every alternative of _BODY is handled above
            raise AbcError(f"unhandled token kind {kind}")
    return tokens


_NOTE = re.compile(r"(\^\^|\^|__|_|=)?([A-Ga-g])([,']*)(" + _LENGTH + r")")


def is_note(token: str) -> bool:
    return _NOTE.fullmatch(token) is not None


def is_bar(token: str) -> bool:
    return re.fullmatch(r":*\[?\|+\]?:*|:{2,}", token) is not None


def note_length(token: str) -> Fraction | None:
    """A note's or rest's length in unit lengths (None for other tokens)."""
    m = _NOTE.fullmatch(token)
    if m:
        return length_of(m.group(4))
    if token[:1] == "z":
        return length_of(token[1:])
    return None


def detokenize(tokens: list[str], number: int = 1) -> str:
    """A tune's tokens as ABC text: X:, the header lines, then the body with a space around each
    bar line and a line break after each section or every fourth bar."""
    header = {t[0]: t for t in tokens[:3] if len(t) > 2 and t[1] == ":" and t[0] in HEADER_FIELDS}
    if len(header) != 3:
        raise AbcError("a tune starts with its M:, K: and L: tokens")
    lines = [f"X:{number}", header["M"], header["L"], header["K"]]
    line, bars = "", 0
    for token in tokens[3:]:
        if re.fullmatch(r"\[[0-9].*", token):  # an ending: written against its bar line
            line = line.rstrip() + token + " "
        elif is_bar(token):
            line += f" {token} "
            bars += 1
            if token in SECTION_ENDS or bars % 4 == 0:
                lines.append(line.strip())
                line, bars = "", 0 if token in SECTION_ENDS else bars
        else:
            line += token
    if line.strip():
        lines.append(line.strip())
    return "\n".join(lines) + "\n"


def split_tunes(text: str) -> list[str]:
    """The tunes of an ABC file: each starts at a line beginning with X:."""
    starts = [m.start() for m in re.finditer(r"(?m)^X:", text)]
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
