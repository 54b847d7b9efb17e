"""A TensorBoard log of a run's metrics (`rnnkit train --tensorboard DIR`), written without the
TensorBoard or TensorFlow packages: the format is small enough to write by hand.

An event file is a sequence of records, each `length (uint64) | masked CRC-32C of length |
data | masked CRC-32C of data` (the TFRecord framing), whose data is a serialised `Event`
protocol buffer: the first one holds the file version, every later one a step, a wall time and a
`Summary` of scalar values. Only the handful of protobuf fields below are written (field numbers
from tensorflow/core/util/event.proto and summary.proto):

    Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
    Summary { repeated Value value = 1; }      Value { string tag = 1; float simple_value = 2; }

Files are named `events.out.tfevents.<seconds>.<host>.rnnkit.<pid>`: a new file for every
process, so a resumed run adds a file beside the earlier ones and never rewrites one.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from .errors import UsageError


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli polynomial, reflected
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # int64 as protobuf encodes it (negative numbers take ten bytes)
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def event(wall_time: float, step: int = 0, scalars: dict[str, float] | None = None,
          file_version: str | None = None) -> bytes:
    data = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3) + _varint(step)
    if file_version is not None:
        data += _field(3, file_version.encode())
    if scalars:
        values = b"".join(_field(1, _field(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value))
                          for tag, value in scalars.items())
        data += _field(5, values)
    return data


def record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked(crc32c(length))) + data + struct.pack("<I", _masked(crc32c(data)))


def check_log_dir(directory: str | os.PathLike) -> Path:
    """A folder the log can go in (it may not exist yet), or one UsageError; checked before a run
    writes anything."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--tensorboard {directory} is a file; give a folder for the TensorBoard log")
    return directory


class EventWriter:
    def __init__(self, directory: str | os.PathLike) -> None:
        directory = check_log_dir(directory)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname() or 'host'}.rnnkit.{os.getpid()}"
        self.path = directory / name
        self.pending = [record(event(time.time(), file_version="brain.Event:2"))]

    def add(self, step: int, scalars: dict[str, float]) -> None:
        self.pending.append(record(event(time.time(), step, scalars)))

    def flush(self) -> None:
        if self.pending:
            with open(self.path, "ab") as f:
                f.write(b"".join(self.pending))
            self.pending = []
