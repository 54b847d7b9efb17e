"""Sentence vectors: SentenceEncoder over language models and estimators, transform(), `rnnkit embed`."""

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import rnnkit
from rnnkit.api.embed import SentenceEncoder, cosine
from rnnkit.errors import UsageError
from rnnkit.estimators import RNNClassifier, RNNTagger

WORDS = {"good": ["great fun", "a fine film", "lovely and warm", "truly great", "fine acting", "warm fun"],
         "bad": ["dull and slow", "a boring mess", "slow and bad", "truly dull", "bad acting", "boring plot"]}


def _labelled(n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for _ in range(n):
        label = ["good", "bad"][int(rng.integers(2))]
        X.append(" ".join(rng.choice(WORDS[label], 2)))
        y.append(label)
    return X, y


@pytest.fixture(scope="module")
def classifier():
    X, y = _labelled()
    return RNNClassifier(hidden_size=16, embedding_size=8, epochs=20, lr=2e-2, batch_size=16, ensemble="none",
                         bidirectional=False, random_state=0).fit(X, y)


def test_language_model_vectors_are_the_pooled_outputs_after_the_start_of_text(trained_run):
    lm = rnnkit.load(trained_run, device="cpu")
    encoder = SentenceEncoder.of_language_model(lm)
    texts = ["the cat sees the moon.", "a dog likes a bird.", "her brother follows our house."]
    vectors = {pool: encoder.transform(texts, pool, batch_size=2) for pool in ("mean", "max", "last")}
    for i, text in enumerate(texts):  # one text at a time, by hand: no padding anywhere
        ids = torch.tensor([[lm.vocab.start_id, *lm.vocab.encode(text).tolist()]])
        with torch.no_grad():
            out = lm.module.recurrent(lm.module.embed(ids))[0][0, 1:]  # (T, H), the start left out
        np.testing.assert_allclose(vectors["mean"][i], out.mean(0).numpy(), atol=1e-5)
        np.testing.assert_allclose(vectors["max"][i], out.max(0).values.numpy(), atol=1e-5)
        np.testing.assert_allclose(vectors["last"][i], out[-1].numpy(), atol=1e-5)
    assert vectors["mean"].shape == (3, lm.config.hidden_size) and vectors["mean"].dtype == np.float32


def test_unknown_characters_are_left_out_and_a_text_of_none_is_refused(trained_run):
    encoder = SentenceEncoder.of_language_model(rnnkit.load(trained_run, device="cpu"))
    with_unknown, plain = encoder.transform(["the cat€ sees", "the cat sees"])
    np.testing.assert_allclose(with_unknown, plain, atol=1e-6)
    with pytest.raises(UsageError, match="no token the language model knows"):
        encoder.transform(["€€€"])
    with pytest.raises(UsageError, match="the query has no token"):
        encoder.nearest(encoder.transform(["the cat"]), "€€")


def test_nearest_finds_the_same_text_first(trained_run):
    encoder = SentenceEncoder.of_language_model(rnnkit.load(trained_run, device="cpu"))
    texts = ["the cat sees the moon.", "a dog likes a bird.", "my friend greets his horse.", "the old king sees."]
    vectors = encoder.transform(texts)
    row, similarity = encoder.nearest(vectors, "a dog likes a bird.", top=2)[0]
    assert row == 1 and similarity == pytest.approx(1.0, abs=1e-5)
    assert len(encoder.nearest(vectors, "the cat", top=10)) == 4
    with pytest.raises(UsageError, match="--top must be >= 1"):
        encoder.nearest(vectors, "the cat", top=0)
    assert cosine(np.zeros((2, 3)), np.ones(3)).tolist() == [0.0, 0.0]


def test_classifier_transform_separates_the_classes_and_survives_save_load(classifier, tmp_path):
    X, y = _labelled(60, seed=1)
    vectors = classifier.transform(X)
    assert vectors.shape == (60, 16)
    probe = LogisticRegression().fit(vectors, y)  # the vectors alone carry the label
    assert probe.score(vectors, y) >= 0.95
    # the encoder `rnnkit embed` uses gives the same vectors with the classifier's own pooling
    np.testing.assert_allclose(classifier.sentence_encoder().transform(X, classifier.pooling), vectors, atol=1e-5)
    classifier.save(tmp_path / "clf")
    np.testing.assert_allclose(RNNClassifier.load(tmp_path / "clf").transform(X), vectors, atol=1e-6)
    np.testing.assert_allclose(SentenceEncoder.load(tmp_path / "clf").transform(X, classifier.pooling), vectors,
                               atol=1e-5)


def test_a_fitted_classifier_is_a_featuriser_in_a_pipeline():
    X, y = _labelled(80, seed=2)
    pipeline = make_pipeline(RNNClassifier(hidden_size=16, embedding_size=8, epochs=20, lr=2e-2, batch_size=16,
                                           ensemble="none",
                                           random_state=0), LogisticRegression())
    pipeline.fit(X, y)
    assert pipeline.score(*_labelled(40, seed=3)) >= 0.9


def test_tagger_transform_averages_over_tokens():
    X = [["a", "b", "c"], ["b", "c"], ["c", "a", "a", "b"]] * 4
    y = [["x", "y", "x"], ["y", "x"], ["x", "x", "x", "y"]] * 4
    tagger = RNNTagger(hidden_size=8, embedding_size=4, epochs=2, random_state=0).fit(X, y)
    vectors = tagger.transform(X[:3])
    assert vectors.shape == (3, 16)  # both directions
    tokens = torch.tensor([tagger.tokenizer_.encode(X[1])], device=next(tagger.model_.parameters()).device)
    with torch.no_grad():
        out = tagger.model_.outputs(tokens, torch.tensor([2]))[0]
    np.testing.assert_allclose(vectors[1], out.mean(0).cpu().numpy(), atol=1e-6)
    np.testing.assert_allclose(tagger.sentence_encoder().transform(["b c"]), vectors[1:2], atol=1e-6)


def test_embed_command_writes_vectors_and_answers_queries(cli, trained_run, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("the cat sees the moon.\n\na dog likes a bird.\nthe old king greets our house.\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    status, _, err = cli("embed", trained_run, texts, "--out", out, "--quiet")
    assert status == 0 and "3 vectors" in err
    vectors = np.load(out)
    assert vectors.shape == (3, 64)
    status, stdout, _ = cli("embed", trained_run, texts, "--pool", "max", "--quiet")
    lines = stdout.splitlines()
    assert status == 0 and lines[0].startswith("row,v0,v1") and [line.split(",")[0] for line in lines[1:]] == ["1", "3", "4"]
    status, stdout, _ = cli("embed", trained_run, texts, "--query", "a dog likes a bird.", "--top", "2", "--quiet")
    first = stdout.splitlines()[0].split("\t")
    assert status == 0 and len(stdout.splitlines()) == 2 and first[1:] == ["3", "a dog likes a bird."]
    assert float(first[0]) == pytest.approx(1.0, abs=1e-4)


def test_embed_command_reads_a_classifier_csv_column(cli, classifier, tmp_path):
    classifier.save(tmp_path / "clf")
    data = tmp_path / "data.csv"
    data.write_text("id,text\n1,great fun\n2,boring plot\n", encoding="utf-8")
    status, stdout, _ = cli("embed", tmp_path / "clf", data, "--text-col", "text", "--quiet")
    rows = [line.split(",") for line in stdout.splitlines()[1:]]
    assert status == 0 and len(rows) == 2 and len(rows[0]) == 17
    np.testing.assert_allclose(np.array(rows, dtype=float)[:, 1:], classifier.transform(["great fun", "boring plot"]),
                               atol=1e-4)


@pytest.mark.parametrize("case", ["top", "missing", "column", "blank", "not_model", "wrong_kind", "existing",
                                  "suffix", "query_and_out", "empty_query"])
def test_embed_command_refuses_bad_input_in_one_line(cli, trained_run, tmp_path, case):
    texts = tmp_path / "texts.txt"
    texts.write_text("the cat sees the moon.\n", encoding="utf-8")
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (tmp_path / "mine.npy").write_bytes(b"someone else's file")
    (tmp_path / "seq").mkdir()
    meta = json.loads((trained_run / "rnnkit.json").read_text(encoding="utf-8"))
    (tmp_path / "seq" / "rnnkit.json").write_text(json.dumps({**meta, "task": "Seq2Seq"}), encoding="utf-8")
    args, message = {
        "top": ((trained_run, texts, "--query", "cat", "--top", "0"), "--top must be >= 1"),
        "missing": ((trained_run, tmp_path / "nope.txt"), "no such file"),
        "column": ((trained_run, tmp_path / "data.csv", "--text-col", "text"), "has no column 'text'"),
        "blank": ((trained_run, tmp_path / "blank.txt"), "has no text"),
        "not_model": ((tmp_path, texts), "is not a model directory"),
        "wrong_kind": ((tmp_path / "seq", texts), "holds a 'Seq2Seq' model"),
        "existing": ((trained_run, texts, "--out", tmp_path / "mine.npy"), "was not written by rnnkit"),
        "suffix": ((trained_run, texts, "--out", tmp_path / "v.csv"), "must end in .npy"),
        "query_and_out": ((trained_run, texts, "--query", "cat", "--out", tmp_path / "v.npy"), "writes no --out"),
        "empty_query": ((trained_run, texts, "--query", "  "), "--query is empty"),
    }[case]
    status, stdout, err = cli("embed", *args)
    assert status == 2 and stdout == "" and message in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "mine.npy").read_bytes() == b"someone else's file"
    assert not (tmp_path / "v.npy").exists() and not (tmp_path / "v.csv").exists()
