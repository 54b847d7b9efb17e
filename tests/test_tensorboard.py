"""The TensorBoard log of a run: CRC-32C and record framing as TFRecord defines them, one scalar
event per metric row, readable by TensorBoard itself when it is installed."""

import struct

import pytest

import rnnkit
from rnnkit.tensorboard import _masked, crc32c

from .conftest import TINY

quiet = dict(log=lambda line: None, progress=False)


def test_crc32c_has_the_castagnoli_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value of CRC-32C
    assert crc32c(b"") == 0


def read_records(path):
    data, records = path.read_bytes(), []
    while data:
        (length,) = struct.unpack("<Q", data[:8])
        assert struct.unpack("<I", data[8:12])[0] == _masked(crc32c(data[:8]))
        body = data[12:12 + length]
        assert struct.unpack("<I", data[12 + length:16 + length])[0] == _masked(crc32c(body))
        records.append(body)
        data = data[16 + length:]
    return records


def test_a_run_writes_every_metric_row_as_a_tensorboard_event(corpus_file, tmp_path):
    rnnkit.train(corpus_file, out=tmp_path / "run", tensorboard=str(tmp_path / "tb"), max_steps=12, eval_every=4,
                 **TINY, **quiet)
    (events,) = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    records = read_records(events)
    assert b"brain.Event:2" in records[0] and len(records) == 1 + 12  # the version, then one per step
    assert all(b"train_nats" in r for r in records[1:]) and sum(b"val_nats" in r for r in records) == 3


def test_tensorboard_itself_reads_the_log(corpus_file, tmp_path):
    tensorboard = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    rnnkit.train(corpus_file, out=tmp_path / "run", tensorboard=str(tmp_path / "tb"), max_steps=12, eval_every=4,
                 **TINY, **quiet)
    accumulator = tensorboard.EventAccumulator(str(tmp_path / "tb"))
    accumulator.Reload()
    assert [e.step for e in accumulator.Scalars("val_nats")] == [4, 8, 12]
    assert len(accumulator.Scalars("train_nats")) == 12


def test_a_tensorboard_path_that_is_a_file_is_refused_before_anything_is_written(cli, corpus_file, tmp_path):
    (tmp_path / "taken").write_text("mine")
    status, out, err = cli("train", corpus_file, "--out", tmp_path / "run", "--max-steps", 2,
                           "--tensorboard", tmp_path / "taken")
    assert status == 2 and "is a file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists() and (tmp_path / "taken").read_text() == "mine"
