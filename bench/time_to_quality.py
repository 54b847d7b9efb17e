"""Time-to-quality on tiny Shakespeare: `rnnkit train --time T` on the first 90%, then
`rnnkit eval` on the last 10% (nanoGPT's split). Writes bench/results.json.

Two protocols, both with default model and training settings:
  default    the run validates on the last 10% of its own training text (rnnkit's default)
  val-file   all of the first 90% trains and the last 10% validates (--val-file), as nanoGPT does

usage: python bench/time_to_quality.py [--time 130] [--protocol default|val-file|both]
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
CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
RESULTS = ROOT / "bench" / "results.json"


def rnnkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True, check=True)


def split_corpus(tmp: Path) -> tuple[Path, Path]:
    """The first 90% of tiny Shakespeare as train.txt, the last 10% as val.txt, in tmp."""
    text = CORPUS.read_text(encoding="utf-8")
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
    return {"time_budget_s": budget, "protocol": protocol, "wall_s": round(wall, 1),
            "val_nats_per_char": round(score["nats_per_char"], 4),
            "val_bits_per_char": round(score["bits_per_char"], 4), "steps": info["step"],
            "model": info["model_config"], "train": info["train_config"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", type=float, nargs="+", default=[130.0])
    parser.add_argument("--protocol", choices=("default", "val-file", "both"), default="both")
    args = parser.parse_args()
    if not CORPUS.exists():
        sys.exit(f"time_to_quality: {CORPUS} not found (it lives in ../shared beside the checkout)")
    protocols = ["default", "val-file"] if args.protocol == "both" else [args.protocol]
    with tempfile.TemporaryDirectory() as tmp:
        train_txt, val_txt = split_corpus(Path(tmp))
        for budget in args.time:
            for protocol in protocols:
                out = Path(tmp) / f"run-{protocol}-{budget:g}"
                row = run_once(train_txt, val_txt, out, budget, protocol, [])
                row["sample"] = rnnkit("sample", str(out), "--length", "300", "--seed", "1", "--temperature", "0.8",
                                       "--prime", "ROMEO:").stdout
                results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
                results.setdefault("time_to_quality", {})[f"{protocol}@{budget:g}s"] = row
                RESULTS.write_text(json.dumps(results, indent=1))
                print(f"{protocol:>9} --time {budget:g}: val {row['val_nats_per_char']:.4f} nats/char "
                      f"({row['val_bits_per_char']:.3f} bpc), {row['steps']} steps, {row['wall_s']:.0f} s wall", flush=True)


if __name__ == "__main__":
    main()
