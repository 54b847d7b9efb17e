"""Figures of forecasts: history, the forecast mean and its 80% interval, and what happened."""

from __future__ import annotations

import numpy as np

MAX_PANELS = 4


def backtest_figure(panel, result, horizon: int):
    """Up to 4 series: the history before the last fold, rnnkit's forecast of it with the 0.1-0.9
    band, and the actual values (first value column)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    mean, bands = result.last_fold["rnnkit"]
    count = min(MAX_PANELS, len(panel))
    fig, axes = plt.subplots(count, 1, figsize=(9, 2.6 * count), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        values, times = panel.values[i][:, 0], np.asarray(panel.times[i])
        cut = len(values) - horizon
        shown = max(0, cut - max(4 * horizon, 3 * result.season, 24))
        ax.plot(times[shown:cut], values[shown:cut], color="0.3", lw=1.2, label="history")
        ax.plot(times[cut:], values[cut:], color="black", lw=1.2, ls="--", label="actual")
        ax.fill_between(times[cut:], bands[i, :, 0, 0], bands[i, :, 0, -1], color="tab:blue", alpha=0.25,
                        label="rnnkit 80% interval")
        ax.plot(times[cut:], mean[i, :, 0], color="tab:blue", lw=1.6, label="rnnkit forecast")
        title = f"{panel.ids[i]}: " if panel.id_col else ""
        ax.set_title(f"{title}{panel.value_cols[0]}", fontsize=10, loc="left")
        if i == 0:
            ax.legend(fontsize=8, loc="upper left", ncol=4, frameon=False)
    fig.tight_layout()
    return fig
