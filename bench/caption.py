"""Reading numbers: strips of 1-6 real handwritten digits (scikit-learn's 8x8 digits, 1,797 images),
each digit at its own random scale (1-2x) and vertical offset, with random gaps, on a 24 x 96 canvas.
The digit images are split 80/20 first: test strips are built only from digit images no training
strip ever used.

rnnkit: `RNNCaptioner` (a small convolutional encoder and an LSTM decoder with soft attention over
its 3 x 12 feature grid, Xu et al. 2015) reads each strip as a character sequence. Baseline in the
same run, which does not read sequentially: the same convolutional encoder with one classifier per
digit position and one for the length (Goodfellow et al. 2013's multi-digit recogniser), trained
for the same number of epochs on the same strips. Reported: whole-sequence accuracy, character
error rate (edit distance / reference digits), training seconds, and milliseconds per strip.

    .venv/bin/python bench/caption.py [--train 20000] [--epochs 8] [--no-write]

Stores "caption" in bench/results.json, the table in docs/images.md, and an attention figure in
docs/figures/caption-attention.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from rnnkit.images import RNNCaptioner
from rnnkit.images.data import to_input
from rnnkit.images.model import ConvEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from g2p import edit_distance  # noqa: E402
from store import ROOT, publish  # noqa: E402

HEIGHT, WIDTH, MAX_DIGITS = 24, 96, 6


def digit_pools(seed: int = 0):
    """scikit-learn's digits as uint8 0-255 (N, 8, 8), split 80/20 into training and test pools."""
    digits = load_digits()
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(0.8 * len(images))
    return (images[order[:cut]], digits.target[order[:cut]]), (images[order[cut:]], digits.target[order[cut:]])


def strips(pool, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """`count` strips (count, HEIGHT, WIDTH) uint8 and their digit strings, from the pool's digits."""
    images, labels = pool
    rng = np.random.default_rng(seed)
    canvas = np.zeros((count, HEIGHT, WIDTH), np.uint8)
    texts = []
    for k in range(count):
        n = int(rng.integers(1, MAX_DIGITS + 1))
        chosen = rng.integers(0, len(images), n)
        sizes = rng.uniform(8, 16, n)
        gaps = rng.integers(0, 5, n)
        total = sizes.sum() + gaps[1:].sum()
        if total > WIDTH:  # too wide: shrink every digit alike
            sizes *= (WIDTH - gaps[1:].sum()) / sizes.sum()
        sizes = np.maximum(np.floor(sizes).astype(int), 6)
        x = int(rng.integers(0, max(1, WIDTH - int(sizes.sum() + gaps[1:].sum())) + 1))
        for i, (index, size) in enumerate(zip(chosen, sizes)):
            digit = F.interpolate(torch.from_numpy(images[index]).float()[None, None], size=(size, size),
                                  mode="bilinear", align_corners=False)[0, 0].round().clamp(0, 255).byte().numpy()
            y = int(rng.integers(0, HEIGHT - size + 1))
            x = min(x, WIDTH - size)
            region = canvas[k, y:y + size, x:x + size]
            np.maximum(region, digit, out=region)
            x += size + int(gaps[i])
        texts.append("".join(str(labels[i]) for i in chosen))
    return canvas, texts


class PositionClassifier(nn.Module):
    """Goodfellow et al. 2013: a convolutional net, then a softmax for the length and one per digit
    position (all read the whole image; none reads in order)."""

    def __init__(self, conv_channels: int, hidden: int = 256) -> None:
        super().__init__()
        self.encoder = ConvEncoder(1, HEIGHT, WIDTH, conv_channels, 3)
        cells = self.encoder.grid[0] * self.encoder.grid[1]
        self.hidden = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(cells * self.encoder.width, hidden), nn.ReLU())
        self.length = nn.Linear(hidden, MAX_DIGITS + 1)
        self.digits = nn.Linear(hidden, MAX_DIGITS * 10)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(self.encoder(images))
        return self.length(h), self.digits(h).reshape(-1, MAX_DIGITS, 10)  # (B, 7), (B, 6, 10)


