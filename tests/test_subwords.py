"""Word and BPE language models (--tokens word|bpe): the tokenizers round-trip text, chunked
encoding equals encoding the whole text, a token model learns, samples and scores per character,
and bad input is one clear error."""

import json
import shutil

import numpy as np
import pytest

import rnnkit
from rnnkit.data import corpus, subwords
from rnnkit.errors import UsageError

from .conftest import TINY, sentences

pytest.importorskip("tokenizers")
quiet = dict(log=lambda line: None, progress=False)
TEXT = "First Citizen:\nBefore we proceed, hear me speak.\n\nAll:\nSpeak, speak. Ünïcode — ok?\n" * 40


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_tokenizers_give_the_text_back(kind):
    vocab = subwords.SubwordVocabulary.learn(kind, iter([TEXT]), max_vocab=300)
    ids = vocab.encode(TEXT)
    assert vocab.decode(ids) == TEXT  # lossless: spaces and line breaks are part of the tokens
    assert len(ids) < len(TEXT) / 2
    again = subwords.SubwordVocabulary.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again.encode(TEXT).tolist() == ids.tolist() and again.symbols == vocab.symbols
    stream = vocab.decoder()
    assert "".join(stream(i) for i in ids) + stream.flush() == TEXT  # multi-byte characters held back whole


def test_bpe_reads_any_text_and_words_fall_back_to_unknown():
    bpe = subwords.SubwordVocabulary.learn("bpe", iter(["abc abc abc"]), max_vocab=300)
    assert bpe.decode(bpe.encode("漢字 never seen")) == "漢字 never seen"
    word = subwords.SubwordVocabulary.learn("word", iter(["abc abc abc"]), max_vocab=300)
    assert word.decode(word.encode("abc xyz")) == "abc<unk>"


def test_chunked_encoding_equals_encoding_the_whole_text(tmp_path, monkeypatch):
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    vocab = subwords.SubwordVocabulary.learn("bpe", iter([TEXT]), max_vocab=400)
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 50)  # many chunks, cut only before a printing character
    pieces = list(subwords.text_pieces([path]))
    assert len(pieces) > 10 and "".join(pieces) == TEXT
    (count, chars), = subwords.encode_subwords([[path]], vocab, tmp_path / "t.bin")
    tokens = np.fromfile(tmp_path / "t.bin", dtype=vocab.token_dtype)
    assert count == len(tokens) and chars == len(TEXT)
    assert tokens.tolist() == vocab.encode(TEXT).tolist()


@pytest.fixture(scope="module")
def bpe_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe") / "grammar.txt"
    path.write_text(sentences(3000), encoding="utf-8")
    out = tmp_path_factory.mktemp("runs") / "bpe"
    rnnkit.train(path, out=out, tokens="bpe", max_vocab=320, max_steps=150, **TINY, **quiet)
    return out, path


def test_a_bpe_model_learns_samples_and_scores_per_character(bpe_run, cli):
    out, path = bpe_run
    model = rnnkit.load(out)
    assert model.vocab.kind == "bpe" and len(model.vocab) == model.config.vocab_size <= 320
    score = model.evaluate_file(path)
    assert score["tokens"] < score["chars"] / 2  # merges: fewer tokens than characters
    # per character, the same total: comparable with a character model on the same text
    assert score["nats_per_char"] == pytest.approx(score["nats_per_token"] * score["tokens"] / (score["chars"] - 1))
    assert score["nats_per_char"] < 0.5  # the grammar's sentences are learnt (uniform: ln 320 per token)
    text = model.generate(prime="the cat", length=30, greedy=True, seed=0)
    assert text.split("\n")[0].strip().endswith(".") or "\n" in text
    status, out_text, _ = cli("info", out)
    assert status == 0 and "nats/token" in out_text and "320 bpe" in out_text.replace("vocabulary: ", "")


def test_fine_tuning_a_bpe_model_keeps_its_tokenizer(bpe_run, tmp_path):
    out, path = bpe_run
    tuned = rnnkit.train(path, init_from=out, tokens="bpe", out=tmp_path / "tuned", max_steps=3,
                         **{k: v for k, v in TINY.items() if k not in ("num_layers", "hidden_size", "embedding_size")},
                         **quiet)
    assert tuned.vocab.symbols == rnnkit.load(out).vocab.symbols
    with pytest.raises(UsageError, match="reads bpe"):
        rnnkit.train(path, init_from=out, out=tmp_path / "chars", max_steps=3, **quiet)


@pytest.mark.parametrize("options, message", [
    (dict(tokens="bpe", raw_bytes=True), "contradict"),
    (dict(tokens="bpe", max_vocab=10), "--max-vocab"),
    (dict(tokens="sentencepiece"), "--tokens must be one of"),
])
def test_token_options_bad_input(tmp_path, options, message):
    path = tmp_path / "t.txt"
    path.write_text(sentences(200), encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        rnnkit.train(path, out=tmp_path / "run", max_steps=2, **options, **quiet)
    assert not (tmp_path / "run").exists()


def test_a_tampered_tokenizer_is_a_corrupted_checkpoint(bpe_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(bpe_run[0], copy)
    meta = json.loads((copy / "rnnkit.json").read_text())
    meta["vocab"]["tokenizer"] = '{"model": "nonsense"}'
    (copy / "rnnkit.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="corrupted"):
        rnnkit.load(copy)


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_documents_mode_with_word_and_bpe_tokens(kind, tmp_path, cli):
    """Documents of word or BPE tokens: the end token is one past the tokenizer's (no text can
    encode to it), samples stop at it, and scores count each document's end as one character."""
    from .test_documents import names
    from .conftest import OBJECTS, SUBJECTS, VERBS
    path = tmp_path / "names.txt"
    path.write_text("\n".join(names(2000)) + "\n", encoding="utf-8")
    out = tmp_path / kind
    model = rnnkit.train(path, out=out, tokens=kind, documents="line", max_steps=150,
                         **{**TINY, "batch_size": 32}, **quiet)
    vocab = model.vocab
    assert vocab.end_id == len(vocab) - 1 == vocab.tokenizer_size and vocab.start_id == vocab.end_id
    assert vocab.end_id not in vocab.encode(f"the cat{subwords.END_TOKEN}sees\x00end\x00").tolist()
    known = {f"{s} {v} {o}" for s in SUBJECTS for v in VERBS for o in OBJECTS}
    samples = model.generate(num_samples=30, length=40, temperature=0.5, seed=1)
    assert all("\n" not in s for s in samples) and sum(s in known for s in samples) >= 20
    one = "the cat sees the moon"
    score = model.evaluate(one)
    assert score["documents"] == 1 and score["chars"] == len(one) + 1
    assert score["nats_per_char"] == pytest.approx(score["nats_per_token"] * score["tokens"] / score["chars"])
    again = rnnkit.load(out)
    assert again.vocab.end_id == vocab.end_id and again.evaluate(one) == pytest.approx(score)
    status, stdout, _ = cli("sample", out, "--num-samples", 4, "--seed", 2, "--temperature", 0.5)
    assert status == 0 and len(stdout.splitlines()) == 4
