"""The tagger and seq2seq: bidirectional tagging, weight drop and initial-state noise, beam search,
ensembles, and their command lines."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from rnnkit.data.sequences import pad
from rnnkit.estimators import RNNClassifier, RNNTagger

from .test_estimators import NETWORK


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
