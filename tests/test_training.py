"""The trainer: a model really learns, resume reproduces an uninterrupted run, budgets, divergence."""

import re

import pytest
import torch

import rnnkit
from rnnkit.precision import onednn_bf16_rnn
from rnnkit.config import TrainConfig
from rnnkit.errors import UsageError
from rnnkit.training import TrainingDiverged, TrainingInterrupted, learning_rate

from .conftest import TINY, straight_and_resumed

quiet = dict(log=lambda line: None)


def test_tiny_lstm_learns_the_grammar(trained_run):
    # a unigram model of this text scores about 2.8 nats/char; the grammar itself ~0.1
    model = rnnkit.load(trained_run)
    assert model.meta["best_val"] < 0.6, model.meta["metrics"]
    assert model.meta["metrics"][0]["val_nats"] > model.meta["best_val"] + 1.0


@pytest.mark.parametrize("cell, optimizer, lr", [("gru", "adam", 1e-2), ("rnn", "adam", 1e-2), ("irnn", "sgd", 0.1),
                                               ("mingru", "adam", 1e-2), ("minlstm", "adam", 1e-2)])
def test_every_cell_learns(cell, optimizer, lr, corpus_file, tmp_path):
    # IRNN is trained with SGD as Le et al. (2015) did: Adam's sign-like steps move every entry
    # of the identity recurrence at once, its spectral radius passes 1 within a few steps, and
    # the unbounded ReLU state (carried across chunks) explodes.
    model = rnnkit.train(corpus_file, out=tmp_path / cell, cell=cell, optimizer=optimizer, max_steps=150,
                         **{**TINY, "lr": lr}, **quiet)
    assert model.meta["best_val"] < 1.0, (cell, model.meta["metrics"])


def test_zoneout_lstm_learns(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "z", zoneout=0.1, max_steps=150, **TINY, **quiet)
    assert model.meta["best_val"] < 1.0 and model.config.zoneout == 0.1
    assert len(model.generate(length=20, seed=0)) == 20  # sampling steps with the expectation


def test_weight_dropped_layer_norm_lstm_learns_and_reloads(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "wd", cell="lnlstm", weight_drop=0.2, max_steps=150, **TINY,
                         **quiet)
    assert model.meta["best_val"] < 1.0, model.meta["metrics"]
    again = rnnkit.load(tmp_path / "wd")
    assert again.config.weight_drop == 0.2
    text = "the cat sees the moon.\n" * 10
    assert again.evaluate(text) == model.evaluate(text)  # evaluation uses the whole matrices: no randomness


def test_residual_min_gru_with_feed_forward_blocks_learns_and_reloads(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "ff", cell="mingru", residual=True, feed_forward=2,
                         max_steps=150, **{**TINY, "lr": 1e-2, "num_layers": 2}, **quiet)
    assert model.meta["best_val"] < 1.0, model.meta["metrics"]
    again = rnnkit.load(tmp_path / "ff")
    assert again.config.feed_forward == 2 and len(again.module.recurrent.feed_forwards) == 2
    text = "the cat sees the moon.\n" * 10
    assert again.evaluate(text) == model.evaluate(text)
    assert again.generate(prime="the cat", length=20, seed=1) == model.generate(prime="the cat", length=20, seed=1)


def test_layer_norm_lstm_learns(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "ln", cell="lnlstm", max_steps=150, **TINY, **quiet)
    assert model.meta["best_val"] < 1.0, model.meta["metrics"]
    text = model.generate(prime="the cat", length=20, seed=1)  # sampling runs the cell's step path
    assert len(text) == 20 and set(text) <= set(corpus_file.read_text())


def test_batch_norm_lstm_learns_and_keeps_its_statistics_through_save_and_load(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "bn", cell="bnlstm", max_steps=150, **TINY, **quiet)
    assert model.meta["best_val"] < 1.0, model.meta["metrics"]
    cell = model.module.recurrent.cells[0]
    assert int(cell.steps_seen) > TINY["seq_length"]  # the step count carries across chunks
    assert not torch.all(cell.running_var_ih == 1)  # running statistics were learned and saved
    saved = model.module.state_dict()["recurrent.cells.0.running_var_ih"]
    assert saved.shape[0] == int(cell.steps_seen)  # only the steps seen in training
    again = rnnkit.load(tmp_path / "bn")
    text = "the cat sees the moon.\n" * 10
    assert again.evaluate(text) == model.evaluate(text)  # evaluation reads the saved statistics
    assert len(again.generate(prime="the cat", length=20, seed=1)) == 20


