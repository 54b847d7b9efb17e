"""Denormal numbers count as zero while rnnkit trains, predicts and samples (they slow x86 arithmetic
many times over), and the caller's own mode is back afterwards."""

import torch

from rnnkit.config import ModelConfig
from rnnkit.estimators import RNNClassifier
from rnnkit.models.language_model import LanguageModel
from rnnkit.precision import flush_denormals, flushing_denormals
from rnnkit.sampling import SamplingConfig, generate_tokens

TINY = torch.tensor(1e-39, dtype=torch.float32)  # a denormal: below float32's smallest normal, 1.18e-38


def test_denormals_are_zero_inside_the_block_and_the_callers_mode_is_back_after():
    assert not flushing_denormals() and (TINY * 1.0).item() > 0
    with flush_denormals():
        assert flushing_denormals() and (TINY * 1.0).item() == 0.0
        with flush_denormals():
            pass
        assert flushing_denormals()  # a nested block leaves the outer one's mode alone
    assert not flushing_denormals() and (TINY * 1.0).item() > 0
    torch.set_flush_denormal(True)  # a caller that flushes already keeps flushing
    try:
        with flush_denormals():
            pass
        assert flushing_denormals()
    finally:
        torch.set_flush_denormal(False)


def test_training_predicting_and_sampling_flush_denormals_and_restore_the_mode():
    seen = []
    X, y = ["ab", "ba", "aab", "bba"] * 8, [0, 1, 0, 1] * 8
    clf = RNNClassifier(hidden_size=8, embedding_size=4, epochs=2, level="char", bidirectional=False,
                        ensemble="none", random_state=0)
    clf.fit(X, y, on_epoch_end=lambda estimator, row: seen.append(("training", flushing_denormals())))
    assert seen == [("training", True)] * 2 and not flushing_denormals()
    forward = clf.model_.forward
    clf.model_.forward = lambda *args: seen.append(("predicting", flushing_denormals())) or forward(*args)
    clf.predict(X[:3])
    assert seen[-1] == ("predicting", True) and not flushing_denormals()
    model = LanguageModel(ModelConfig(vocab_size=5, hidden_size=8, num_layers=1, embedding_size=4)).eval()
    generate_tokens(model, [1, 2], 0, SamplingConfig(length=3, seed=0),
                    on_tokens=lambda tokens: seen.append(("sampling", flushing_denormals())))
    assert seen[-3:] == [("sampling", True)] * 3 and not flushing_denormals()


def test_the_command_line_flushes_denormals_while_it_runs(cli, monkeypatch, tmp_path):
    import rnnkit.cli as command_line
    seen, build = [], command_line.build_parser

    def recording_commands():
        parser, commands = build()
        return parser, {name: lambda args: seen.append(flushing_denormals()) or 0 for name in commands}
    monkeypatch.setattr(command_line, "build_parser", recording_commands)
    assert cli("info", tmp_path)[0] == 0 and seen == [True] and not flushing_denormals()
