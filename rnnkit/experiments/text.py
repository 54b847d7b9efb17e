"""Text for the experiments: a bundled corpus for full runs, generated text for smoke runs (so the
test suite needs no corpus), split into a training file and a held-out file."""

from __future__ import annotations

import random
from pathlib import Path


def generated_code(num_lines: int, seed: int = 0) -> str:
    """Python-like lines with nested brackets and quotes, for smoke runs."""
    rng = random.Random(seed)
    names = ["x", "value", "items", "count", "name", "result"]
    lines = []
    for _ in range(num_lines):
        a, b = rng.choice(names), rng.choice(names)
        lines.append(rng.choice([f"{a} = f({b}, [{b}, ({a} + 1)])", f"print(\"{a}\", {{'{b}': {a}}})",
                                 f"if {a}({b}[0]):", f"    return ({a}, '{b}')"]))
    return "\n".join(lines) + "\n"


def training_text(corpus: str, chars: int, work: Path, size: str) -> tuple[Path, Path]:
    """(train file, held-out file) under `work`: the first 90% and last 10% of up to `chars`
    characters of the bundled `corpus` (full size) or of generated text (smoke size)."""
    if size == "smoke":
        text = generated_code(max(200, chars // 25))
    else:
        from ..data import corpus_path
        text = corpus_path(corpus).read_text(encoding="utf-8")[:chars]
    cut = int(len(text) * 0.9)
    train, held_out = work / f"{corpus}-train.txt", work / f"{corpus}-heldout.txt"
    train.write_text(text[:cut], encoding="utf-8")
    held_out.write_text(text[cut:], encoding="utf-8")
    return train, held_out
