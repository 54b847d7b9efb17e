"""Experiments with character-level language models trained by `rnnkit.train`.

- `long-range`: truncated BPTT with seq_length 25 stops gradients after 25 steps, but the state is
  carried, so a model may still learn to use information from further back. We train on Python
  source and ask, at every closing bracket of held-out code, whether the model knows *which*
  closer is due ( ) ] } ), by how far back its opener is; the same model given only the last 25
  characters is the control. We also match the brackets in generated samples.
- `embedding`: one-hot input vs a learned 64-wide embedding at an equal wall-clock budget.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from .text import training_text

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}
BINS = ((1, 25), (26, 50), (51, 100), (101, 200), (201, 10**9))


def bracket_pairs(text: str) -> list[tuple[int, int, bool]]:
    """(opener position, closer position, types match) for every closer that has an open bracket."""
    stack, pairs = [], []
    for pos, ch in enumerate(text):
        if ch in OPENERS:
            stack.append((ch, pos))
        elif ch in CLOSERS and stack:
            opener, start = stack.pop()
            pairs.append((start, pos, OPENERS[opener] == ch))
    return pairs


def _bin_of(distance: int) -> int:
    return next(k for k, (lo, hi) in enumerate(BINS) if lo <= distance <= hi)


def _bin_label(k: int) -> str:
    lo, hi = BINS[k]
    return f"{lo}-{hi}" if hi < 10**9 else f">{lo - 1}"


@torch.no_grad()
def closer_accuracy(model, text: str, context: int | None) -> dict:
    """Among ) ] }, does the model rank the right closer first, at each closer of `text`, by the
    distance to its opener? context=None: the state is carried through the whole text; an int:
    the model sees only that many preceding characters."""
    module, vocab = model.module, model.vocab
    tokens = model.encode(text, "the held-out text")
    closer_ids = [vocab.encode(c)[0] for c in ")]}"]
    queries = [(pos, OPENERS[text[start]], pos - start) for start, pos, ok in bracket_pairs(text) if ok and pos > 0]
    if context is None:
        logits_at = {}
        wanted = {pos - 1 for pos, _, _ in queries}  # the prediction for pos is made at pos - 1
        state, chunk = None, 512
        for t0 in range(0, len(tokens), chunk):
            x = torch.from_numpy(tokens[t0:t0 + chunk][None].astype(np.int64)).to(model.device)
            logits, state = module(x, state)
            for t in range(t0, min(t0 + chunk, len(tokens))):
                if t in wanted:
                    logits_at[t] = logits[0, t - t0, closer_ids]
        scores = [logits_at[pos - 1] for pos, _, _ in queries]
    else:
        scores = []
        for i in range(0, len(queries), 512):
            batch = queries[i:i + 512]
            windows = np.stack([np.pad(tokens[max(0, p - context):p], (context - min(p, context), 0))
                                for p, _, _ in batch]).astype(np.int64)
            logits, _ = module(torch.from_numpy(windows).to(model.device))
            scores.extend(logits[:, -1, closer_ids])
    hits = np.zeros(len(BINS))
    counts = np.zeros(len(BINS))
    for (pos, closer, distance), s in zip(queries, scores):
        k = _bin_of(distance)
        counts[k] += 1
        hits[k] += ")]}"[int(torch.argmax(s))] == closer
    return {"bins": [_bin_label(k) for k in range(len(BINS))], "count": counts.tolist(),
            "accuracy": np.divide(hits, np.maximum(counts, 1)).tolist()}


def sample_brackets(samples: list[str]) -> dict:
    """In generated text: closers by distance to their opener, and the share that match it."""
    counts, matched = np.zeros(len(BINS)), np.zeros(len(BINS))
    for text in samples:
        for start, pos, ok in bracket_pairs(text):
            k = _bin_of(pos - start)
            counts[k] += 1
            matched[k] += ok
    return {"bins": [_bin_label(k) for k in range(len(BINS))], "count": counts.tolist(),
            "matched": np.divide(matched, np.maximum(counts, 1)).tolist()}


LONG_RANGE_SIZES = {
    "smoke": dict(chars=30_000, steps=20, time=None, heldout=5_000, samples=4, sample_length=300),
    "full": dict(chars=4_000_000, steps=None, time=240, heldout=200_000, samples=64, sample_length=2000),
}


def run_long_range(size: str, out: Path, work: Path, log) -> dict:
    import rnnkit
    s = LONG_RANGE_SIZES[size]
    train_file, held_out_file = training_text("python", s["chars"], work, size)
    budget = {"time": s["time"]} if s["time"] else {"max_steps": s["steps"]}
    model = rnnkit.train(train_file, out=work / "long-range", seq_length=25, log=log, **budget)
    known = {chr(symbol) for symbol in model.vocab.symbols}
    # The few characters the training part never showed the model are dropped, not scored.
    held_out = "".join(ch for ch in held_out_file.read_text(encoding="utf-8")[:s["heldout"]] if ch in known)
    carried = closer_accuracy(model, held_out, None)
    window = closer_accuracy(model, held_out, 25)
    counts = np.array(carried["count"])
    # Control: always naming the closer most common in that distance bin.
    majority = []
    for k in range(len(BINS)):
        closers = [OPENERS[held_out[a]] for a, b, ok in bracket_pairs(held_out) if ok and _bin_of(b - a) == k]
        majority.append(max((closers.count(c) for c in ")]}"), default=0) / max(len(closers), 1))
    samples = model.generate(length=s["sample_length"], temperature=0.8, seed=1, num_samples=s["samples"])
    generated = sample_brackets(samples)
    reference = sample_brackets([held_out])
    for k, label in enumerate(carried["bins"]):
        log(f"long-range: distance {label}: {int(counts[k])} closers, right type {carried['accuracy'][k]:.1%} "
            f"with carried state, {window['accuracy'][k]:.1%} with 25 characters of context, "
            f"{majority[k]:.1%} by majority; samples: {int(generated['count'][k])} closers, "
            f"{generated['matched'][k]:.1%} match their opener")

    from ..diagnostics.figures import pyplot, save_figure
    plt = pyplot()
    fig, (ax_acc, ax_gen) = plt.subplots(1, 2, figsize=(12, 4.3))
    x = np.arange(len(BINS))
    ax_acc.bar(x - 0.27, carried["accuracy"], 0.27, label="carried state (as trained)")
    ax_acc.bar(x, window["accuracy"], 0.27, label="only the last 25 characters")
    ax_acc.bar(x + 0.27, majority, 0.27, label="majority closer for the bin")
    ax_acc.set_xticks(x, [f"{b}\n(n={int(n)})" for b, n in zip(carried["bins"], counts)])
    ax_acc.set(ylim=(0, 1), xlabel="distance from opener (characters)", ylabel="right closer ranked first",
               title="Held-out Python: which closer is due? (seq_length 25)")
    ax_acc.legend(fontsize=8, loc="lower left")
    ax_gen.bar(x - 0.2, generated["matched"], 0.4, label="generated samples")
    ax_gen.bar(x + 0.2, reference["matched"], 0.4, label="held-out text")
    ax_gen.set_xticks(x, [f"{b}\n(n={int(n)})" for b, n in zip(generated["bins"], generated["count"])])
    ax_gen.set(ylim=(0, 1), xlabel="distance from opener (n: closers in samples)", ylabel="closer matches opener",
               title="Brackets in generated text")
    ax_gen.legend(fontsize=8, loc="lower left")
    save_figure(fig, out / "long-range.png")
    return {"settings": s, "val_nats": model.meta["best_val"], "steps": model.meta["step"],
            "carried_state": carried, "last_25_chars": window, "majority": majority,
            "samples": generated, "held_out": reference}


EMBEDDING_SIZES = {
    "smoke": dict(chars=20_000, time=None, steps=10),
    "full": dict(chars=None, time=150, steps=None),
}


def equal_time_runs(variants: dict[str, dict], s: dict, size: str, work: Path, log, name: str,
                    title: str, path: Path) -> dict:
    """Train one language model per variant (label -> `rnnkit.train` settings) on the bundled
    Shakespeare corpus (`--corpus shakespeare`: the 37 plays, 5 M characters; generated text at
    the smoke size) for the same budget; plot validation loss against seconds.
    s: chars (smoke text length), time (full budget in seconds) or steps (smoke budget)."""
    import rnnkit
    if size == "smoke":
        train_file, _ = training_text("shakespeare", s["chars"], work, size)
        source = {"text_file": train_file}
    else:
        source = {"corpus": "shakespeare"}
    budget = {"time": s["time"]} if s["time"] else {"max_steps": s["steps"], "eval_every": 5}
    runs = {}
    for label, settings in variants.items():
        with tempfile.TemporaryDirectory() as tmp:
            model = rnnkit.train(out=Path(tmp) / "run", log=log, **settings, **source, **budget)
        metrics = model.meta["metrics"]
        runs[label] = {"steps": [m["step"] for m in metrics], "elapsed": [m["elapsed"] for m in metrics],
                       "val_nats": [m["val_nats"] for m in metrics], "chars_per_s": metrics[-1]["chars_per_s"],
                       "best_val": model.meta["best_val"], "parameters": model.module.num_parameters()}
        log(f"{name}: {label}: best val {model.meta['best_val']:.4f} nats/char after {metrics[-1]['step']} steps, "
            f"{metrics[-1]['chars_per_s']:,.0f} chars/s, {runs[label]['parameters']:,} parameters")
    from ..diagnostics.figures import pyplot, save_figure
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.3))
    for label, r in runs.items():
        ax.plot(r["elapsed"], r["val_nats"], marker="o", label=f"{label} (best {r['best_val']:.3f})")
    ax.set(xlabel="seconds", ylabel="validation loss (nats/char)", title=title)
    ax.legend()
    save_figure(fig, path)
    return runs


def run_embedding(size: str, out: Path, work: Path, log) -> dict:
    s = EMBEDDING_SIZES[size]
    runs = equal_time_runs({"one-hot": {"embedding_size": 0}, "embedding 64": {"embedding_size": 64}}, s, size,
                           work, log, "embedding", "One-hot vs learned embedding, equal time", out / "embedding.png")
    return {"settings": s, "runs": runs}
