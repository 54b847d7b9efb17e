"""Performance RNN on the Bach chorales: `rnnkit music train --events --corpus bach --time T`, then
validation loss per event beside n-gram event models fitted on the same training chorales (the
baseline a practitioner would try first), the share of well-formed streams sampled under the event
grammar (the default) and --free, what the samples sound like in numbers (notes per second,
voices at once, pitch range) beside the real chorales, the time to sample 30 s at batch 1, and a
30-second .mid read back by music21. Writes a piano roll of a sample and a real chorale.

usage: python bench/performance.py [--time 600] [--samples 200] [--pitch-shifts N] [--no-write] [--run DIR]
Publishes "performance" to bench/results.json and the table in docs/music.md. Needs music21.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.store import publish  # noqa: E402

from rnnkit import outputs  # noqa: E402
from rnnkit.music import events as ev  # noqa: E402
from rnnkit.music import performance as pf  # noqa: E402

DOC = ROOT / "docs" / "music.md"
FIGURE = ROOT / "docs" / "music" / "performance.png"
END = ev.NUM_EVENTS
V = ev.NUM_EVENTS + 1


def ngram_nats(train: list[np.ndarray], val: list[np.ndarray], n: int, k: float = 0.01) -> float:
    """Nats per event of an add-k n-gram over events (END included, each stream from END), fitted on
    the training streams, on the validation streams."""
    def grams(streams):
        for s in streams:
            seq = [END] * (n - 1) + list(map(int, s)) + [END]
            for i in range(n - 1, len(seq)):
                yield tuple(seq[i - n + 1:i]), seq[i]
    counts, totals = Counter(), Counter()
    for context, token in grams(train):
        counts[context, token] += 1
        totals[context] += 1
    nats, count = 0.0, 0
    for context, token in grams(val):
        nats -= math.log((counts[context, token] + k) / (totals[context] + k * V))
        count += 1
    return nats / count


def describe(streams: list[np.ndarray]) -> dict:
    """Notes per second, mean voices sounding, pitch range and length of event streams."""
    rates, voices, low, high, seconds = [], [], [], [], []
    for s in streams:
        notes = ev.events_to_notes(s)[0]
        length = max(ev.duration(s), 1e-9)
        if not notes:
            continue
        rates.append(len(notes) / length)
        voices.append(sum(n.end - n.start for n in notes) / length)
        low.append(min(n.pitch for n in notes))
        high.append(max(n.pitch for n in notes))
        seconds.append(length)
    return {"notes_per_second": round(float(np.median(rates)), 2), "voices_sounding": round(float(np.median(voices)), 2),
            "lowest_pitch": int(np.median(low)), "highest_pitch": int(np.median(high)),
            "seconds": round(float(np.median(seconds)), 1)}


def piano_roll(sample: np.ndarray, real: np.ndarray, path: Path) -> None:
    from rnnkit.diagnostics.figures import pyplot
    plt = pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    for ax, stream, title in ((axes[0], sample, f"sampled (event grammar, temperature 1; it ended itself after "
                                                f"{ev.duration(sample):.0f} s, the median of the samples)"),
                              (axes[1], real, "a held-out Bach chorale, as the model reads it")):
        for n in ev.events_to_notes(stream)[0]:
            if n.start <= 30:
                ax.plot([n.start, min(n.end, 30)], [n.pitch, n.pitch], lw=3, solid_capstyle="butt", color="#1f5fa8")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("MIDI pitch")
    axes[1].set_xlabel("seconds")
    fig.tight_layout()
    outputs.write(path, outputs.png(fig))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", type=float, default=600.0, help="training seconds")
    parser.add_argument("--samples", type=int, default=200, help="performances sampled for each share")
    parser.add_argument("--pitch-shifts", type=int, default=3, help="train also on each training chorale moved by "
                        "up to N semitones either way")
    parser.add_argument("--run", help="use this trained run instead of training one")
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json and the docs alone")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run = args.run or str(Path(tmp) / "bach")
        if args.run is None:
            pf.chorale_streams()  # built (about a minute) before the clock of training starts
            started = time.perf_counter()
            pf.train(corpus="bach", out=run, time=args.time, pitch_shifts=args.pitch_shifts, log=lambda line: None,
                     progress=False)
        trained = time.perf_counter() - started
        model = pf.load(run, device="cpu")
        train_streams, val_streams = pf.split_streams(model, "train"), pf.split_streams(model, "val")
        ours = model.score(val_streams)["nats_per_event"]
        baselines = {f"{n}-gram": ngram_nats(train_streams, val_streams, n) for n in (1, 2, 3, 4)}
        print(f"val nats/event: rnnkit {ours:.3f}; " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()),
              flush=True)
        strict = model.sample(args.samples, seconds=30.0, seed=0)
        free = model.sample(args.samples, seconds=120.0, seed=0, strict=False)  # room to end by themselves
        ended = [s for s in free if ev.duration(s) < 120.0]
        share = lambda streams: round(float(np.mean([ev.well_formed(s) for s in streams])), 4) if streams else None  # noqa: E731
        times = []
        for seed in range(5):
            t = time.perf_counter()
            one = model.sample(1, seconds=30.0, seed=100 + seed)[0]
            times.append(time.perf_counter() - t)
        midi = Path(tmp) / "sample.mid"
        midi.write_bytes(ev.midi_bytes(ev.events_to_notes(one)[0]))
        import music21
        back = music21.converter.parse(str(midi))
        results = {
            "train_seconds": round(trained), "performances": model.meta["performances"]["streams"],
            "pitch_shifts": args.pitch_shifts,
            "val_performances": len(val_streams), "val_nats_per_event": round(ours, 4),
            "baselines_nats_per_event": {k: round(v, 4) for k, v in baselines.items()},
            "uniform_nats_per_event": round(math.log(V), 4), "samples": args.samples,
            "well_formed": {"grammar": share(strict), "free": share(ended), "free_ended_by_themselves": len(ended)},
            "batch1_seconds_for_30s": round(float(np.median(times)), 2),
            "music21_reads_sample": {"notes": len(back.flatten().notes), "ok": len(back.flatten().notes) > 0},
            "sampled": describe(strict), "real": describe(val_streams),
        }
        if not args.no_write:
            piano_roll(sorted(strict, key=ev.duration)[len(strict) // 2], val_streams[0], FIGURE)
    best = min(baselines, key=baselines.get)
    lines = ["| | rnnkit | " + " | ".join(baselines) + " | uniform |", "|---|---|" + "---|" * (len(baselines) + 1),
             f"| validation nats per event | **{ours:.3f}** | " + " | ".join(f"{v:.3f}" for v in baselines.values())
             + f" | {math.log(V):.3f} |", "",
             "| | sampled (event grammar, the default) | sampled `--free` (ended by themselves) | real chorales (held out) |",
             "|---|---|---|---|",
             f"| well-formed streams | {share(strict)} | {share(ended)} ({len(ended)} of {args.samples}) | 1.0 |"]
    for key, label in (("notes_per_second", "notes per second (median)"),
                       ("voices_sounding", "voices sounding at once (median)"), ("lowest_pitch", "lowest pitch (median)"),
                       ("highest_pitch", "highest pitch (median)"), ("seconds", "length, s (median)")):
        lines.append(f"| {label} | {results['sampled'][key]} | {describe(ended)[key] if ended else 'n/a'} | "
                     f"{results['real'][key]} |")
    lines.append(f"\n{results['performances']} chorales ({len(val_streams)} held out), {results['train_seconds']} s of "
                 f"training on 2 CPU cores; rnnkit {'beats' if ours < baselines[best] else 'loses to'} the best n-gram "
                 f"({best}); a 30 s performance takes {results['batch1_seconds_for_30s']} s to sample at batch 1, and "
                 f"music21 reads it back ({results['music21_reads_sample']['notes']} notes); command: "
                 f"`python bench/performance.py --time {args.time:g}"
                 + (f" --pitch-shifts {args.pitch_shifts}" if args.pitch_shifts != 3 else "") + "`")
    publish("performance", results, "\n".join(lines), DOC, write=not args.no_write)


if __name__ == "__main__":
    main()
