"""Sequence heads with padding, the tokenizer, and the scikit-learn estimators."""

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
from rnnkit.estimators import RNNClassifier, RNNRegressor, RNNTagger
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


def lookahead_tagging(n: int, seed: int):
    """Tag Y if a 'y' comes later in the sentence, else X if an 'x' came earlier, else O: the
    first rule needs the future, so only a bidirectional tagger can get it right."""
    rng = np.random.default_rng(seed)
    X, Y = [], []
    for _ in range(n):
        tokens = [str(t) for t in rng.choice(["a", "b", "x", "y", "c"], rng.integers(2, 15))]
        X.append(tokens)
        Y.append(["Y" if "y" in tokens[i + 1:] else "X" if "x" in tokens[:i] else "O" for i in range(len(tokens))])
    return X, Y


def test_bidirectional_tagger_sees_the_future(tmp_path):
    X, Y = lookahead_tagging(1500, 0)
    Xt, Yt = lookahead_tagging(300, 1)
    both = RNNTagger(**NETWORK).fit(X, Y)
    forward_only = RNNTagger(**NETWORK, bidirectional=False).fit(X, Y)
    assert both.score(Xt, Yt) > 0.97
    assert forward_only.score(Xt, Yt) < 0.8  # it cannot know whether a 'y' follows
    predicted = both.predict(Xt[:20])
    assert [len(p) for p in predicted] == [len(x) for x in Xt[:20]]
    probabilities = both.predict_proba(Xt[:20])
    assert [p.shape for p in probabilities] == [(len(x), len(both.classes_)) for x in Xt[:20]]
    assert all(np.allclose(p.sum(axis=1), 1.0, atol=1e-5) for p in probabilities)
    assert [list(both.classes_[p.argmax(axis=1)]) for p in probabilities] == predicted
    both.save(tmp_path / "tagger")
    assert RNNTagger.load(tmp_path / "tagger").predict(Xt[:20]) == predicted
    assert clone(both).get_params() == both.get_params()


def test_weight_dropped_tagger_learns_drops_only_in_training_and_reloads(tmp_path):
    X, Y = lookahead_tagging(1500, 0)
    Xt, Yt = lookahead_tagging(300, 1)
    tagger = RNNTagger(**NETWORK, weight_drop=0.3).fit(X, Y)
    assert tagger.score(Xt, Yt) > 0.95
    network = tagger.model_
    tokens = torch.tensor([[1, 2, 3, 4, 2]], device=next(network.parameters()).device)  # where it was fitted
    lengths = torch.tensor([5])
    network.train()
    torch.manual_seed(0)
    first, second = network(tokens, lengths), network(tokens, lengths)
    assert not torch.allclose(first, second)  # a new mask on W_hh for every call
    network.eval()
    assert torch.equal(network(tokens, lengths), network(tokens, lengths))
    tagger.save(tmp_path / "tagger")
    again = RNNTagger.load(tmp_path / "tagger")
    assert again.weight_drop == 0.3 and again.predict(Xt[:20]) == tagger.predict(Xt[:20])


def test_initial_state_noise_acts_only_in_training_and_the_tagger_still_learns():
    from rnnkit.errors import UsageError
    X, Y = lookahead_tagging(1500, 0)
    Xt, Yt = lookahead_tagging(300, 1)
    tagger = RNNTagger(**NETWORK, initial_state_noise=0.1).fit(X, Y)
    assert tagger.score(Xt, Yt) > 0.95
    network, lengths = tagger.model_, torch.tensor([5])
    tokens = torch.tensor([[1, 2, 3, 4, 2]], device=next(network.parameters()).device)  # where it was fitted
    network.train()
    first, second = network(tokens, lengths), network(tokens, lengths)
    assert not torch.allclose(first, second)  # a new random start for every batch
    network.initial_state_noise = 0.0
    assert torch.equal(network(tokens, lengths), network(tokens, lengths))
    network.initial_state_noise = 0.1
    network.eval()  # evaluation starts from zeros
    assert torch.equal(network(tokens, lengths), network(tokens, lengths))
    with pytest.raises(UsageError, match="--initial-state-noise must be in 0..10"):
        RNNClassifier(initial_state_noise=-1.0).fit(["a b", "b a"], [0, 1])