def test_echo_state_language_model_learns_its_readout_only(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "esn", cell="esn", spectral_radius=0.9, max_steps=150,
                         **{**TINY, "hidden_size": 128}, **quiet)
    module = model.module
    cell = module.recurrent.cells[0]
    eigenvalues = torch.linalg.eigvals(cell.weight_hh.double()).abs()
    assert eigenvalues.max().item() == pytest.approx(0.9, rel=1e-4)  # the chosen spectral radius, kept
    assert [name for name, p in module.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    metrics = model.meta["metrics"]
    assert metrics[-1]["val_nats"] < metrics[0]["val_nats"] - 0.3  # the readout learns
    assert len(model.generate(prime="the cat", length=20, seed=1)) == 20


def test_gated_feedback_stack_learns_and_samples(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "gf", cell="gfrnn", max_steps=150,
                         **{**TINY, "num_layers": 2}, **quiet)
    assert model.meta["best_val"] < 1.0, model.meta["metrics"]
    text = model.generate(prime="the cat", length=20, seed=1)  # sampling steps the whole stack at once
    assert len(text) == 20 and set(text) <= set(corpus_file.read_text())


def test_bf16_autocast_trains_and_fp16_needs_a_gpu(corpus_file, tmp_path):
    # Runs on every CPU: where oneDNN has no bf16 RNN kernel (AVX2-only x86-64), the recurrent
    # layers take PyTorch's native kernel and the run says so in one line.
    lines = []
    model = rnnkit.train(corpus_file, out=tmp_path / "bf16", autocast="bf16", max_steps=150, **TINY,
                         log=lines.append)
    assert model.meta["best_val"] < 1.0, model.meta["metrics"]
    assert any("no bf16 kernel" in line for line in lines) == (not onednn_bf16_rnn())
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="--autocast fp16 needs a CUDA GPU"):
            rnnkit.train(corpus_file, out=tmp_path / "fp16", autocast="fp16", max_steps=5, **TINY, **quiet)
        assert not (tmp_path / "fp16").exists()


def test_one_hot_input_and_stacked_layers_learn(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "r", max_steps=150, dropout=0.1,
                         **{**TINY, "embedding_size": 0, "num_layers": 2}, **quiet)
    assert model.meta["best_val"] < 1.0


def test_resume_reproduces_uninterrupted_run(corpus_file, tmp_path):
    # dropout makes the RNG state matter; carried hidden state and Adam moments matter anyway
    straight, interrupted = straight_and_resumed(corpus_file, tmp_path, 13, max_steps=24, eval_every=8, dropout=0.2,
                                                 **{**TINY, "num_layers": 2}, **quiet)

    assert [s for s, _ in interrupted] == list(range(1, 25))
    assert interrupted == straight  # bit-for-bit the same losses
    a = rnnkit.load(tmp_path / "straight", which="last").module.state_dict()
    b = rnnkit.load(tmp_path / "resumed", which="last").module.state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_epochs_budget(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "r", epochs=1, **TINY, **quiet)
    n_train = int(model.meta["corpus"]["num_tokens"] * 0.9) + 1
    streams = n_train // TINY["batch_size"]
    assert model.meta["step"] == (streams - 1) // TINY["seq_length"]


def test_time_budget_stops_and_schedule_completes(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "r", time=3, **TINY, **quiet)
    assert 2.5 <= model.meta["elapsed"] <= 3.5  # the budget used, and not overrun by the last validation
    last = model.meta["metrics"][-1]
    assert last["lr"] == pytest.approx(TINY["lr"] * TrainConfig().min_lr_ratio, rel=0.2)


