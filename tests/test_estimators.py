"""Sequence heads with padding, the tokenizer, and the classifier and regressor: learning, saving,
the command line, scikit-learn tools, fine-tuning, early stopping and echo-state readouts."""

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import FunctionTransformer, Pipeline

from rnnkit.data.sequences import bucketed_batches, pad
from rnnkit.data.tokenizers import Tokenizer
from rnnkit.errors import UsageError
from rnnkit.estimators import RNNClassifier, RNNRegressor
from rnnkit.models.classifier import SequencePredictor
from rnnkit.recurrent import Recurrent

# a small one-way character LSTM, the network alone: what most tests here need (the text defaults read
# words both ways, with an NBSVM beside the network)
CHAR = dict(level="char", lowercase=False, bidirectional=False, pooling="last", dropout=0.0, lr=3e-3, ensemble="none")
NETWORK = dict(hidden_size=32, embedding_size=8, epochs=6, random_state=0)
SMALL = dict(**NETWORK, **CHAR)


def majority_task(n: int, seed: int):
    """Label: are there more a's than b's? The answer needs the whole string, any length."""
    rng = np.random.default_rng(seed)
    X = ["".join(rng.choice(list("abcd"), rng.integers(3, 30))) for _ in range(n)]
    y = np.array(["more a" if x.count("a") > x.count("b") else "not" for x in X])
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = majority_task(1200, 0)
    return RNNClassifier(**SMALL).fit(X, y)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "irnn"])