def test_tagger_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="item 1 has 2 tokens but 1 labels"):
        RNNTagger(**NETWORK).fit([["a"], ["b", "c"]], [["X"], ["Y"]])
    with pytest.raises(ValueError, match="non-empty list of string tokens"):
        RNNTagger(**NETWORK).fit([["a"], []], [["X"], []])


def test_tag_cli_train_and_predict(cli, tmp_path):
    import csv
    X, Y = lookahead_tagging(400, 7)
    data = tmp_path / "tags.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tokens", "tags"])
        writer.writerows([" ".join(x), " ".join(y)] for x, y in zip(X, Y))
    status, out, err = cli("tag", "train", data, "--tokens-col", "tokens", "--tags-col", "tags",
                           "--out", tmp_path / "model", "--epochs", "2", "--hidden-size", "16")
    assert status == 0, err
    status, out, err = cli("tag", "predict", tmp_path / "model", data)
    assert status == 0, err
    rows = list(csv.DictReader(out.splitlines()))
    assert len(rows) == 400
    assert all(len(r["prediction"].split()) == len(r["tokens"].split()) for r in rows)
    assert {t for r in rows for t in r["prediction"].split()} <= {"X", "Y", "O"}


def test_tag_cli_rejects_mismatched_lengths(cli, tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("tokens,tags\na b,X O\na b c,X O\n")
    status, out, err = cli("tag", "train", data, "--tokens-col", "tokens", "--tags-col", "tags",
                           "--out", tmp_path / "model")
    assert status == 2 and "line 3: 3 tokens but 2 tags" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "model").exists()


def test_seq2seq_learns_to_reverse_strings(tmp_path):
    from rnnkit.estimators import Seq2Seq
    rng = np.random.default_rng(0)

    def make(n):
        X = ["".join(rng.choice(list("abcdefg"), rng.integers(3, 9))) for _ in range(n)]
        return X, [x[::-1] for x in X]
    X, y = make(2000)
    Xt, yt = make(200)
    model = Seq2Seq(hidden_size=64, embedding_size=16, epochs=6).fit(X, y)
    assert model.score(Xt, yt) > 0.9  # exact match of the whole reversed string
    beam = clone(model).set_params(beam_size=3)
    beam.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    assert beam.score(Xt[:50], yt[:50]) > 0.9
    # beam search runs all beams of all sources as one batch: the same outputs as one source at a time,
    # and width 1 is greedy decoding
    net, encode = model.model_, model.source_tokenizer_.encode
    on = next(net.parameters()).device  # where it was fitted
    tokens, lengths = pad([encode(x) for x in Xt[:12]], on)
    assert net.beam(tokens, lengths, 20, 3) == [net.beam(*pad([encode(x)], on), 20, 3)[0] for x in Xt[:12]]
    assert net.beam(tokens, lengths, 20, 1) == net.greedy(tokens, lengths, 20)
    # log_likelihood ranks given outputs: the right one above a wrong one, and it is the teacher-forced
    # log-probability of training (the end token included), the same in a batch as alone
    right, wrong = model.log_likelihood(Xt, yt), model.log_likelihood(Xt, [x[::-1][1:] + x[-1] for x in Xt])
    assert np.all(right <= 0) and np.mean(right > wrong) > 0.95
    ids = [model._target_ids(t) + [Seq2Seq.EOS] for t in yt[:5]]
    target, _ = pad(ids, on)
    start = torch.full((5, 1), Seq2Seq.BOS, dtype=torch.long, device=on)
    with torch.no_grad():
        logits = net(*pad([encode(x) for x in Xt[:5]], on), torch.cat([start, target[:, :-1]], dim=1))
        picked = torch.log_softmax(logits.double(), dim=2).gather(2, target[:, :, None])[:, :, 0]
    assert np.allclose(right[:5], (picked * (target != 0)).sum(dim=1).cpu().numpy(), atol=1e-5)
    # alone as in a batch: to 1e-6 on the CPU; cuDNN picks other kernels for other batch sizes (TF32)
    assert np.allclose(model.log_likelihood(Xt[3:4], yt[3:4]), right[3:4], atol=1e-6 if on.type == "cpu" else 1e-4)
    assert model.log_likelihood(["abc"], ["cbz"])[0] == -np.inf  # z: never seen as an output
    with pytest.raises(ValueError, match="X has 2 items but y has 1"):
        model.log_likelihood(["ab", "cd"], ["ba"])
    model.save(tmp_path / "s2s")
    assert Seq2Seq.load(tmp_path / "s2s").predict(Xt[:20]) == model.predict(Xt[:20])
    with pytest.raises(ValueError, match="X has 2 items but y has 1"):
        Seq2Seq().fit(["ab", "cd"], ["ba"])
    with pytest.raises(ValueError, match="item 1 has an empty source or target"):
        Seq2Seq().fit(["ab", "cd"], ["ba", " "])


