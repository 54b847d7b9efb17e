"""Sections of bench/speed.py that run rnnkit in child processes: preprocessing a corpus larger than
the bundled one (throughput and peak memory) and `rnnkit train` as one process against two under
torchrun. Each returns its rows for bench/results.json ("speed").
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------ scale
# Peak memory is read in the child from /proc/self/status (VmHWM: the high-water mark of this
# process image). getrusage's ru_maxrss is no use here: Linux carries it across fork + exec, so
# a child started from this (large) process would report our size, not its own.
PEAK_RSS = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024"

SCALE_PROBE = f"""
import json, sys, time
from pathlib import Path
from rnnkit.data.corpus import encode_tokens, scan_vocabulary
path, out = Path(sys.argv[1]), Path(sys.argv[2])
t0 = time.perf_counter()
vocab, _, size, _ = scan_vocabulary(path, "chars")
t1 = time.perf_counter()
encode_tokens([path], vocab, out)
t2 = time.perf_counter()
print(json.dumps({{"bytes": size, "scan_s": t1 - t0, "encode_s": t2 - t1, "peak_rss_mb": {PEAK_RSS}}}))
"""

# `rnnkit train ...` as a module run, with the peak memory written to the file named first.
TRAIN_PROBE = f"""
import runpy, sys
report, sys.argv = sys.argv[1], ["rnnkit", *sys.argv[2:]]
try:
    runpy.run_module("rnnkit", run_name="__main__")
finally:
    open(report, "w").write(str({PEAK_RSS}))
"""


def _child(args: list[str]) -> tuple[str, float]:
    """Run a child to completion; its stdout and wall seconds."""
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed with status {done.returncode}: {done.stderr[-500:]}")
    return done.stdout, time.perf_counter() - t0


def generate_corpus(path: Path, megabytes: int) -> None:
    """Bundled Shakespeare repeated to the requested size (deterministic, real character statistics)."""
    from rnnkit.data.bundled import corpus_path
    block = corpus_path("shakespeare").read_bytes()
    with open(path, "wb") as f:
        written = 0
        while written < megabytes << 20:
            f.write(block)
            written += len(block)


def bench_scale(quick: bool) -> list[dict]:
    rows = []
    sizes = (32, 256) if quick else (128, 1024)
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        for megabytes in sizes:
            corpus = Path(tmp) / f"corpus-{megabytes}.txt"
            generate_corpus(corpus, megabytes)
            text, _ = _child([sys.executable, "-c", SCALE_PROBE, str(corpus), str(Path(tmp) / "t.bin")])
            probe = json.loads(text)
            mb, rss = probe["bytes"] / 2 ** 20, probe["peak_rss_mb"]
            report = Path(tmp) / "train-rss.txt"
            _, train_wall = _child(
                [sys.executable, "-c", TRAIN_PROBE, str(report), "train", str(corpus), "--max-steps", "20",
                 "--eval-chars", "20000", "--out", str(Path(tmp) / f"run-{megabytes}"), "--hidden-size", "128"])
            train_rss = float(report.read_text())
            row = {"megabytes": round(mb), "scan_mb_per_s": round(mb / probe["scan_s"], 1),
                   "encode_mb_per_s": round(mb / probe["encode_s"], 1),
                   "preprocess_mb_per_s": round(mb / (probe["scan_s"] + probe["encode_s"]), 1),
                   "preprocess_peak_rss_mb": round(rss), "train_20_steps_peak_rss_mb": round(train_rss),
                   "train_20_steps_wall_s": round(train_wall, 1)}
            rows.append(row)
            print(f"scale {row['megabytes']} MB: preprocess {row['preprocess_mb_per_s']} MB/s, peak RSS "
                  f"{row['preprocess_peak_rss_mb']} MB (encode), {row['train_20_steps_peak_rss_mb']} MB "
                  f"(rnnkit train, 20 steps, {row['train_20_steps_wall_s']} s)", flush=True)
            corpus.unlink()
    return rows


def bench_ddp(quick: bool) -> dict:
    """`rnnkit train` as one process (2 threads) and under torchrun as 2 processes (1 thread each,
    torchrun's default): same model, same per-process batch, so 2 processes see twice the text."""
    from rnnkit import checkpoint
    from rnnkit.data.bundled import corpus_path
    steps = "30" if quick else "100"
    flags = ["--max-steps", steps, "--hidden-size", "256", "--eval-every", steps]
    runs = []
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        for processes in (1, 2):
            out = Path(tmp) / f"run-{processes}"
            launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
                        if processes > 1 else [sys.executable])
            subprocess.run([*launcher, "-m", "rnnkit", "train", str(corpus_path("shakespeare")), "--out", str(out),
                            *flags], check=True, capture_output=True)
            meta = checkpoint.read_meta(out)
            last = meta["metrics"][-1]
            units = meta["step"] * meta["train_config"]["batch_size"] * meta["train_config"]["seq_length"] * processes
            runs.append({"processes": processes, "threads_per_process": 2 if processes == 1 else 1,
                         "chars_per_s": round(units / meta["elapsed"]), "final_train_loss": round(last["train_nats"], 3)})
            print(f"ddp {processes} process(es): {runs[-1]['chars_per_s']} chars/s, train loss {runs[-1]['final_train_loss']}",
                  flush=True)
    return {"steps": int(steps), "runs": runs}
