"""`RNNForecaster`: one global recurrent model for one or many numeric series, forecasting the
next `horizon` steps of each with a predictive distribution (mean and any quantiles).

Series are given as a 1-D array (one series), a 2-D array (T, D) (one series of D values), a
list of those (many series, one model), or a Panel read by `read_panel`. Forecasts come back in
the same shape: (H,) or (H, D) for one series, (S, H, D) for several; quantiles add a last axis.

Seasonal series (season > 1) also give the network each step's place in the season, as the sine
and cosine of its angle (DeepAR's time features, Salinas et al. 2020). A Panel knows each place
from the calendar; for arrays, the first value of every series is taken to be at place 0, so
arrays should start at the same point of the season (or be given as a Panel). The same places
align the seasonal indices of `deseasonalize` (seasonal.py) with each series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..api import resolve_device
from ..estimators.base import RNNEstimator, init_from_config
from ..reservoir import ridge_readout
from .configs import ForecasterConfig
from .data import Panel
from .network import ForecastNetwork, quantiles
from .seasonal import at_places, seasonal_indices
from .task import ForecastTask
from .windows import MIN_CONTEXT, Windows

PREDICT_BATCH = 1024


def as_series(y) -> tuple[list[np.ndarray], str]:
    """(list of (T, D) float arrays, how the input was shaped: "1d", "2d" or "many")."""
    if isinstance(y, Panel):
        return list(y.values), "many"
    if isinstance(y, (list, tuple)) and len(y) > 100_000_000:
        raise ValueError("too many series")
    if isinstance(y, np.ndarray) or (isinstance(y, (list, tuple)) and y and np.isscalar(y[0])):
        array = np.asarray(y, dtype=np.float64)
        if array.ndim not in (1, 2):
            raise ValueError(f"a series must be 1-D (T,) or 2-D (T, D); got shape {array.shape}")
        kind = "1d" if array.ndim == 1 else "2d"
        series = [array.reshape(len(array), -1)]
    elif isinstance(y, (list, tuple)) and y:
        series = [np.asarray(s, dtype=np.float64) for s in y]
        series = [s.reshape(len(s), -1) if s.ndim == 1 else s for s in series]
        kind = "many"
    else:
        raise ValueError("y must be a series (array) or a non-empty list of series")
    widths = {s.shape[1] for s in series if s.ndim == 2}
    if any(s.ndim != 2 for s in series) or len(widths) != 1:
        raise ValueError("every series must be (T,) or (T, D) with the same D")
    for i, s in enumerate(series):
        if not np.all(np.isfinite(s)):
            raise ValueError(f"series {i} holds NaN or infinite values; fill them first")
    return series, kind


def _phases(y, season: int) -> np.ndarray | None:
    """The calendar place in the season of each series' first step, when y knows it (a Panel whose
    frequency implies the model's season); None: each series starts at place 0."""
    return y.phases() if isinstance(y, Panel) and y.season() == season else None


def _shaped(out: np.ndarray, kind: str) -> np.ndarray:
    """(S, H, D, ...) -> the caller's shape."""
    if kind == "many":
        return out
    return out[0, :, 0] if kind == "1d" else out[0]


