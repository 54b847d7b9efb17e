"""Figures for the diagnostics (matplotlib, drawn off-screen to PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    """matplotlib.pyplot on the off-screen Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str | Path) -> None:
    """Lay out, write (110 dpi, atomically, signed as rnnkit's: see `outputs`) and close a figure."""
    from ..outputs import png, write
    fig.tight_layout()
    write(path, png(fig))


def plot_diagnostics(report: dict, path: str | Path, title: str = "") -> None:
    """Four panels: gradient norm by distance, W_hh singular values, gate saturation, hidden norm."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    (ax_grad, ax_sv), (ax_sat, ax_norm) = axes
    flow = report["gradient_by_distance"]
    for k, (norm, rate) in enumerate(zip(flow["norm"], flow["decay_per_step"])):
        label = f"layer {k + 1}" + (f" (x{rate:.3f} per step)" if rate is not None else "")
        ax_grad.semilogy(flow["distance"], np.maximum(norm, 1e-300), label=label)
    ax_grad.set(xlabel="distance T - t (steps back)", ylabel="||dL_T / dh_t||",
                title="Gradient of the last loss by distance")
    ax_grad.legend(fontsize=8)

    for k, layer in enumerate(report["recurrent_spectra"]):
        for name, s in layer.items():
            ax_sv.plot(s["singular_values"], label=f"L{k + 1} {name} (ρ={s['spectral_radius']:.2f})")
    ax_sv.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax_sv.set(xlabel="index", ylabel="singular value", title="Recurrent matrices W_hh (ρ: spectral radius)")
    ax_sv.legend(fontsize=7)

    labels, lows, highs = [], [], []
    for k, layer in enumerate(report["saturation"]):
        for name, frac in layer.items():
            labels.append(f"L{k + 1}\n{name.replace('_', ' ')}")
            lows.append(frac["low"])
            highs.append(frac["high"])
    x = np.arange(len(labels))
    ax_sat.bar(x, lows, label="low (< 0.1; ReLU: zero)")
    ax_sat.bar(x, highs, bottom=lows, label="high (> 0.9)")
    ax_sat.set_xticks(x, labels, fontsize=7)
    ax_sat.set(ylim=(0, 1), ylabel="fraction of activations", title="Saturation")
    ax_sat.legend(fontsize=8)

    for k, norm in enumerate(report["hidden_norm"]):
        ax_norm.plot(norm, label=f"layer {k + 1}")
    ax_norm.set(xlabel="position from a blank state", ylabel="mean ||h_t||", title="Hidden-state norm")
    ax_norm.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
