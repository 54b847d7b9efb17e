"""Forecasting examples as (series, cut) pairs into one flat array of all series: a window is
the up-to-L steps before the cut (the context) and the H steps from it (the target). Windows are
gathered per batch, so the series are never copied window by window.

Each window is scaled by its own context (shapes: B windows, L context steps, D values):
  location = the context's last value                 (B, D)
  scale    = the context's mean absolute step change  (B, D), floored
so the network reads and predicts changes from "now" in units of a typical step: the naive
forecast is 0, a scaled absolute error is a per-window MASE (Hyndman & Koehler 2006), and one
global model serves series of any level (M1 has series from tens to millions).
"""

from __future__ import annotations

import numpy as np
import torch

MIN_CONTEXT = 3  # the fewest past steps a window may have: two step changes give a scale


class Windows:
    def __init__(self, values: list[np.ndarray], context_length: int, horizon: int, season: int = 1,
                 phases: np.ndarray | None = None) -> None:
        # season > 1: each step also carries its place in the season as (sin, cos); `phases`: the
        # place of each series' first step (default 0)
        self.season = season
        self.phases = np.zeros(len(values), dtype=np.int64) if phases is None else np.asarray(phases, dtype=np.int64)
        self.lengths = np.array([len(v) for v in values], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.flat = np.concatenate(values).astype(np.float32)  # (N, D): every series once, end to end
        self.context_length, self.horizon = context_length, horizon

    def training_pairs(self, hold_out: int = 0) -> np.ndarray:
        """(n, 2) [series, cut] for every cut with a full target that ends `hold_out` steps or more
        before the series' end."""
        pairs = [np.stack([np.full(n, i), np.arange(MIN_CONTEXT, MIN_CONTEXT + n)], axis=1)
                 for i, length in enumerate(self.lengths)
                 if (n := length - hold_out - self.horizon - MIN_CONTEXT + 1) > 0]
        return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)

    def final_pairs(self, before_end: int = 0) -> np.ndarray:
        """One pair per series whose cut lies `before_end` steps before its end (0: forecast the future)."""
        cuts = self.lengths - before_end
        keep = np.flatnonzero(cuts >= MIN_CONTEXT)
        return np.stack([keep, cuts[keep]], axis=1)

    def batch(self, pairs: np.ndarray, device: torch.device | str = "cpu", with_target: bool = True):
        """Scaled contexts (B, L, D), their lengths (B,), location and scale (B, D) and, when asked,
        the scaled targets (B, H, D). Contexts are right-padded with zeros past their length."""
        series, cut = pairs[:, 0], pairs[:, 1]
        L = self.context_length
        lengths = np.minimum(cut, L)
        steps = np.arange(L)
        valid = steps[None, :] < lengths[:, None]  # (B, L)
        index = np.where(valid, (self.offsets[series] + cut - lengths)[:, None] + steps[None, :], 0)
        context = self.flat[index]  # (B, L, D)
        location = self.flat[self.offsets[series] + cut - 1]  # (B, D)
        changes = np.abs(np.diff(context, axis=1)) * valid[:, 1:, None]
        scale = changes.sum(axis=1) / np.maximum(lengths - 1, 1)[:, None]
        floor = 1e-3 * (np.abs(context) * valid[..., None]).sum(axis=1) / lengths[:, None] + 1e-6
        scale = np.maximum(scale, floor).astype(np.float32)
        z = (context - location[:, None, :]) / scale[:, None, :] * valid[..., None]
        if self.season > 1:
            position = self.phases[series][:, None] + (cut - lengths)[:, None] + steps[None, :]  # (B, L)
            angle = 2 * np.pi * (position % self.season) / self.season
            z = np.concatenate([z, (np.stack([np.sin(angle), np.cos(angle)], axis=-1) * valid[..., None])
                                .astype(np.float32)], axis=-1)
        out = [torch.from_numpy(z).to(device), torch.from_numpy(lengths), torch.from_numpy(location).to(device),
               torch.from_numpy(scale).to(device)]
        if with_target:
            target = self.flat[(self.offsets[series] + cut)[:, None] + np.arange(self.horizon)[None, :]]
            out.append(torch.from_numpy((target - location[:, None, :]) / scale[:, None, :]).to(device))
        return out
