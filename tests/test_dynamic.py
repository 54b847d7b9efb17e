"""Dynamic evaluation: each token is scored before the model learns from it, the model adapts to
what recurs in the scored text, and its trained weights are back afterwards."""

import json

import numpy as np
import pytest
import torch

from rnnkit.config import ModelConfig
from rnnkit.dynamic import DynamicConfig, dynamic_token_nats
from rnnkit.models.language_model import LanguageModel

from .test_cli import assert_clean_error


def small_model(cell: str = "lstm") -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(ModelConfig(vocab_size=12, cell=cell, hidden_size=32, num_layers=2, embedding_size=8,
                                     dropout=0.1))


def repeated_tokens(length: int = 2000) -> np.ndarray:
    """A random 37-token phrase repeated: an untrained model cannot predict it, one that adapts can."""
    phrase = np.random.default_rng(3).integers(0, 12, 37)
    return np.resize(phrase, length).astype(np.int64)


def static_token_nats(model: LanguageModel, tokens: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(tokens)[None]
        logits, _ = model(x[:, :-1])
        return torch.nn.functional.cross_entropy(logits[0], x[0, 1:], reduction="none").double().numpy()


@pytest.mark.parametrize("cell", ["lstm", "lnlstm", "gru"])
def test_dynamic_evaluation_learns_what_recurs_and_restores_the_weights(cell):
    model, tokens = small_model(cell), repeated_tokens()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    static = static_token_nats(model, tokens)
    model.train()
    dynamic = dynamic_token_nats(model, tokens, DynamicConfig(lr=1e-2, segment=25))
    assert dynamic.shape == static.shape
    first = slice(0, 25)  # scored before any update: the trained weights' own scores
    np.testing.assert_allclose(dynamic[first], static[first], rtol=1e-5, atol=1e-6)
    late = slice(len(tokens) // 2, None)
    assert dynamic[late].mean() < 0.25 * static[late].mean(), (dynamic[late].mean(), static[late].mean())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert model.training  # scored without dropout, and left in the mode it was found in


def test_each_token_is_scored_from_the_text_before_it_only():
    model, tokens = small_model(), repeated_tokens(401)
    config = DynamicConfig(lr=3e-3, segment=20)
    whole = dynamic_token_nats(model, tokens, config)
    prefix = dynamic_token_nats(model, tokens[:201], config)  # 200 targets: 10 whole segments
    np.testing.assert_allclose(prefix, whole[:200], rtol=1e-6, atol=1e-7)
    changed = tokens.copy()
    changed[250:] = (changed[250:] + 1) % 12
    np.testing.assert_allclose(dynamic_token_nats(model, changed, config)[:240], whole[:240], rtol=1e-6, atol=1e-7)


def test_weights_are_restored_when_scoring_fails():
    model, tokens = small_model(), repeated_tokens(300)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokens[200] = 99  # outside the embedding: fails after several updates
    with pytest.raises(IndexError):
        dynamic_token_nats(model, tokens, DynamicConfig(lr=3e-3, segment=20))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_eval_dynamic_from_the_command_line(cli, trained_run, tmp_path):
    text = tmp_path / "king.txt"
    text.write_text("the old king greets his horse.\n" * 150, encoding="utf-8")
    status, out, _ = cli("eval", trained_run, text, "--json")
    static = json.loads(out)
    status, out, _ = cli("eval", trained_run, text, "--json", "--dynamic", "--dynamic-lr", "3e-3")
    dynamic = json.loads(out)
    assert status == 0 and dynamic["chars"] == static["chars"]
    assert dynamic["dynamic"] == {"lr": 3e-3, "decay": DynamicConfig().decay, "segment": DynamicConfig().segment}
    assert dynamic["nats_per_char"] < 0.5 * static["nats_per_char"], (dynamic, static)
    status, out, _ = cli("eval", trained_run, text, "--dynamic")
    assert status == 0 and out.rstrip().endswith("(dynamic evaluation)")


@pytest.mark.parametrize("flags, message", [
    (["--dynamic-lr", "0"], "--dynamic-lr must be above 0"),
    (["--dynamic-lr", "nan"], "--dynamic-lr must be above 0"),
    (["--dynamic-decay", "1"], "--dynamic-decay must be in [0, 1)"),
    (["--dynamic-segment", "0"], "--dynamic-segment must be at least 1"),
])
def test_bad_dynamic_settings_are_one_line(cli, trained_run, corpus_file, flags, message):
    assert_clean_error(*cli("eval", trained_run, corpus_file, "--dynamic", *flags), message)


def test_dynamic_evaluation_of_a_documents_model_is_refused(cli, tmp_path):
    import rnnkit
    corpus = tmp_path / "docs.txt"
    corpus.write_text("".join(f"line {i % 7} of the set\n" for i in range(300)), encoding="utf-8")
    rnnkit.train(corpus, out=tmp_path / "run", documents="line", max_steps=2, log=lambda line: None,
                 num_layers=1, hidden_size=16, embedding_size=8, batch_size=4, seq_length=16, eval_chars=500)
    assert_clean_error(*cli("eval", tmp_path / "run", corpus, "--dynamic"), "trained on documents",
                       "without --dynamic")
