"""Tunes to MIDI and MusicXML through music21, and the two independent readers used as checks:
music21 (parse, then render to MIDI) and Debian's abc2midi (when installed).

music21 is an optional dependency (`pip install 'rnnkit[music]'`), imported only here and only
when one of these functions runs: importing it takes about a second.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from ..extras import require

ABC2MIDI_SECONDS = 10  # a tune abc2midi takes longer than this to read counts as not readable


def _music21():
    require(("music21",), "music", "reading and exporting tunes")
    import music21
    return music21


def parse(text: str):
    """One tune's ABC text as a music21 Score; ValueError (with music21's reason) if it cannot."""
    music21 = _music21()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # music21 warns about every oddity of folk transcriptions
            return music21.converter.parse(text, format="abc")
    except Exception as e:  # music21 raises many exception types, all meaning "not readable"
        raise ValueError(f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}") from None


def _unshare_signatures(score) -> None:
    """music21 10.5 may place one TimeSignature (or key, or tempo) object in two measures (an
    over-long bar is split in two); its MIDI writer then inserts that object twice into the
    conductor track and fails. A copy per place is the same music."""
    seen: set[int] = set()
    for stream in list(score.recurse(streamsOnly=True, includeSelf=True)):
        for element in list(stream.getElementsByClass(("TimeSignature", "KeySignature", "MetronomeMark"))):
            if id(element) in seen:
                stream.replace(element, copy.deepcopy(element))
            else:
                seen.add(id(element))


def midi_bytes(score) -> bytes:
    music21 = _music21()
    _unshare_signatures(score)
    try:
        return music21.midi.translate.streamToMidiFile(score).writestr()
    except Exception as e:
        raise ValueError(f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}") from None


def musicxml_bytes(score) -> bytes:
    music21 = _music21()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return music21.musicxml.m21ToXml.GeneralObjectExporter(score).parse()
    except Exception as e:
        raise ValueError(f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}") from None


def music21_reads(text: str) -> bool:
    """Whether music21 parses the tune and renders it to MIDI."""
    try:
        midi_bytes(parse(text))
        return True
    except ValueError:
        return False


def abc2midi_path() -> str | None:
    return shutil.which("abc2midi")


def abc2midi_reads(text: str) -> bool | None:
    """Whether abc2midi reads the tune without an error (None when abc2midi is not installed)."""
    program = abc2midi_path()
    if program is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "tune.abc"
        source.write_text(text, encoding="utf-8")
        try:
            done = subprocess.run([program, str(source), "-o", str(Path(tmp) / "tune.mid")], capture_output=True,
                                  text=True, timeout=ABC2MIDI_SECONDS, errors="replace")
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0 and "Error" not in done.stdout + done.stderr


def check_music21(what: str) -> None:
    """One line now when music21 is missing, rather than a failure halfway through a long job."""
    require(("music21",), "music", what)