def train_baseline(images: np.ndarray, texts: list[str], epochs: float, batch_size: int, conv_channels: int,
                   seed: int) -> PositionClassifier:
    torch.manual_seed(seed)
    model = PositionClassifier(conv_channels)
    lengths = torch.tensor([len(t) for t in texts])
    digits = torch.full((len(texts), MAX_DIGITS), -100)
    for i, t in enumerate(texts):
        digits[i, :len(t)] = torch.tensor([int(c) for c in t])
    x = torch.from_numpy(images)[:, None]
    steps = int(epochs * len(texts) / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(texts), generator=generator)
    model.train()
    for step in range(steps):
        start = (step * batch_size) % len(texts)
        if start + batch_size > len(texts):
            order = torch.randperm(len(texts), generator=generator)
        rows = order[start:start + batch_size]
        length_logits, digit_logits = model(to_input(x[rows], torch.device("cpu")))
        loss = F.cross_entropy(length_logits, lengths[rows]) + \
            F.cross_entropy(digit_logits.reshape(-1, 10), digits[rows].reshape(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return model.eval()


@torch.no_grad()
def baseline_predict(model: PositionClassifier, images: np.ndarray) -> list[str]:
    out = []
    for start in range(0, len(images), 256):
        length_logits, digit_logits = model(to_input(torch.from_numpy(images[start:start + 256])[:, None],
                                                     torch.device("cpu")))
        for n, row in zip(length_logits.argmax(1).tolist(), digit_logits.argmax(2).tolist()):
            out.append("".join(map(str, row[:n])))
    return out


def scores(predicted: list[str], truth: list[str]) -> dict:
    errors = sum(edit_distance(list(p), list(t)) for p, t in zip(predicted, truth))
    return {"sequence_accuracy": round(float(np.mean([p == t for p, t in zip(predicted, truth)])), 4),
            "character_error_rate": round(errors / sum(map(len, truth)), 4)}


def per_image_ms(predict, images: np.ndarray, repeats: int = 50) -> float:
    """Median milliseconds to read one image alone (batch 1)."""
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        predict(images[i:i + 1])
        times.append(time.perf_counter() - started)
    return round(1000 * float(np.median(times)), 2)


def attention_figure(captioner: RNNCaptioner, images: np.ndarray, path: Path) -> None:
    from rnnkit.images.figures import attention_png
    captions, maps = captioner.predict_with_attention(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(attention_png(images, captions, maps, "char"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=20_000, help="training strips")
    parser.add_argument("--test", type=int, default=2_000, help="test strips")
    parser.add_argument("--epochs", type=float, default=8.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--conv-channels", type=int, default=16)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json and the doc alone")
    args = parser.parse_args()
    torch.set_num_threads(2)
    train_pool, test_pool = digit_pools()
    X, y = strips(train_pool, args.train, seed=1)
    X_test, y_test = strips(test_pool, args.test, seed=2)
    print(f"{args.train:,} training strips from {len(train_pool[0])} digit images, {args.test:,} test strips from "
          f"the other {len(test_pool[0])}", flush=True)
    rows = []

    started = time.perf_counter()
    captioner = RNNCaptioner(level="char", image_height=HEIGHT, image_width=WIDTH, conv_channels=args.conv_channels,
                             hidden_size=args.hidden_size, embedding_size=32, epochs=args.epochs,
                             batch_size=args.batch_size, validation_fraction=0.05, beam_size=args.beam_size,
                             max_length=MAX_DIGITS + 2, verbose=1).fit(X, y)
    seconds = time.perf_counter() - started
    predicted = captioner.predict(X_test)
    rows.append({"model": "rnnkit RNNCaptioner (CNN + LSTM with soft attention)", **scores(predicted, y_test),
                 "train_seconds": round(seconds), "ms_per_strip": per_image_ms(captioner.predict, X_test)})
    print(rows[-1], flush=True)

    started = time.perf_counter()
    baseline = train_baseline(X, y, args.epochs, args.batch_size, args.conv_channels, seed=0)
    seconds = time.perf_counter() - started
    rows.append({"model": "baseline: the same CNN, one classifier per position + length (Goodfellow et al. 2013)",
                 **scores(baseline_predict(baseline, X_test), y_test), "train_seconds": round(seconds),
                 "ms_per_strip": per_image_ms(lambda x: baseline_predict(baseline, x), X_test)})
    print(rows[-1], flush=True)

    by_length = {}
    for n in range(1, MAX_DIGITS + 1):
        rows_n = [i for i, t in enumerate(y_test) if len(t) == n]
        by_length[n] = round(float(np.mean([predicted[i] == y_test[i] for i in rows_n])), 4) if rows_n else None
    results = {"train_strips": args.train, "test_strips": args.test, "epochs": args.epochs,
               "canvas": [HEIGHT, WIDTH], "results": rows, "rnnkit_accuracy_by_length": by_length}
    if not args.no_write:
        attention_figure(captioner, X_test[:4], ROOT / "docs" / "figures" / "caption-attention.png")
    publish("caption", results, table(results), ROOT / "docs" / "images.md", write=not args.no_write)


def table(results: dict) -> str:
    lines = ["| model | sequence accuracy | character error rate | training seconds | ms per strip (batch 1) |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['sequence_accuracy']:.4f} | {r['character_error_rate']:.4f} | "
              f"{r['train_seconds']} | {r['ms_per_strip']} |" for r in results["results"]]
    by_length = results["rnnkit_accuracy_by_length"]
    lines += ["", "rnnkit's sequence accuracy by number of digits: " +
              ", ".join(f"{n}: {a:.3f}" for n, a in by_length.items() if a is not None) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
