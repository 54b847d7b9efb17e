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


def saliency_figure(times, values: np.ndarray, future_times, mean: np.ndarray, bands: np.ndarray,
                    contribution: np.ndarray, title: str):
    """Top: the context the network read (first value column), the forecast and its 80% band.
    Bottom: gradient x input of the forecast for every past step read (summed over columns)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = min(len(values), len(contribution))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    top.plot(times[-n:], values[-n:, 0], color="0.3", lw=1.2, label="history read")
    top.fill_between(future_times, bands[:, 0, 0], bands[:, 0, -1], color="tab:blue", alpha=0.25, label="80% interval")
    top.plot(future_times, mean[:, 0], color="tab:blue", lw=1.6, label="forecast")
    top.set_title(title, fontsize=10, loc="left")
    top.legend(fontsize=8, loc="upper left", ncol=3, frameon=False)
    influence = contribution[-n:].sum(axis=1)
    bottom.bar(times[-n:], influence, width=0.8 * (np.diff(np.asarray(times[-n:])).min() if n > 1 else 1),
               color=np.where(influence >= 0, "tab:red", "tab:green"))
    bottom.axhline(0, color="0.5", lw=0.8)
    bottom.set_ylabel("gradient x input\n(red: pushed up)", fontsize=8)
    fig.tight_layout()
    return fig
