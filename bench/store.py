"""Where the benchmarks keep their numbers: one key of bench/results.json each, and a table in a
doc between the markers `<!-- bench:KEY -->` and `<!-- /bench:KEY -->` (prose is left alone)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"


def publish(key: str, results: dict, table: str, doc: Path, write: bool = True, show: bool = True) -> None:
    """Print the table (with `show`); with `write`, store the results and the table."""
    if show:
        print(table)
    if not write:
        return
    record(key, results)
    if doc.exists():
        text = doc.read_text()
        start, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
        if start in text and end in text:
            doc.write_text(text[:text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end):])


def record(key: str, results: dict) -> None:
    """Store one benchmark's numbers under `key` in results.json (its table lives in a doc by hand)."""
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stored[key] = results
    RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