@pytest.mark.parametrize("path", ["packed", "padded", "steps"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_a_result(cell, path, bidirectional):
    """The fused kernel on a packed batch, on the padded batch (outputs only), and the step path."""
    torch.manual_seed(0)
    rec = Recurrent(cell, 3, 5, num_layers=2, bidirectional=bidirectional).double()
    lengths = torch.tensor([4, 7, 1])
    x = torch.randn(3, 7, 3, dtype=torch.double)
    run = {"steps": lambda x, n=None: rec.forward_steps(x, rec.init_state(x.shape[0], dtype=x.dtype), n),
           "packed": lambda x, n=None: rec(x, lengths=n),
           "padded": lambda x, n=None: rec(x, lengths=n, final_state=False)}[path]
    out, state = run(x, lengths)
    assert (state is None) == (path == "padded")
    for b, n in enumerate(lengths.tolist()):
        alone, alone_state = run(x[b:b + 1, :n])
        assert torch.allclose(out[b, :n], alone[0], atol=1e-12)
        assert torch.all(out[b, n:] == 0)
        for s, a in zip(state or (), alone_state):
            assert torch.allclose(s[:, b], a[:, 0], atol=1e-12)
    if path == "padded":  # the same outputs as the packed kernel, gradients included
        x.requires_grad_(True)
        padded = rec(x, lengths=lengths, final_state=False)[0]
        grad_padded = torch.autograd.grad(padded.square().sum(), x)[0]
        packed = rec(x, lengths=lengths)[0]
        grad_packed = torch.autograd.grad(packed.square().sum(), x)[0]
        torch.testing.assert_close(padded, packed, rtol=0, atol=1e-12)
        torch.testing.assert_close(grad_padded, grad_packed, rtol=0, atol=1e-12)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_head_output_of_a_sequence_does_not_depend_on_its_batch(pooling, bidirectional):
    torch.manual_seed(0)
    head = SequencePredictor(10, 3, hidden_size=8, embedding_size=4, pooling=pooling,
                             bidirectional=bidirectional).eval()
    sequences = [[2, 3, 4], [5, 6, 7, 8, 9, 2, 3], [4]]
    tokens, lengths = pad(sequences)
    together = head(tokens, lengths)
    for b, s in enumerate(sequences):
        alone = head(*pad([s]))
        assert torch.allclose(together[b], alone[0], atol=1e-6)


def test_tokenizer_levels_and_limits():
    words = Tokenizer("word", lowercase=True, min_df=2).fit(["The cat sat.", "the dog sat!", "A cat"])
    assert set(words.tokens[2:]) == {"the", "cat", "sat"}
    assert words.encode("THE bird sat") == [words.index["the"], 1, words.index["sat"]]  # 1 = unknown
    chars = Tokenizer("char", max_features=2).fit(["aaab", "ab", "c"])
    assert chars.tokens == ["<pad>", "<unk>", "a", "b"]
    assert Tokenizer.from_json(words.to_json()).encode("the cat") == words.encode("the cat")
    order = bucketed_batches(np.array([5, 1, 3, 2, 4]), 2, torch.Generator().manual_seed(0))
    assert sorted(np.concatenate(order).tolist()) == [0, 1, 2, 3, 4]


def test_hashed_words_bound_the_vocabulary_and_still_learn(tmp_path):
    hashed = Tokenizer("word", hash_buckets=50).fit(["never used"])
    ids = hashed.encode("apple banana apple zebra-crossing")
    assert len(hashed) == 52 and all(2 <= i < 52 for i in ids) and ids[0] == ids[2]
    assert Tokenizer.from_json(hashed.to_json()).encode("apple zebra") == hashed.encode("apple zebra")
    import subprocess
    import sys
    other = subprocess.run([sys.executable, "-c", "from rnnkit.data.tokenizers import Tokenizer; "
                            "print(Tokenizer('word', hash_buckets=50).encode('apple zebra'))"],
                           capture_output=True, text=True, check=True).stdout
    assert other.strip() == str(hashed.encode("apple zebra"))  # not Python's per-process salted hash()
    # a word-level task learnt through the buckets alone (no vocabulary is kept)
    rng = np.random.default_rng(0)
    good, bad, filler = ["great", "fine", "superb"], ["awful", "poor", "dire"], ["the", "film", "was", "plot"]
    X = [" ".join(rng.choice(filler, 4).tolist() + [rng.choice(good if k % 2 else bad)]) for k in range(600)]
    y = ["pos" if k % 2 else "neg" for k in range(600)]
    model = RNNClassifier(**{**SMALL, "level": "word", "hash_buckets": 64}).fit(X, y)
    assert model.score(X[:200], y[:200]) > 0.95 and len(model.tokenizer_) == 66
    model.save(tmp_path / "hashed")
    assert RNNClassifier.load(tmp_path / "hashed").predict(X[:20]).tolist() == model.predict(X[:20]).tolist()
    with pytest.raises(UsageError, match="--level word"):
        RNNClassifier(hash_buckets=64, **SMALL).fit(X, y)  # SMALL reads characters


def test_balanced_class_weights_lift_the_rare_class():
    rng = np.random.default_rng(1)
    X = ["".join(rng.choice(list("abcd"), 12)) for _ in range(400)]
    y = np.array(["rare" if x.count("a") >= 6 else "common" for x in X])  # about 5% rare
    assert 0.02 < np.mean(y == "rare") < 0.15
    settings = dict(hidden_size=16, embedding_size=8, epochs=3, random_state=0, validation_fraction=0.0, **CHAR)
    plain = RNNClassifier(**settings).fit(X, y)
    balanced = RNNClassifier(class_weight="balanced", **settings).fit(X, y)
    task = balanced._make_task((X[:3], torch.tensor([0, 0, 1])), (X[:3], torch.tensor([0, 0, 1])), torch.device("cpu"))
    torch.testing.assert_close(task.class_weights, torch.tensor([3 / (2 * 2), 3 / (2 * 1)]))
    rare = y == "rare"
    column = list(plain.classes_).index("rare")
    assert balanced.predict_proba(np.array(X)[rare].tolist())[:, column].mean() > \
        plain.predict_proba(np.array(X)[rare].tolist())[:, column].mean() + 0.1
    with pytest.raises(UsageError, match="class-weight"):
        RNNClassifier(class_weight="inverse").fit(X, y)
    with pytest.raises(UsageError, match="regressor"):
        RNNRegressor(class_weight="balanced").fit(X, [1.0] * len(X))


def test_classifier_learns_and_predicts_like_sklearn(fitted):
    X, y = majority_task(300, 1)
    assert fitted.score(X, y) > 0.9  # chance is about 0.55
    proba = fitted.predict_proba(X)
    assert proba.shape == (300, 2) and np.allclose(proba.sum(axis=1), 1)
    assert set(fitted.predict(X)) <= set(fitted.classes_)
    assert fitted.history_[-1]["val_loss"] < fitted.history_[0]["val_loss"]


def test_save_and_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "clf")
    loaded = RNNClassifier.load(tmp_path / "clf")
    X, _ = majority_task(50, 2)
    assert np.array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert loaded.get_params() == fitted.get_params()
    with pytest.raises(Exception, match="not a RNNRegressor"):
        RNNRegressor.load(tmp_path / "clf")


def test_regressor_learns_a_count():
    X, _ = majority_task(1000, 3)
    model = RNNRegressor(**SMALL).fit(X, [x.count("a") for x in X])
    Xt, _ = majority_task(200, 4)
    assert model.score(Xt, [x.count("a") for x in Xt]) > 0.9  # R^2


def test_works_inside_sklearn_tools():
    X, y = majority_task(240, 5)
    quick = dict(hidden_size=8, embedding_size=4, epochs=1, **CHAR)
    fitted = RNNClassifier(**quick).fit(X, y)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params() and not hasattr(copy, "model_")  # unfitted, same settings
    assert RNNClassifier(**quick).set_params(hidden_size=16).fit(X, y).model_.recurrent.hidden_size == 16
    # the pipeline applies its transformer before the estimator sees the text
    shouting = [x.upper() for x in X]
    pipeline = Pipeline([("lower", FunctionTransformer(lambda xs: [x.lower() for x in xs])),
                         ("rnn", RNNClassifier(**quick))]).fit(shouting, y)
    assert np.array_equal(pipeline.predict(shouting[:20]), pipeline.named_steps["rnn"].predict(X[:20]))
    # cross-validation fits and scores our estimator on each fold (fits are seeded: repeatable)
    folds = list(StratifiedKFold(2).split(X, y))
    scores = cross_val_score(RNNClassifier(**quick), X, y, cv=folds)
    Xa, ya = np.array(X, dtype=object), np.asarray(y)
    by_hand = [RNNClassifier(**quick).fit(list(Xa[a]), ya[a]).score(list(Xa[b]), ya[b]) for a, b in folds]
    np.testing.assert_allclose(scores, by_hand)
    # the grid search refits the winner on all the data
    search = GridSearchCV(RNNClassifier(**quick), {"pooling": ["last", "mean"]}, cv=folds).fit(X, y)
    winner = RNNClassifier(**{**quick, "pooling": search.best_params_["pooling"]}).fit(X, y)
    np.testing.assert_allclose(search.predict_proba(X[:20]), winner.predict_proba(X[:20]), rtol=1e-5, atol=1e-6)


def test_directories_saved_before_configs_still_load(fitted, tmp_path):
    # earlier versions saved the hyperparameters as "params" and no architecture
    fitted.save(tmp_path / "clf")
    meta_path = tmp_path / "clf" / "rnnkit.json"
    meta = json.loads(meta_path.read_text())
    meta["params"] = meta.pop("config")
    del meta["fitted"]["architecture"]
    meta_path.write_text(json.dumps(meta))
    X, _ = majority_task(30, 9)
    np.testing.assert_array_equal(RNNClassifier.load(tmp_path / "clf").predict_proba(X), fitted.predict_proba(X))


@pytest.mark.parametrize("X,y,message", [
    ("just one string", [1], "not one string"),
    (["a", 3], [0, 1], "item 1 is int"),
    (["ab", "cd"], [0], "X has 2 items but y has 1"),
    (["ab", "cd", "ef"], ["x", "x", "x"], "only one class"),
])
def test_bad_input_is_a_clear_error(X, y, message):
    with pytest.raises(ValueError, match=message):
        RNNClassifier(**SMALL).fit(X, y)


def test_classify_cli_train_and_predict(cli, tmp_path):
    import csv
    X, y = majority_task(300, 6)
    data = tmp_path / "data.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "label"])
        writer.writerows([i, x, label] for i, (x, label) in enumerate(zip(X, y)))
    status, out, err = cli("classify", "train", data, "--text-col", "text", "--label-col", "label",
                           "--out", tmp_path / "model", "--epochs", "3", "--hidden-size", "16")
    assert status == 0, err
    status, out, err = cli("classify", "predict", tmp_path / "model", data)
    assert status == 0, err
    rows = list(csv.DictReader(out.splitlines()))
    assert len(rows) == 300 and list(rows[0]) == ["id", "text", "label", "prediction"]
    assert [r["id"] for r in rows] == [str(i) for i in range(300)]
    assert {r["prediction"] for r in rows} <= {"more a", "not"}


@pytest.mark.parametrize("args,message", [
    (["train", "{data}", "--text-col", "txt", "--label-col", "label", "--out", "{new}"], "has no column 'txt'"),
    (["train", "{empty_row}", "--text-col", "text", "--label-col", "label", "--out", "{new}"], "line 3: column 'text' is empty"),
    (["train", "{data}", "--text-col", "text", "--label-col", "label", "--out", "{taken}"], "not empty"),
    (["train", "missing.csv", "--text-col", "text", "--label-col", "label", "--out", "{new}"], "no such file"),
    (["predict", "{taken}", "{data}"], "not a model directory"),
    (["train", "{data}", "--text-col", "text", "--label-col", "label", "--out", "{new}", "--schedule", "linear"],
     "argument --schedule: invalid choice: 'linear'"),
])
def test_classify_cli_bad_input(cli, tmp_path, args, message):
    (tmp_path / "data.csv").write_text("text,label\nabc,x\nabd,y\n")
    (tmp_path / "empty_row.csv").write_text("text,label\nabc,x\n,y\n")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "precious.txt").write_text("keep me")
    names = dict(data=tmp_path / "data.csv", empty_row=tmp_path / "empty_row.csv", new=tmp_path / "new",
                 taken=tmp_path / "taken")
    status, out, err = cli("classify", *[a.format(**names) for a in args])
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "taken" / "precious.txt").read_text() == "keep me"


