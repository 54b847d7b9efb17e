"""Documents mode: cutting texts into documents, the token layout, whole-document batches, training,
sampling one document per sample, scoring, resume, and bad input."""

import json
import random

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.data import corpus, documents
from rnnkit.data.vocab import END, Vocabulary
from rnnkit.errors import UsageError
from rnnkit.tasks.documents import IGNORE, DocumentTask, document_nats

from .conftest import OBJECTS, SUBJECTS, TINY, VERBS, straight_and_resumed

quiet = dict(log=lambda line: None, progress=False)


def names(n: int, seed: int = 0) -> list[str]:
    """Short documents of a tiny grammar (100 possible), one per line."""
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}" for _ in range(n)]


@pytest.mark.parametrize("mode, text, expected", [
    ("line", "a b\n\nc\r\n  \nd", ["a b", "c", "d"]),
    ("blank-line", "one\ntwo\n\n \n\nthree\n\n", ["one\ntwo", "three"]),
    ("<|end|>", "x<|end|>\ny\n<|end|>", ["x", "y"]),
    ("\\n---\\n", "a\n---\nb\nc\n---\n", ["a", "b\nc"]),
])
def test_documents_are_cut_as_the_mode_says(mode, text, expected):
    assert documents.split_documents(text, mode, "chars") == expected
    assert documents.split_documents(text.encode(), mode, "bytes") == [e.encode() for e in expected]


def test_streamed_cutting_equals_cutting_in_memory(tmp_path, monkeypatch):
    text = "\n\n".join(f"doc {i}\nline {'é' * (i % 7)}" for i in range(300)) + "\n\n\n"
    path = tmp_path / "docs.txt"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 7)  # separators and characters cut across chunks
    streamed = [d for docs in documents.iter_documents([path], "chars", "blank-line") for d in docs]
    assert streamed == documents.split_documents(text, "blank-line", "chars")
    assert len(streamed) == 300


def test_token_file_layout_and_splits_between_documents(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("ab\ncde\nf\ngh\n", encoding="utf-8")
    vocab, _, _, count, num_tokens = documents.scan_documents([path], "chars", "line")
    assert count == 4 and vocab.end_id == len(vocab) - 1 and vocab.symbols[-1] == END["chars"]
    ends = documents.encode_documents([[path]], vocab, "line", tmp_path / "t.bin")
    tokens = np.fromfile(tmp_path / "t.bin", dtype=vocab.token_dtype)
    assert len(tokens) == num_tokens == 13
    assert ends.tolist() == [0, 3, 7, 9, 12] == np.flatnonzero(tokens == vocab.end_id).tolist()
    assert vocab.decode(tokens[ends[1] + 1:ends[2]]) == "cde"
    splits = documents.document_splits(ends, 4, False, 0.25, 0.25)
    assert splits == {"train": [0, 8], "val": [7, 10], "test": [9, 13]}  # 2, 1 and 1 whole documents
    # An END is never text: a vocabulary of text cannot hold it, and it decodes to nothing
    assert Vocabulary("chars", (97,)).end_id is None and vocab.decode([vocab.end_id]) == ""


def test_an_epoch_trains_every_document_once_from_its_start(tmp_path):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=53)  # some longer than seq_length: several steps each
    tokens = [5]
    for n in lengths:
        tokens += list(rng.integers(0, 5, size=n)) + [5]
    tokens = np.array(tokens)
    ends = np.flatnonzero(tokens == 5)
    lengths = lengths + 1  # inputs: the leading END and the symbols; targets: the symbols and the END
    task = DocumentTask(tokens, ends, tokens, ends, batch_size=8, seq_length=16, eval_chars=100, seed=3,
                        device=torch.device("cpu"))
    seen = {}
    for docs, start in task.plan():
        assert start % 16 == 0 and start < lengths[docs].max()
        for k in docs:
            if start < lengths[k]:  # past its end a document is padding in its batch's later steps
                seen.setdefault(int(k), []).append(start)
    assert sorted(seen) == list(range(53))
    for k, starts in seen.items():  # every piece of every document once, in order
        assert starts == list(range(0, int(lengths[k]), 16))
    docs, _ = task.plan()[0]
    from rnnkit.tasks.documents import document_window
    x, y = document_window(tokens, ends, docs, 0, 16, 5)
    for row, k in enumerate(docs):
        n = min(int(lengths[k]), 16)
        assert x[row, 0] == 5  # every document is read from its leading END
        assert (y[row, :n].numpy() == tokens[ends[k] + 1:ends[k] + 1 + n]).all()
        assert (y[row, n:] == IGNORE).all()  # padding is never a target
    assert task.plan() is task.plan() and DocumentTask(tokens, ends, tokens, ends, 8, 16, 100, 4, "cpu").plan() != []


