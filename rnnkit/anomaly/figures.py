"""The figure of a scored series: the values with the band the network expected each step to
fall in and the flagged steps marked, and below it the score with the threshold."""

from __future__ import annotations

import numpy as np

from .blocks import block_means, over_steps

MAX_PANELS = 3


def anomaly_figure(panel, scores: list[np.ndarray], expected: list, threshold: float, level: float,
                   block: int = 1):
    """Up to 3 series (first value column each): two rows of axes per series. With block > 1 (a
    detector that reads block means) the band is the expected range of each block's mean, drawn
    with the block means themselves."""
    from ..diagnostics.figures import pyplot
    plt = pyplot()
    count = min(MAX_PANELS, len(panel))
    fig, axes = plt.subplots(2 * count, 1, figsize=(10, 4.2 * count), squeeze=False,
                             gridspec_kw={"height_ratios": [2, 1] * count}, sharex=False)
    for i in range(count):
        top, bottom = axes[2 * i, 0], axes[2 * i + 1, 0]
        times, values = np.asarray(panel.times[i]), panel.values[i][:, 0]
        _, low, high = expected[i]
        flagged = scores[i] > threshold
        band = f"expected mean of {block} steps ({level:.0%} range)" if block > 1 else \
            f"expected ({level:.0%} one-step interval)"
        top.fill_between(times, low[:, 0], high[:, 0], color="tab:blue", alpha=0.2, lw=0, label=band)
        top.plot(times, values, color="0.25", lw=0.9, label=panel.value_cols[0])
        if block > 1:  # what the network read: each whole block's mean over its steps
            means = over_steps(block_means([values[:, None]], block)[0], len(values), block)[:, 0]
            top.plot(times, means, color="tab:orange", lw=1.1, label=f"mean of each {block} steps")
        top.scatter(times[flagged], values[flagged], color="tab:red", s=14, zorder=3,
                    label=f"flagged ({int(flagged.sum())})")
        name = f"{panel.ids[i]}: " if panel.id_col else ""
        top.set_title(f"{name}{panel.value_cols[0]}", fontsize=10, loc="left")
        top.legend(fontsize=8, loc="upper left")
        bottom.plot(times, scores[i], color="tab:purple", lw=0.9)
        bottom.axhline(threshold, color="tab:red", lw=0.8, ls="--", label=f"threshold {threshold:.3g}")
        bottom.set_ylabel("score", fontsize=9)
        bottom.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def flag_figure(times, history: np.ndarray, when, actual: float, mean: float, low: float, high: float,
                contribution: np.ndarray, level: float, title: str, came: str = "what came"):
    """Why one step was flagged. Top: the context the network read (first value column), the value
    it expected at the step with its `level` interval, and the value that came. Bottom: gradient x
    input of that forecast for every step read (summed over columns)."""
    from ..diagnostics.figures import pyplot
    plt = pyplot()
    n = min(len(history), len(contribution))
    times = np.asarray(times)[-n:]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    top.plot(times, history[-n:, 0], color="0.3", lw=1.2, label="history read")
    top.errorbar([when], [mean], yerr=[[mean - low], [high - mean]], fmt="o", color="tab:blue", capsize=4,
                 label=f"expected ({level:.0%} interval)")
    top.scatter([when], [actual], color="tab:red", zorder=3, s=30, label=came)
    top.set_title(title, fontsize=10, loc="left")
    top.legend(fontsize=8, loc="upper left", ncol=3, frameon=False)
    influence = contribution[-n:].sum(axis=1)
    width = 0.8 * (np.diff(times).min() if n > 1 else 1)
    bottom.bar(times, influence, width=width, color=np.where(influence >= 0, "tab:red", "tab:green"))
    bottom.axhline(0, color="0.5", lw=0.8)
    bottom.set_ylabel("gradient x input\n(red: pushed up)", fontsize=8)
    fig.tight_layout()
    return fig
