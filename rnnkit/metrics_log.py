"""metrics.jsonl: every training step of a run as one JSON line, for people and tools to read.

Each line holds the step, seconds trained, the training loss (`train_<loss>`), the learning rate
and the throughput; a line whose step was validated also holds the validation metrics
(`val_nats`, `val_bpc`, ...). Lines are buffered and flushed with every checkpoint; when a run is
resumed, lines past its checkpoint (written before an interruption) are dropped first, so each
step appears once. `rnnkit plot` draws from it. `--tensorboard DIR` writes the same rows to a
TensorBoard log (`tensorboard.py`; a resumed run adds a new event file there).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .outputs import write
from .tensorboard import EventWriter

NAME = "metrics.jsonl"
MAX_BYTES = 1 << 30  # read back at most this much


class MetricsLog:
    """metrics.jsonl, and with `tensorboard` (a folder) the same numbers as a TensorBoard log."""

    def __init__(self, run_dir: Path | None, tensorboard: str | None = None) -> None:
        self.path = run_dir / NAME if run_dir is not None else None
        self.pending: list[str] = []
        self.events = EventWriter(tensorboard) if tensorboard is not None and run_dir is not None else None

    def add(self, row: dict[str, Any]) -> None:
        if self.path is not None:
            self.pending.append(json.dumps({k: _plain(v) for k, v in row.items()}))
        if self.events is not None:
            self.events.add(row["step"], {k: float(v) for k, v in row.items()
                                          if k != "step" and isinstance(v, (int, float)) and math.isfinite(v)})

    def flush(self) -> None:
        if self.events is not None:
            self.events.flush()
        if self.path is None or not self.pending:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("\n".join(self.pending) + "\n")
        self.pending = []

    def keep_until(self, step: int) -> None:
        """Drop the lines after `step` (a resumed run continues from its checkpoint's step)."""
        if self.path is None or not self.path.is_file():
            return
        rows = read(self.path.parent)
        write(self.path, "".join(json.dumps(row) + "\n" for row in rows if row["step"] <= step).encode())


def read(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl; lines that are not such rows (an edited file, a line cut by
    a kill) are skipped. An empty list when there is no file."""
    path = Path(run_dir) / NAME
    if not path.is_file() or path.stat().st_size > MAX_BYTES:
        return []
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in row.values()):
                rows.append(row)
    return rows


def _plain(value: Any) -> Any:
    """Numbers as JSON can hold them (NaN and infinities as null)."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value
