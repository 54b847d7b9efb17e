"""Experiment `vanishing`: how the gradient of a loss decays with distance, per cell type.

Claim (Bengio et al. 1994; Hochreiter & Schmidhuber 1997): in a tanh RNN, dL_T/dh_t shrinks
exponentially with T - t; the LSTM's additive cell path makes the decay far slower.
Measured at initialisation (random tokens) and after a short training run on real text.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..config import ModelConfig
from ..diagnostics import decay_per_step, gradient_by_distance
from ..models.language_model import LanguageModel
from ..training import TrainingDiverged
from .text import training_text

CELLS = ("rnn", "irnn", "lstm", "gru")
SIZES = {
    "smoke": dict(hidden=16, span=20, seeds=1, train_steps=20, text_chars=20_000),
    "full": dict(hidden=128, span=100, seeds=3, train_steps=600, text_chars=2_000_000),
}


def run(size: str, out: Path, work: Path, log) -> dict:
    import rnnkit
    s = SIZES[size]
    text_path, held_out = training_text("python", s["text_chars"], work, size)
    results: dict = {"at_init": {}, "trained": {}, "settings": s}
    for cell in CELLS:
        curves = []
        for seed in range(s["seeds"]):
            torch.manual_seed(seed)
            model = LanguageModel(ModelConfig(vocab_size=64, cell=cell, hidden_size=s["hidden"], num_layers=1,
                                              embedding_size=32))
            tokens = np.random.default_rng(seed).integers(0, 64, 20_000)
            curves.append(gradient_by_distance(model, tokens, span=s["span"], warmup=50, seed=seed)[0])
        norm = np.exp(np.log(np.maximum(np.array(curves), 1e-300)).mean(axis=0))  # geometric mean over seeds
        results["at_init"][cell] = {"norm": norm.tolist(), "decay_per_step": decay_per_step(norm)}
        log(f"vanishing: {cell} at init: x{results['at_init'][cell]['decay_per_step']:.3f} per step")

        with tempfile.TemporaryDirectory() as tmp:
            try:
                model = rnnkit.train(text_path, out=Path(tmp) / "run", cell=cell, hidden_size=s["hidden"],
                                     num_layers=1, embedding_size=32, seq_length=100, max_steps=s["train_steps"],
                                     lr=2e-3 if cell != "irnn" else 1e-4, log=lambda line: None)
            except TrainingDiverged as e:  # the IRNN on text with carried state (docs/language-models.md)
                results["trained"][cell] = {"diverged": str(e)}
                log(f"vanishing: {cell} diverged in training: {e}")
                continue
            tokens = model.file_tokens(held_out, 200_000)
            norm = gradient_by_distance(model.module, tokens, span=s["span"], seed=0)[0]
            val = model.meta["best_val"]
        results["trained"][cell] = {"norm": norm.tolist(), "decay_per_step": decay_per_step(norm), "val_nats": val}
        log(f"vanishing: {cell} trained ({s['train_steps']} steps, val {val:.3f} nats): "
            f"x{results['trained'][cell]['decay_per_step']:.3f} per step")

    from ..diagnostics.figures import pyplot, save_figure
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, key, title in ((axes[0], "at_init", "At initialisation (default init)"),
                           (axes[1], "trained", f"After {s['train_steps']} steps on Python source")):
        for colour, cell in enumerate(CELLS):  # one colour per cell in both panels
            r = results[key][cell]
            if "norm" not in r:
                ax.plot([], [], color=f"C{colour}", label=f"{cell} (diverged in training)")
                continue
            ax.semilogy(np.maximum(r["norm"], 1e-300), color=f"C{colour}",
                        label=f"{cell} (x{r['decay_per_step']:.3f}/step)")
        ax.set(title=title, xlabel="distance T - t")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("||dL_T / dh_t||")
    save_figure(fig, out / "vanishing.png")
    return results
