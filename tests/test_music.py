"""Music: the ABC tokenizer, the tune checks, a tune model that learns, and `rnnkit music`."""

import json
import math
import random
import subprocess
import sys
from fractions import Fraction

import pytest

from rnnkit.errors import UsageError
from rnnkit.music import model as music_model
from rnnkit.music.abc import AbcError, detokenize, split_tunes, tokenize
from rnnkit.music.transpose import interval, transpose
from rnnkit.music.timing import BEAT, add_beats
from rnnkit.music.check import bars, bars_ok, is_aabb, longest_shared_runs, repeats_ok
from rnnkit.music.corpus import read_tunes

# Hand-written tunes that between them use every kind of token the tokenizer knows.
FIXTURES = """\
% a comment line
X:1
T:Pickups and endings
C:nobody
M:6/8
L:1/8
R:jig
K:D
A|:"D"d2f ecA|B2d {c}BAG|FAd (3fga b|1 afe d2A:|2 afe d3||
|:~f3 d>ef|!trill!g2e c2A|[df]2 [eg] f2e|.d3 D3:|

X:2
T:Common time, no unit length, key in words
M:C
K:E Dorian
E2 BE dEBE|E2 BE F2 AF|E2 (3Bcd e2 fe|d2 A2 F2 DF|] % end
w: some words that are not music

X:3
T:Ties, broken rhythm, rests, chords with lengths, a key change
M:3/4
L:1/4
K:Gm
G>A B-|B z/2c/2 d|[K:G] [GBd]2 g|g3/2 f/ e/d/|e/4f/4g/2 a2|]

X:4
T:Continuation and accidentals
M:2/4
L:1/16
K:Amix
^c2=c2 _B,2A,2 | A,,4 c'4 \\
| a'2^^g2 __e4 |]
"""


def fixture_tunes():
    return split_tunes(FIXTURES)


@pytest.mark.parametrize("index", range(4))
def test_tokenize_round_trip(index):
    tokens = tokenize(fixture_tunes()[index])
    assert tokenize(detokenize(tokens)) == tokens


def test_round_trip_keeps_the_notes_music21_reads():
    music21 = pytest.importorskip("music21")

    def notes(text):
        score = music21.converter.parse(text, format="abc")
        return [(n.pitch.midi, float(n.quarterLength)) for n in score.flatten().notes if hasattr(n, "pitch")]

    for text in fixture_tunes():
        assert notes(detokenize(tokenize(text))) == notes(text)


def test_tokens_are_musical_units():
    first = tokenize(fixture_tunes()[0])
    assert first[:3] == ["M:6/8", "K:D", "L:1/8"]  # meter, key, unit: the key before the unit
    assert "T:" not in " ".join(first) and '"D"' not in first  # titles and chord symbols dropped
    for token in ("|:", ":|", "[1", "[2", "(3", "{", "}", "~", "!trill!", "[", "]2", ">", "."):
        assert token in first
    assert tokenize(fixture_tunes()[0], chords=True).count('"D"') == 1
    second = tokenize(fixture_tunes()[1])
    assert second[:3] == ["M:4/4", "K:Edor", "L:1/8"]  # C is 4/4; the default unit for 4/4 is 1/8
    third = tokenize(fixture_tunes()[2])
    assert "[K:G]" in third and "f/2" in third and "e/2" in third and "g3/2" in third and "z/2" in third
    fourth = tokenize(fixture_tunes()[3])
    assert fourth[2] == "L:1/16" and "^^g2" in fourth and "__e4" in fourth and "A,,4" in fourth and "a'2" in fourth


@pytest.mark.parametrize("text, reason", [
    ("X:1\nM:2/4\nK:G\nV:1\nabc|\n", "several voices"),
    ("X:1\nM:2/4\nL:1/8\nabcd|\n", "no K: line|not a field"),
    ("X:1\nM:2/4\nK:G\nab#cd|\n", "cannot read"),
    ("X:1\nM:2/4\nK:HP\nabcd|\n", "no tonic"),
    ("X:1\nK:G\nabcd|\n", "no meter"),
    ("X:1\nM:2/4\nK:G\n| z2 |\n", "no notes"),
])
def test_unreadable_tunes_say_why(text, reason):
    with pytest.raises(AbcError, match=reason):
        tokenize(text)


def test_transposing_moves_every_pitch_by_the_tonics_interval():
    music21 = pytest.importorskip("music21")

    def pitches(tokens):
        score = music21.converter.parse(detokenize(tokens), format="abc")
        return [n.pitch.midi for n in score.flatten().notes if hasattr(n, "pitch")]

    for text in fixture_tunes():
        tokens = tokenize(text)
        for tonic in ("C", "Bb", "F#"):
            moved = transpose(tokens, tonic)
            shift = interval(tokens[1], tonic)[1]
            assert moved[1][2:].startswith(tonic) and abs(shift) <= 6
            assert pitches(moved) == [p + shift for p in pitches(tokens)]