def test_seq2seq_ensemble_decodes_with_the_mean_of_its_members_probabilities():
    from rnnkit.estimators import Seq2Seq, Seq2SeqEnsemble
    rng = np.random.default_rng(1)
    X = ["".join(rng.choice(list("abcde"), rng.integers(3, 7))) for _ in range(600)]
    y = [x[::-1] for x in X]
    members = [Seq2Seq(hidden_size=size, embedding_size=8, epochs=2, random_state=seed).fit(X, y)
               for seed, size in ((0, 24), (1, 32))]  # sizes may differ
    # one member alone decodes exactly as that model does, greedily and with beams
    alone = Seq2SeqEnsemble(members[:1])
    assert alone.predict(X[:30]) == members[0].predict(X[:30])
    assert np.allclose(alone.log_likelihood(X[:30], y[:30]), members[0].log_likelihood(X[:30], y[:30]), atol=1e-6)
    assert Seq2SeqEnsemble(members[:1], beam_size=3).predict(X[:30]) == \
        members[0].set_params(beam_size=3).predict(X[:30])
    # two: every step's distribution is the mean of the members' distributions
    both = Seq2SeqEnsemble(members)
    on = next(both.model_.parameters()).device  # where the members were fitted
    tokens, lengths = pad([members[0].source_tokenizer_.encode(x) for x in X[:8]], on)
    start = torch.full((8,), Seq2Seq.BOS, dtype=torch.long, device=on)
    with torch.no_grad():
        outputs, keys, mask, state, feed = both.model_.encode(tokens, lengths)
        logp, state, feed = both.model_.decode_step(start, state, feed, outputs, keys, mask)
        token = logp.argmax(dim=1)
        logp2, _, _ = both.model_.decode_step(token, state, feed, outputs, keys, mask)
        expected, expected2 = [], []
        for m in members:
            o, k, mk, st, f = m.model_.encode(tokens, lengths)
            logits, st, f = m.model_.decode_step(start, st, f, o, k, mk)
            expected.append(torch.softmax(logits, dim=1))
            expected2.append(torch.softmax(m.model_.decode_step(token, st, f, o, k, mk)[0], dim=1))
    assert torch.allclose(logp.exp(), sum(expected) / 2, atol=1e-6)
    assert torch.allclose(logp2.exp(), sum(expected2) / 2, atol=1e-6)  # each member's own state carried
    assert len(Seq2SeqEnsemble(members, beam_size=3).predict(X[:5])) == 5
    with pytest.raises(ValueError, match="fitted on different tokens"):
        Seq2SeqEnsemble([members[0], Seq2Seq(hidden_size=8, epochs=1).fit(["xyz", "zyx"], ["zyx", "xyz"])])
    with pytest.raises(ValueError, match="at least one"):
        Seq2SeqEnsemble([])


