"""Experiment `sequential-images`: images read as sequences, the benchmark of the recurrent
normalisation and initialisation papers. An image is fed row by row (28 steps of 28 values) or
pixel by pixel (784 steps of one value; "permuted": the pixels in one fixed random order, which
spreads what belongs together over the whole sequence), and the class is read from the last state.

Compared: LSTM, BN-LSTM (Cooijmans et al. 2016: pixel MNIST 99.0, permuted 95.4, against their
LSTM's 98.9 and 90.2), IRNN (Le et al. 2015: about 97 on pixel MNIST) and IndRNN (Li et al. 2018),
each through `RNNClassifier` (the one trainer), one layer, the same width and budget. The BN-LSTM
as its authors ran it: every training sequence starts from a random h (standard deviation 0.1),
and it is evaluated on population statistics (recomputed from training batches before each
validation, `LabelledSequencesTask.refresh_statistics`).

Data: Fashion-MNIST (Debian's dataset-fashion-mnist) at the full size when it is installed, else
scikit-learn's 8 x 8 digits (8 steps of 8 values, or 64 of one), which the smoke size always uses.
Fashion-MNIST is harder than MNIST (good models reach about 0.90-0.93 rather than 0.99 with
convolutions), so accuracies sit lower than the papers' for the same model.
"""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import numpy as np

from ..config import TrainConfig

FASHION = Path("/usr/share/datasets/fashion-mnist")
CELLS = ("lstm", "bnlstm", "irnn", "indrnn")
# Learning rates (Adam, gradient norm clipped at 1): 2e-3 for the gated cells and IndRNN, 1e-3 for the
# IRNN, whose identity recurrence amplifies large updates over long sequences (Le et al. trained it
# with tiny SGD steps; on the digits read by rows, 1e-4 learned nothing in 5 epochs, 1e-3 reached 0.70).
LR = {"lstm": 2e-3, "bnlstm": 2e-3, "irnn": 1e-3, "indrnn": 2e-3}
SIZES = {
    "smoke": dict(train=1200, test=597, pixel_train=1200, hidden=32, epochs=4, pixel_epochs=4, batch=32,
                  permuted_cells=("lstm", "bnlstm")),
    "full": dict(train=20000, test=5000, pixel_train=3000, hidden=128, epochs=8, pixel_epochs=6, batch=64,
                 permuted_cells=("lstm", "bnlstm")),
}
# The BN-LSTM authors' recipe for sequential MNIST (Cooijmans et al. 2016, §5.1): 100 units, RMSProp
# at 1e-3 with momentum 0.9 (the trainer's default momentum), a constant rate, gradient norm clipped
# at 1, batch 64; pixel order only, on every training image, LSTM against BN-LSTM. Each cell is tested
# with the weights of its epoch of lowest validation loss (early stopping that never stops: the
# BN-LSTM's accuracy swings by up to 0.13 from one epoch to the next here).
RECIPE = dict(optimizer="rmsprop", lr=1e-3, schedule="constant", early_stopping=True)
RECIPE_SIZES = {
    "smoke": dict(train=1200, test=597, hidden=32, epochs=4, batch=32),
    "full": dict(train=60000, test=5000, hidden=100, epochs=12, batch=64),
}


def read_idx(path: Path) -> np.ndarray:
    """An idx file (MNIST's format): 0, 0, type, number of dimensions, each dimension big-endian, data."""
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(f">{dims}I", data[4:4 + 4 * dims])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape).copy()


def read_fashion() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST as uint8: (training images (60000, 28, 28), labels), (test images, labels)."""
    return tuple((read_idx(FASHION / f"{part}-images-idx3-ubyte.gz"), read_idx(FASHION / f"{part}-labels-idx1-ubyte.gz"))
                 for part in ("train", "t10k"))


def load_images(size: str) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(name, train images (N, S, S) in [0, 1], train labels, test images, test labels)."""
    if size == "full" and (FASHION / "train-images-idx3-ubyte.gz").exists():
        (images, labels), (test_images, test_labels) = read_fashion()
        return "Fashion-MNIST", images / 255.0, labels.astype(np.int64), test_images / 255.0, \
            test_labels.astype(np.int64)
    from sklearn.datasets import load_digits
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    x, y = digits.images[order] / 16.0, digits.target[order].astype(np.int64)
    return "scikit-learn digits (8 x 8)", x[:1200], y[:1200], x[1200:], y[1200:]


