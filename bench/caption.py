"""Images to sequences, two sets, each with a baseline that does not attend, in the same run.

Digit strips: 1-6 real handwritten digits (scikit-learn's 8x8 digits, 1,797 images), each at its
own random scale (8-16 pixels) and vertical offset, with random gaps, on a 24 x 96 canvas. The
digit images are split 80/20 first: test strips are built only from digit images no training strip
used. Baseline: the same convolutional encoder with a classifier for the number of digits and one
per digit position (Goodfellow et al. 2013's multi-digit recogniser), which does not read in order.
Reported: whole-sequence accuracy and character error rate (edit distance / reference digits).

Fashion-MNIST scenes: 2-4 clothing items (Debian's dataset-fashion-mnist, 28 x 28 each, scaled to
20-30 pixels) in a row on a 32 x 128 canvas, captioned "a sandal left of a bag left of a coat";
training scenes use only Fashion-MNIST's training images, test scenes only its test images.
Baseline: the same encoder read column by column by a bidirectional LSTM trained with CTC (Graves
et al. 2006), no attention. Reported: BLEU-4 and exact match.

rnnkit: `RNNCaptioner` (the convolutional encoder and an LSTM decoder with soft attention over its
feature grid, Xu et al. 2015). Every model trains for the same number of epochs on the same images;
training seconds and milliseconds per image (batch 1) are reported too.

    .venv/bin/python bench/caption.py [--sets digits fashion] [--train 20000] [--epochs 8] [--no-write]

Stores "caption" in bench/results.json, the tables in docs/images.md, and attention figures in
docs/images/caption-attention.png and caption-scenes.png.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from rnnkit.experiments.images import FASHION, read_fashion
from rnnkit.images import RNNCaptioner
from rnnkit.images.data import to_input
from rnnkit.images.model import ConvEncoder
from rnnkit.recurrent import Recurrent

sys.path.insert(0, str(Path(__file__).resolve().parent))
from g2p import edit_distance  # noqa: E402
from store import RESULTS, ROOT, publish  # noqa: E402

HEIGHT, WIDTH, MAX_DIGITS = 24, 96, 6
SCENE = (32, 128)
ITEMS = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")


def digit_pools(seed: int = 0):
    """scikit-learn's digits as uint8 0-255 (N, 8, 8), split 80/20 into training and test pools."""
    digits = load_digits()
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(0.8 * len(images))
    return (images[order[:cut]], digits.target[order[:cut]]), (images[order[cut:]], digits.target[order[cut:]])


def compose(pool, count: int, seed: int, height: int, width: int, sizes: tuple[int, int], items: tuple[int, int],
            max_gap: int) -> tuple[np.ndarray, list[list[int]]]:
    """`count` canvases (count, height, width) uint8, each with `items` (low-high) images of the
    pool in a row, left to right, each at its own size (sizes, pixels) and vertical offset, with
    gaps of 0-max_gap pixels (shrunk alike when the row would not fit); and each canvas's labels."""
    images, labels = pool
    rng = np.random.default_rng(seed)
    canvas = np.zeros((count, height, width), np.uint8)
    rows = []
    for k in range(count):
        n = int(rng.integers(items[0], items[1] + 1))
        chosen = rng.integers(0, len(images), n)
        side = rng.uniform(sizes[0], sizes[1], n)
        gaps = rng.integers(0, max_gap + 1, n)
        if side.sum() + gaps[1:].sum() > width:  # too wide: shrink every item alike
            side *= (width - gaps[1:].sum()) / side.sum()
        side = np.minimum(np.maximum(np.floor(side).astype(int), 6), height)
        x = int(rng.integers(0, max(1, width - int(side.sum() + gaps[1:].sum())) + 1))
        for i, (index, size) in enumerate(zip(chosen, side)):
            item = F.interpolate(torch.from_numpy(images[index]).float()[None, None], size=(size, size),
                                 mode="bilinear", align_corners=False)[0, 0].round().clamp(0, 255).byte().numpy()
            y = int(rng.integers(0, height - size + 1))
            x = min(x, width - size)
            region = canvas[k, y:y + size, x:x + size]
            np.maximum(region, item, out=region)
            x += size + int(gaps[i])
        rows.append([int(labels[i]) for i in chosen])
    return canvas, rows