def test_seq2seq_cli(cli, tmp_path):
    import csv

    from rnnkit.estimators import Seq2Seq
    rng = np.random.default_rng(1)
    words = ["".join(rng.choice(list("abcdefg"), rng.integers(3, 7))) for _ in range(300)]
    data = tmp_path / "pairs.csv"
    with open(data, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["word", "reversed"])
        writer.writerows([w, w[::-1]] for w in words)
    status, out, err = cli("seq2seq", "train", data, "--source-col", "word", "--target-col", "reversed",
                           "--out", tmp_path / "model", "--epochs", "1", "--hidden-size", "16")
    assert status == 0, err
    status, out, err = cli("seq2seq", "predict", tmp_path / "model", data, "--beam-size", "2")
    assert status == 0, err
    rows = list(csv.DictReader(out.splitlines()))
    assert len(rows) == 300 and list(rows[0]) == ["word", "reversed", "prediction"]
    # --score-col: the model's log-probability of a given output per row, the estimator's, -inf for unknown tokens
    scored = tmp_path / "scored.csv"
    scored.write_text("word,guess\nabc,cba\nabc,abc\nabc,cbz\n")
    status, out, err = cli("seq2seq", "predict", tmp_path / "model", scored, "--score-col", "guess")
    assert status == 0, err
    rows = list(csv.DictReader(out.splitlines()))
    assert list(rows[0]) == ["word", "guess", "prediction", "log_likelihood"]
    model = Seq2Seq.load(tmp_path / "model")
    expected = model.log_likelihood(["abc", "abc"], ["cba", "abc"])
    assert np.allclose([float(r["log_likelihood"]) for r in rows[:2]], expected, rtol=1e-5)
    assert rows[2]["log_likelihood"] == "-inf"
    status, out, err = cli("seq2seq", "predict", tmp_path / "model", scored, "--score-col", "nope")
    assert status == 2 and "has no column 'nope'" in err and out == ""
    status, out, err = cli("seq2seq", "predict", tmp_path / "model", data, "--beam-size", "0")
    assert status == 2 and "--beam-size must be >= 1" in err
    status, out, err = cli("seq2seq", "predict", tmp_path / "model", data, "--beam-size", str(10**11))
    assert status == 2 and "--beam-size must be in 1..1000" in err and out == ""
    status, out, err = cli("seq2seq", "train", data, "--source-col", "w", "--target-col", "reversed",
                           "--out", tmp_path / "other")
    assert status == 2 and "has no column 'w'" in err and len(err.strip().splitlines()) == 1
    # --with: models trained on the same data decode together; others are refused in one line
    status, _, err = cli("seq2seq", "train", data, "--source-col", "word", "--target-col", "reversed",
                         "--out", tmp_path / "second", "--epochs", "1", "--hidden-size", "12", "--seed", "1")
    assert status == 0, err
    status, out, err = cli("seq2seq", "predict", tmp_path / "model", data, "--with", tmp_path / "second",
                           "--beam-size", "2")
    assert status == 0, err
    assert [r["word"] for r in csv.DictReader(out.splitlines())] == words
    status, out, err = cli("seq2seq", "predict", tmp_path / "model", data, "--with", tmp_path / "nothing")
    assert status == 2 and "--with" in err and "not a model directory" in err and out == ""
    other = tmp_path / "digits.csv"
    other.write_text("word,reversed\n12,21\n345,543\n")
    status, _, err = cli("seq2seq", "train", other, "--source-col", "word", "--target-col", "reversed",
                         "--out", tmp_path / "digits", "--epochs", "1", "--hidden-size", "8")
    assert status == 0, err
    status, out, err = cli("seq2seq", "predict", tmp_path / "model", data, "--with", tmp_path / "digits")
    assert status == 2 and "different tokens" in err and len(err.strip().splitlines()) == 1 and out == ""


# scikit-learn's own estimator checks. The classifier and regressor read numeric sequences too (their
# __sklearn_tags__ say so: a 2-D array (N, T) is N sequences of T steps), so every check applies,
# run on small networks to keep them quick; the ones that fail are listed with the reason.
from sklearn.utils import estimator_checks as sk_checks  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from rnnkit.estimators import Seq2Seq  # noqa: E402