def test_classifier_starts_from_a_language_model(tmp_path):
    """ULMFiT-style transfer: the recurrent stack and shared characters' embeddings are copied from
    an `rnnkit train` run, the architecture follows it, and save/load keeps it."""
    import rnnkit
    X, y = majority_task(200, 11)
    text = tmp_path / "unlabelled.txt"
    text.write_text("\n".join(majority_task(400, 12)[0]) + "\n", encoding="utf-8")
    lm = rnnkit.train(text, out=tmp_path / "lm", max_steps=3, hidden_size=24, num_layers=2, embedding_size=6,
                      batch_size=4, seq_length=16, log=lambda line: None)
    untouched = RNNClassifier(pretrained=str(tmp_path / "lm"), level="char", epochs=0.01, lr=1e-9,
                              random_state=0).fit(X, y)
    assert untouched.architecture_ == {"cell": "lstm", "hidden_size": 24, "num_layers": 2, "embedding_size": 6,
                                      "bidirectional": False}  # the language model's shape, not the default
    for mine, theirs in zip(untouched.model_.recurrent.cells, lm.module.recurrent.cells):
        torch.testing.assert_close(mine.weight_hh, theirs.weight_hh, rtol=0, atol=1e-6)
    a = untouched.tokenizer_.index["a"]
    torch.testing.assert_close(untouched.model_.embed.weight[a], lm.module.embed.weight[lm.vocab.symbols.index(ord("a"))],
                               rtol=0, atol=1e-6)
    untouched.save(tmp_path / "clf")
    again = RNNClassifier.load(tmp_path / "clf")
    np.testing.assert_allclose(again.predict_proba(X[:5]), untouched.predict_proba(X[:5]), rtol=1e-6)
    with pytest.raises(ValueError, match="level='char'"):
        RNNClassifier(pretrained=str(tmp_path / "lm"), level="word").fit(X, y)
    with pytest.raises(ValueError, match="no such directory"):
        RNNClassifier(pretrained=str(tmp_path / "missing"), level="char").fit(X, y)


