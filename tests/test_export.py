"""ONNX export (onnxruntime gives the model's own probabilities) and int8 generation (the same top
next character on nearly every position)."""

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.errors import UsageError
from .conftest import TINY

ort = pytest.importorskip("onnxruntime")


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _float_steps(model, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token probabilities after each column of tokens (B, T), state carried: (T, B, V)."""
    module = model.module.eval()
    with torch.no_grad():
        logits, state = module(tokens[:, :1])
        stepper, out = module.generator(state), [torch.softmax(logits[:, -1], dim=1)]
        for t in range(1, tokens.shape[1]):
            out.append(torch.softmax(stepper.step(tokens[:, t]), dim=1))
    return torch.stack(out)


@pytest.fixture(scope="module")
def gru_run(corpus_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gru"
    rnnkit.train(corpus_file, out=out, cell="gru", max_steps=150, log=lambda line: None, progress=False,
                 **{**TINY, "num_layers": 2})
    return out


@pytest.mark.parametrize("which", ["lstm", "gru"])
def test_onnxruntime_gives_the_models_next_character_probabilities(cli, trained_run, gru_run, tmp_path, which):
    run = trained_run if which == "lstm" else gru_run
    status, _, err = cli("export", run, "--onnx", tmp_path / "step.onnx")
    assert status == 0 and "wrote" in err
    model = rnnkit.load(run, device="cpu")
    texts = ("the cat sees the moon.", "a dog likes a bird.", "her brother greets his horse.")
    tokens = torch.from_numpy(np.stack([model.vocab.encode(t)[:18] for t in texts]))  # (3, 18)
    expected = _float_steps(model, tokens)
    session = _session(tmp_path / "step.onnx")
    names = [i.name for i in session.get_inputs()]
    L, H = model.config.num_layers, model.config.hidden_size
    state = [np.zeros((L, 3, H), np.float32) for _ in names[1:]]
    for t in range(tokens.shape[1]):
        logits, *state = session.run(None, {"token": tokens[:, t].numpy(), **dict(zip(names[1:], state))})
        probabilities = torch.softmax(torch.from_numpy(logits), dim=1)
        torch.testing.assert_close(probabilities, expected[t], atol=1e-5, rtol=0)


def test_the_exported_file_describes_itself_and_is_rnnkits_to_replace(cli, trained_run, tmp_path):
    import json
    from rnnkit.export import metadata_of
    assert cli("export", trained_run, "--onnx", tmp_path / "m.onnx")[0] == 0
    metadata = metadata_of((tmp_path / "m.onnx").read_bytes())
    vocabulary = json.loads(metadata["vocabulary"])
    assert metadata["rnnkit_kind"] == "language_model_step" and json.loads(metadata["state_names"]) == ["state_h", "state_c"]
    assert rnnkit.load(trained_run).vocab.to_json() == vocabulary
    assert cli("export", trained_run, "--onnx", tmp_path / "m.onnx")[0] == 0  # its own file: replaced
    (tmp_path / "other.onnx").write_bytes(b"someone else's model")
    status, out, err = cli("export", trained_run, "--onnx", tmp_path / "other.onnx")
    assert status == 2 and "was not written by rnnkit" in err and (tmp_path / "other.onnx").read_bytes() == b"someone else's model"


def test_a_classifier_exports_with_the_same_outputs(cli, tmp_path):
    from rnnkit.estimators import RNNClassifier
    texts, labels = ["good fun", "dull mess", "fine film", "bad plot"] * 10, ["p", "n", "p", "n"] * 10
    model = RNNClassifier(hidden_size=8, embedding_size=4, epochs=2, ensemble="none", pooling="last",
                          bidirectional=True).fit(texts, labels)
    model.save(tmp_path / "clf")
    status, _, err = cli("export", tmp_path / "clf", "--onnx", tmp_path / "clf.onnx")
    assert status == 0, err
    ids = np.array([model.tokenizer_.encode(t) for t in ["good fun", "bad plot", "fine mess"]])
    logits = _session(tmp_path / "clf.onnx").run(None, {"tokens": ids})[0]
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), 1).numpy(),
                               model.network_proba(["good fun", "bad plot", "fine mess"]), atol=1e-5)
    RNNClassifier(hidden_size=8, embedding_size=4, epochs=1).fit(texts, labels).save(tmp_path / "stacked")
    status, _, err = cli("export", tmp_path / "stacked", "--onnx", tmp_path / "s.onnx")
    assert status == 2 and "--ensemble none" in err and not (tmp_path / "s.onnx").exists()


@pytest.mark.parametrize("options", [
    *(dict(cell=cell) for cell in ["lnlstm", "indrnn", "mingru", "minlstm", "gfrnn", "esn", "bnlstm"]),
    # standard cells the layer runs step by step: the norms, or zoneout's average, must not be dropped
    dict(cell="lstm", residual=True), dict(cell="gru", zoneout=0.3),
    dict(cell="mingru", residual=True, feed_forward=2),
], ids=str)
def test_custom_cells_export_with_the_same_steps(options):
    from types import SimpleNamespace
    from rnnkit.config import ModelConfig
    from rnnkit.export import language_model_onnx
    from rnnkit.models.language_model import LanguageModel
    torch.manual_seed(0)
    module = LanguageModel(ModelConfig(vocab_size=7, hidden_size=8, num_layers=2, embedding_size=4, **options))
    for _ in range(12):  # batch-normalised cells: running statistics for each of 6 steps
        module(torch.randint(0, 7, (16, 6)))
    module.eval()
    model = SimpleNamespace(module=module, vocab=SimpleNamespace(to_json=lambda: {"kind": "chars"}))
    session = ort.InferenceSession(language_model_onnx(model), providers=["CPUExecutionProvider"])
    assert not any(m.training for m in module.modules())  # the export leaves the model as it found it
    tokens = torch.randint(0, 7, (3, 6))
    with torch.no_grad():
        expected = module(tokens)[0]  # (3, 6, V): the whole sequence at once (minGRU/minLSTM: the scan)
    names = [i.name for i in session.get_inputs()]
    state = [np.zeros((2, 3, 8), np.float32) for _ in names[1:]]
    for t in range(tokens.shape[1]):
        logits, *state = session.run(None, {"token": tokens[:, t].numpy(), **dict(zip(names[1:], state))})
        torch.testing.assert_close(torch.from_numpy(logits), expected[:, t], atol=1e-5, rtol=0)


def test_export_refuses_bad_input_in_one_line(cli, trained_run, tmp_path, monkeypatch):
    for args, message in [((trained_run, "--onnx", tmp_path / "m.txt"), "must end in .onnx"),
                          ((tmp_path, "--onnx", tmp_path / "m.onnx"), "is not a model directory")]:
        status, out, err = cli("export", *args)
        assert status == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    status, _, err = cli("export", trained_run, "--onnx", tmp_path / "m.onnx")
    assert status == 2 and "pip install 'rnnkit[onnx]'" in err and not (tmp_path / "m.onnx").exists()


# ---------------------------------------------------------------------------- int8
def _top1_agreement(model, text: str) -> tuple[np.ndarray, np.ndarray]:
    """At each position of `text`: whether the int8 and float steps pick the same next token, and the
    float model's margin between its two best logits there."""
    tokens = torch.from_numpy(model.encode(text, "text"))[None]  # (1, T)
    quantized = model.int8().module
    with torch.no_grad():
        logits, state = model.module(tokens[:, :1])
        exact, fast = model.module.generator(state), quantized.generator(state)
        same, margins = [], []
        for t in range(1, tokens.shape[1]):
            float_logits, int8_logits = exact.step(tokens[:, t])[0], fast.step(tokens[:, t])[0]
            best_two = float_logits.topk(2).values
            same.append(int(float_logits.argmax()) == int(int8_logits.argmax()))
            margins.append(float(best_two[0] - best_two[1]))
    return np.array(same), np.array(margins)


@pytest.mark.parametrize("which", ["lstm", "gru"])
def test_int8_steps_choose_the_same_next_character_almost_everywhere(trained_run, gru_run, corpus_file, which):
    if not [e for e in torch.backends.quantized.supported_engines if e != "none"]:
        pytest.skip("this PyTorch build has no quantised kernels for this CPU")
    model = rnnkit.load(trained_run if which == "lstm" else gru_run, device="cpu")
    same, margins = _top1_agreement(model, corpus_file.read_text()[:3000])
    # The grammar has true ties (two verbs equally likely): there the rounding of int8 may pick the
    # other one. Wherever the float model prefers one token by 0.05 in logit or more, int8 must agree.
    assert same.mean() >= 0.99
    assert same[margins > 0.05].all(), margins[~same]


def test_sample_int8_writes_text_and_refuses_what_it_cannot_do(cli, trained_run, corpus_file, tmp_path):
    if not [e for e in torch.backends.quantized.supported_engines if e != "none"]:
        pytest.skip("this PyTorch build has no quantised kernels for this CPU")
    status, out, _ = cli("sample", trained_run, "--int8", "--length", "40", "--seed", "1", "--prime", "the ")
    assert status == 0 and out.startswith("the ") and len(out) >= 40
    status, _, err = cli("sample", trained_run, "--int8", "--device", "cuda")
    assert status == 2 and "--int8 runs on the CPU" in err
    rnnkit.train(corpus_file, out=tmp_path / "ln", cell="lnlstm", max_steps=2, log=lambda line: None, progress=False,
                 **TINY)
    with pytest.raises(UsageError, match="--int8 covers lstm, gru, rnn and irnn"):
        rnnkit.load(tmp_path / "ln").int8()
    from rnnkit.config import ModelConfig
    from rnnkit.models.language_model import LanguageModel
    from rnnkit.quantized import Int8LanguageModel
    for options in (dict(residual=True), dict(zoneout=0.2)):  # its int8 steps would leave those out
        with pytest.raises(UsageError, match="--residual or --zoneout"):
            Int8LanguageModel(LanguageModel(ModelConfig(vocab_size=7, hidden_size=8, **options)))
