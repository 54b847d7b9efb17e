"""`RNNAnomalyDetector`: anomalies as surprises of a recurrent one-step forecaster (LSTM-AD,
Malhotra et al. 2015). The network is the forecaster's (`RNNForecaster` with horizon 1: each
window scaled by its own context, a Gaussian or Student-t next step); every step's standardised
miss becomes a score against the misses before it (scoring.py), and a threshold chosen on a
held-out validation window turns scores into flags.

    detector = RNNAnomalyDetector().fit(normal_series)
    scores = detector.score_samples(new_series)            # (T,), higher = more anomalous
    flags = detector.predict(new_series)                   # (T,) 0/1
    scores = detector.score_samples(stream, online=True, start=600)

Online (`online=True`) every score uses only the steps before it, as a streaming detector must
(the Numenta Anomaly Benchmark's rule), and the network keeps learning: after each
`update_every` steps it takes `update_steps` gradient steps on everything seen so far (on a copy;
the fitted detector is unchanged).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..estimators.base import init_from_config
from ..timeseries.data import Panel
from ..timeseries.forecaster import RNNForecaster, _phases, as_series
from ..timeseries.network import quantiles
from ..timeseries.windows import MIN_CONTEXT, Windows
from .configs import AnomalyConfig
from .scoring import surprise

SCORE_BATCH = 4096


class RNNAnomalyDetector(RNNForecaster):
    """Hyperparameters: the fields of `AnomalyConfig`. After fit: those of RNNForecaster and
    `threshold_` (the score above which a step is flagged)."""

    config_class = AnomalyConfig
    __init__ = init_from_config(AnomalyConfig)

    def fit(self, y, season: int | None = None):
        """Fit on normal data: the forecaster learns the first (1 - validation_fraction) of each
        series; the threshold is the (1 - contamination) quantile of the scores of the rest, and at
        least -log10(contamination)."""
        config = self.config()
        series, _ = as_series(y)
        least = MIN_CONTEXT + config.horizon + 1  # the fewest steps that train the forecaster
        short = [i for i, s in enumerate(series) if len(s) < least]
        if short:
            raise ValueError(f"series {short[0]} has {len(series[short[0]])} steps; the detector needs at least "
                             f"{least}")
        cut = [len(s) - int(len(s) * config.validation_fraction) for s in series]
        cut = [c if c >= least else len(s) for c, s in zip(cut, series)]
        training = y.subset(list(range(len(series))), cut) if isinstance(y, Panel) else [s[:c] for s, c in
                                                                                          zip(series, cut)]
        # the forecaster's own hold-out (its last step) only drives early stopping
        super().fit(training, season)
        self.threshold_ = np.inf
        scores = self._scores(y, online=False, start=0)
        held_out = np.concatenate([s[c:] for s, c in zip(scores, cut)])
        if len(held_out) == 0:  # nothing held out: the training steps' scores, less strict
            held_out = np.concatenate(scores)
        threshold = float(np.quantile(held_out, 1 - config.contamination)) if len(held_out) else 0.0
        # a short validation window's top quantile is little more than its maximum: never flag what
        # is less surprising than the contamination rate itself (a score of 3 is a 1-in-1,000 event)
        self.threshold_ = max(threshold, -np.log10(config.contamination)) if config.contamination else threshold
        return self

    # ------------------------------------------------------------------ scoring
    def _misses(self, model: torch.nn.Module, windows: Windows, series: int, cuts: np.ndarray) -> np.ndarray:
        """(len(cuts), H): the standardised miss |y - mean| / sd of the forecast made at each cut of
        one series for each of its H steps (root mean square over value columns; NaN past the end)."""
        device = next(model.parameters()).device
        H, end = self.horizon, windows.lengths[series]
        out = np.full((len(cuts), H), np.nan)
        for start in range(0, len(cuts), SCORE_BATCH):
            chosen = cuts[start:start + SCORE_BATCH]
            pairs = np.stack([np.full(len(chosen), series), chosen], axis=1)
            context, lengths, location, scale = windows.batch(pairs, device, False)
            with torch.no_grad():
                predicted = model.distribution(model(context, lengths))  # (B, H, D), in scaled units
                mean, sd = predicted.mean.double().cpu().numpy(), predicted.stddev.double().cpu().numpy()
            steps = chosen[:, None] + np.arange(H)[None, :]  # (B, H): the step each forecast is of
            inside = steps < end
            values = windows.flat[windows.offsets[series] + np.minimum(steps, end - 1)]  # (B, H, D)
            target = (values - location.cpu().numpy()[:, None, :]) / scale.cpu().numpy()[:, None, :]
            z = np.sqrt((((target - mean) / sd) ** 2).mean(axis=2))
            out[start:start + len(chosen)] = np.where(inside, z, np.nan)
        return out

    @torch.no_grad()
    def expected(self, y, level: float = 0.99) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """For every series, the fitted network's one-step forecast of each step: (mean, low, high)
        as (T, D) arrays, [low, high] its central `level` interval (NaN for the first steps)."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1) (got {level})")
        check_is_fitted(self, "model_")
        series, _ = as_series(y)
        windows = Windows(series, self.context_length_, 1, self.season_, _phases(y, self.season_))
        device = next(self.model_.parameters()).device
        out = []
        for i, s in enumerate(series):
            mean, low, high = (np.full(s.shape, np.nan) for _ in range(3))
            rows = np.arange(MIN_CONTEXT, len(s))
            for start in range(0, len(rows), SCORE_BATCH):
                cuts = rows[start:start + SCORE_BATCH]
                context, lengths, location, scale = windows.batch(np.stack([np.full(len(cuts), i), cuts], 1),
                                                                  device, False)
                predicted = self.model_.distribution(self.model_(context, lengths))
                bands = quantiles(predicted, [(1 - level) / 2, (1 + level) / 2])[:, 0]  # (B, D, 2)
                loc, sc = location.double().cpu().numpy(), scale.double().cpu().numpy()
                mean[cuts] = loc + sc * predicted.mean[:, 0].double().cpu().numpy()
                low[cuts], high[cuts] = loc + sc * bands[..., 0], loc + sc * bands[..., 1]
            out.append((mean, low, high))
        return out

    def _keep_learning(self, model, optimizer, windows: Windows, series: int, seen: int,
                       generator: torch.Generator) -> None:
        """`update_steps` batches of forecasts drawn from the first `seen` steps (whole targets only)."""
        cuts = np.arange(MIN_CONTEXT, seen - self.horizon + 1)
        if len(cuts) == 0:
            return
        model.train()
        for _ in range(self.update_steps):
            chosen = cuts[torch.randint(len(cuts), (min(self.batch_size, len(cuts)),), generator=generator).numpy()]
            pairs = np.stack([np.full(len(chosen), series), chosen], axis=1)
            context, lengths, _, _, target = windows.batch(pairs, next(model.parameters()).device)
            loss = -model.distribution(model(context, lengths)).log_prob(target).mean()
            optimizer.zero_grad()
            loss.backward()
            if self.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), self.clip)
            optimizer.step()
        model.eval()

    def _scores(self, y, online: bool, start: int) -> list[np.ndarray]:
        """(T,) scores of every series."""
        return [surprise(e, self.long_window, self.short_window) for e in self.raw_errors(y, online, start)]

    def raw_errors(self, y, online: bool = False, start: int = 0) -> list[np.ndarray]:
        """(T,) errors of every series: at each step, the root mean square of the standardised misses
        of the H forecasts that reached it, made 1 to H steps earlier (Malhotra et al. 2015 score a
        step by all the predictions of it); NaN for the first steps, which no forecast reaches. See
        score_samples for online and start."""
        check_is_fitted(self, "model_")
        series, _ = as_series(y)
        if series[0].shape[1] != self.num_values_:
            raise ValueError(f"the detector reads {self.num_values_} value(s) per step; got series with "
                             f"{series[0].shape[1]}")
        H = self.horizon
        windows = Windows(series, self.context_length_, H, self.season_, _phases(y, self.season_))
        out = []
        for i, s in enumerate(series):
            misses = np.full((len(s), H), np.nan)  # [t, h]: the miss at step t of the forecast made h + 1 steps before
            steps = np.arange(H)

            def record(cuts: np.ndarray, model) -> None:
                if len(cuts) == 0:
                    return
                at = cuts[:, None] + steps[None, :]
                inside = at < len(s)
                misses[at[inside], np.broadcast_to(steps, at.shape)[inside]] = self._misses(model, windows, i,
                                                                                            cuts)[inside]

            if not online:
                record(np.arange(MIN_CONTEXT, len(s)), self.model_)
            else:
                model = copy.deepcopy(self.model_)
                optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
                generator = torch.Generator().manual_seed(self.random_state)
                first = max(start, MIN_CONTEXT)
                record(np.arange(MIN_CONTEXT, first), model)
                for block in range(first, len(s), self.update_every):
                    cuts = np.arange(block, min(block + self.update_every, len(s)))
                    record(cuts, model)  # forecasts made before learning from these steps
                    if self.update_steps:
                        self._keep_learning(model, optimizer, windows, i, cuts[-1] + 1, generator)
            with np.errstate(invalid="ignore"):
                reached = np.isfinite(misses).sum(axis=1)
                errors = np.sqrt(np.nansum(misses ** 2, axis=1) / np.maximum(reached, 1))
            errors[reached == 0] = np.nan
            out.append(errors)
        return out

    def score_samples(self, y, online: bool = False, start: int = 0) -> np.ndarray:
        """Anomaly scores, higher = more anomalous: (T,) for one series, a list of (T,) for several.
        online: each step scored by a network that has learnt only from the steps before it, updated
        every `update_every` steps from step `start` on (earlier steps: the fitted network)."""
        if not isinstance(start, (int, np.integer)) or start < 0:
            raise ValueError(f"start must be a whole number >= 0 (got {start!r})")
        scores = self._scores(y, online, int(start))
        _, kind = as_series(y)
        return scores if kind == "many" else scores[0]

    def predict(self, y, online: bool = False, start: int = 0) -> np.ndarray:
        """1 where the score exceeds `threshold_`, else 0; shaped like score_samples."""
        scores = self.score_samples(y, online, start)
        flag = lambda s: (s > self.threshold_).astype(np.int64)  # noqa: E731
        return [flag(s) for s in scores] if isinstance(scores, list) else flag(scores)

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self):
        return {**super()._fitted_state(), "threshold": self.threshold_}

    def _restore_fitted(self, state) -> None:
        super()._restore_fitted(state)
        threshold = state["threshold"]
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or threshold != threshold:
            raise ValueError("threshold must be a number")
        self.threshold_ = float(threshold)
