"""Performance RNN: MIDI events and back, Standard MIDI files written and read (hostile ones
refused cleanly), the grammar that keeps sampled streams well formed, a small model that learns,
and `rnnkit music train|sample --events`."""

import numpy as np
import pytest
import torch

from rnnkit.config import ModelConfig
from rnnkit.models.language_model import LanguageModel
from rnnkit.music import events as ev
from rnnkit.music import performance as pf

SMALL = dict(hidden_size=48, embedding_size=16, batch_size=8, seq_length=64, lr=1e-2, dropout=0.0)


def arpeggios(seed: int, bars: int = 6) -> list[ev.Note]:
    """A broken chord per bar, in one of three keys, loud then soft: a pattern a model can learn."""
    rng = np.random.default_rng(seed)
    root = int(rng.choice([48, 53, 55]))
    notes, t = [], 0.0
    for b in range(bars):
        for k, step in enumerate((0, 4, 7, 12)):
            notes.append(ev.Note(root + step, t, t + 0.2, 100 if k == 0 else 60))
            t += 0.25
    return notes


def test_notes_and_events_round_trip_on_the_10ms_grid():
    notes = [ev.Note(60, 0.0, 0.5, 90), ev.Note(64, 0.0, 2.73, 40), ev.Note(60, 0.5, 0.6, 90),
             ev.Note(67, 1.004, 1.5, 127), ev.Note(10, 0.2, 0.3, 50)]  # the last is below the piano
    stream = ev.notes_to_events(notes)
    assert ev.well_formed(stream) and ev.duration(stream) == pytest.approx(2.73)
    back, faults = ev.events_to_notes(stream)
    assert not any(faults.values())
    assert [(n.pitch, round(n.start, 2), round(n.end, 2)) for n in back] == \
        [(60, 0.0, 0.5), (64, 0.0, 2.73), (60, 0.5, 0.6), (67, 1.0, 1.5)]
    assert [ev.velocity_bin(n.velocity) for n in back] == [ev.velocity_bin(v) for v in (90, 40, 90, 127)]
    assert max(e - ev.TIME_SHIFT + 1 for e in stream if ev.TIME_SHIFT <= e < ev.VELOCITY) == 100  # 1.23 s: 1 s + 0.23
    unison = ev.notes_to_events([ev.Note(62, 0.0, 1.0, 80), ev.Note(62, 0.5, 1.5, 80)])  # two voices, one pitch
    assert ev.well_formed(unison)
    bad = [ev.NOTE_OFF + 5, ev.NOTE_ON + 3, ev.NOTE_ON + 3, ev.TIME_SHIFT]
    assert ev.events_to_notes(bad, close=False)[1] == {"stray_off": 1, "restruck": 1, "unclosed": 1}


def test_midi_files_round_trip_and_music21_reads_them(tmp_path):
    notes = arpeggios(0) + [ev.Note(72, 0.1, 3.0, 30)]
    path = tmp_path / "a.mid"
    path.write_bytes(ev.midi_bytes(notes))
    back = ev.read_midi(path)
    assert [(n.pitch, round(n.start, 3), round(n.end, 3), n.velocity) for n in back] == \
        [(n.pitch, round(n.start, 3), round(n.end, 3), n.velocity) for n in sorted(notes, key=lambda n: (n.start, n.pitch))]
    from rnnkit.outputs import written_by_rnnkit
    assert written_by_rnnkit(path)
    music21 = pytest.importorskip("music21")
    assert len(music21.converter.parse(str(path)).flatten().notes) == len(notes)


@pytest.mark.parametrize("content, message", [
    (b"", "not a Standard MIDI file"),
    (b"RIFF" + b"\0" * 20, "not a Standard MIDI file"),
    (b"MThd\0\0\0\x06\0\0\0\x01\xe7\x28", "SMPTE"),
    (b"MThd\0\0\0\x06\0\0\0\x01\x01\xe0MTrk\0\0\0\x09\0\x90\x3c", "says 9 bytes"),
    (b"MThd\0\0\0\x06\0\0\0\x01\x01\xe0MTrk\0\0\0\x03\0\x90\x3c", "cut short"),
    (b"MThd\0\0\0\x06\0\0\0\x01\x01\xe0MTrk\0\0\0\x04\xff\xff\xff\xff", "longer than 4 bytes"),
    (b"MThd\0\0\0\x06\0\0\0\x01\x01\xe0MTrk\0\0\0\x03\0\x3c\x40", "before any status"),
])
def test_hostile_midi_files_are_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(ev.MidiError, match=message):
        ev.read_midi(path)


def test_the_grammar_keeps_even_an_untrained_model_well_formed():
    torch.manual_seed(0)
    module = LanguageModel(ModelConfig(vocab_size=ev.NUM_EVENTS + 1, hidden_size=16, embedding_size=8))
    model = pf.PerformanceModel(module, pf.EventVocabulary(), {}, None, torch.device("cpu"))
    streams = model.sample(num=6, seconds=2.0, seed=1)
    assert all(ev.well_formed(s) and 0 < ev.duration(s) <= 2.0 for s in streams)
    assert all(len(s) and s[-1] != ev.NUM_EVENTS for s in streams)
    free = model.sample(num=6, seconds=2.0, seed=1, strict=False)
    assert not all(ev.well_formed(s) for s in free)  # the raw choices of a random model break the stream
    assert all(ev.duration(s) <= 2.0 for s in free)



