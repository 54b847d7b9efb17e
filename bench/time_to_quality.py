"""Time-to-quality on tiny Shakespeare: `rnnkit train --time T` on the first 90%, then
`rnnkit eval` on the last 10% (nanoGPT's split). Writes bench/results.json.

Two protocols, both with default model and training settings:
  default    the run validates on the last 10% of its own training text (rnnkit's default)
  val-file   all of the first 90% trains and the last 10% validates (--val-file), as nanoGPT does

Every val-file run is also scored by dynamic evaluation (`rnnkit eval --dynamic`), reported as a
separate number. Beside every val-file run, in the same command, the plain PyTorch loop of bench/plain_loop.py
trains for the same budget and is scored on the same text, so the gain is a ratio measured on
one machine in one run. `--corpus python` runs the same on the bundled Python corpus (its first
1,115,394 characters, tiny Shakespeare's length, cut 90/10 the same way), to show the defaults
are not tuned to Shakespeare only.

usage: python bench/time_to_quality.py [--time 130] [--protocol default|val-file|both]
                                       [--corpus tiny-shakespeare|python] [--no-plain] [--flags '...']
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import plain_loop  # noqa: E402

CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
RESULTS = ROOT / "bench" / "results.json"


def rnnkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, check=True)


def corpus_text(name: str) -> str:
    if name == "python":
        from rnnkit.data.bundled import corpus_path
        return corpus_path("python").read_text(encoding="utf-8")[:1_115_394]
    return CORPUS.read_text(encoding="utf-8")


def split_corpus(tmp: Path, name: str = "tiny-shakespeare") -> tuple[Path, Path]:
    """The first 90% of the corpus as train.txt, the last 10% as val.txt, in tmp."""
    text = corpus_text(name)
    cut = int(len(text) * 0.9)
    train_txt, val_txt = tmp / "train.txt", tmp / "val.txt"
    train_txt.write_text(text[:cut], encoding="utf-8")
    val_txt.write_text(text[cut:], encoding="utf-8")
    return train_txt, val_txt


def run_once(train_txt: Path, val_txt: Path, out: Path, budget: float, protocol: str, extra: list[str]) -> dict:
    """`rnnkit train --time budget` (plus extra flags), then `rnnkit eval` on val.txt."""
    protocol_args = ["--val-file", str(val_txt)] if protocol == "val-file" else []
    started = time.perf_counter()
    rnnkit("train", str(train_txt), "--time", str(budget), "--out", str(out), *protocol_args, *extra)
    wall = time.perf_counter() - started
    score = json.loads(rnnkit("eval", str(out), str(val_txt), "--json").stdout)
    info = json.loads(rnnkit("info", str(out), "--json").stdout)
    dynamic = {}
    if protocol == "val-file":  # a separate number: the model keeps learning from the text it scores
        started = time.perf_counter()
        score_dynamic = json.loads(rnnkit("eval", str(out), str(val_txt), "--json", "--dynamic").stdout)
        dynamic = {"dynamic_val_nats_per_char": round(score_dynamic["nats_per_char"], 4),
                   "dynamic": score_dynamic["dynamic"], "dynamic_eval_s": round(time.perf_counter() - started, 1)}
    return {"time_budget_s": budget, "protocol": protocol, "wall_s": round(wall, 1),
            "val_nats_per_char": round(score["nats_per_char"], 4), **dynamic,
            "val_bits_per_char": round(score["bits_per_char"], 4), "steps": info["step"],
            "model": info["model_config"], "train": info["train_config"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", type=float, nargs="+", default=[130.0])
    parser.add_argument("--protocol", choices=("default", "val-file", "both"), default="both")
    parser.add_argument("--corpus", choices=("tiny-shakespeare", "python"), default="tiny-shakespeare")
    parser.add_argument("--no-plain", action="store_true", help="leave out the plain PyTorch loop beside val-file runs")
    parser.add_argument("--flags", default="", help="more rnnkit train flags, e.g. '--autocast bf16' (the row's name "
                                                    "then ends with them)")
    args = parser.parse_args()
    if args.corpus == "tiny-shakespeare" and not CORPUS.exists():
        sys.exit(f"time_to_quality: {CORPUS} not found (it lives in ../shared beside the checkout)")
    protocols = ["default", "val-file"] if args.protocol == "both" else [args.protocol]
    with tempfile.TemporaryDirectory() as tmp:
        train_txt, val_txt = split_corpus(Path(tmp), args.corpus)
        prefix = "" if args.corpus == "tiny-shakespeare" else "python "
        for budget in args.time:
            for protocol in protocols:
                out = Path(tmp) / f"run-{protocol}-{budget:g}"
                row = run_once(train_txt, val_txt, out, budget, protocol, args.flags.split())
                row["date"], row["flags"] = time.strftime("%Y-%m-%d"), args.flags
                row["sample"] = rnnkit("sample", str(out), "--length", "300", "--seed", "1", "--temperature", "0.8",
                                       "--prime", "ROMEO:" if not prefix else "def ").stdout
                print(f"{prefix}{protocol:>9} --time {budget:g}: val {row['val_nats_per_char']:.4f} nats/char "
                      f"({row['val_bits_per_char']:.3f} bpc), {row['steps']} steps, {row['wall_s']:.0f} s wall", flush=True)
                if protocol == "val-file" and not args.no_plain:
                    plain = plain_loop.train(train_txt.read_text(encoding="utf-8"),
                                             val_txt.read_text(encoding="utf-8"), budget)
                    row["plain_loop"] = plain
                    row["plain_over_rnnkit"] = round(plain["val_nats_per_char"] / row["val_nats_per_char"], 4)
                    print(f"{prefix}    plain PyTorch loop --time {budget:g}: val {plain['val_nats_per_char']:.4f} "
                          f"nats/char, {plain['steps']} steps (plain / rnnkit {row['plain_over_rnnkit']:.3f})", flush=True)
                results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
                name = f"{prefix}{protocol}@{budget:g}s" + (f" {args.flags}" if args.flags else "")
                results.setdefault("time_to_quality", {})[name] = row
                RESULTS.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
