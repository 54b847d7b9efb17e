"""Sampling: filters, determinism, batching, and the Python API."""

import pytest
import torch

import rnnkit
from rnnkit.errors import UsageError
from rnnkit.sampling import filter_logits


def test_top_k_keeps_k_largest():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    kept = torch.isfinite(filter_logits(logits, top_k=2, top_p=None))
    assert kept.tolist() == [[False, True, True, False]]


def test_top_p_keeps_smallest_set_reaching_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    assert torch.isfinite(filter_logits(logits, None, 0.5)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(filter_logits(logits, None, 0.75)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, None, 0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(filter_logits(logits, None, 1.0)).all()
    # order of the vocabulary does not matter
    shuffled = logits[:, [2, 0, 3, 1]]
    assert torch.isfinite(filter_logits(shuffled, None, 0.75)).tolist() == [[False, True, False, True]]


def test_generate_api(trained_run):
    model = rnnkit.load(trained_run)
    a = model.generate(prime="the ", length=60, temperature=0.8, seed=3)
    assert a == model.generate(prime="the ", length=60, temperature=0.8, seed=3)
    assert len(a) == 60
    batch = model.generate(length=30, num_samples=4, seed=3)
    assert isinstance(batch, list) and len(batch) == 4 and all(len(t) == 30 for t in batch)
    assert len(set(batch)) > 1
    # a model of the grammar writes its words: greedy output is made of known words
    words = set(model.generate(prime="the cat ", length=200, greedy=True).replace(".", " ").split())
    vocabulary = set("the cat a dog my friend old king her brother sees likes follows greets "
                     "moon bird river our house his horse".split())
    assert len(words & vocabulary) >= 3


def test_top_k_one_is_greedy(trained_run):
    model = rnnkit.load(trained_run)
    assert model.generate(length=50, top_k=1, seed=1) == model.generate(length=50, greedy=True)


def test_streaming_matches_result(trained_run):
    model = rnnkit.load(trained_run)
    pieces = []
    text = model.generate(length=40, seed=5, stream=pieces.append)
    assert "".join(pieces) == text


def test_evaluate_api(trained_run):
    model = rnnkit.load(trained_run)
    good = model.evaluate("the cat sees the moon.\nmy friend likes a bird.\n" * 20)
    bad = model.evaluate("moon the sees cat.\nbird a likes friend my.\n" * 20)
    assert good["nats_per_char"] < bad["nats_per_char"]
    with pytest.raises(UsageError, match="too short"):
        model.evaluate("t")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "irnn", "lnlstm", "bnlstm", "gfrnn"])
def test_generator_steps_match_the_sequence_forward(cell):
    """Sampling's fast stepper (fused one-step ops, or the projection table) computes exactly what
    the model computes over a whole sequence."""
    from rnnkit.config import ModelConfig
    from rnnkit.models.language_model import LanguageModel
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(vocab_size=7, cell=cell, hidden_size=6, num_layers=2, embedding_size=3)).eval()
    tokens = torch.randint(0, 7, (2, 5))
    logits, _ = model(tokens)
    stepper = model.generator(model.recurrent.init_state(2))
    assert stepper.fused == (cell not in ("lnlstm", "bnlstm", "gfrnn"))
    for t in range(5):
        torch.testing.assert_close(stepper.step(tokens[:, t]), logits[:, t], rtol=1e-5, atol=1e-6)


def test_next_token_draws_from_the_tempered_filtered_distribution():
    from rnnkit.sampling import SamplingConfig, next_token
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).expand(40_000, -1)
    generator = torch.Generator().manual_seed(0)

    def frequencies(**settings) -> torch.Tensor:
        tokens = next_token(logits, SamplingConfig(**settings), generator)
        return torch.bincount(tokens, minlength=4).double() / len(tokens)

    p = torch.softmax(logits[0].double(), 0)
    torch.testing.assert_close(frequencies(), p, atol=0.01, rtol=0)
    torch.testing.assert_close(frequencies(temperature=2.0), torch.softmax(logits[0].double() / 2, 0), atol=0.01, rtol=0)
    top2 = frequencies(top_k=2)
    assert top2[2:].sum() == 0 and abs(top2[0] - p[0] / p[:2].sum()) < 0.01
    nucleus = frequencies(top_p=0.8)  # p = .64, .24, .09, .03: the top two reach 0.8
    assert nucleus[2:].sum() == 0 and nucleus[1] > 0.2
    assert frequencies(temperature=1e-300)[0] == 1.0  # greedy in the limit, never NaN
    assert frequencies(greedy=True)[0] == 1.0


def test_interactive_sampling_answers_each_prompt_and_survives_a_bad_one(trained_run, cli, monkeypatch):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("the cat\nzzz\u2603\na dog\n\n"))
    status, out, err = cli("sample", trained_run, "--interactive", "--length", "20", "--seed", "3")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("the cat") and any(line.startswith("a dog") for line in lines)
    assert "outside the model's vocabulary" in err and err.count("prompt> ") == 4
    monkeypatch.setattr("sys.stdin", io.StringIO("the cat\nzzz\u2603\na dog\n\n"))
    assert cli("sample", trained_run, "--interactive", "--length", "20", "--seed", "3")[1] == out  # repeatable


def test_steps_before_filter_from_are_drawn_from_the_whole_distribution():
    """With top_k=1 every filtered step is greedy; the steps before `filter_from` are not."""
    from rnnkit.config import ModelConfig
    from rnnkit.models.language_model import LanguageModel
    from rnnkit.sampling import SamplingConfig, generate_tokens
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(vocab_size=5, hidden_size=8, num_layers=1, embedding_size=4)).eval()
    config = SamplingConfig(length=4, top_k=1, num_samples=300, seed=0)
    greedy = generate_tokens(model, [], 0, config)
    assert len({tuple(row) for row in greedy.tolist()}) == 1
    opened = generate_tokens(model, [], 0, config, filter_from=2)
    assert len({tuple(row[:2]) for row in opened.tolist()}) > 5  # the first two drawn freely
    by_start: dict = {}
    for row in opened.tolist():  # then greedy: the same two first tokens, the same rest
        by_start.setdefault(tuple(row[:2]), set()).add(tuple(row[2:]))
    assert all(len(rests) == 1 for rests in by_start.values())
