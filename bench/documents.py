"""Documents mode against the plain character model on a list of short texts, in one run.

The list: the names of the functions defined in this Python's standard library (read with `ast`
at run time; the test folders left out), one per line, shuffled, the last 10% held out. Both
models train on the same file with the same settings and --time budget:
  documents   rnnkit train names.txt --documents line     (state reset per name, end-of-text symbol)
  plain       rnnkit train names.txt                      (one long text, as char-rnn reads it)
each with dropout 0 and 0.2 (the run is short but the list is small: 100 KB). Held-out names are
scored with `rnnkit eval` (documents mode: each name from a fresh state, its end counted as a
character; plain: the held-out lines as one text, newlines counted). Then 1,000 names from each
at temperatures 1.0 and 0.8: documents mode gives one name per sample
(`rnnkit sample --num-samples 1000`); from the plain model, the complete lines of long samples,
as a char-rnn user would cut them. Reported: the share that is new (not among the training names),
the share well-formed (a snake_case identifier that is not a keyword: the convention of the list,
which the training names themselves meet at the rate shown in the "training list" row), the share
both new and well-formed, the share of distinct names among the samples, and the mean length
against the training names'. Writes bench/results.json ("documents") and the table in
docs/language-models.md.

usage: python bench/documents.py [--time 120] [--samples 1000]
"""

from __future__ import annotations

import argparse
import ast
import json
import keyword
import random
import re
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store import ROOT, publish  # noqa: E402

SNAKE = re.compile(r"_{0,2}[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def function_names() -> list[str]:
    names = set()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in stdlib.rglob("*.py"):
        if {"test", "tests", "idle_test", "site-packages"} & set(path.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
            continue
        names.update(node.name for node in ast.walk(tree)
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("__"))
    ordered = sorted(names)
    random.Random(0).shuffle(ordered)
    return ordered


def well_formed(name: str) -> bool:
    return SNAKE.fullmatch(name) is not None and not keyword.iskeyword(name)


def rnnkit(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True,
                          check=True).stdout


def measure(samples: list[str], known: set[str]) -> dict:
    n = len(samples)
    return {"samples": n,
            "new": round(sum(s not in known for s in samples) / n, 3),
            "well_formed": round(sum(map(well_formed, samples)) / n, 3),
            "new_and_well_formed": round(sum(s not in known and well_formed(s) for s in samples) / n, 3),
            "distinct": round(len(set(samples)) / n, 3),
            "mean_length": round(sum(map(len, samples)) / n, 1)}


def documents_samples(run: Path, count: int, temperature: float) -> list[str]:
    out = rnnkit("sample", str(run), "--num-samples", str(count), "--length", "200", "--seed", "1",
                 "--temperature", str(temperature))
    return out.split("\n")[:count]


def plain_samples(run: Path, count: int, temperature: float) -> list[str]:
    """Complete lines of long samples: each sample's last, unfinished line is dropped."""
    lines: list[str] = []
    seed = 1
    while len(lines) < count:
        out = rnnkit("sample", str(run), "--num-samples", "20", "--length", "2000", "--seed", str(seed),
                     "--temperature", str(temperature), "--separator", "\n@@@@\n")
        for text in out.rstrip("\n").split("\n@@@@\n"):
            lines.extend(line for line in text.split("\n")[:-1] if line.strip())
        seed += 1
    return lines[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", type=float, default=120)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    names = function_names()
    train = names[:int(len(names) * 0.9)]
    known = set(train)
    rows = {"training list": measure(train, set())}
    rows["training list"]["new"] = 0.0
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work)
        (tmp / "names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
        (tmp / "held_out.txt").write_text("\n".join(names[len(train):]) + "\n", encoding="utf-8")
        for dropout in args.dropout:
            common = ["--time", str(args.time), "--seed", "1", "--dropout", str(dropout)]
            for mode, flags, sampler in (("documents", ["--documents", "line"], documents_samples),
                                         ("plain", [], plain_samples)):
                run = tmp / f"{mode}-{dropout}"
                rnnkit("train", str(tmp / "names.txt"), "--out", str(run), *flags, *common)
                held_out = json.loads(rnnkit("eval", str(run), str(tmp / "held_out.txt"), "--json"))["nats_per_char"]
                for temperature in (1.0, 0.8):
                    row = measure(sampler(run, args.samples, temperature), known)
                    rows[f"{mode}, dropout {dropout:g}, T={temperature}"] = {**row, "held_out_nats": round(held_out, 4)}
    header = ("| samples from | held-out nats/char | new | well-formed | new and well-formed | distinct | mean length |"
              "\n|---|---|---|---|---|---|---|")
    lines = [header] + [f"| {name} | {r['held_out_nats'] if 'held_out_nats' in r else '-'} | {r['new']:.3f} | "
                        f"{r['well_formed']:.3f} | {r['new_and_well_formed']:.3f} | {r['distinct']:.3f} | "
                        f"{r['mean_length']:.1f} |" for name, r in rows.items()]
    table = "\n".join(lines) + (f"\n\n{len(names):,} function names ({len(train):,} train), --time {args.time:g} s "
                                f"each, default model otherwise; command: `python bench/documents.py --time {args.time:g}`")
    publish("documents", {"names": len(names), "time_s": args.time, "rows": rows}, table,
            ROOT / "docs" / "language-models.md", write=not args.no_write)


if __name__ == "__main__":
    main()
