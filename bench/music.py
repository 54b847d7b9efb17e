"""Folk tunes: `rnnkit music train --corpus folk --time T`, then 1,000 tunes sampled at temperature 1
(the default: under the ABC grammar, from the nucleus holding 0.9 of each note's probability; from
the whole distribution, --top-p 1; --free; --keep-meter) and checked beside the real tunes: readable by music21 (parse and MIDI) and by abc2midi, bars that
keep the meter, balanced repeats, AABB form, meter and mode distributions, copying from the
training tunes; validation loss per token and per character; the time to sample one tune at batch 1.

The same command trains a second model for the same time with `--no-clock` (the model without
the bar clock, music.clock) and checks 1,000 of its tunes sampled the default way, so the clock's
effect is measured side by side on one machine.

The real-tune column is the training tunes (a random 1,000 of them for the slow readers); its
copying figures are the held-out validation tunes' against the training tunes: how much real,
unseen tunes of this tradition share with the rest.

usage: python bench/music.py [--time 600] [--tunes 1000] [--no-write] [--run DIR] [--baseline-run DIR]
Publishes "music" to bench/results.json and the table in docs/music.md. Needs music21 (in the dev
install); abc2midi (Debian abcmidi) is used when installed.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.store import publish  # noqa: E402

from rnnkit.music import model as music_model  # noqa: E402
from rnnkit.music import quality  # noqa: E402

DOC = ROOT / "docs" / "music.md"
ROWS = [("music21 parses and writes MIDI", "music21"), ("abc2midi reads without error", "abc2midi"),
        ("every complete bar keeps the meter", "bars_keep_meter"), ("repeats balanced", "repeats_balanced"),
        ("two repeated 8-bar parts (AABB)", "aabb"), ("median bars", "median_bars"),
        ("meter distribution, TV distance to training", "meter_tv_distance"),
        ("mode distribution, TV distance to training", "mode_tv_distance"),
        ("median longest run of notes found in a training tune", "median_longest_copied_notes"),
        ("median longest run of whole bars found in a training tune", "median_longest_copied_bars"),
        ("share with 8 bars in a row copied from a training tune", "share_copying_8_bars")]


def batch_one_seconds(m, repeats: int = 10, **how) -> float:
    times = []
    for seed in range(repeats):
        started = time.perf_counter()
        m.sample(1, seed=seed, **how)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def table(results: dict) -> str:
    baseline = results.get("no_clock", {})
    columns = [results["samples"], results["whole"], results["free"], results["keep_meter"],
               baseline.get("samples", {}), results["real"]]
    shown = lambda value: "n/a" if value is None else value  # noqa: E731
    lines = ["| | sampled the default way (ABC grammar, nucleus 0.9) | sampled `--top-p 1` (whole distribution) | "
             "sampled `--free` | sampled `--keep-meter` | trained `--no-clock`, sampled the default way | real tunes |",
             "|---|---|---|---|---|---|---|"]
    for label, key in ROWS:
        values = [c.get(key) for c in columns]
        if any(v is not None for v in values):
            lines.append(f"| {label} | " + " | ".join(str(shown(v)) for v in values) + " |")
    loss = lambda v: f"{v['nats_per_token']:.3f} / {v['nats_per_char']:.3f}" if v else ""  # noqa: E731
    lines.append(f"| validation loss: nats per token / per character | {loss(results['validation'])} | | | | "
                 f"{loss(baseline.get('validation'))} | |")
    steps = f"{baseline['steps']:,}" if baseline else ""
    lines.append(f"| training steps in the budget | {results['steps']:,} | | | | {steps} | |")
    lines.append(f"| seconds to sample one tune at batch 1 (median of 10) | {results['batch_one_s']:.3f} | | | "
                 f"{results['batch_one_keep_meter_s']:.3f} | | |")
    r = results["real"]
    m = results["model"]
    lines.append(f"\n{results['samples']['tunes']:,} tunes sampled at temperature 1 from `rnnkit music train "
                 f"--corpus folk --time {results['time_s']:g}` ({m['cell']} {m['num_layers']} x {m['hidden_size']}, "
                 f"{results['steps']:,} steps, {results['tunes']['train']:,} training and "
                 f"{results['tunes']['val']:,} validation tunes); real tunes: {r['tunes']:,} training tunes "
                 f"(copying: the validation tunes against the training tunes). `python bench/music.py --time "
                 f"{results['time_s']:g}`.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", type=float, default=600.0)
    parser.add_argument("--tunes", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--run", metavar="DIR", help="check a run trained before (with the default command) "
                        "instead of training one")
    parser.add_argument("--baseline-run", metavar="DIR", help="with --run: the `--no-clock` run to compare (without "
                        "it, --run checks no baseline)")
    parser.add_argument("--out", metavar="DIR", help="train into this new directory and keep it (default: a "
                        "temporary one)")
    args = parser.parse_args()
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run or args.out or Path(tmp) / "folk")
        baseline_run = Path(args.baseline_run) if args.baseline_run else None
        if not args.run:
            baseline_run = run.with_name(run.name + "-no-clock")
            for where, extra in ((run, []), (baseline_run, ["--no-clock"])):
                subprocess.run([sys.executable, "-m", "rnnkit", "music", "train", "--corpus", "folk", "--time",
                                str(args.time), "--out", str(where), "--quiet", *extra], check=True)
        m = music_model.load(run, device="cpu")
        args.time = m.meta["train_config"]["time"]
        train, val = music_model.split_tunes(m, "train"), music_model.split_tunes(m, "val")
        say(f"trained: {len(train)} training, {len(val)} validation tunes; sampling {args.tunes}")
        sampled = m.sample(args.tunes, temperature=1.0, seed=1)
        (ROOT / "bench" / "music-samples.abc").write_text(m.abc(sampled[:20]))
        real = random.Random(0).sample(train, min(args.tunes, len(train)))
        results = {"time_s": args.time, "steps": m.meta["step"], "model": m.meta["model_config"],
                   "tunes": {"train": len(train), "val": len(val)},
                   "validation": m.score(val), "batch_one_s": round(batch_one_seconds(m), 4),
                   "batch_one_keep_meter_s": round(batch_one_seconds(m, keep_meter=True), 4)}
        say("checking the sampled tunes")
        results["samples"] = quality.report(sampled, training=train, progress=True, say=say)
        whole = m.sample(args.tunes, temperature=1.0, seed=1, top_p=1.0)
        results["whole"] = quality.report(whole, training=train, progress=True, say=say)
        free = m.sample(args.tunes, temperature=1.0, seed=1, strict=False)
        results["free"] = quality.report(free, training=train, progress=True, say=say)
        metered = m.sample(args.tunes, temperature=1.0, seed=1, keep_meter=True)
        results["keep_meter"] = quality.report(metered, training=train, progress=True, say=say)
        say("checking the real tunes")
        results["real"] = quality.report(real, training=train, progress=True, say=say)
        results["real"].update(quality.novelty(val, train))  # copying of unseen real tunes, not of themselves
        if baseline_run is not None:
            say("checking the tunes of the model without the clock")
            b = music_model.load(baseline_run, device="cpu")
            results["no_clock"] = {"steps": b.meta["step"], "validation": b.score(val),
                                   "samples": quality.report(b.sample(args.tunes, temperature=1.0, seed=1),
                                                             training=train, progress=True, say=say)}
    publish("music", results, table(results), DOC, write=not args.no_write)


if __name__ == "__main__":
    main()