def test_gradual_unfreezing_opens_one_layer_group_per_epoch(tmp_path, monkeypatch):
    """With a pretrained language model: epoch 1 trains the output layer alone, epoch 2 adds the top
    recurrent layer, epoch 3 the bottom one, epoch 4 the embedding."""
    import rnnkit
    X, y = majority_task(120, 13)
    text = tmp_path / "unlabelled.txt"
    text.write_text("\n".join(majority_task(300, 14)[0]) + "\n", encoding="utf-8")
    rnnkit.train(text, out=tmp_path / "lm", max_steps=3, hidden_size=16, num_layers=2, embedding_size=6,
                 batch_size=4, seq_length=16, log=lambda line: None)
    snapshots = []

    def snapshot(estimator, record):
        m = estimator.model_
        snapshots.append([t.detach().clone() for t in (m.head.weight, m.recurrent.cells[1].weight_hh,
                                                       m.recurrent.cells[0].weight_hh, m.embed.weight)])
    schedule = RNNClassifier._before_training

    def before_training(estimator, trainer):  # the weights as training starts
        snapshot(estimator, None)
        schedule(estimator, trainer)
    monkeypatch.setattr(RNNClassifier, "_before_training", before_training)
    model = RNNClassifier(pretrained=str(tmp_path / "lm"), level="char", gradual_unfreezing=True, epochs=4,
                          lr=1e-2, random_state=0, ensemble="none", validation_fraction=0.2)
    model.fit(X, y, on_epoch_end=snapshot)
    first = snapshots[0]
    changed = [[not torch.equal(now, before) for now, before in zip(snap, first)] for snap in snapshots[1:]]
    assert changed == [[True, False, False, False], [True, True, False, False], [True, True, True, False],
                       [True, True, True, True]]
    with pytest.raises(UsageError, match="give --pretrained"):
        RNNClassifier(gradual_unfreezing=True).fit(X, y)