def test_the_grammar_ends_every_stream_within_the_event_budget(monkeypatch):
    """A model that never moves time on still ends, well formed, before the most events a sample
    may take (its last events stop the sounding notes)."""
    torch.manual_seed(1)
    module = LanguageModel(ModelConfig(vocab_size=ev.NUM_EVENTS + 1, hidden_size=16, embedding_size=8))
    with torch.no_grad():
        module.head.bias[ev.TIME_SHIFT:ev.VELOCITY] = -30.0  # time shifts all but impossible
    monkeypatch.setattr(pf, "MAX_EVENTS", 200)
    model = pf.PerformanceModel(module, pf.EventVocabulary(), {}, None, torch.device("cpu"))
    streams = model.sample(num=4, seconds=30.0, seed=2)
    assert all(ev.well_formed(s) and len(s) < 200 for s in streams)


@pytest.fixture(scope="module")
def midi_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("midi")
    paths = []
    for i in range(24):
        paths.append(folder / f"p{i}.mid")
        paths[-1].write_bytes(ev.midi_bytes(arpeggios(i)))
    return paths


def test_a_small_performance_model_learns_and_writes_playable_midi(midi_files, tmp_path, cli):
    model = pf.train([str(p) for p in midi_files], out=tmp_path / "run", max_steps=150, val_fraction=0.2,
                     log=lambda line: None, progress=False, **SMALL)
    held_out = pf.split_streams(model)
    assert len(held_out) == 4
    nats = model.score(held_out)["nats_per_event"]
    assert nats < 0.35 * np.log(ev.NUM_EVENTS + 1), nats  # far below guessing among 309 events
    streams = model.sample(num=4, seconds=3.0, seed=0, temperature=0.7)
    assert all(ev.well_formed(s) for s in streams)
    notes = ev.events_to_notes(streams[0])[0]
    assert notes and all(40 <= n.pitch <= 75 for n in notes)  # the training range, not random pitches
    out = tmp_path / "s.mid"
    status, _, err = cli("music", "sample", tmp_path / "run", "--events", "--out", out, "--seconds", "3", "--seed", "1")
    assert status == 0 and "wrote" in err and ev.read_midi(out)
    assert cli("music", "sample", tmp_path / "run", "--events", "--out", out, "--seed", "2")[0] == 0  # ours: replaced


def test_pitch_shifts_multiply_the_training_performances_only(midi_files, tmp_path):
    model = pf.train([str(p) for p in midi_files[:10]], out=tmp_path / "run", max_steps=2, val_fraction=0.2,
                     pitch_shifts=2, log=lambda line: None, progress=False, **SMALL)
    assert model.meta["corpus"]["num_documents"] == 8 * 5 + 2 and model.meta["performances"]["pitch_shifts"] == 2
    train, val = pf.split_streams(model, "train"), pf.split_streams(model, "val")
    originals = [np.asarray(ev.notes_to_events(ev.read_midi(p))) for p in midi_files[:10]]
    assert len(train) == 40 and all(any(np.array_equal(v, o) for o in originals) for v in val)
    pitches = lambda s: {e % ev.PITCHES for e in s if e < ev.TIME_SHIFT}  # noqa: E731
    assert [min(pitches(s)) - min(pitches(train[0])) for s in train[:5]] == [0, 1, 2, 3, 4]  # -2..+2 of one
    top = np.array([ev.VELOCITY + 3, ev.NOTE_ON + 86, ev.TIME_SHIFT + 9, ev.NOTE_OFF + 86])
    assert len(pf._pitch_shifted(top, 2)) == 4  # +2 would leave the piano: left out


@pytest.mark.parametrize("args, message", [
    (["train", "--corpus", "bach", "--out", "{tmp}/r"], "add --events"),
    (["train", "--events", "{tmp}/bad.mid", "--out", "{tmp}/r"], "not a Standard MIDI file"),
    (["train", "--events", "{tmp}/bad.mid", "--chords", "--out", "{tmp}/r"], "apply to ABC tunes"),
    (["train", "{tmp}/bad.mid", "--pitch-shifts", "3", "--out", "{tmp}/r"], "add --events"),
    (["train", "--events", "{tmp}/bad.mid", "--pitch-shifts", "13", "--out", "{tmp}/r"], "in 0..12"),
    (["sample", "{tmp}", "--events"], "give --out"),
    (["sample", "{tmp}", "--events", "--out", "{tmp}/other.mid"], "not written by rnnkit"),
])
def test_event_commands_bad_input(cli, tmp_path, args, message):
    (tmp_path / "bad.mid").write_bytes(b"not midi")
    (tmp_path / "other.mid").write_bytes(b"someone else's file")
    status, out, err = cli("music", *[a.format(tmp=tmp_path) for a in args])
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists() and (tmp_path / "other.mid").read_bytes() == b"someone else's file"


def test_no_sampled_note_outlasts_the_longest_training_note():
    """A model that would never stop a note: the grammar stops each at the longest training note."""
    torch.manual_seed(2)
    module = LanguageModel(ModelConfig(vocab_size=ev.NUM_EVENTS + 1, hidden_size=16, embedding_size=8))
    with torch.no_grad():
        module.head.bias[ev.NOTE_OFF:ev.TIME_SHIFT] = -30.0  # stops all but impossible
    model = pf.PerformanceModel(module, pf.EventVocabulary(), {"performances": {"longest_note": 0.5}}, None,
                                torch.device("cpu"))
    streams = model.sample(num=4, seconds=5.0, seed=3)
    notes = [n for s in streams for n in ev.events_to_notes(s)[0]]
    assert all(ev.well_formed(s) for s in streams) and notes
    assert max(n.end - n.start for n in notes) <= 0.5 + 1e-9
    unbounded = pf.PerformanceModel(module, pf.EventVocabulary(), {}, None, torch.device("cpu")).sample(4, 5.0, seed=3)
    assert max(n.end - n.start for s in unbounded for n in ev.events_to_notes(s)[0]) > 2.0  # the rule at work
