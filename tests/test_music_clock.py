"""The bar clock: the tracker counts what the timeline counts, training inputs carry the tokens,
sampling feeds the model what training fed it, and a small model learns the toy tunes better
with it than without (lower loss, and the 8-bar parts)."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from rnnkit.music import model as music_model
from rnnkit.music.abc import is_bar, tokenize
from rnnkit.music.check import bars, is_aabb
from rnnkit.music.clock import ROOM_MAX, ROOM_STEP, ROOMS, Clock, clocked_inputs, decode, encode
from rnnkit.music.timing import timeline
from rnnkit.music.vocab import END, AbcVocabulary

from .test_music import fixture_tunes, toy_tunes


def _clock_of(tokens: list[str], symbols: tuple[str, ...] | None = None) -> list[int]:
    """The clock after each token of one tune, stepped as sampling steps it."""
    symbols = symbols or tuple(sorted(set(tokens))) + (END,)
    clock = Clock(symbols, END, 1, "cpu")
    ids = []
    for token in tokens:
        clock.observe(torch.tensor([symbols.index(token)]))
        ids.append(int(clock.ids()[0]))
    return ids


@pytest.mark.parametrize("text", fixture_tunes() + toy_tunes(2).split("\n\n"))
def test_the_clock_counts_the_room_left_in_the_bar_as_the_timeline_does(text):
    assert ROOM_STEP == 1 / 48
    tokens = tokenize(text)
    ids = _clock_of(tokens)
    assert ids[:2] == [0, 0]  # no clock inside the header
    for (token, elapsed, meter, _), clock in zip(timeline(tokens), ids[3:]):
        room = meter if is_bar(token) else meter - elapsed
        expected = ROOMS - 1 if room < 0 else 1 + min(round(room / Fraction(1, 48)), ROOM_MAX)
        assert decode(torch.tensor(clock))[0] == expected, (token, room)


def test_the_bar_count_restarts_with_each_section():
    tokens = tokenize("X:1\nM:2/4\nL:1/8\nK:G\n|:GABc|d4|GABc|d4:|\n|:e4|d4|]\n")
    counts = [int(decode(torch.tensor(clock))[1]) - 1 for clock in _clock_of(tokens)[3:]]
    bar_lines = [count for token, count in zip(tokens[3:], counts) if is_bar(token)]
    assert bar_lines == [0, 1, 2, 3, 0, 0, 1, 0]  # |: resets; | counts; :| and |] end a section


def test_the_clock_knows_the_pickup_and_what_a_short_bar_owes():
    tokens = tokenize("X:1\nM:2/4\nL:1/8\nK:G\nA|GABc|d3:|\n|:B|cdef|g4|]\n")
    clocks = [[int(b) for b in decode(torch.tensor(c))] for c in _clock_of(tokens)[3:]]
    after = dict(zip(range(len(tokens) - 3), clocks))
    at = {token: i for i, token in enumerate(tokens[3:])}  # last position of each token
    eighth = round(1 / 8 / ROOM_STEP)
    assert after[0][3] == 0  # the pickup is not known before its bar closes
    assert after[1][2] == 3 * eighth and after[1][3] == 1 + eighth  # "A|": owes 3/8, the pickup is 1/8
    assert after[at[":|"]][2] == eighth  # "d3:|" ends the part 1/8 short
    assert after[at["B"]][2] == eighth and after[at["g4"]][2] == 0  # owed until the next bar line; full bars owe nothing
    assert all(c[3] == 1 + eighth for c in clocks[2:])


def test_clock_ids_round_trip():
    buckets = [torch.tensor([0, 5, 98]), torch.tensor([0, 17, 3]), torch.tensor([48, 0, 7]), torch.tensor([49, 1, 0])]
    assert all(torch.equal(a, b) for a, b in zip(decode(encode(*buckets)), buckets))


def test_training_inputs_carry_the_tokens_and_their_clock():
    tunes = [tokenize(t) for t in toy_tunes(5).split("\n\n")]
    vocab = AbcVocabulary.learn(tunes)
    pieces = [vocab.ids(t) for t in tunes]
    inputs = clocked_inputs(pieces, vocab.symbols, END)
    V = len(vocab)
    for piece, read, tune in zip(pieces, inputs, tunes):
        assert np.array_equal(read % V, piece)
        assert (read[:2] // V == 0).all() and (read[3:] // V > 0).all()
        assert list(read // V) == _clock_of(tune, vocab.symbols)


@pytest.fixture(scope="module")
def toy_source(tmp_path_factory):
    source = tmp_path_factory.mktemp("clock") / "toy.abc"
    source.write_text(toy_tunes(120), encoding="utf-8")
    return source


def _trained(source, out, clock):
    return music_model.train([source], out=out, clock=clock, max_steps=400, hidden_size=64, embedding_size=16,
                             batch_size=16, lr=1e-2, dropout=0.0, progress=False, log=lambda line: None)


def test_sampling_feeds_the_model_what_training_fed_it(toy_source, tmp_path):
    m = _trained(toy_source, tmp_path / "run", clock=True)
    assert m.clocked and music_model.load(tmp_path / "run").clocked
    tune = music_model.split_tunes(m, "val")[0]
    ids = m.vocab.ids(tune)
    inputs = np.concatenate([[m.vocab.end_id], clocked_inputs([ids], m.vocab.symbols, END)[0]])
    with torch.no_grad():
        whole, state = m.module(torch.from_numpy(inputs.astype(np.int64))[None].to(m.device))  # (1, T, V) at once
        logits, state = m.module(torch.tensor([[m.vocab.end_id]], device=m.device))
        stepper = m.module.generator(state)
        clock = Clock(m.vocab.symbols, END, 1, m.device)
        stepped = [logits[:, -1]]
        for i in ids:
            token = torch.tensor([int(i)], device=m.device)
            clock.observe(token)
            stepped.append(stepper.step(token + len(m.vocab) * clock.ids()))
    # on a GPU, cuDNN's sequence kernel multiplies in TF32 (PyTorch's default) and the step path does not
    assert torch.allclose(torch.cat(stepped), whole[0], atol=1e-5 if m.device.type == "cpu" else 2e-2)


def test_the_clock_teaches_a_small_model_the_bars_and_the_form(toy_source, tmp_path):
    results = {}
    for clock in (True, False):
        m = _trained(toy_source, tmp_path / f"run-{clock}", clock)
        tunes = m.sample(40, seed=1)
        results[clock] = (m.score(music_model.split_tunes(m, "val"))["nats_per_token"],
                          sum(is_aabb(bars(t)) for t in tunes))
    (loss, aabb), (loss_without, aabb_without) = results[True], results[False]
    assert loss < loss_without - 0.02, results  # 0.24 against 0.29 when written
    assert aabb >= aabb_without + 5, results  # two 8-bar parts: 8 of 40 against 0


def test_a_run_from_before_the_clock_loads_and_samples_without_it(toy_source, tmp_path):
    import json
    m = music_model.train([toy_source], out=tmp_path / "run", clock=False, max_steps=2, hidden_size=16,
                          embedding_size=8, batch_size=4, progress=False, log=lambda line: None)
    assert not (tmp_path / "run" / "data" / "inputs.bin").exists()
    meta_path = tmp_path / "run" / "rnnkit.json"
    meta = json.loads(meta_path.read_text())
    del meta["music"]["clock"]  # written before the bar clock existed
    meta_path.write_text(json.dumps(meta))
    old = music_model.load(tmp_path / "run")
    assert not old.clocked and isinstance(old.module.embed, torch.nn.Embedding)
    assert old.sample(2, seed=0, max_tokens=50) == m.sample(2, seed=0, max_tokens=50)