def tune(body, meter="4/4", unit="1/8", key="G"):
    return tokenize(f"X:1\nM:{meter}\nL:{unit}\nK:{key}\n{body}\n")


def test_beat_marks_fall_on_the_beats_and_wait_for_ties_and_broken_rhythm():
    tokens = add_beats(tune("GAB c2d|e2-e dBG|A>Bc d3|G2A-A2B|", meter="6/8"))
    assert tokens[3:] == ["G", "A", "B", BEAT, "c2", "d", "|", "e2", "-", "e", BEAT, "d", "B", "G", "|",
                          "A", ">", "B", "c", BEAT, "d3", "|", "G2", "A", "-", BEAT, "A2", "B", "|"]
    reel = add_beats(tune("(3ABc d2 efga|"))  # 4/4: a beat mark at the half bar
    assert reel[3:] == ["(3", "A", "B", "c", "d2", BEAT, "e", "f", "g", "a", "|"]
    assert add_beats(tokenize(detokenize(tokens))) == tokens  # written back, the marks are spaces


def test_bar_lengths_count_tuplets_chords_and_grace_notes():
    lengths = [b.length for b in bars(tune("(3ABc d2 {g}e2 [GB]2 | A>B c<d z4 |"))]
    assert lengths == [Fraction(1), Fraction(1)]  # (3ABc = 2 eighths; grace notes take no time


def test_bar_check_on_good_and_broken_tunes():
    # a pickup, completed by the short bar before the repeat
    assert bars_ok(bars(tune("D|:G2B2 d2B2|c2A2 F2A2|G2B2 d2B2|c2A2 G3:|")))
    assert bars_ok(bars(tune("|:GABc d2B2|1 c2A2 F4:|2 c2A2 G4||")))
    assert not bars_ok(bars(tune("GABc d2B2|c2A2 F2A2 B2|G4 G4|")))  # one bar too long
    assert not bars_ok(bars(tune("GABc d2B2|c2A|G4 G4|G8|")))  # a short bar in the middle


def test_repeats_balanced_or_not():
    assert repeats_ok(tune("|:GABc d4:|:c2A2 F4:|"))
    assert repeats_ok(tune("GABc d4:|c2A2 F4:|"))  # a :| with no |: repeats from the start
    assert not repeats_ok(tune("|:GABc d4|:c2A2 F4:|"))  # opened twice
    assert not repeats_ok(tune("|:GABc d4|c2A2 F4|"))  # never closed
    assert not repeats_ok(tune("|:GABc |1 d4:|c2A2 F4|"))  # a first ending with no second


def test_aabb_form():
    part = "GABc d4|" * 7 + "G8"
    assert is_aabb(bars(tune(f"|:{part}:|\n|:{part}:|")))
    assert not is_aabb(bars(tune(f"|:{part}:|")))
    assert not is_aabb(bars(tune(f"|:{part}|G8:|\n|:{part}:|")))  # 9 bars in the first part


def test_longest_shared_runs_matches_brute_force():
    rng = random.Random(0)
    corpus = [[rng.randrange(4) for _ in range(rng.randrange(1, 30))] for _ in range(20)]
    queries = [[rng.randrange(4) for _ in range(rng.randrange(0, 25))] for _ in range(30)]

    def brute(q):
        best = 0
        for i in range(len(q)):
            for j in range(i + 1, len(q) + 1):
                piece = q[i:j]
                if any(piece == c[k:k + len(piece)] for c in corpus for k in range(len(c) - len(piece) + 1)):
                    best = max(best, len(piece))
        return best

    assert longest_shared_runs(queries, corpus) == [brute(q) for q in queries]


BAR_PATTERNS = {"6/8": ["GAB c2d", "e2d cBA", "G3 B2d", "dBG A3"], "4/4": ["DEFG A2d2", "c2BA G4", "FAdf e2c2", "d8"]}