def test_early_stopping_keeps_the_best_epoch():
    X, y = majority_task(400, 11)
    model = RNNClassifier(**{**SMALL, "epochs": 40, "lr": 2e-2}, early_stopping=True, patience=2).fit(X, y)
    losses = [row["val_loss"] for row in model.history_]
    assert len(losses) < 40  # stopped early
    assert model.best_epoch_ == 1 + losses.index(min(losses)) and losses.index(min(losses)) == len(losses) - 3
    assert all("val_accuracy" in row for row in model.history_)
    everything = RNNClassifier(**{**SMALL, "epochs": 1}, validation_fraction=0).fit(X, y)
    assert len(everything.history_) == 1
    with pytest.raises(ValueError, match="--early-stopping watches the validation loss"):
        RNNClassifier(early_stopping=True, validation_fraction=0).fit(X, y)


def test_the_learning_rate_schedule_is_the_users_choice(monkeypatch):
    from rnnkit import training
    rates = {}
    real = training.learning_rate
    monkeypatch.setattr(training, "learning_rate", lambda c, done: rates.setdefault(c.schedule, []).append(
        real(c, done)) or rates[c.schedule][-1])
    X, y = majority_task(200, 12)
    for schedule in ("constant", "cosine"):
        RNNClassifier(**{**SMALL, "epochs": 2}, schedule=schedule).fit(X, y)
    assert set(rates["constant"]) == {SMALL["lr"]} and len(set(rates["cosine"])) > 10
    with pytest.raises(ValueError, match="--schedule must be one of cosine, constant, step"):
        RNNClassifier(schedule="linear").fit(X, y)


def _keyword_task(n: int, seed: int):
    rng = np.random.default_rng(seed)
    words = {"a": ["fine", "great", "warm"], "b": ["dull", "slow", "bad"]}
    labels = rng.choice(["a", "b"], n).tolist()
    return [" ".join(rng.choice(words[label], 3)) + " film" for label in labels], labels


