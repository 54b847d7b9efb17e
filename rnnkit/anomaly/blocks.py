"""Block means: the anomaly detector's network can read the means of blocks of k steps instead of
the steps themselves (`block_steps`). A slow anomaly (a day's traffic that stays low, a level that
drifts) is plain in hourly means, while in 5-minute steps it hides in step-to-step noise the
network has learnt to rebuild; the window of L blocks also reaches k times further back.

A block's score goes on its last step, the first moment the block's mean is known (so online
scores still use only the past); the other steps of the block score 0. Range breaks and quiet
steps apply to the steps as before, so a single step beyond every earlier value is still flagged
where it happens.
"""

from __future__ import annotations

import numpy as np

from ..timeseries.data import Panel


def block_length(requested: int, context: int, lengths: list[int]) -> int:
    """The block length used: `requested`, or fewer where the shortest series would hold fewer
    than context + 2 blocks (one window to learn from and a step to hold out); at least 1."""
    return max(1, min(requested, min(lengths) // (context + 2)))


def block_ends(length: int, block: int) -> np.ndarray:
    """The steps of a series of `length` steps that hold a block's score: the last step of every
    whole block (every step when block is 1)."""
    return np.arange(block - 1, length // block * block, block)


def block_means(series: list[np.ndarray], block: int) -> list[np.ndarray]:
    """(T // block, D) means of the whole blocks of each (T, D) series; a last partial block is
    left out until it is whole."""
    return [s[:len(s) // block * block].reshape(len(s) // block, block, s.shape[1]).mean(axis=1) for s in series]


def blocked(y, series: list[np.ndarray], block: int):
    """y's series as block means, shaped as y was: a Panel (its blocks timed by their last step,
    ids kept for per-series scaling) or a list of (T // block, D) arrays."""
    means = block_means(series, block)
    if isinstance(y, Panel):
        times = [t[block - 1::block][:len(m)] for t, m in zip(y.times, means)]
        return Panel(y.value_cols, y.time_col, y.id_col, y.freq, list(y.ids), times, means)
    return means


def over_steps(per_block: np.ndarray, length: int, block: int) -> np.ndarray:
    """(B, D) values of blocks repeated over each of their steps, (T, D); NaN for the steps of a
    last partial block."""
    steps = np.full((length, per_block.shape[1]), np.nan)
    steps[:len(per_block) * block] = np.repeat(per_block, block, axis=0)
    return steps


def to_steps(per_block: list[np.ndarray], lengths: list[int], block: int, fill: float) -> list[np.ndarray]:
    """Values of each series' blocks, (B,) or (B, D), placed at the blocks' last steps of a (T,) or
    (T, D) array of `fill`."""
    out = []
    for values, length in zip(per_block, lengths):
        steps = np.full((length, *values.shape[1:]), fill)
        steps[block_ends(length, block)] = values
        out.append(steps)
    return out
