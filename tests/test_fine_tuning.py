"""Fine-tuning a language model on new text: the vocabulary mapped, the base's predictions kept,
better than training from scratch at equal steps, and bad options refused."""

import re

import pytest
import torch

import rnnkit
from rnnkit.errors import UsageError

from .test_training import quiet


def test_fine_tuning_maps_the_vocabulary_and_keeps_what_the_base_computes(trained_run):
    from rnnkit.api import finetune
    from rnnkit.config import ModelConfig
    from rnnkit.data import Vocabulary
    from rnnkit.models.language_model import LanguageModel
    base = rnnkit.load(trained_run)
    vocab = base.vocab.union(Vocabulary("chars", (ord("ä"), ord("Ω"))))
    model = LanguageModel(ModelConfig(vocab_size=len(vocab), **finetune.architecture(base, {}))).eval()
    mapped = finetune.transfer(base, model, vocab)
    assert mapped["new_symbols"] == ["ä", "Ω"] and mapped["shared_symbols"] == len(base.vocab)
    text = "the cat sees the moon.\n"
    old_ids, new_ids = base.vocab.encode(text), vocab.encode(text)
    old_logits = base.module(torch.from_numpy(old_ids)[None])[0][0]
    new_logits = model(torch.from_numpy(new_ids)[None])[0][0]
    known = [vocab.symbols.index(s) for s in base.vocab.symbols]
    torch.testing.assert_close(new_logits[:, known], old_logits)


def test_fine_tuning_beats_training_from_scratch_at_equal_steps(trained_run, corpus_file, tmp_path):
    text = tmp_path / "new.txt"
    text.write_text(corpus_file.read_text().replace("cat", "kät")[:40_000])
    training = dict(max_steps=20, eval_every=10, batch_size=16, seq_length=32, lr=1e-2, eval_chars=4000, **quiet)
    tuned = rnnkit.train(text, init_from=trained_run, out=tmp_path / "tuned", **training)
    scratch = rnnkit.train(text, out=tmp_path / "scratch", num_layers=1, hidden_size=64, embedding_size=16, **training)
    assert tuned.meta["init_from"]["new_symbols"] == ["ä"]
    assert tuned.meta["best_val"] < scratch.meta["best_val"] - 0.3, (tuned.meta["best_val"], scratch.meta["best_val"])


@pytest.mark.parametrize("options, message", [
    (dict(hidden_size=32), "keeps the base model's architecture; drop --hidden-size"),
    (dict(raw_bytes=True), "reads chars and this run reads bytes"),
    (dict(resume="somewhere"), "--resume continues a run as it was; drop --init-from"),
])
def test_fine_tuning_bad_input(trained_run, corpus_file, tmp_path, options, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        rnnkit.train(corpus_file, init_from=trained_run, out=tmp_path / "r", max_steps=2, **options, **quiet)
    assert not (tmp_path / "r").exists()
