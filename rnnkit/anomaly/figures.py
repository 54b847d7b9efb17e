"""The figure of a scored series: the values with the band the network expected each step to
fall in and the flagged steps marked, and below it the score with the threshold."""

from __future__ import annotations

import numpy as np

MAX_PANELS = 3


def anomaly_figure(panel, scores: list[np.ndarray], expected: list, threshold: float, level: float):
    """Up to 3 series (first value column each): two rows of axes per series."""
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
        top.fill_between(times, low[:, 0], high[:, 0], color="tab:blue", alpha=0.2, lw=0,
                         label=f"expected ({level:.0%} one-step interval)")
        top.plot(times, values, color="0.25", lw=0.9, label=panel.value_cols[0])
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