def test_divergence_aborts_and_keeps_last_good_checkpoint(corpus_file, tmp_path):
    # a ReLU RNN with plain SGD at a huge unclipped learning rate blows up within a few steps
    out = tmp_path / "r"
    with pytest.raises(TrainingDiverged) as caught:
        rnnkit.train(corpus_file, out=out, max_steps=50, eval_every=1, cell="irnn", optimizer="sgd",
                     momentum=0.0, clip=0, schedule="constant", **{**TINY, "lr": 200.0}, **quiet)
    message = str(caught.value)
    step = int(re.search(r"diverged at step (\d+)", message).group(1))
    assert step >= 2
    assert f"last good checkpoint (step {step - 1}) is in {out}" in message
    assert "lower --lr" in message
    last = rnnkit.load(out, which="last")
    assert last.meta["step"] == step - 1
    assert all(torch.isfinite(p).all() for p in last.module.parameters())


def test_learning_rate_schedules():
    c = TrainConfig(lr=1.0, warmup=0.1, min_lr_ratio=0.0)
    assert learning_rate(c, 0.05) == pytest.approx(0.5)
    assert learning_rate(c, 0.1) == pytest.approx(1.0)
    assert learning_rate(c, 0.55) == pytest.approx(0.5)
    assert learning_rate(c, 1.0) == pytest.approx(0.0, abs=1e-12)
    s = TrainConfig(lr=1.0, schedule="step", step_every=0.25, step_gamma=0.1)
    assert learning_rate(s, 0.3) == pytest.approx(0.1)
    assert learning_rate(TrainConfig(lr=0.5, schedule="constant"), 0.9) == 0.5


def test_test_split_is_scored_at_the_end(corpus_file, tmp_path):
    model = rnnkit.train(corpus_file, out=tmp_path / "r", max_steps=60, test_fraction=0.1, **TINY, **quiet)
    splits = model.meta["corpus"]["splits"]
    assert splits["train"][1] == splits["val"][0] and splits["val"][1] == splits["test"][0]
    test = model.meta["test"]
    assert test["chars"] > 0.09 * model.meta["corpus"]["num_tokens"]
    assert abs(test["nats_per_char"] - model.meta["best_val"]) < 0.3  # same text distribution


def test_val_file_trains_on_the_whole_text(corpus_file, tmp_path):
    val = tmp_path / "val.txt"
    val.write_text("the cat sees the moon.\nher brother greets a bird. ω\n" * 50)
    model = rnnkit.train(corpus_file, val_file=val, out=tmp_path / "r", max_steps=60, **TINY, **quiet)
    corpus = model.meta["corpus"]
    n_main = len(corpus_file.read_text())
    assert corpus["splits"]["train"] == [0, n_main]
    assert corpus["splits"]["val"] == [n_main, n_main + len(val.read_text())]
    assert "ω" in [chr(s) for s in model.vocab.symbols]  # the vocabulary covers both texts


def test_unicode_text_trains_and_samples_as_code_points(tmp_path):
    text = "".join(f"{w} 🐍 你好 {w}!\n" for w in ["naïve", "café", "über", "жук"] * 300)
    path = tmp_path / "unicode.txt"
    path.write_text(text, encoding="utf-8")
    model = rnnkit.train(path, out=tmp_path / "r", max_steps=80, **TINY, **quiet)
    assert model.vocab.kind == "chars" and chr(0x1F40D) in model.vocab.decode(range(len(model.vocab)))
    sample = model.generate(prime="café 🐍 你", length=40, seed=1)
    assert "\ufffd" not in sample
    assert model.evaluate_file(path)["chars"] == len(text) - 1


def test_bytes_model_trains_and_samples(tmp_path):
    text = "grüße aus köln 🐍\n" * 400
    path = tmp_path / "bytes.txt"
    path.write_text(text, encoding="utf-8")
    model = rnnkit.train(path, out=tmp_path / "r", raw_bytes=True, max_steps=80, **TINY, **quiet)
    assert model.vocab.kind == "bytes"
    assert len(model.vocab) == len(set(text.encode("utf-8")))
    pieces = []
    sample = model.generate(prime="grü", length=60, seed=1, stream=pieces.append)
    assert "".join(pieces) == sample  # streaming holds back partial characters, then flushes
    assert model.evaluate_file(path)["chars"] == len(text.encode("utf-8")) - 1