def test_warm_start_continues_from_the_previous_fit():
    X, y = _keyword_task(200, seed=0)
    settings = dict(hidden_size=16, embedding_size=8, epochs=1, lr=3e-3, ensemble="none", random_state=0)
    first = RNNClassifier(**settings).fit(X, y)
    tokens = list(first.tokenizer_.tokens)
    fresh = RNNClassifier(**settings).fit(X, y)
    first.set_params(warm_start=True).fit(X, y)
    assert first.history_[-1]["val_loss"] < fresh.history_[-1]["val_loss"] - 0.01  # it went on from epoch 1
    assert first.tokenizer_.tokens == tokens and list(first.classes_) == ["a", "b"]
    first.fit(["a brand new word"] * 4, ["a", "b", "a", "b"])  # unseen words read as unknown
    with pytest.raises(ValueError, match="warm_start keeps the classes of the first fit; y has new ones: 'c'"):
        first.fit(X[:4], ["a", "b", "c", "a"])
    cold = RNNClassifier(**settings).fit(X, y)
    assert cold.set_params(warm_start=False).fit(X, y).history_ == fresh.history_  # off: from scratch again


def test_on_epoch_end_sees_each_epoch_and_can_stop_training():
    X, y = _keyword_task(100, seed=1)
    seen = []

    def record(estimator, row):
        seen.append((row["epoch"], row["val_loss"], hasattr(estimator, "model_")))
        return row["epoch"] >= 2  # stop after the second epoch

    model = RNNClassifier(hidden_size=8, embedding_size=4, epochs=10, ensemble="none").fit(X, y, on_epoch_end=record)
    assert [epoch for epoch, _, _ in seen] == [1.0, 2.0] and all(live for _, _, live in seen)
    assert len(model.history_) == 2 and model.history_[-1]["val_loss"] == seen[-1][1]


def test_regressor_on_an_echo_state_reservoir_learns_its_readout_only():
    X = np.random.default_rng(0).normal(size=(200, 10, 2)).astype(np.float32)
    target = X[:, :, 0].sum(1)  # the sum of one input over the sequence: the reservoir must hold it
    model = RNNRegressor(cell="esn", hidden_size=64, random_state=0, validation_fraction=0.0)
    model.fit(X[:150], target[:150])
    trained = [name for name, p in model.model_.named_parameters() if p.requires_grad]
    assert trained == ["head.weight", "head.bias"]  # the reservoir and the input layer stay fixed
    assert model.n_steps_ == 0 and model.score(X[150:], target[150:]) > 0.8  # closed form, no gradient steps
    # the readout is the least-squares one: no other head does better on the training rows than its
    # penalty allows (the unpenalised solution is at most a little better)
    states = torch.from_numpy(model._vectors(model._encode(list(X[:150])), "mean")).double()
    scaled = (torch.from_numpy(target[:150]).double() - model.y_mean_) / model.y_scale_
    ones = torch.cat([states, torch.ones(150, 1, dtype=torch.float64)], 1)
    best = torch.linalg.lstsq(ones, scaled[:, None]).solution
    head = torch.cat([model.model_.head.weight.double().T, model.model_.head.bias.double()[None]], 0).cpu()
    error = lambda w: float(((ones @ w.detach())[:, 0] - scaled).pow(2).mean())  # noqa: E731
    assert error(best) <= error(head) < error(best) + 0.05


def test_classifier_on_an_echo_state_reservoir_fits_its_readout_in_closed_form(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 240)
    t = np.arange(60)  # three frequencies, random phases, noise: the class is the period
    X = np.stack([np.sin(2 * np.pi * t / (8 + 6 * c) + rng.uniform(0, 6)) + 0.8 * rng.standard_normal(60)
                  for c in labels]).astype(np.float32)
    model = RNNClassifier(cell="esn", hidden_size=64, random_state=0).fit(X[:160], labels[:160])
    accuracy = model.score(X[160:], labels[160:])
    assert model.n_steps_ == 0 and accuracy > 0.85  # closed form, no gradient steps
    row = model.history_[-1]
    assert set(row) >= {"train_loss", "val_loss", "val_accuracy"} and row["val_accuracy"] > 0.8
    proba = model.predict_proba(X[160:])
    # the logit scale is fitted on left-out rows: confidence near the accuracy, not 0/1 votes
    assert np.allclose(proba.sum(1), 1) and abs(proba.max(1).mean() - accuracy) < 0.1
    model.save(tmp_path / "esn")
    assert np.array_equal(RNNClassifier.load(tmp_path / "esn").predict_proba(X[160:]), proba)