def toy_tunes(n, seed=0):
    """Tunes from a small grammar: two meters, two keys, AABB with repeats, each bar one of four
    patterns of its meter (so every bar is full, and a model that learns the patterns scores
    well under 1 nat per token)."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        meter, key = ("6/8", "G") if k % 2 else ("4/4", "D")

        def part():
            return "|:" + "|".join(rng.choice(BAR_PATTERNS[meter]) for _ in range(8)) + ":|"
        out.append(f"X:{k + 1}\nM:{meter}\nL:1/8\nK:{key}\n{part()}\n{part()}\n")
    return "\n".join(out)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("music")
    source = folder / "toy.abc"
    source.write_text(toy_tunes(120), encoding="utf-8")
    m = music_model.train([source], out=folder / "run", max_steps=400, hidden_size=64, embedding_size=16,
                          batch_size=16, lr=1e-2, dropout=0.0, progress=False, log=lambda line: None)
    return folder, m


def test_a_small_model_learns_the_toy_tunes(toy_run):
    folder, m = toy_run
    val = music_model.split_tunes(m, "val")
    assert len(val) == 12 and all(t[0] in ("M:6/8", "M:4/4") for t in val)
    score = m.score(val)
    assert score["nats_per_token"] < 1.0 < math.log(len(m.vocab)) - 2  # uniform guessing: log V
    tunes = m.sample(20, seed=1)
    assert sum(bars_ok(bars(t)) for t in tunes) >= 10  # an untrained model's tunes never do
    assert sum(repeats_ok(t) for t in tunes) >= 14


def test_sample_asks_by_meter_and_key(toy_run):
    _, m = toy_run
    tunes = m.sample(5, meter="6/8", key="D", seed=2)
    assert all(t[0] == "M:6/8" and t[1] == "K:D" and t[2].startswith("L:") for t in tunes)
    assert all(not any(x[:2] in ("M:", "K:", "L:") for x in t[3:]) for t in tunes)
    with pytest.raises(UsageError, match="never occurs.*any tonic with the mode major"):
        m.sample(1, key="Dmix")
    assert {t[1] for t in m.sample(30, seed=3)} == {"K:D", "K:G"}  # tonics drawn from the training keys


def test_the_nucleus_trims_the_notes_but_not_the_header(toy_run):
    """Tunes are drawn from the nucleus of each note's distribution by default, while the meter and
    key come from the whole distribution: at a tiny top_p the notes are the likeliest ones, so
    tunes with the same header are the same tune, and both meters still come."""
    _, m = toy_run
    assert music_model.DEFAULT_TOP_P < 1
    tunes = m.sample(40, seed=5, top_p=1e-6)
    assert {t[0] for t in tunes} == {"M:6/8", "M:4/4"}
    by_header: dict = {}
    for t in tunes:
        by_header.setdefault(tuple(t[:3]), set()).add(tuple(t[3:]))
    assert all(len(bodies) == 1 for bodies in by_header.values())
    assert len({tuple(t[3:]) for t in m.sample(40, seed=5, top_p=1.0)}) > len(by_header)


def well_formed(tokens):
    """The syntax rules of music.grammar, checked on a finished tune."""
    depth, tied = 0, None
    for i, token in enumerate(tokens[3:], start=3):
        depth += token in ("[", "{")
        depth -= token.startswith("]") or token == "}"
        if depth not in (0, 1):
            return False
        if token == "-":
            tied = tokens[i - 1].rstrip("0123456789/")
        elif tied is not None and token[0] not in "|:[ ":
            if token.rstrip("0123456789/") != tied:
                return False
            tied = None
    return depth == 0 and tied is None and repeats_ok(tokens) and tokens[-1][-1] in "|]:"


def untrained_like(trained, seed):
    """A model of the trained one's vocabulary and size with fresh random weights and no bar clock
    (what these tests ask of the grammar must hold whatever the model reads)."""
    import copy
    import dataclasses
    import torch
    from rnnkit.models.language_model import LanguageModel
    torch.manual_seed(seed)
    meta = copy.deepcopy(trained.meta)
    meta["music"]["clock"] = False
    module = LanguageModel(trained.module.config).to(trained.device).eval()
    return dataclasses.replace(trained, module=module, meta=meta)


def test_the_grammar_makes_even_an_untrained_model_write_readable_abc(toy_run):
    _, trained = toy_run
    untrained = untrained_like(trained, seed=0)
    strict = untrained.sample(30, seed=0, max_tokens=400)
    finished = [t for t in strict if len(t) < 400]
    assert len(finished) >= 20 and all(well_formed(t) for t in finished)
    free = untrained.sample(30, seed=0, max_tokens=400, strict=False)
    assert sum(well_formed(t) for t in free if len(t) < 400) < len(finished) / 2


def test_keep_meter_fills_every_bar_even_for_an_untrained_model(toy_run):
    _, trained = toy_run
    untrained = untrained_like(trained, seed=1)
    tunes = [t for t in untrained.sample(30, seed=1, max_tokens=400, keep_meter=True) if len(t) < 400]
    assert len(tunes) >= 20 and sum(bars_ok(bars(t)) for t in tunes) >= 0.9 * len(tunes)
    assert sum(bars_ok(bars(t)) for t in untrained.sample(30, seed=1, max_tokens=400)) <= 3  # without it
    with pytest.raises(UsageError, match="drop --free"):
        untrained.sample(1, keep_meter=True, strict=False)


def rnnkit_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "rnnkit", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_cli_sample_and_check(toy_run):
    folder, _ = toy_run
    done = rnnkit_cli("music", "sample", folder / "run", "--num-tunes", 3, "--seed", 4, "--meter", "4/4")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("X:") == 3 and done.stdout.count("M:4/4") == 3 and done.stdout.count("K:") == 3
    (folder / "sampled.abc").write_text(done.stdout)
    checked = rnnkit_cli("music", "check", folder / "sampled.abc", "--against", folder / "run", "--json",
                         "--no-music21", "--no-abc2midi")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["tunes"] == 3 and report["meters"] == {"4/4": 3} and "median_longest_copied_notes" in report


def test_export_writes_midi_music21_reads_back(tmp_path):
    music21 = pytest.importorskip("music21")
    source = tmp_path / "two.abc"
    source.write_text(FIXTURES)
    done = rnnkit_cli("music", "export", source, "--out", tmp_path / "out", "--midi", "--musicxml")
    assert done.returncode == 0, done.stderr
    score = music21.converter.parse(tmp_path / "out" / "two-1.mid")
    assert len(score.flatten().notes) > 20
    assert (tmp_path / "out" / "two-4.musicxml").read_bytes().lstrip().startswith(b"<?xml")
    again = rnnkit_cli("music", "export", source, "--out", tmp_path / "out", "--midi")
    assert again.returncode == 2 and "exists" in again.stderr and "--force" in again.stderr
    assert rnnkit_cli("music", "export", source, "--out", tmp_path / "out", "--midi", "--force").returncode == 0


def test_music21_runs_with_a_time_limit_and_recovers():
    pytest.importorskip("music21")
    from rnnkit.music.export import Renderer
    text = detokenize(tokenize(fixture_tunes()[0]))
    with Renderer(seconds=1e-4) as hasty:
        with pytest.raises(ValueError, match="longer than"):
            hasty.render(text)
        hasty.seconds = 60
        assert hasty.render(text, ("midi", "musicxml"))["midi"].startswith(b"MThd")  # a fresh worker


@pytest.mark.parametrize("content, message", [
    ("T:no tunes here\nabc\n", "holds no tunes"),
    ("X:1\nM:2/4\nK:G\nV:1\nabc|\nX:2\nM:2/4\nK:HP\nab|\n", "no tune .* could be read"),
])
def test_bad_abc_files_get_one_line(tmp_path, content, message):
    source = tmp_path / "bad.abc"
    source.write_text(content)
    done = rnnkit_cli("music", "train", source, "--out", tmp_path / "run", "--max-steps", 1)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert __import__("re").search(message, done.stderr), done.stderr
    assert not (tmp_path / "run").exists()


def test_unknown_key_and_foreign_runs_are_refused(toy_run, trained_run):
    folder, _ = toy_run
    done = rnnkit_cli("music", "sample", folder / "run", "--key", "Bphr")
    assert done.returncode == 2 and "mode major" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = rnnkit_cli("sample", folder / "run")
    assert done.returncode == 2 and "rnnkit music" in done.stderr
    done = rnnkit_cli("music", "sample", trained_run)
    assert done.returncode == 2 and "not a tune model" in done.stderr


def test_a_model_in_the_tunes_own_keys(tmp_path):
    source = tmp_path / "toy.abc"
    source.write_text(toy_tunes(30))
    m = music_model.train([source], out=tmp_path / "run", transpose=None, max_steps=2, hidden_size=16,
                          embedding_size=8, batch_size=4, progress=False, log=lambda line: None)
    assert m.known("K") == ["D", "G"] and m.sample(1, key="G", seed=0)[0][1] == "K:G"
    with pytest.raises(UsageError, match="--key Am never occurs.*knows D G"):
        m.sample(1, key="Am")
    with pytest.raises(UsageError, match="--chords.*--transpose none"):
        music_model.train([source], out=tmp_path / "other", chords=True, max_steps=1)


def test_skipped_and_duplicate_tunes_are_counted(tmp_path):
    source = tmp_path / "mixed.abc"
    good = "X:1\nM:2/4\nL:1/8\nK:G\nGABc|d4|\n"
    source.write_text(good + "\n" + good.replace("X:1", "X:2") + "\nX:3\nM:2/4\nK:G\nV:1\nab|\n")
    tunes = read_tunes([source])
    assert len(tunes.tunes) == 1 and tunes.duplicates == 1 and sum(tunes.skipped.values()) == 1
    assert "1 tunes from 1 file(s), 1 skipped" in tunes.summary()
