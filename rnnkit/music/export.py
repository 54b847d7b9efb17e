"""Tunes to MIDI and MusicXML through music21, and the two independent readers used as checks:
music21 (parse, then render to MIDI) and Debian's abc2midi (when installed).

music21 is an optional dependency (`pip install 'rnnkit[music]'`), imported only here and only
when one of these functions runs: importing it takes about a second.
"""

from __future__ import annotations

import copy
import multiprocessing
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from ..extras import require

ABC2MIDI_SECONDS = 10  # a tune abc2midi takes longer than this to read counts as not readable
MUSIC21_SECONDS = 20  # likewise for music21 (it takes about 0.2 s for a tune of a page)


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


def _render(text: str, formats: tuple[str, ...]) -> dict[str, bytes]:
    score = parse(text)
    return {f: midi_bytes(score) if f == "midi" else musicxml_bytes(score) for f in formats}


def _serve(connection) -> None:
    """The worker's loop: (text, formats) in, ("ok", files) or ("error", reason) out."""
    while True:
        try:
            text, formats = connection.recv()
        except EOFError:
            return
        try:
            connection.send(("ok", _render(text, formats)))
        except ValueError as e:
            connection.send(("error", str(e)))


class Renderer:
    """music21 in a worker process with a time limit per tune: music21 can spend minutes, or
    loop, on a pathological tune, and a check or an export must not hang on one. A tune over
    the limit is "not readable" and the worker is replaced. Use as a context manager."""

    def __init__(self, seconds: float = MUSIC21_SECONDS) -> None:
        _music21()  # imported before the fork, so each worker starts ready
        self.seconds, self.process, self.connection = seconds, None, None

    def _start(self) -> None:
        context = multiprocessing.get_context("fork")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()

    def render(self, text: str, formats: tuple[str, ...] = ("midi",)) -> dict[str, bytes]:
        """The tune as the files of `formats` ("midi", "musicxml"); ValueError with the reason
        when music21 cannot read it or takes longer than the limit."""
        if self.process is None or not self.process.is_alive():
            self._start()
        self.connection.send((text, formats))
        if not self.connection.poll(self.seconds):
            self.close()
            raise ValueError(f"music21 took longer than {self.seconds:g} s")
        status, value = self.connection.recv()
        if status != "ok":
            raise ValueError(value)
        return value

    def reads(self, text: str) -> bool:
        """Whether music21 parses the tune and renders it to MIDI in time."""
        try:
            self.render(text)
            return True
        except ValueError:
            return False

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join()
            self.process = None

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