def test_each_document_is_scored_from_a_fresh_state(trained_documents):
    model = rnnkit.load(trained_documents)
    one, two = "the cat sees the moon", "a dog likes a bird"
    a, b, both = model.evaluate(one), model.evaluate(two), model.evaluate(f"{one}\n{two}\n")
    assert both["documents"] == 2 and both["chars"] == a["chars"] + b["chars"] == len(one) + len(two) + 2
    joint = (a["nats_per_char"] * a["chars"] + b["nats_per_char"] * b["chars"]) / both["chars"]
    assert both["nats_per_char"] == pytest.approx(joint, rel=1e-5)


@pytest.fixture(scope="module")
def trained_documents(tmp_path_factory):
    path = tmp_path_factory.mktemp("docs") / "names.txt"
    path.write_text("\n".join(names(2000)) + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("runs") / "names"
    rnnkit.train(path, out=out, documents="line", max_steps=250, **{**TINY, "batch_size": 32}, **quiet)
    return out


def test_a_documents_model_writes_whole_well_formed_documents(trained_documents, cli):
    model = rnnkit.load(trained_documents)
    assert model.meta["corpus"]["documents"] == "line" and model.meta["corpus"]["num_documents"] == 2000
    known = {f"{s} {v} {o}" for s in SUBJECTS for v in VERBS for o in OBJECTS}
    samples = model.generate(num_samples=40, length=200, temperature=0.5, seed=1)
    assert all("\n" not in s and len(s) < 60 for s in samples)  # each stopped at its own end
    assert sum(s in known for s in samples) >= 30
    primed = model.generate(prime="the old", length=200, greedy=True)
    assert ("the old" + primed) in known
    status, out, err = cli("sample", trained_documents, "--num-samples", 5, "--seed", 2, "--temperature", 0.5)
    assert status == 0 and len(out.splitlines()) == 5  # one document per line, as the corpus was written
    text = trained_documents.parent / "more.txt"
    text.write_text("\n".join(names(50, seed=9)) + "\n", encoding="utf-8")
    status, out, _ = cli("eval", trained_documents, text, "--json")
    assert status == 0 and json.loads(out)["documents"] == 50


def test_documents_resume_reproduces_an_uninterrupted_run(tmp_path):
    path = tmp_path / "docs.txt"  # paragraphs longer than seq_length: state carried inside a batch
    path.write_text("\n\n".join(" ".join(names(3, seed=i)) for i in range(300)), encoding="utf-8")
    straight, interrupted = straight_and_resumed(path, tmp_path, 11, documents="blank-line", max_steps=20,
                                                 eval_every=7, dropout=0.2,
                                                 **{**TINY, "seq_length": 24, "batch_size": 8}, **quiet)
    assert interrupted == straight


def test_document_scores_ignore_padding_and_batching(trained_documents):
    model = rnnkit.load(trained_documents)
    tokens = np.concatenate([[model.vocab.end_id], *[np.append(model.encode(n, "t"), model.vocab.end_id)
                                                    for n in names(30, seed=5)]])
    ends = np.flatnonzero(tokens == model.vocab.end_id)
    a = document_nats(model.module, tokens, ends, batch_size=64, seq_length=256)
    b = document_nats(model.module, tokens, ends, batch_size=3, seq_length=5)
    assert a[1] == b[1] == len(tokens) - 1 and a[0] == pytest.approx(b[0], rel=1e-5)


@pytest.mark.parametrize("options, content, message", [
    (dict(documents=" "), "a\nb\n", "only white space"),
    (dict(documents=""), "a\nb\n", "--documents must be"),
    (dict(documents="x" * 101), "a\nb\n", "--documents must be"),
    (dict(documents="line"), "\n \n\n", "holds no documents"),
    (dict(documents="line"), "just one\n", "too few"),
])
def test_documents_bad_input_is_one_clear_error(tmp_path, options, content, message):
    path = tmp_path / "docs.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        rnnkit.train(path, out=tmp_path / "run", max_steps=2, **options, **quiet)
    assert not (tmp_path / "run").exists()


def test_a_tampered_documents_setting_is_a_corrupted_checkpoint(trained_documents, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(trained_documents, copy)
    meta = json.loads((copy / "rnnkit.json").read_text())
    meta["corpus"]["documents"] = ""
    (copy / "rnnkit.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="corrupted"):
        rnnkit.load(copy)
