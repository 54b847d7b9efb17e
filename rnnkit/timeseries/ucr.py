"""Reading the UCR/UEA time-series classification format (.ts): header lines starting with
'@' (@problemName, @dimensions, @classLabel, @data, ...), then one sample per line: each
dimension's comma-separated values, dimensions separated by ':', the class label last.
Samples may differ in length; '?' (a missing value) is refused, as NaN would be."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError
from .data import MAX_FILE_BYTES


def read_ts(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """(samples as (T, D) float arrays, labels as strings)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such file" if not p.exists() else f"{p} is not a regular file")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise UsageError(f"{p} is larger than {MAX_FILE_BYTES // 1024**3} GB")
    samples, labels, in_data, dimensions = [], [], False, None
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UsageError(f"{p} is not valid UTF-8 (bad byte at offset {e.start})") from None
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if line.lower().startswith("@data"):
                in_data = True
            elif not line.startswith("@"):
                raise UsageError(f"{p}, line {number}: expected a '@' header or @data; is this a .ts file?")
            continue
        *parts, label = line.split(":")
        if not parts:
            raise UsageError(f"{p}, line {number}: a sample needs values and a class label separated by ':'")
        try:
            rows = [np.array([float(v) for v in part.split(",")]) for part in parts]
        except ValueError:
            raise UsageError(f"{p}, line {number}: values must be numbers ('?', missing, is not supported)") from None
        if len({len(r) for r in rows}) != 1:
            raise UsageError(f"{p}, line {number}: the dimensions of one sample must have the same length")
        if dimensions is not None and len(rows) != dimensions:
            raise UsageError(f"{p}, line {number}: {len(rows)} dimensions where earlier samples have {dimensions}")
        dimensions = len(rows)
        sample = np.stack(rows, axis=1)
        if not np.all(np.isfinite(sample)):
            raise UsageError(f"{p}, line {number}: values must be finite numbers")
        samples.append(sample)
        labels.append(label.strip())
    if not samples:
        raise UsageError(f"{p} has no samples (nothing after @data)")
    return samples, labels
