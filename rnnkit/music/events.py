"""Performances as event streams (Performance RNN: Oore et al. 2018, "This time with feeling"), and
Standard MIDI files read and written without a third-party package.

An event is one of 308 tokens:
    NOTE_ON p, NOTE_OFF p   for the 88 piano pitches p = 21..108          (2 x 88)
    TIME_SHIFT k            move time on by k x 10 ms, k = 1..100           (100)
    VELOCITY b              loudness of the next note-ons: bin b = 0..31    (32)
so a stream says what happens and when, with its own timing and dynamics. A stream is well formed
when no note starts that is already sounding, no note stops that is not sounding, and every note
has stopped by the end (time never runs backwards: shifts are positive by construction).

MIDI files are untrusted input: the reader checks every length against the bytes left, caps the
file size and the number of events, and raises MidiError with what is wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOWEST, HIGHEST = 21, 108  # the piano's A0 .. C8
PITCHES = HIGHEST - LOWEST + 1
SHIFT_STEPS, STEP_SECONDS = 100, 0.01
VELOCITY_BINS = 32
NOTE_ON, NOTE_OFF = 0, PITCHES
TIME_SHIFT = 2 * PITCHES  # + k - 1 for a shift of k steps
VELOCITY = TIME_SHIFT + SHIFT_STEPS  # + bin
NUM_EVENTS = VELOCITY + VELOCITY_BINS  # 308
MAX_MIDI_BYTES = 16 << 20
MAX_MIDI_EVENTS = 2_000_000
SIGNATURE = b"Software\x00rnnkit"  # what rnnkit.outputs looks for before replacing a file


class MidiError(ValueError):
    pass


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI number
    start: float  # seconds
    end: float
    velocity: int  # 1..127


def event_name(event: int) -> str:
    if event < NOTE_OFF:
        return f"on {event + LOWEST}"
    if event < TIME_SHIFT:
        return f"off {event - NOTE_OFF + LOWEST}"
    if event < VELOCITY:
        return f"shift {(event - TIME_SHIFT + 1) * 10}ms"
    return f"velocity {event - VELOCITY}"


def velocity_bin(velocity: int) -> int:
    return min(VELOCITY_BINS - 1, max(0, (int(velocity) - 1) * VELOCITY_BINS // 127))


def bin_velocity(b: int) -> int:
    """The velocity a bin plays at: the middle of its range."""
    return int(round((b + 0.5) * 127 / VELOCITY_BINS)) or 1


def notes_to_events(notes: list[Note]) -> list[int]:
    """The event stream of notes (pitches outside the piano dropped; times on the 10 ms grid; a
    note that would end where it starts lasts one step)."""
    changes = []  # (step, order, kind, pitch, velocity): offs before ons at the same step
    for n in notes:
        if LOWEST <= n.pitch <= HIGHEST:
            start = int(round(n.start / STEP_SECONDS))
            end = max(start + 1, int(round(n.end / STEP_SECONDS)))
            changes += [(start, 1, NOTE_ON, n.pitch, n.velocity), (end, 0, NOTE_OFF, n.pitch, 0)]
    changes.sort()
    events, now, velocity, sounding = [], 0, None, {}
    for step, _, kind, pitch, vel in changes:
        while step > now:
            k = min(SHIFT_STEPS, step - now)
            events.append(TIME_SHIFT + k - 1)
            now += k
        if kind == NOTE_OFF:
            sounding[pitch] -= 1
            if sounding[pitch] == 0:  # overlapping copies of one pitch: one note in the stream
                events.append(NOTE_OFF + pitch - LOWEST)
        else:
            sounding[pitch] = sounding.get(pitch, 0) + 1
            if sounding[pitch] == 1:
                if velocity_bin(vel) != velocity:
                    velocity = velocity_bin(vel)
                    events.append(VELOCITY + velocity)
                events.append(NOTE_ON + pitch - LOWEST)
    return events


def events_to_notes(events, close: bool = True) -> tuple[list[Note], dict[str, int]]:
    """Notes of an event stream, and its faults: {"stray_off": n, "restruck": n, "unclosed": n}.
    A fault is skipped (a restruck note restarts); with close, unclosed notes end at the last time."""
    now, velocity, open_notes, notes = 0, bin_velocity(VELOCITY_BINS // 2), {}, []
    faults = {"stray_off": 0, "restruck": 0, "unclosed": 0}
    for e in (int(e) for e in events):
        if not 0 <= e < NUM_EVENTS:
            raise ValueError(f"event {e} is outside 0..{NUM_EVENTS - 1}")
        if e < NOTE_OFF:
            pitch = e + LOWEST
            if pitch in open_notes:
                faults["restruck"] += 1
                start, vel = open_notes.pop(pitch)
                notes.append(Note(pitch, start * STEP_SECONDS, now * STEP_SECONDS, vel))
            open_notes[pitch] = (now, velocity)
        elif e < TIME_SHIFT:
            pitch = e - NOTE_OFF + LOWEST
            if pitch not in open_notes:
                faults["stray_off"] += 1
                continue
            start, vel = open_notes.pop(pitch)
            notes.append(Note(pitch, start * STEP_SECONDS, max(now, start + 1) * STEP_SECONDS, vel))
        elif e < VELOCITY:
            now += e - TIME_SHIFT + 1
        else:
            velocity = bin_velocity(e - VELOCITY)
    faults["unclosed"] = len(open_notes)
    if close:
        notes += [Note(p, s * STEP_SECONDS, max(now, s + 1) * STEP_SECONDS, v) for p, (s, v) in open_notes.items()]
    return sorted(notes, key=lambda n: (n.start, n.pitch)), faults


def well_formed(events) -> bool:
    return not any(events_to_notes(events, close=False)[1].values())


def duration(events) -> float:
    """Seconds an event stream lasts."""
    shifts = np.asarray(events, dtype=np.int64)
    shifts = shifts[(shifts >= TIME_SHIFT) & (shifts < VELOCITY)]
    return float((shifts - TIME_SHIFT + 1).sum() * STEP_SECONDS)


# ------------------------------------------------------------------ Standard MIDI files
def _vlq(data: bytes, at: int) -> tuple[int, int]:
    """A variable-length quantity at `at`: (value, position after it)."""
    value = 0
    for k in range(4):
        if at >= len(data):
            raise MidiError("a track ends inside a length or time field")
        byte = data[at]
        at += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, at
    raise MidiError("a length or time field is longer than 4 bytes")


def _chunks(data: bytes):
    at = 0
    while at + 8 <= len(data):
        kind, length = data[at:at + 4], struct.unpack(">I", data[at + 4:at + 8])[0]
        if at + 8 + length > len(data):
            raise MidiError(f"a {kind!r} chunk says {length} bytes but the file ends before")
        yield kind, data[at + 8:at + 8 + length]
        at += 8 + length


def _track_events(track: bytes):
    """(tick, status, data1, data2) of channel messages and ('tempo', tick, us per quarter)."""
    at, tick, status, count = 0, 0, None, 0
    while at < len(track):
        delta, at = _vlq(track, at)
        tick += delta
        count += 1
        if count > MAX_MIDI_EVENTS:
            raise MidiError(f"more than {MAX_MIDI_EVENTS:,} events in a track")
        if at >= len(track):
            raise MidiError("a track ends after a time field")
        byte = track[at]
        if byte == 0xFF:  # meta event
            if at + 2 > len(track):
                raise MidiError("a track ends inside a meta event")
            kind = track[at + 1]
            length, at = _vlq(track, at + 2)
            if at + length > len(track):
                raise MidiError("a meta event runs past its track")
            if kind == 0x51 and length == 3:
                yield ("tempo", tick, int.from_bytes(track[at:at + 3], "big"))
            at += length
            if kind == 0x2F:
                return
            continue
        if byte in (0xF0, 0xF7):  # system exclusive
            length, at = _vlq(track, at + 1)
            at += length
            continue
        if byte & 0x80:
            status, at = byte, at + 1
        elif status is None:
            raise MidiError("a data byte comes before any status byte")
        size = 1 if status & 0xF0 in (0xC0, 0xD0) else 2
        if at + size > len(track) or any(b & 0x80 for b in track[at:at + size]):
            raise MidiError("a channel message is cut short")
        yield (tick, status, track[at], track[at + 1] if size == 2 else 0)
        at += size


def read_midi(path: str | Path) -> list[Note]:
    """The notes of a Standard MIDI file (format 0 or 1; drums on channel 10 left out)."""
    path = Path(path)
    if path.stat().st_size > MAX_MIDI_BYTES:
        raise MidiError(f"larger than {MAX_MIDI_BYTES >> 20} MB; is it a MIDI file?")
    data = path.read_bytes()
    if data[:4] != b"MThd":
        raise MidiError("not a Standard MIDI file (no MThd header)")
    chunks = list(_chunks(data))
    if not chunks or chunks[0][0] != b"MThd" or len(chunks[0][1]) < 6:
        raise MidiError("not a Standard MIDI file (no MThd header)")
    _, _, division = struct.unpack(">HHH", chunks[0][1][:6])
    if division & 0x8000 or division == 0:
        raise MidiError("SMPTE time division is not supported; save the file with ticks per quarter note")
    tempos, messages = [(0, 500_000)], []
    for kind, track in chunks[1:]:
        if kind == b"MTrk":
            for item in _track_events(track):
                (tempos if item[0] == "tempo" else messages).append(item[1:] if item[0] == "tempo" else item)
    tempos.sort()
    ticks = np.array([t for t, _ in tempos], dtype=np.float64)
    per_tick = np.array([us for _, us in tempos], dtype=np.float64) / 1e6 / division
    starts = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * per_tick[:-1])])  # seconds at each tempo change

    def seconds(tick: int) -> float:
        k = int(np.searchsorted(ticks, tick, side="right")) - 1
        return float(starts[k] + (tick - ticks[k]) * per_tick[k])
    notes, sounding = [], {}
    for tick, status, pitch, velocity in sorted(messages, key=lambda m: m[0]):
        kind, channel = status & 0xF0, status & 0x0F
        if channel == 9 or kind not in (0x80, 0x90):
            continue
        key = (channel, pitch)
        if kind == 0x90 and velocity > 0:
            if key not in sounding:
                sounding[key] = (seconds(tick), velocity)
        elif key in sounding:
            start, vel = sounding.pop(key)
            notes.append(Note(pitch, start, seconds(tick), vel))
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def midi_bytes(notes: list[Note]) -> bytes:
    """A format-0 Standard MIDI file of the notes: 1,000 ticks per quarter at 60 beats per minute,
    so a tick is a millisecond; a text event signs it as rnnkit's."""
    changes = sorted([(round(n.start * 1000), 1, n.pitch, n.velocity) for n in notes] +
                     [(round(n.end * 1000), 0, n.pitch, 0) for n in notes])
    body, last = bytearray(b"\x00\xff\x51\x03" + (1_000_000).to_bytes(3, "big")), 0
    body += b"\x00\xff\x01" + _write_vlq(len(SIGNATURE)) + SIGNATURE  # a text event: rnnkit wrote this file
    for tick, on, pitch, velocity in changes:
        body += _write_vlq(tick - last) + bytes([0x90 if on else 0x80, pitch, velocity if on else 0])
        last = tick
    body += b"\x00\xff\x2f\x00"
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1000) + b"MTrk" + struct.pack(">I", len(body)) + bytes(body))


def _write_vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))