class RNNForecaster(RNNEstimator):
    """Probabilistic multi-step forecasting with a recurrent network. Hyperparameters: the fields
    of `ForecasterConfig`. After fit: `season_`, `context_length_`, `num_values_`, `history_`."""

    config_class = ForecasterConfig
    __init__ = init_from_config(ForecasterConfig)

    def fit(self, y, season: int | None = None):
        """Fit on one or many series. `season`: the season length when the config leaves it to the
        data (a Panel knows it from its frequency)."""
        config = self.config()
        torch.manual_seed(config.random_state)
        series, _ = as_series(y)
        self.log_ = config.transform == "log" or (config.transform == "auto" and all(np.all(s > 0) for s in series))
        series = self._transformed(series, y)
        self.num_values_ = series[0].shape[1]
        self.season_ = config.season or season or (y.season() if isinstance(y, Panel) else 1)
        phases = _phases(y, self.season_)
        series, _ = self._adjusted(series, phases)
        self.context_length_ = config.context_for(self.season_)
        H = config.horizon
        for i, s in enumerate(series):
            if len(s) < MIN_CONTEXT + H:
                name = f"series {y.ids[i]!r}" if isinstance(y, Panel) and y.id_col else f"series {i}"
                raise ValueError(f"{name} has {len(s)} steps; forecasting {H} steps needs at least {MIN_CONTEXT + H} "
                                 f"({MIN_CONTEXT} of context plus the horizon): drop it or lower the horizon")
        windows = Windows(series, self.context_length_, H, self.season_, phases)
        hold_out = H if config.validation_fraction > 0 else 0
        train = windows.training_pairs(hold_out)
        if hold_out and len(train) == 0:
            hold_out, train = 0, windows.training_pairs(0)
            self._log("the series are too short to hold out their last steps; validation reads training windows")
        val = windows.final_pairs(before_end=H)  # held out when hold_out > 0, in-sample otherwise
        device = resolve_device(config.device)
        self.model_ = self._build_model().to(device)
        if not self.model_.recurrent.trainable:  # a fixed reservoir: the readout in closed form, no gradient descent
            self._fit_readout(windows, train)
        else:
            task = ForecastTask(windows, train, val, config.batch_size, config.random_state, device)
            per_epoch = task.steps_per_epoch()
            steps = max(config.min_steps, round(config.epochs * per_epoch))
            # validation every epoch, or 20 times in all when epochs are only a batch or two
            self._train(task, config, device, time=config.max_time, epochs=None, max_steps=steps,
                        eval_every=max(per_epoch, steps // 20))
        self.interval_scale_ = self._interval_scale(windows, val) if hold_out and config.calibrate else 1.0
        return self

    @torch.no_grad()
    def _fit_readout(self, windows: Windows, train: np.ndarray) -> None:
        """An echo state network (Jaeger & Haas 2004): the projection and the reservoir stay as drawn,
        and only the head is fitted, in closed form. Its mean outputs are a ridge regression of every
        training window's scaled target on the reservoir's final state (`ridge_readout`); its scale
        outputs are constants, each output's RMS error on windows the readout had not seen. Both come
        from a split in time: the penalty is the one whose readout, fitted on each series' earlier
        windows, best forecasts its last fifth of windows (those whose targets overlap theirs are
        left out of that fit); the readout kept is then fitted on all. (B windows, N units, H
        horizon, D values.)"""
        model = self.model_.eval()
        device = next(model.parameters()).device
        states, targets = [], []
        for start in range(0, len(train), PREDICT_BATCH):
            context, lengths, _, _, target = windows.batch(train[start:start + PREDICT_BATCH], device)
            _, state = model.recurrent(model.project(context), lengths=lengths)
            states.append(state[0][-1].double().cpu().numpy())  # (B, N)
            targets.append(target.reshape(len(target), -1).double().cpu().numpy())  # (B, H*D)
        X, Y = np.concatenate(states), np.concatenate(targets)
        series, cut = train[:, 0], train[:, 1]
        later, earlier = np.zeros(len(train), dtype=bool), np.zeros(len(train), dtype=bool)
        for i in np.unique(series):
            rows = series == i
            start = np.quantile(cut[rows], 0.8)  # this series' last fifth of cuts checks
            later[rows], earlier[rows] = cut[rows] >= start, cut[rows] + self.horizon <= start
        W, b, self.ridge_, held_out = ridge_readout(X, Y, earlier, later)
        rms = np.sqrt((held_out ** 2).mean(axis=0))  # (H*D,)
        # the head's outputs are laid out (H, D, P): P = mean, raw scale (softplus(raw) + 1e-3), [raw df]
        weight = torch.zeros_like(model.head.weight).view(Y.shape[1], -1, W.shape[0])
        bias = torch.zeros_like(model.head.bias).view(Y.shape[1], -1)
        weight[:, 0] = torch.from_numpy(W.T)
        bias[:, 0] = torch.from_numpy(b)
        spread = np.maximum(rms - 1e-3, 1e-6)
        bias[:, 1] = torch.from_numpy(spread + np.log(-np.expm1(-spread)))  # softplus^-1
        if bias.shape[1] == 3:
            bias[:, 2] = 30.0  # Student-t with ~32 degrees of freedom: the residuals are not modelled
        model.head.weight.copy_(weight.view_as(model.head.weight))
        model.head.bias.copy_(bias.view_as(model.head.bias))
        # one row of history, as training would leave: the Gaussian NLL per value with the scales set
        # above, of the training windows (the readout kept) and of the later windows (the one that chose)
        scale = np.maximum(rms, 1e-3)

        def nll(residuals: np.ndarray) -> float:
            return float(np.mean(0.5 * np.log(2 * np.pi) + np.log(scale) + residuals ** 2 / (2 * scale ** 2)))
        self.history_ = [{"epoch": 1.0, "step": 0, "train_loss": nll(Y - X @ W - b), "val_loss": nll(held_out)}]
        self.n_steps_, self.best_epoch_ = 0, None
        self._log(f"echo state readout: ridge penalty {self.ridge_:.3g} (chosen on later windows), "
                  f"scaled RMSE on later windows {float(np.sqrt((rms ** 2).mean())):.4f}, {len(X)} windows")

    @torch.no_grad()
    def _interval_scale(self, windows: Windows, held_out: np.ndarray) -> float:
        """The factor on every interval's half-width that puts 80% of the held-out values inside the
        80% interval (split conformal prediction, Vovk et al. 2005, on the windows training never
        saw), shrunk toward 1 in log space by n / (n + 20) for n held-out values."""
        self.model_.eval()
        device = next(self.model_.parameters()).device
        ratios = []
        for start in range(0, len(held_out), PREDICT_BATCH):
            context, lengths, _, _, target = windows.batch(held_out[start:start + PREDICT_BATCH], device)
            predicted = self.model_.distribution(self.model_(context, lengths))
            q = quantiles(predicted, [0.5, 0.9])  # (B, H, D, 2), scaled units
            ratios.append(np.abs(target.double().cpu().numpy() - q[..., 0]) / np.maximum(q[..., 1] - q[..., 0], 1e-12))
        r = np.concatenate([x.ravel() for x in ratios])
        factor = float(np.quantile(r, 0.8)) if len(r) else 1.0
        return float(np.clip(np.exp(np.log(max(factor, 1e-6)) * len(r) / (len(r) + 20)), 0.25, 4.0))

    def _transformed(self, series: list[np.ndarray], y) -> list[np.ndarray]:
        """The series as the network models them: their logarithm under transform log."""
        if not getattr(self, "log_", False):
            return series
        for i, s in enumerate(series):
            if not np.all(s > 0):
                name = f"series {y.ids[i]!r}" if isinstance(y, Panel) and y.id_col else f"series {i}"
                raise ValueError(f"{name} has values <= 0 (smallest {s.min():g}); transform log needs every value "
                                 "> 0: use transform none, or shift the series")
        return [np.log(s) for s in series]

    def _adjusted(self, series: list[np.ndarray], phases: np.ndarray | None) -> tuple[list[np.ndarray], np.ndarray]:
        """The series less their seasonal indices (seasonal.py; each from its own history) and the
        indices of the `horizon` steps after each series' end, (S, H, D), to add back."""
        H = self.horizon
        future = np.zeros((len(series), H, series[0].shape[1]))
        if self.deseasonalize == "none" or self.season_ < 2:
            return series, future
        adjusted = []
        for i, s in enumerate(series):
            phase = 0 if phases is None else int(phases[i])
            indices = seasonal_indices(s, self.season_, phase, self.deseasonalize)
            if indices is None:
                adjusted.append(s)
                continue
            adjusted.append(s - at_places(indices, phase, 0, len(s)))
            future[i] = at_places(indices, phase, len(s), H)
        return adjusted, future

    def _build_model(self) -> torch.nn.Module:
        return ForecastNetwork(self.num_values_, self.horizon, self.likelihood, self.cell, self.hidden_size,
                               self.num_layers, self.embedding_size, self.dropout,
                               extra_inputs=2 if self.season_ > 1 else 0, weight_drop=self.weight_drop)

    # ------------------------------------------------------------------ predicting
    def _final_windows(self, y):
        """The window that ends at each series' end: (Windows, pairs, input shape kind, device),
        after checking the series fit the model."""
        check_is_fitted(self, "model_")
        series, kind = as_series(y)
        series = self._transformed(series, y)
        if series[0].shape[1] != self.num_values_:
            raise ValueError(f"the model forecasts {self.num_values_} value(s) per step; got series with "
                             f"{series[0].shape[1]}")
        short = [i for i, s in enumerate(series) if len(s) < MIN_CONTEXT]
        if short:
            raise ValueError(f"series {short[0]} has {len(series[short[0]])} steps; a forecast reads at least "
                             f"{MIN_CONTEXT}")
        self.model_.eval()
        phases = _phases(y, self.season_)
        series, future = self._adjusted(series, phases)
        windows = Windows(series, self.context_length_, self.horizon, self.season_, phases)
        return windows, windows.final_pairs(), kind, next(self.model_.parameters()).device, future

    @torch.no_grad()
    def forecast(self, y, levels: list[float] | None):
        """(mean, quantiles): the forecast means and, given levels, their quantiles (None without),
        in the series' units, shaped like predict's and predict_quantiles' results."""
        windows, pairs, kind, device, future = self._final_windows(y)
        means, bands = [], []
        for start in range(0, len(pairs), PREDICT_BATCH):
            context, lengths, location, scale = windows.batch(pairs[start:start + PREDICT_BATCH], device, False)
            predicted = self.model_.distribution(self.model_(context, lengths))
            loc, sc = location.double().cpu().numpy()[:, None, :], scale.double().cpu().numpy()[:, None, :]
            means.append(loc + sc * predicted.mean.double().cpu().numpy())
            if levels:
                middle = quantiles(predicted, [0.5])  # (B, H, D, 1)
                spread = getattr(self, "interval_scale_", 1.0) * (quantiles(predicted, levels) - middle)
                bands.append(loc[..., None] + sc[..., None] * (middle + spread))
        mean, band = np.concatenate(means), np.concatenate(bands) if levels else None
        mean, band = mean + future, None if band is None else band + future[..., None]
        if getattr(self, "log_", False):  # quantiles map through exp exactly; the mean becomes the median
            mean, band = np.exp(mean), None if band is None else np.exp(band)
        return (_shaped(mean, kind), _shaped(band, kind) if levels else None)

    def predict(self, y) -> np.ndarray:
        """The forecast mean of the next `horizon` steps of each series (under transform log, the median)."""
        return self.forecast(y, None)[0]

    def predict_quantiles(self, y, levels=(0.1, 0.5, 0.9)) -> np.ndarray:
        """Quantiles of the forecast distribution; the last axis follows `levels` (each in (0, 1))."""
        levels = [float(q) for q in levels]
        if not levels or not all(0 < q < 1 for q in levels):
            raise ValueError(f"quantile levels must be in (0, 1) (got {levels})")
        return self.forecast(y, levels)[1]

    def backtest(self, y, folds: int = 1, baselines=("naive", "seasonal_naive", "drift", "ets", "arima"),
                 season: int | None = None):
        """Rolling-origin backtest of these settings on y beside the classical baselines (refits
        this estimator on the data before the first block); returns a `Backtest` (.summary, .table())."""
        from .backtest import run_backtest
        data = y if isinstance(y, Panel) else as_series(y)[0]
        season = self.season or season or (y.season() if isinstance(y, Panel) else 1)
        return run_backtest(self, data, folds, season, tuple(baselines), progress=bool(self.verbose))

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self) -> dict[str, Any]:
        return {"num_values": self.num_values_, "season": self.season_, "context_length": self.context_length_,
                "log": bool(getattr(self, "log_", False)), "interval_scale": float(getattr(self, "interval_scale_", 1.0))}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        for key in ("num_values", "season", "context_length"):
            value = state[key]
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1_000_000:
                raise ValueError(f"{key} must be a whole number in 1..1000000")
        self.num_values_, self.season_, self.context_length_ = state["num_values"], state["season"], \
            state["context_length"]
        self.log_ = state.get("log", False)  # directories saved before the transform existed: none
        if not isinstance(self.log_, bool):
            raise ValueError("log must be true or false")
        self.interval_scale_ = state.get("interval_scale", 1.0)  # saved before calibration: none
        if not isinstance(self.interval_scale_, float) or not 0.25 <= self.interval_scale_ <= 4.0:
            raise ValueError("interval_scale must be a number in [0.25, 4]")


def saliency(model: RNNForecaster, y, step: int | None = None) -> np.ndarray:
    """Which past steps drove each forecast: gradient x input of the forecast mean (of future step
    `step`, 1-based, or of all steps summed) with respect to the scaled context the network read,
    as (S, L, D) for the last L = context_length_ steps of each series (zeros before a series'
    start; (L,) or (L, D) for one series, like predict). Signed: positive values pushed the
    forecast up (Simonyan et al. 2014; Shrikumar et al. 2017 on gradient x input)."""
    if step is not None and not 1 <= step <= model.horizon:
        raise ValueError(f"step must be in 1..{model.horizon} (got {step})")
    windows, pairs, kind, device, _ = model._final_windows(y)
    out = []
    for start in range(0, len(pairs), PREDICT_BATCH):
        context, lengths, _, _ = windows.batch(pairs[start:start + PREDICT_BATCH], device, False)
        context.requires_grad_(True)
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):  # cuDNN's RNN backward needs train mode
            mean = model.model_.distribution(model.model_(context, lengths)).mean  # (B, H, D)
            chosen = mean if step is None else mean[:, step - 1:step]
            (gradient,) = torch.autograd.grad(chosen.sum(), context)
        contribution = (gradient * context).detach().cpu().numpy()  # (B, L, D), right-padded
        for b, n in enumerate(lengths.tolist()):  # align each series' context to the right end
            aligned = np.zeros_like(contribution[b])
            aligned[len(aligned) - n:] = contribution[b, :n]
            out.append(aligned)
    return _shaped(np.stack(out), kind)