def test_metrics_file_has_every_step_once_across_an_interruption(corpus_file, tmp_path):
    from rnnkit import metrics_log
    out = tmp_path / "r"
    settings = dict(eval_every=10, **TINY, **quiet)

    def stop_at_17(step, loss):
        if step == 17:
            raise KeyboardInterrupt
    with pytest.raises(TrainingInterrupted):
        rnnkit.train(corpus_file, out=out, max_steps=30, on_step=stop_at_17, **settings)
    rnnkit.train(resume=out, **quiet)
    rows = metrics_log.read(out)
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert [r["step"] for r in rows if "val_nats" in r] == [10, 20, 30]
    assert all(r["train_nats"] > 0 and r["lr"] >= 0 and r["elapsed"] > 0 for r in rows)
    assert rows[-1]["val_nats"] == pytest.approx(rnnkit.load(out, which="last").meta["metrics"][-1]["val_nats"])


def test_a_new_budget_on_resume_replaces_the_old_one(corpus_file, tmp_path):
    out = tmp_path / "r"
    rnnkit.train(corpus_file, out=out, max_steps=10, eval_every=5, **TINY, **quiet)
    with pytest.raises(UsageError, match=r"already used its budget \(--max-steps 10\) at step 10"):
        rnnkit.train(resume=out, **quiet)
    model = rnnkit.train(resume=out, time=1.5, **quiet)  # begun with --max-steps, extended by time
    last = rnnkit.load(out, which="last").meta
    assert last["step"] > 10 and last["train_config"]["max_steps"] is None and last["train_config"]["time"] == 1.5
    assert model.meta["step"] <= last["step"]


def test_a_time_budget_ends_by_its_time_final_validation_included(corpus_file, tmp_path):
    # validation on a long text is slow here; the run sets its last duration aside and still ends in time
    val = tmp_path / "val.txt"
    val.write_text(corpus_file.read_text() * 24)
    rnnkit.train(corpus_file, val_file=val, out=tmp_path / "r", time=4.0, **{**TINY, "eval_chars": 1_500_000},
                 **quiet)
    meta = rnnkit.load(tmp_path / "r", which="last").meta
    final_evaluation = meta["elapsed"] - meta["metrics"][-1]["elapsed"]  # the last validation and checkpoint
    assert final_evaluation > 0.3, final_evaluation  # slow enough to matter (measured 0.6-1.0 s)
    # it began early by about its own duration (the previous one's), so the run ended near the budget
    assert meta["metrics"][-1]["elapsed"] <= 4.0 - 0.5 * final_evaluation, meta["metrics"][-1]
    assert meta["elapsed"] <= 4.0 + 0.5 * final_evaluation, meta["elapsed"]


def test_samples_during_training_leave_the_training_untouched(corpus_file, tmp_path):
    lines, with_samples, without = [], [], []
    settings = dict(max_steps=20, eval_every=5, dropout=0.2, **{**TINY, "num_layers": 2})
    rnnkit.train(corpus_file, out=tmp_path / "a", sample_every=10, log=lines.append,
                 on_step=lambda s, l: with_samples.append(l), **settings)
    rnnkit.train(corpus_file, out=tmp_path / "b", on_step=lambda s, l: without.append(l), **settings, **quiet)
    samples = [line for line in lines if line.startswith("sample at step")]
    assert [line.split(":")[0] for line in samples] == ["sample at step 10", "sample at step 20"]
    assert all(len(eval(line.split(": ", 1)[1])) == 200 for line in samples)
    assert with_samples == without  # dropout's random draws and the weights are the same
    with pytest.raises(UsageError, match="--sample-every must be > 0"):
        rnnkit.train(corpus_file, out=tmp_path / "c", sample_every=0, **settings, **quiet)


def test_patience_stops_after_that_many_validations_without_a_new_best():
    from rnnkit.tasks import GeneratedTask, adding_problem
    from rnnkit.training import Trainer

    class Scripted(GeneratedTask):
        losses = iter([3.0, 2.0, 2.5, 1.9, 2.2, 2.1, 2.0, 1.0])

        def evaluate(self, model):
            return {"mse": next(self.losses)}
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(20, 1))
    task = Scripted(lambda b, g: adding_problem(b, 10, g), 4)
    trainer = Trainer(model, task, TrainConfig(max_steps=100, eval_every=1, patience=3), None, dict,
                      torch.device("cpu"), log=lambda line: None)
    progress = trainer.fit()
    assert progress.step == 7 and progress.best_step == 4  # 2.2, 2.1, 2.0: three without beating 1.9
    assert trainer.best_weights is not None