def _fit(cell: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, s: dict,
         epochs: int, log, recipe: dict | None = None) -> dict:
    """Train one classifier (Adam at LR[cell] with a cosine schedule unless `recipe` says otherwise);
    its validation accuracy per epoch, seconds per epoch, test accuracy."""
    from ..estimators import RNNClassifier
    recipe = recipe or dict(optimizer="adam", lr=LR[cell], schedule="cosine")
    clf = RNNClassifier(cell=cell, hidden_size=s["hidden"], embedding_size=s["hidden"], pooling="last",
                        bidirectional=False, dropout=0.0, epochs=epochs, batch_size=s["batch"], **recipe,
                        clip=1.0, validation_fraction=0.1, ensemble="none", random_state=0,
                        initial_state_noise=0.1 if cell == "bnlstm" else 0.0)
    curve, started = [], time.perf_counter()

    def record(estimator, row: dict) -> None:
        curve.append({"epoch": row["epoch"], "val_accuracy": row.get("val_accuracy"), "val_loss": row["val_loss"],
                      "seconds": round(time.perf_counter() - started, 1)})
    clf.fit(x.astype(np.float32), y, on_epoch_end=record)
    accuracy = float(clf.score(x_test.astype(np.float32), y_test))
    kept = f", the weights of epoch {clf.best_epoch_:g}" if recipe.get("early_stopping") else ""
    log(f"  {cell}: test accuracy {accuracy:.3f} after {epochs} epochs{kept} ({curve[-1]['seconds']:.0f} s)")
    return {"test_accuracy": accuracy, "best_epoch": clf.best_epoch_, "curve": curve}


def run(size: str, out: Path, work: Path, log) -> dict:
    s = SIZES[size]
    name, x_train, y_train, x_test, y_test = load_images(size)
    x_train, y_train = x_train[:s["train"]], y_train[:s["train"]]
    x_test, y_test = x_test[:s["test"]], y_test[:s["test"]]
    side = x_train.shape[1]
    permutation = np.random.default_rng(1).permutation(side * side)
    variants = {  # name -> (train sequences (N, T, D), test sequences, cells, epochs)
        "rows": (x_train, x_test, CELLS, s["epochs"]),
        "pixels": (x_train[:s["pixel_train"]].reshape(-1, side * side, 1), x_test.reshape(-1, side * side, 1),
                   CELLS, s["pixel_epochs"]),
        "permuted pixels": (x_train[:s["pixel_train"]].reshape(-1, side * side)[:, permutation, None],
                            x_test.reshape(-1, side * side)[:, permutation, None], s["permuted_cells"],
                            s["pixel_epochs"]),
    }
    results = {"data": name, "settings": {**s, "lr": LR, "side": side}, "runs": {}}
    for variant, (train, test, cells, epochs) in variants.items():
        log(f"sequential-images: {name}, {variant} ({train.shape[1]} steps of {train.shape[2]}), "
            f"{len(train)} training images")
        results["runs"][variant] = {cell: _fit(cell, train, y_train[:len(train)], test, y_test, s, epochs, log)
                                    for cell in cells}
    _plot(results, out / "sequential-images.png")
    return results


def run_recipe(size: str, out: Path, work: Path, log) -> dict:
    """Pixel order with the BN-LSTM authors' recipe (RECIPE): LSTM against BN-LSTM."""
    s = RECIPE_SIZES[size]
    name, x_train, y_train, x_test, y_test = load_images(size)
    side = x_train.shape[1]
    train = x_train[:s["train"]].reshape(-1, side * side, 1)
    test, y_test = x_test[:s["test"]].reshape(-1, side * side, 1), y_test[:s["test"]]
    log(f"bnlstm-recipe: {name}, pixels ({side * side} steps of 1), {len(train)} training images, "
        f"RMSProp {RECIPE['lr']:g}, {s['hidden']} units")
    momentum = TrainConfig().momentum  # RMSProp's momentum: the trainer's default, which the recipe relies on
    results = {"data": name, "settings": {**s, **RECIPE, "momentum": momentum, "side": side},
               "runs": {"pixels": {cell: _fit(cell, train, y_train[:len(train)], test, y_test, s, s["epochs"], log,
                                              {**RECIPE, "patience": s["epochs"]}) for cell in ("lstm", "bnlstm")}}}
    _plot(results, out / "bnlstm-recipe.png")
    return results


def _plot(results: dict, path: Path) -> None:
    from ..diagnostics.figures import pyplot, save_figure
    plt = pyplot()
    runs = results["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 4), squeeze=False)
    for ax, (variant, cells) in zip(axes[0], runs.items()):
        for cell, run in cells.items():
            ax.plot([p["epoch"] for p in run["curve"]], [p["val_accuracy"] for p in run["curve"]], marker="o",
                    label=f"{cell} (test {run['test_accuracy']:.3f})")
        ax.set(title=f"{results['data']}: {variant}", xlabel="epoch", ylabel="validation accuracy")
        ax.legend(fontsize=8)
    save_figure(fig, path)