def strips(pool, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Digit strips (count, 24, 96) and their digit strings."""
    canvas, rows = compose(pool, count, seed, HEIGHT, WIDTH, (8, 16), (1, MAX_DIGITS), 4)
    return canvas, ["".join(map(str, r)) for r in rows]


def fashion_pools():
    """Fashion-MNIST (Debian's dataset-fashion-mnist) as uint8 (N, 28, 28): its training images and
    its test images, never mixed."""
    return read_fashion()


def scenes(pool, count: int, seed: int) -> tuple[np.ndarray, list[str], list[list[int]]]:
    """Scenes (count, 32, 128) of 2-4 clothing items in a row, captions such as "a sandal left of a
    bag", and the items' classes in order."""
    canvas, rows = compose(pool, count, seed, SCENE[0], SCENE[1], (20, 30), (2, 4), 8)
    return canvas, [" left of ".join(f"a {ITEMS[i]}" for i in r) for r in rows], rows


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


class CTCReader(nn.Module):
    """A recurrent reader without attention (Graves et al. 2006's connectionist temporal
    classification): the same convolutional encoder, its grid read column by column, left to right,
    by a bidirectional LSTM that emits an item class or "nothing" (blank) per column."""

    def __init__(self, conv_channels: int, classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.encoder = ConvEncoder(1, SCENE[0], SCENE[1], conv_channels, 3)
        h, _ = self.encoder.grid
        self.reader = Recurrent("lstm", h * self.encoder.width, hidden, 1, bidirectional=True)
        self.out = nn.Linear(2 * hidden, classes + 1)  # 0 = blank

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encoder(images)  # (B, h * w, D), row-major
        (h, w), B = self.encoder.grid, features.shape[0]
        columns = features.reshape(B, h, w, -1).permute(0, 2, 1, 3).reshape(B, w, -1)  # (B, w, h * D)
        return self.out(self.reader(columns)[0]).log_softmax(-1)  # (B, w, classes + 1)


def fit_network(model: nn.Module, loss_of, images: np.ndarray, epochs: float, batch_size: int, seed: int) -> nn.Module:
    """Adam with a one-cycle schedule (as rnnkit's estimators use), gradient clipping at 1, random batches.
    loss_of(model, pixels, rows) -> the batch's loss."""
    torch.manual_seed(seed)
    x = torch.from_numpy(images)[:, None]
    steps = int(epochs * len(images) / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=generator)
    model.train()
    for step in range(steps):
        start = (step * batch_size) % len(images)
        if start + batch_size > len(images):
            order = torch.randperm(len(images), generator=generator)
        rows = order[start:start + batch_size]
        loss = loss_of(model, to_input(x[rows], torch.device("cpu")), rows)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return model.eval()


def train_position_classifier(images: np.ndarray, texts: list[str], epochs: float, batch_size: int,
                              conv_channels: int) -> PositionClassifier:
    lengths = torch.tensor([len(t) for t in texts])
    digits = torch.full((len(texts), MAX_DIGITS), -100)
    for i, t in enumerate(texts):
        digits[i, :len(t)] = torch.tensor([int(c) for c in t])

    def loss_of(model, pixels, rows):
        length_logits, digit_logits = model(pixels)
        return F.cross_entropy(length_logits, lengths[rows]) + \
            F.cross_entropy(digit_logits.reshape(-1, 10), digits[rows].reshape(-1), ignore_index=-100)
    torch.manual_seed(0)
    return fit_network(PositionClassifier(conv_channels), loss_of, images, epochs, batch_size, seed=0)


@torch.no_grad()
def position_predict(model: PositionClassifier, images: np.ndarray) -> list[str]:
    out = []
    for start in range(0, len(images), 256):
        length_logits, digit_logits = model(to_input(torch.from_numpy(images[start:start + 256])[:, None],
                                                     torch.device("cpu")))
        for n, row in zip(length_logits.argmax(1).tolist(), digit_logits.argmax(2).tolist()):
            out.append("".join(map(str, row[:n])))
    return out


def train_ctc_reader(images: np.ndarray, items: list[list[int]], epochs: float, batch_size: int,
                     conv_channels: int) -> CTCReader:
    targets = [torch.tensor(r) + 1 for r in items]  # classes 1..10; 0 is the blank

    def loss_of(model, pixels, rows):
        log_probs = model(pixels).transpose(0, 1)  # (w, B, classes + 1)
        chosen = [targets[i] for i in rows.tolist()]
        return F.ctc_loss(log_probs, torch.cat(chosen), torch.full((len(chosen),), log_probs.shape[0]),
                          torch.tensor([len(t) for t in chosen]), zero_infinity=True)
    torch.manual_seed(0)
    return fit_network(CTCReader(conv_channels, len(ITEMS)), loss_of, images, epochs, batch_size, seed=0)


@torch.no_grad()
def ctc_predict(model: CTCReader, images: np.ndarray) -> list[str]:
    """Greedy CTC decoding (the likeliest symbol per column, repeats merged, blanks dropped), written
    as a caption."""
    out = []
    for start in range(0, len(images), 256):
        best = model(to_input(torch.from_numpy(images[start:start + 256])[:, None], torch.device("cpu"))).argmax(-1)
        for row in best.tolist():
            labels = [s - 1 for k, s in enumerate(row) if s != 0 and (k == 0 or s != row[k - 1])]
            out.append(" left of ".join(f"a {ITEMS[i]}" for i in labels))
    return out


def scores(predicted: list[str], truth: list[str]) -> dict:
    errors = sum(edit_distance(list(p), list(t)) for p, t in zip(predicted, truth))
    return {"sequence_accuracy": round(float(np.mean([p == t for p, t in zip(predicted, truth)])), 4),
            "character_error_rate": round(errors / sum(map(len, truth)), 4)}


def bleu4(predicted: list[str], truth: list[str]) -> float:
    """Corpus BLEU-4 (Papineni et al. 2002) with one reference per caption: the geometric mean of
    the clipped 1- to 4-gram precisions, times the brevity penalty."""
    matched, total, length, reference = [0] * 4, [0] * 4, 0, 0
    for p, t in zip(predicted, truth):
        p, t = p.split(), t.split()
        length, reference = length + len(p), reference + len(t)
        for n in range(1, 5):
            grams = Counter(tuple(p[i:i + n]) for i in range(len(p) - n + 1))
            wanted = Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1))
            matched[n - 1] += sum((grams & wanted).values())
            total[n - 1] += max(len(p) - n + 1, 0)
    if min(matched) == 0:
        return 0.0
    precision = sum(math.log(m / t) for m, t in zip(matched, total)) / 4
    brevity = 1.0 if length > reference else math.exp(1 - reference / max(length, 1))
    return brevity * math.exp(precision)


def per_image_ms(predict, images: np.ndarray, repeats: int = 50) -> float:
    """Median milliseconds to read one image alone (batch 1)."""
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        predict(images[i:i + 1])
        times.append(time.perf_counter() - started)
    return round(1000 * float(np.median(times)), 2)


def attention_figure(captioner: RNNCaptioner, images: np.ndarray, level: str, path: Path) -> None:
    from rnnkit.images.figures import attention_png
    captions, maps = captioner.predict_with_attention(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(attention_png(images, captions, maps, level))


def default_speed() -> dict:
    """Milliseconds to caption one 64 x 64 image at batch 1 with the default model (32-channel
    encoder, 256-unit decoder), the worst case: an untrained decoder never writes the end, so every
    caption runs to the longest (40 tokens)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 64, 64)).astype(np.uint8)
    captioner = RNNCaptioner(epochs=0.01, random_state=0).fit(images, ["a b c"] * 64)
    captioner.model_.eos = -1  # never finishes: the full 40 steps every time
    ms = per_image_ms(captioner.predict, images)
    print(f"default model, one 64 x 64 image, 40 tokens: {ms} ms", flush=True)
    return {"ms_per_image_64x64_40_tokens": ms}


def run_digits(args) -> dict:
    train_pool, test_pool = digit_pools()
    X, y = strips(train_pool, args.train, seed=1)
    X_test, y_test = strips(test_pool, args.test, seed=2)
    print(f"digits: {args.train:,} training strips from {len(train_pool[0])} digit images, {args.test:,} test "
          f"strips from the other {len(test_pool[0])}", flush=True)
    started = time.perf_counter()
    captioner = RNNCaptioner(level="char", image_height=HEIGHT, image_width=WIDTH, conv_channels=args.conv_channels,
                             hidden_size=args.hidden_size, embedding_size=32, epochs=args.epochs,
                             batch_size=args.batch_size, validation_fraction=0.05, beam_size=args.beam_size,
                             max_length=MAX_DIGITS + 2, verbose=1).fit(X, y)
    seconds = time.perf_counter() - started
    predicted = captioner.predict(X_test)
    rows = [{"model": "rnnkit RNNCaptioner (CNN + LSTM with soft attention)", **scores(predicted, y_test),
             "train_seconds": round(seconds), "ms_per_image": per_image_ms(captioner.predict, X_test)}]
    print(rows[-1], flush=True)
    started = time.perf_counter()
    baseline = train_position_classifier(X, y, args.epochs, args.batch_size, args.conv_channels)
    seconds = time.perf_counter() - started
    rows.append({"model": "baseline: the same CNN, one classifier per position + length (Goodfellow et al. 2013)",
                 **scores(position_predict(baseline, X_test), y_test), "train_seconds": round(seconds),
                 "ms_per_image": per_image_ms(lambda x: position_predict(baseline, x), X_test)})
    print(rows[-1], flush=True)
    by_length = {}
    for n in range(1, MAX_DIGITS + 1):
        chosen = [i for i, t in enumerate(y_test) if len(t) == n]
        by_length[n] = round(float(np.mean([predicted[i] == y_test[i] for i in chosen])), 4) if chosen else None
    if not args.no_write:
        attention_figure(captioner, X_test[:4], "char", ROOT / "docs" / "images" / "caption-attention.png")
    return {"train": args.train, "test": args.test, "epochs": args.epochs, "canvas": [HEIGHT, WIDTH],
            "results": rows, "rnnkit_accuracy_by_length": by_length}


def run_fashion(args) -> dict:
    train_pool, test_pool = fashion_pools()
    X, y, items = scenes(train_pool, args.train, seed=3)
    X_test, y_test, _ = scenes(test_pool, args.test, seed=4)
    print(f"fashion: {args.train:,} training scenes from Fashion-MNIST's training images, {args.test:,} test scenes "
          "from its test images", flush=True)
    exact = lambda p: round(float(np.mean([a == b for a, b in zip(p, y_test)])), 4)  # noqa: E731
    rows = []
    for row_encoder in (False, True):
        started = time.perf_counter()
        captioner = RNNCaptioner(level="word", image_height=SCENE[0], image_width=SCENE[1],
                                 conv_channels=args.conv_channels, hidden_size=args.hidden_size, embedding_size=32,
                                 epochs=args.epochs, batch_size=args.batch_size, validation_fraction=0.05,
                                 beam_size=args.beam_size, max_length=20, row_encoder=row_encoder,
                                 verbose=1).fit(X, y)
        seconds = time.perf_counter() - started
        predicted = captioner.predict(X_test)
        name = "rnnkit RNNCaptioner (CNN + LSTM with soft attention)" + (", --row-encoder" if row_encoder else "")
        rows.append({"model": name, "bleu4": round(bleu4(predicted, y_test), 4), "exact_match": exact(predicted),
                     "train_seconds": round(seconds), "ms_per_image": per_image_ms(captioner.predict, X_test)})
        print(rows[-1], flush=True)
    started = time.perf_counter()
    reader = train_ctc_reader(X, items, args.epochs, args.batch_size, args.conv_channels)
    seconds = time.perf_counter() - started
    read = ctc_predict(reader, X_test)
    rows.append({"model": "baseline: the same CNN read column by column by a BiLSTM with CTC, no attention",
                 "bleu4": round(bleu4(read, y_test), 4), "exact_match": exact(read), "train_seconds": round(seconds),
                 "ms_per_image": per_image_ms(lambda x: ctc_predict(reader, x), X_test)})
    print(rows[-1], flush=True)
    if not args.no_write:
        attention_figure(captioner, X_test[:3], "word", ROOT / "docs" / "images" / "caption-scenes.png")
    return {"train": args.train, "test": args.test, "epochs": args.epochs, "canvas": list(SCENE), "results": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", choices=("digits", "fashion"), default=["digits", "fashion"])
    parser.add_argument("--train", type=int, default=20_000, help="training images per set")
    parser.add_argument("--test", type=int, default=2_000, help="test images per set")
    parser.add_argument("--epochs", type=float, default=8.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--conv-channels", type=int, default=16)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only; leave results.json and the doc alone")
    args = parser.parse_args()
    torch.set_num_threads(2)
    sets = list(args.sets)
    if "fashion" in sets and not FASHION.is_dir():
        print(f"caption.py: {FASHION} is missing (Debian's dataset-fashion-mnist; `make fashion-mnist`): "
              "the scenes are left out", file=sys.stderr)
        sets.remove("fashion")
    stored = json.loads(RESULTS.read_text()).get("caption", {}) if RESULTS.exists() else {}
    results = {**stored, "speed": default_speed(), **{name: (run_digits if name == "digits" else run_fashion)(args)
                                                      for name in sets}}  # a set not run keeps its stored numbers
    publish("caption", results, table(results), ROOT / "docs" / "images.md", write=not args.no_write)


def table(results: dict) -> str:
    lines = [f"Captioning one 64 x 64 image with the default model (32-channel encoder, 256-unit decoder, 40 tokens, "
             f"batch 1): {results['speed']['ms_per_image_64x64_40_tokens']} ms.", ""]
    if "digits" in results:
        digits = results["digits"]
        lines += ["Digit strips:", "", "| model | sequence accuracy | character error rate | training seconds | "
                  "ms per strip (batch 1) |", "|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['sequence_accuracy']:.4f} | {r['character_error_rate']:.4f} | "
                  f"{r['train_seconds']} | {r['ms_per_image']} |" for r in digits["results"]]
        lines += ["", "rnnkit's sequence accuracy by number of digits: " + ", ".join(
            f"{n}: {a:.3f}" for n, a in digits["rnnkit_accuracy_by_length"].items() if a is not None) + ".", ""]
    if "fashion" in results:
        lines += ["Fashion-MNIST scenes:", "", "| model | BLEU-4 | exact match | training seconds | ms per scene (batch 1) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['bleu4']:.4f} | {r['exact_match']:.4f} | {r['train_seconds']} | "
                  f"{r['ms_per_image']} |" for r in results["fashion"]["results"]]
    return "\n".join(lines).rstrip()


if __name__ == "__main__":
    main()
