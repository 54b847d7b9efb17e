"""Characters, BPE and words on one text at equal time, compared in bits per character, in one run.

Tiny Shakespeare (../shared/data/tinyshakespeare.txt): the first 90% trains, the last 10% is the
held-out file (`--val-file`, nanoGPT's split). Each model trains with the default settings and
the same --time budget, then `rnnkit eval` scores the held-out file: bits per character (the
total over the characters of the same text, so the three compare directly) and, for the token
models, per token; for the word model also the share of held-out tokens that are <unk> (each
stands for a rare word the model never has to spell, so its bits per character are a lower
bound). Writes bench/results.json ("tokens") and the table in docs/language-models.md.

usage: python bench/tokens.py [--time 130] [--bpe-vocab 1000 4000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store import ROOT, publish  # noqa: E402

SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def rnnkit(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "rnnkit", *args], capture_output=True, text=True,
                          check=True).stdout


def unknown_share(run: Path, text: str) -> float:
    """Share of a word model's tokens of `text` that are <unk>: each stands for a whole word whose
    spelling the model never predicts, so its bits per character flatter it by that much."""
    import rnnkit
    model = rnnkit.load(run, device="cpu")
    ids = model.vocab.encode(text)
    return float((ids == model.vocab.symbols.index("<unk>")).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", type=float, default=130)
    parser.add_argument("--bpe-vocab", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    text = SHAKESPEARE.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    setups = [("char", [])] + [(f"bpe {v}", ["--tokens", "bpe", "--max-vocab", str(v)]) for v in args.bpe_vocab] \
        + [("word 4000", ["--tokens", "word", "--max-vocab", "4000"])]
    rows = {}
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work)
        (tmp / "train.txt").write_text(text[:cut], encoding="utf-8")
        (tmp / "val.txt").write_text(text[cut:], encoding="utf-8")
        for name, flags in setups:
            out = tmp / name.replace(" ", "-")
            rnnkit("train", str(tmp / "train.txt"), "--val-file", str(tmp / "val.txt"), "--out", str(out),
                   "--time", str(args.time), *flags)
            score = json.loads(rnnkit("eval", str(out), str(tmp / "val.txt"), "--json"))
            info = json.loads(rnnkit("info", str(out), "--json"))
            unknown = unknown_share(out, text[cut:]) if "word" in name else 0.0
            rows[name] = {"bits_per_char": round(score["bits_per_char"], 4),
                          "nats_per_char": round(score["nats_per_char"], 4),
                          "nats_per_token": round(score.get("nats_per_token", score["nats_per_char"]), 4),
                          "chars_per_token": round(score["chars"] / score.get("tokens", score["chars"]), 2),
                          "steps": info["step"], "vocab": info["vocab_size"], "flags": " ".join(flags),
                          "unknown_share": round(unknown, 4)}
    lines = ["| tokens | vocabulary | chars per token | held-out nats/char | bits/char | nats/token | held-out tokens "
             "<unk> | steps |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['vocab']:,} | {r['chars_per_token']:.2f} | {r['nats_per_char']:.4f} | "
              f"{r['bits_per_char']:.4f} | {r['nats_per_token']:.4f} | {r['unknown_share']:.1%} | {r['steps']:,} |"
              for name, r in rows.items()]
    table = "\n".join(lines) + (f"\n\ntiny Shakespeare, last 10% held out, default model, --time {args.time:g} s each; "
                                f"command: `python bench/tokens.py --time {args.time:g}`")
    publish("tokens", {"time_s": args.time, "rows": rows}, table, ROOT / "docs" / "language-models.md",
            write=not args.no_write)


if __name__ == "__main__":
    main()
