"""The command line: smoke tests of every command, and bad input of every kind a user can give.

Bad input must give exactly one line on stderr, exit status 2, no traceback, and leave the
user's files untouched.
"""

import json
import re
import subprocess

import pytest

from .conftest import python_cli

TINY_FLAGS = ["--num-layers", "1", "--hidden-size", "64", "--embedding-size", "16", "--batch-size", "16",
              "--seq-length", "32", "--lr", "1e-2", "--eval-chars", "2000"]


def assert_clean_error(status, out, err, *fragments):
    assert status == 2, (status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# ------------------------------------------------------------------------- smoke tests
def test_console_script_end_to_end(corpus_file, tmp_path):
    out = tmp_path / "run"
    train = subprocess.run(python_cli() + ["train", str(corpus_file), "--out", str(out), "--max-steps", "20"]
                           + TINY_FLAGS, capture_output=True, text=True)
    assert train.returncode == 0, train.stderr
    assert train.stdout == ""  # logs go to stderr
    assert "best val" in train.stderr
    sample = subprocess.run(python_cli() + ["sample", str(out), "--length", "50", "--seed", "1"],
                            capture_output=True, text=True)
    assert sample.returncode == 0, sample.stderr
    assert len(sample.stdout) == 51  # exactly the text and a final newline
    assert sample.stderr == ""


def test_sample_is_reproducible_and_primed(cli, trained_run):
    status, first, _ = cli("sample", trained_run, "--length", "80", "--seed", "7", "--prime", "the cat")
    assert status == 0
    _, second, _ = cli("sample", trained_run, "--length", "80", "--seed", "7", "--prime", "the cat")
    _, other, _ = cli("sample", trained_run, "--length", "80", "--seed", "8", "--prime", "the cat")
    assert first == second != other
    assert first.startswith("the cat") and len(first) == len("the cat") + 80 + 1


def test_sample_options(cli, trained_run):
    status, out, _ = cli("sample", trained_run, "--length", "40", "--num-samples", "3", "--seed", "1",
                         "--top-k", "3", "--top-p", "0.9", "--temperature", "0.7")
    assert status == 0
    samples = out[:-1].split("\n\n----\n\n")
    assert len(samples) == 3 and all(len(text) == 40 for text in samples) and len(set(samples)) > 1
    _, joined, _ = cli("sample", trained_run, "--length", "10", "--num-samples", "2", "--separator", "|")
    assert len(joined) == 10 + 1 + 10 + 1 and joined[10] == "|"
    _, greedy_a, _ = cli("sample", trained_run, "--greedy", "--length", "60", "--seed", "1")
    _, greedy_b, _ = cli("sample", trained_run, "--greedy", "--length", "60", "--seed", "2")
    assert greedy_a == greedy_b
    # each filter changes what is drawn: in the limit each one is the greedy choice, and at a
    # high temperature the same seed writes something else
    for flags in (["--temperature", "1e-300"], ["--top-k", "1"], ["--top-p", "1e-9"]):
        _, limit, _ = cli("sample", trained_run, "--length", "60", "--seed", "5", *flags)
        assert limit == greedy_a, flags
    _, hot, _ = cli("sample", trained_run, "--length", "60", "--seed", "5", "--temperature", "3")
    _, plain, _ = cli("sample", trained_run, "--length", "60", "--seed", "5")
    assert hot != plain and len(set(hot)) > len(set(greedy_a))


def test_sample_with_an_unknown_prime_writes_nothing(cli, trained_run):
    status, out, err = cli("sample", trained_run, "--prime", "the 🐍")
    assert status == 2 and out == "" and "outside the model's vocabulary" in err


def test_eval_json(cli, trained_run, corpus_file):
    status, out, _ = cli("eval", trained_run, corpus_file, "--json")
    assert status == 0
    result = json.loads(out)
    assert result["bits_per_char"] == pytest.approx(result["nats_per_char"] / 0.6931471805599453)
    assert result["chars"] > 0.99 * len(corpus_file.read_text())
    assert result["nats_per_char"] < 0.7


def test_info(cli, trained_run):
    status, out, _ = cli("info", trained_run, "--json")
    info = json.loads(out)
    assert info["vocab_size"] > 20 and info["num_parameters"] > 1000
    assert info["model_config"]["cell"] == "lstm" and info["metrics"]
    status, text, _ = cli("info", trained_run)
    assert status == 0 and "parameters" in text and "best val" in text


def test_help_shows_every_config_field_with_its_default(cli):
    # the flags are generated from the config dataclasses: help and defaults cannot drift from them
    from dataclasses import MISSING, fields

    from rnnkit.config import ModelConfig, TrainConfig
    from rnnkit.sampling import SamplingConfig
    for command, configs in (("train", (ModelConfig, TrainConfig)), ("sample", (SamplingConfig,))):
        status, out, _ = cli(command, "--help")
        assert status == 0
        text = " ".join(out.split())  # argparse wraps lines
        for config in configs:
            for f in fields(config):
                if f.default is MISSING:
                    continue
                flag = "--" + f.name.replace("_", "-")
                assert flag in text, flag
                if f.default not in (None, False):
                    shown = f"{f.default:g}" if isinstance(f.default, float) else str(f.default)
                    assert re.search(re.escape(flag) + r"\b.*?\(default " + re.escape(shown) + r"\)", text), flag
    _, out, _ = cli("train", "--help")
    for flag in ("--resume", "--bytes", "--corpus", "--val-file"):
        assert flag in out


def test_every_command_renders_its_help(cli):
    """argparse formats help with %: a stray % in any flag's help (generated from the config comments)
    would turn `--help` into a traceback. Every command and action is asked for its help."""
    import argparse

    from rnnkit.cli import build_parser

    def paths(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield (*prefix, name)
                    yield from paths(child, (*prefix, name))
    commands = list(paths(build_parser()[0], ()))
    assert ("forecast", "train") in commands and len(commands) > 20
    for command in commands:
        status, out, _ = cli(*command, "--help")
        assert status == 0 and "usage:" in out, command


# ------------------------------------------------------------------------- bad input
def test_missing_file(cli, tmp_path):
    assert_clean_error(*cli("train", tmp_path / "nope.txt"), "no such file")


def test_empty_file(cli, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    assert_clean_error(*cli("train", tmp_path / "empty.txt"), "is empty")


def test_directory_as_file(cli, tmp_path):
    assert_clean_error(*cli("train", tmp_path), "is a directory")


def test_too_short_for_one_batch(cli, tmp_path):
    (tmp_path / "short.txt").write_text("hello world\n" * 20)
    assert_clean_error(*cli("train", tmp_path / "short.txt", "--out", tmp_path / "r"), "too short",
                              "--batch-size 32 x --seq-length 64 needs 2080")
    assert not (tmp_path / "r").exists()  # nothing half-made left behind


def test_invalid_utf8(cli, tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 ".encode("latin-1") * 5000)
    assert_clean_error(*cli("train", tmp_path / "latin1.txt", "--out", tmp_path / "r"),
                       "not valid UTF-8", "--bytes")
    assert not (tmp_path / "r").exists()


def test_out_is_foreign_directory(cli, corpus_file, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert_clean_error(*cli("train", corpus_file, "--out", mine), "not an rnnkit run directory")
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "precious"


def test_out_is_existing_run(cli, corpus_file, trained_run):
    before = (trained_run / "rnnkit.json").read_bytes()
    assert_clean_error(*cli("train", corpus_file, "--out", trained_run), "already holds an rnnkit run", "--resume")
    assert (trained_run / "rnnkit.json").read_bytes() == before


def test_prime_outside_vocabulary(cli, trained_run):
    assert_clean_error(*cli("sample", trained_run, "--prime", "the cat Ω€"), "outside the model's vocabulary",
                       "'Ω'", "'€'")


def test_resume_with_different_corpus(cli, trained_run, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("something else entirely\n" * 500)
    assert_clean_error(*cli("train", other, "--resume", trained_run), "not the corpus this run was trained on",
                       "vocabulary differs")


def test_resume_cannot_change_the_model(cli, trained_run):
    assert_clean_error(*cli("train", "--resume", trained_run, "--hidden-size", "64"), "drop --hidden-size")


def test_truncated_checkpoint(cli, trained_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for f in trained_run.iterdir():
        if f.is_file():
            data = f.read_bytes()
            (run / f.name).write_bytes(data[: len(data) // 2] if f.suffix == ".safetensors" else data)
    assert_clean_error(*cli("sample", run), "corrupted")


def test_not_a_run_directory(cli, tmp_path):
    assert_clean_error(*cli("sample", tmp_path), "not an rnnkit run directory")
    assert_clean_error(*cli("info", tmp_path / "nope"), "no such directory")


@pytest.mark.parametrize("flags, fragment", [
    (["--hidden-size", "0"], "--hidden-size must be > 0"),
    (["--num-layers", "-1"], "--num-layers must be > 0"),
    (["--batch-size", "0"], "--batch-size must be > 0"),
    (["--seq-length", "0"], "--seq-length must be > 0"),
    (["--dropout", "1.0"], "--dropout must be in [0, 1)"),
    (["--dropout", "-0.1"], "--dropout must be in [0, 1)"),
    (["--lr", "0"], "--lr must be > 0"),
    (["--time", "-5"], "--time must be > 0"),
    (["--time", "inf"], "--time must be a finite number"),
    (["--epochs", "inf"], "--epochs must be a finite number"),
    (["--lr", "inf"], "--lr must be a finite number"),
    (["--weight-decay", "nan"], "--weight-decay must be a finite number"),
    (["--clip", "nan"], "--clip must be a finite number"),
    (["--seed", str(2**64)], "--seed must be in 0..2^63-1"),
    (["--cell", "transformer"], "invalid choice"),
    (["--hidden-size", "many"], "invalid int value"),
])
def test_nonsense_training_values(cli, corpus_file, tmp_path, flags, fragment):
    assert_clean_error(*cli("train", corpus_file, "--out", tmp_path / "r", *flags), fragment)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flags, fragment", [
    (["--temperature", "0"], "--temperature must be a finite number > 0"),
    (["--temperature", "-1"], "--temperature must be a finite number > 0"),
    (["--temperature", "nan"], "--temperature must be a finite number > 0"),
    (["--top-p", "1.5"], "--top-p must be a number in (0, 1]"),
    (["--top-p", "0"], "--top-p must be a number in (0, 1]"),
    (["--top-k", "0"], "--top-k must be a whole number >= 1"),
    (["--num-samples", "0"], "--num-samples must be a whole number in 1..10000"),
    (["--num-samples", str(10**9)], "--num-samples must be a whole number in 1..10000"),
    (["--length", str(10**12)], "at most 50,000,000 are generated"),
    (["--seed", str(2**64)], "--seed must be a whole number in 0..2^63-1"),
])
def test_nonsense_sampling_values(cli, trained_run, flags, fragment):
    assert_clean_error(*cli("sample", trained_run, *flags), fragment)


def test_eval_text_with_unknown_characters(cli, trained_run, tmp_path):
    (tmp_path / "t.txt").write_text("the cat sees 🐍")
    assert_clean_error(*cli("eval", trained_run, tmp_path / "t.txt"), "outside the model's vocabulary", "'🐍'")


def test_eval_invalid_utf8(cli, trained_run, tmp_path):
    (tmp_path / "latin1.txt").write_bytes("the caf\xe9".encode("latin-1"))
    assert_clean_error(*cli("eval", trained_run, tmp_path / "latin1.txt"), "not valid UTF-8 (bad byte at offset 7)",
                       "reads UTF-8")


def test_every_command_describes_itself_without_stray_format_marks(cli):
    for command in (["eval"], ["info"], ["classify", "train"], ["tag", "train"], ["seq2seq", "train"],
                    ["forecast", "train"], ["forecast", "predict"], ["forecast", "backtest"], ["forecast", "explain"],
                    ["anomaly", "train"], ["anomaly", "score"], ["anomaly", "explain"], ["music", "train"],
                    ["music", "sample"], ["music", "check"], ["music", "export"], ["embed"],
                    ["caption", "train"], ["caption", "predict"], ["export"]):
        status, out, _ = cli(*command, "--help")
        assert status == 0 and "%%" not in out
        description = out.split("\n\n")[1]
        assert len(description) > 30 and not description.startswith(("positional", "options")), command


def test_language_model_commands_name_a_model_directory_of_another_kind(cli, tmp_path):
    from rnnkit.estimators import RNNClassifier
    RNNClassifier(hidden_size=8, embedding_size=4, epochs=1).fit(["ab", "ba"] * 10, [0, 1] * 10).save(tmp_path / "clf")
    for command in ("sample", "info", "plot"):
        assert_clean_error(*cli(command, tmp_path / "clf"), "holds a 'RNNClassifier' model, not a language model",
                           "rnnkit classify")


def test_a_missing_extra_is_named(cli, trained_run, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert_clean_error(*cli("serve", trained_run), "needs uvicorn", "pip install 'rnnkit[serve]'")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "statsmodels" else real(name, *a))
    assert_clean_error(*cli("forecast", "backtest", "d.csv", "--time-col", "t", "--value-col", "v", "--horizon", "2"),
                       "needs statsmodels", "pip install 'rnnkit[timeseries]'")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "music21" else real(name, *a))
    assert_clean_error(*cli("music", "train", "--corpus", "folk", "--out", "x"), "install it with `pip install music21")
    assert_clean_error(*cli("music", "export", "t.abc", "--out", "x", "--midi"), "needs music21",
                       "pip install 'rnnkit[music]'")


def test_every_command_that_runs_a_model_takes_a_device(cli, trained_run, corpus_file):
    import torch
    runs = [["sample", trained_run, "--length", "5"], ["eval", trained_run, corpus_file],
            ["units", trained_run, corpus_file, "--chars", "200"]]
    for args in runs:
        assert cli(*args, "--device", "cpu")[0] == 0, args
        if not torch.cuda.is_available():
            assert_clean_error(*cli(*args, "--device", "cuda"), "PyTorch sees no CUDA GPU")
    for command in (["viz"], ["diagnose"], ["serve"], ["classify", "predict"], ["tag", "predict"],
                    ["seq2seq", "predict"], ["forecast", "predict"], ["forecast", "explain"], ["anomaly", "score"],
                    ["anomaly", "explain"], ["music", "sample"], ["embed"], ["caption", "predict"]):
        assert "--device {auto,cpu,cuda}" in " ".join(cli(*command, "--help")[1].split()), command


def test_quiet_training_prints_nothing(cli, corpus_file, tmp_path):
    status, out, err = cli("train", corpus_file, "--out", tmp_path / "r", "--max-steps", "3", "--quiet", *TINY_FLAGS)
    assert status == 0 and out == "" and err == ""
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"t{i % 3},{i % 2}\n" for i in range(20)))
    status, out, err = cli("classify", "train", tmp_path / "d.csv", "--text-col", "text", "--label-col", "label",
                           "--out", tmp_path / "m", "--epochs", "1", "--hidden-size", "8", "--quiet")
    assert status == 0 and out == "" and err == ""
    status, _, err = cli("train", corpus_file, "--out", tmp_path / "r2", "--max-steps", "3", *TINY_FLAGS)
    assert status == 0 and "done: 3 steps" in err  # and without --quiet, the log is there


@pytest.mark.parametrize("flags, message", [
    (["--cell", "esn", "--spectral-radius", "0"], "--spectral-radius must be in"),
    (["--cell", "gfrnn", "--residual"], "leave out --residual"),
    (["--cell", "mingru", "--feed-forward", "2"], "add --residual"),
    (["--cell", "bnlstm", "--zoneout", "0.1"], "--zoneout does not apply to the bnlstm cell"),
    (["--weight-drop", "1"], "--weight-drop must be in [0, 1)"),
    (["--cell", "minlstm", "--weight-drop", "0.2"], "which the minlstm cell does not learn"),
])
def test_new_cell_options_refuse_bad_values_in_one_line_and_write_nothing(cli, corpus_file, tmp_path, flags, message):
    status, out, err = cli("train", corpus_file, "--out", tmp_path / "run", "--max-steps", "2", *flags)
    assert status == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, message", [
    (["--weight-drop", "1"], "--weight-drop must be in [0, 1)"),
    (["--cell", "esn", "--weight-drop", "0.2"], "which the esn cell does not learn"),
    (["--initial-state-noise", "-0.1"], "--initial-state-noise must be in 0..10"),
    (["--initial-state-noise", "nan"], "--initial-state-noise must be a finite number"),
])
def test_task_commands_refuse_bad_weight_drop_or_noise_in_one_line_and_write_nothing(cli, tmp_path, flags, message):
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"t{i % 3},{i % 2}\n" for i in range(20)))
    (tmp_path / "t.csv").write_text("tokens,tags\n" + "a b,X Y\n" * 10)
    for command, columns, data in ((["classify"], ["--text-col", "text", "--label-col", "label"], "d.csv"),
                                   (["tag"], ["--tokens-col", "tokens", "--tags-col", "tags"], "t.csv")):
        status, out, err = cli(*command, "train", tmp_path / data, *columns, "--out", tmp_path / "m", *flags)
        assert status == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, command
        assert not (tmp_path / "m").exists()