_VARIABLE_LENGTH = ("a table's columns are time steps, and sequences may differ in length: there is no fixed "
                    "n_features_in_, and predicting on a table of another width is valid input, not an error")
EXPECTED_SKLEARN_FAILURES = {
    "check_n_features_in": _VARIABLE_LENGTH,
    "check_n_features_in_after_fitting": _VARIABLE_LENGTH,
    "check_classifiers_train": "passes its accuracy test, then expects an error on a table of another width: "
                               + _VARIABLE_LENGTH,
    "check_transformer_general": "expects an error on a table of another width: " + _VARIABLE_LENGTH,
    "check_class_weight_classifiers": "class_weight takes 'balanced' (or nothing), not a dict of per-class weights",
    "check_regressors_train": "R^2 about 0.09 on its make_regression table after the 5 epochs of these small "
                              "networks (about 0.87 after 100), under the check's 0.5",
}
QUICK = dict(hidden_size=16, embedding_size=8, epochs=5, bidirectional=False, dropout=0.0, lr=1e-2, random_state=0,
             level="char")


@parametrize_with_checks([RNNClassifier(**QUICK, ensemble="none"), RNNRegressor(**QUICK)],
                         expected_failed_checks=lambda estimator: EXPECTED_SKLEARN_FAILURES)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# The tagger reads token lists and seq2seq strings, which scikit-learn's checks cannot generate (their
# tags say so, and parametrize_with_checks then yields no check): the checks that do not need data
# run on them here; their data checks have text counterparts below.
DATA_FREE_SKLEARN_CHECKS = [
    "check_estimator_cloneable", "check_estimator_repr", "check_no_attributes_set_in_init",
    "check_get_params_invariance", "check_set_params", "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order", "check_valid_tag_types", "check_estimator_tags_renamed",
]


@pytest.mark.parametrize("estimator", [RNNTagger(), Seq2Seq()], ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", DATA_FREE_SKLEARN_CHECKS)
def test_data_free_sklearn_checks_on_token_and_string_estimators(estimator, check):
    getattr(sk_checks, check)(type(estimator).__name__, estimator)


def test_tags_say_what_each_estimator_reads():
    from sklearn.utils import get_tags
    for estimator in (RNNClassifier(), RNNRegressor()):
        tags = get_tags(estimator).input_tags
        assert tags.string and tags.two_d_array and tags.three_d_array and not tags.sparse
    for estimator in (RNNTagger(), Seq2Seq()):
        tags = get_tags(estimator).input_tags
        assert tags.string and not tags.two_d_array


def test_parameters_default_constructible():
    for cls in (RNNClassifier, RNNRegressor, RNNTagger, Seq2Seq):
        sk_checks.check_parameters_default_constructible(cls.__name__, cls())


def test_text_counterparts_of_the_data_checks():
    """fit returns self and leaves the parameters alone; refitting with the same random_state gives
    the same predictions (fit idempotent); predictions do not depend on the order of the samples
    or on which other samples share the batch (sample-order and subset invariance); predicting
    before fit raises NotFittedError."""
    from sklearn.exceptions import NotFittedError
    X, y = majority_task(300, 7)
    quick = dict(hidden_size=16, embedding_size=4, epochs=2, random_state=3, **CHAR)
    estimator = RNNClassifier(**quick)
    with pytest.raises(NotFittedError):
        estimator.predict(X[:3])
    params = estimator.get_params()
    assert estimator.fit(X, y) is estimator
    assert estimator.get_params() == params
    proba = estimator.predict_proba(X)
    np.testing.assert_allclose(RNNClassifier(**quick).fit(X, y).predict_proba(X), proba, rtol=1e-5, atol=1e-6)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(estimator.predict_proba([X[i] for i in order]), proba[order], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(estimator.predict_proba(X[10:20]), proba[10:20], rtol=1e-5, atol=1e-6)
    for unfitted, sample in ((RNNTagger(), [["a", "b"]]), (Seq2Seq(), ["ab"])):
        with pytest.raises(NotFittedError):
            unfitted.predict(sample)


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