def test_several_inputs_become_one_text_with_blank_lines_between(corpus_file, tmp_path):
    import numpy as np
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "b.md").write_text("the king greets the moon.\n")
    (tmp_path / "notes" / "a.md").write_text("a bird sees our house.\n")
    (tmp_path / "notes" / ".hidden").write_text("ignored\n")
    (tmp_path / "x1.txt").write_text("my friend likes a dog.\n")
    inputs = [corpus_file, tmp_path / "notes", str(tmp_path / "x*.txt")]
    out = tmp_path / "run"
    model = rnnkit.train(inputs, out=out, max_steps=3, **TINY, **quiet)
    joined = "\n\n".join(p.read_text() for p in (corpus_file, tmp_path / "notes" / "a.md",
                                                  tmp_path / "notes" / "b.md", tmp_path / "x1.txt"))
    tokens = np.fromfile(out / "data" / "tokens.bin", dtype=model.vocab.token_dtype)
    assert model.vocab.decode(tokens.tolist()) == joined
    assert model.meta["corpus"]["sources"][1:] == [str(tmp_path / "notes" / n) for n in ("a.md", "b.md")] + [
        str(tmp_path / "x1.txt")]
    rnnkit.train(inputs, resume=out, max_steps=4, **quiet)  # the same inputs: the same text
    with pytest.raises(UsageError, match="is not the corpus this run was trained on"):
        rnnkit.train(inputs[:2], resume=out, max_steps=5, **quiet)
    for bad, message in ((str(tmp_path / "nothing-*.txt"), "matches no file"),
                         (tmp_path / "empty-dir", "a directory with no files")):
        (tmp_path / "empty-dir").mkdir(exist_ok=True)
        with pytest.raises(UsageError, match=message):
            rnnkit.train([corpus_file, bad], out=tmp_path / "bad", max_steps=2, **quiet)


@pytest.mark.parametrize("cell", ["lstm", "bnlstm"])
def test_fresh_rows_restart_from_zero_and_keep_step_counts(cell):
    from rnnkit.recurrent import Recurrent
    rec = Recurrent(cell, 3, 4, num_layers=2)
    state = tuple(torch.rand(2, 5, 4) + 1 for _ in rec.state_names)
    rows = torch.tensor([True, False, False, True, False])
    fresh = rec.fresh_rows(state, rows)
    for name, old, new in zip(rec.state_names, state, fresh):
        if name == "t":  # the BN-LSTM's step count: every row stays at the same step
            assert torch.equal(new, old)
        else:
            assert torch.all(new[:, rows] == 0) and torch.equal(new[:, ~rows], old[:, ~rows])


@pytest.mark.parametrize("chance, restarted", [(0.0, 0), (1.0, 8), (0.5, None)])
def test_language_model_streams_restart_from_zero_at_the_state_reset_rate(chance, restarted):
    """Which carried states the model receives: all carried at 0, all zero at 1, about half at 0.5."""
    import numpy as np
    from rnnkit.config import ModelConfig
    from rnnkit.models.language_model import LanguageModel
    from rnnkit.tasks.language_model import LanguageModelTask

    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(vocab_size=5, hidden_size=4, num_layers=1, embedding_size=3))
    received = []
    real_forward = model.forward
    model.forward = lambda x, state=None: received.append(state) or real_forward(x, state)
    tokens = np.random.default_rng(0).integers(0, 5, 4000)
    task = LanguageModelTask(tokens, tokens[:100], batch_size=8, seq_length=10, eval_chars=100,
                             device=torch.device("cpu"), state_reset=chance).bind(model)
    for _ in range(40):
        task.training_loss(model)
    assert received[0] is None  # each epoch starts every stream afresh anyway
    zero_rows = [int((s[0][0].abs().sum(1) == 0).sum()) for s in received[1:]]
    if restarted is not None:
        assert zero_rows == [restarted] * 39
    else:
        assert 0.35 < sum(zero_rows) / (39 * 8) < 0.65


def test_state_reset_outside_0_to_1_is_refused():
    with pytest.raises(UsageError, match="--state-reset"):
        TrainConfig(state_reset=1.5)
