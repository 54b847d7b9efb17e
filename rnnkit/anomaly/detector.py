"""`RNNAnomalyDetector`: anomalies as the errors of a recurrent network trained on normal data,
by one of two methods (`method`):

  reconstruction  an encoder-decoder rebuilds the last L steps (EncDec-AD, Malhotra et al. 2016;
                  reconstruction.py); a step's error is how far its rebuilt value lies from it
  prediction      the forecaster's network (`RNNForecaster`: each window scaled by its own
                  context, a Gaussian or Student-t for the next `horizon` steps; LSTM-AD,
                  Malhotra et al. 2015); a step's error is its standardised miss

Every step's error becomes a score against the errors before it (scoring.py), and a threshold
chosen on a held-out validation window turns scores into flags. With `block_steps` k > 1 the
reconstruction network reads the means of blocks of k steps (blocks.py): a block's score sits at
its last step. With `networks` K > 1 it is K networks (reconstruction.NetworkEnsemble), each
trained as the detector of its own seed would be, and an error is the root mean square of theirs.

    detector = RNNAnomalyDetector().fit(normal_series)
    scores = detector.score_samples(new_series)            # (T,), higher = more anomalous
    flags = detector.predict(new_series)                   # (T,) 0/1
    scores = detector.score_samples(stream, online=True, start=600)

Online (`online=True`) every score uses only the steps before it, as a streaming detector must
(the Numenta Anomaly Benchmark's rule), and the network keeps learning: after each
`update_every` steps it takes `update_steps` gradient steps on everything seen so far (on a copy;
the fitted detector is unchanged; online.py).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..api import resolve_device
from ..estimators.base import init_from_config
from ..timeseries.data import Panel
from ..timeseries.forecaster import RNNForecaster, _phases, as_series
from ..timeseries.windows import MIN_CONTEXT, Windows
from .blocks import block_ends, block_length, block_means, blocked, to_steps
from .configs import AnomalyConfig
from .explain import expected_values, explain_step
from .online import score_online
from .reconstruction import (SCORE_BATCH, NetworkEnsemble, ReconstructionNetwork, ReconstructionTask, ScaledWindows,
                             fit_rebuild, members, robust_scaling)
from .scoring import RANGE_BREAK, empirical_surprise, quieten, range_breaks, surprise, trailing_mean, value_range

REFERENCE = 4096


class RNNAnomalyDetector(RNNForecaster):
    """Hyperparameters: the fields of `AnomalyConfig`. After fit: those of RNNForecaster and
    `threshold_` (the score above which a step is flagged) and `block_` (the steps each value the
    network reads averages: block_steps, or fewer for short series)."""

    config_class = AnomalyConfig
    __init__ = init_from_config(AnomalyConfig)

    def fit(self, y, season: int | None = None):
        """Fit on normal data: the forecaster learns the first (1 - validation_fraction) of each
        series; the threshold is the (1 - contamination) quantile of the scores of the rest, and at
        least -log10(contamination)."""
        config = self.config()
        series, _ = as_series(y)
        reconstruct = config.method == "reconstruction"
        # the fewest steps that train the network: one whole window, or a context and a target
        least = config.context_for(1) + 1 if reconstruct else MIN_CONTEXT + config.horizon + 1
        short = [i for i, s in enumerate(series) if len(s) < least]
        if short:
            raise ValueError(f"series {short[0]} has {len(series[short[0]])} steps; the detector needs at least "
                             f"{least}" + (" (one --context-length window and a step)" if reconstruct else ""))
        steps_y, steps_series = y, series
        self.block_ = block_length(config.block_steps, config.context_for(1), [len(s) for s in series]) \
            if reconstruct else 1
        if self.block_ > 1:  # the network learns block means; validation and threshold count blocks
            y = blocked(y, series, self.block_)
            series, _ = as_series(y)
        cut = [len(s) - int(len(s) * config.validation_fraction) for s in series]
        cut = [c if c >= least else len(s) for c, s in zip(cut, series)]
        training = y.subset(list(range(len(series))), cut) if isinstance(y, Panel) else [s[:c] for s, c in
                                                                                          zip(series, cut)]
        if reconstruct:
            self._fit_reconstruction(training, config)
        else:  # the forecaster's own hold-out (the last --horizon steps) only drives early stopping
            super().fit(training, season)
            self.location_ = self.spread_ = np.zeros((0, self.num_values_))
            self.scaling_ids_, self.band_, self.reference_ = None, 0.0, np.zeros(0)
        self.range_ = value_range(steps_series)  # (2, D) or None: what every scored value is checked against
        self.threshold_ = np.inf
        # the scores of the steps that hold one (a block's last step), from the cut on
        scores = [s[block_ends(len(s), self.block_)] for s in self._scores(steps_y, online=False, start=0)]
        held_out = np.concatenate([s[c:] for s, c in zip(scores, cut)])
        if len(held_out) == 0:  # nothing held out: the training steps' scores, less strict
            held_out = np.concatenate(scores)
        threshold = float(np.quantile(held_out, 1 - config.contamination)) if len(held_out) else 0.0
        # a short validation window's top quantile is little more than its maximum: never flag what
        # is less surprising than the contamination rate itself (a score of 3 is a 1-in-1,000 event)
        self.threshold_ = max(threshold, -np.log10(config.contamination)) if config.contamination else threshold
        return self

    def _fit_reconstruction(self, training, config) -> None:
        series, _ = as_series(training)
        self.num_values_, self.season_ = series[0].shape[1], 1
        self.context_length_ = config.context_for(1)
        self.location_, self.spread_ = robust_scaling(series)
        self.scaling_ids_ = list(training.ids) if isinstance(training, Panel) else None
        windows = ScaledWindows(series, self.location_, self.spread_, self.context_length_)
        pairs = np.concatenate([windows.pairs(i) for i in range(len(series))])
        order = np.random.default_rng(config.random_state).permutation(len(pairs))
        n_val = int(len(pairs) * config.validation_fraction) if config.validation_fraction else 0
        val, train = (pairs[order[:n_val]], pairs[order[n_val:]]) if n_val >= 2 else (pairs, pairs)
        device = resolve_device(config.device)
        trained = []
        for k in range(config.networks):  # network k is trained exactly as a detector of seed random_state + k
            own = replace(config, random_state=config.random_state + k)
            if config.networks > 1:
                self._log(f"network {k + 1} of {config.networks} (seed {own.random_state})")
            torch.manual_seed(own.random_state)
            self.model_ = self._build_network().to(device)
            if self.model_.decoder is None:  # an echo state autoencoder: its readout in closed form
                fit = fit_rebuild(self.model_, windows, pairs, device)
                self.history_, self.n_steps_, self.best_epoch_ = [{"epoch": 1.0, "step": 0, **fit}], 0, None
            else:
                task = ReconstructionTask(windows, train, val, own.batch_size, own.random_state, device)
                per_epoch = max(task.steps_per_epoch(), 1)
                steps = max(own.min_steps, round(own.epochs * per_epoch))
                self._train(task, own, device, time=own.max_time, epochs=None, max_steps=steps,
                            eval_every=max(per_epoch, steps // 20))
            trained.append(self.model_)
        # history_ and n_steps_ are the last network's
        self.model_ = trained[0] if len(trained) == 1 else NetworkEnsemble(trained)
        errors = np.concatenate([self._rebuild_errors(self.model_, windows, windows.pairs(i))
                                 for i in range(len(series))])
        self.band_ = float(np.quantile(errors, 0.99))  # in spreads: the expected range of a rebuilt step
        # the training errors, as up to REFERENCE quantiles: what an error is ranked against from the
        # first step of any series scored (with the earlier errors of that series)
        self.reference_ = np.quantile(errors, np.linspace(0, 1, min(REFERENCE, len(errors))))

    def _build_network(self) -> ReconstructionNetwork:
        return ReconstructionNetwork(self.num_values_, self.cell, self.hidden_size, self.num_layers,
                                     self.embedding_size, self.dropout, self.context_length_,
                                     weight_drop=self.weight_drop)

    def _build_model(self) -> torch.nn.Module:
        if self.method == "reconstruction":
            if self.networks > 1:
                return NetworkEnsemble([self._build_network() for _ in range(self.networks)])
            return self._build_network()
        return super()._build_model()

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def _rebuild_errors(self, model, windows: ScaledWindows, pairs: np.ndarray, rebuilt: bool = False):
        """(n,) root mean square over value columns (and an ensemble's networks) of |rebuilt - real|
        at each window's last step, in spreads; with rebuilt=True also the (n, D) rebuilt values
        (scaled; an ensemble's mean). The root mean square keeps an ensemble's error in the units
        of its networks' training loss (mean squared error)."""
        device = next(model.parameters()).device
        squares, values = np.zeros(len(pairs)), np.zeros((len(pairs), windows.flat.shape[1]))
        networks = members(model)
        for start in range(0, len(pairs), SCORE_BATCH):
            batch = windows.batch(pairs[start:start + SCORE_BATCH], device)
            for network in networks:
                last = network(batch)[:, -1]  # (B, D)
                squares[start:start + len(batch)] += (last - batch[:, -1]).pow(2).mean(dim=1).double().cpu().numpy()
                values[start:start + len(batch)] += last.double().cpu().numpy()
        errors = np.sqrt(squares / len(networks))
        return (errors, values / len(networks)) if rebuilt else errors

    def _scaling(self, y, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The training scaling of each of `count` series: by id for a Panel of the training ids, by
        position for as many series as in training, the one series' for any when it was one."""
        if isinstance(y, Panel) and self.scaling_ids_ is not None and y.id_col:
            unknown = [i for i in y.ids if i not in self.scaling_ids_]
            if unknown:
                raise ValueError(f"series {unknown[0]!r} was not in the training data; reconstruction scales each "
                                 "series by its training statistics")
            index = [self.scaling_ids_.index(i) for i in y.ids]
            return self.location_[index], self.spread_[index]
        if len(self.location_) == count:
            return self.location_, self.spread_
        if len(self.location_) == 1:
            return np.repeat(self.location_, count, axis=0), np.repeat(self.spread_, count, axis=0)
        raise ValueError(f"the detector was trained on {len(self.location_)} series and scales each by its own "
                         f"statistics; got {count} series")

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

    def expected(self, y, level: float = 0.99) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """For every series, (mean, low, high) (T, D): what the fitted network expected at each step
        and its central `level` range (explain.expected_values)."""
        return expected_values(self, y, level)

    def explain_step(self, y, t: int, level: float = 0.99) -> dict:
        """Why step t of one series scored as it did: its expected value, range and the steps that
        set them (explain.explain_step)."""
        return explain_step(self, y, t, level)

    def _run(self, length: int, online: bool, start: int, first: int, record, positions_of, loss_of) -> None:
        """Call record(steps, model) for every step from `first` on, in order: offline with the fitted
        model, online as online.score_online does (learning from positions_of(seen) by loss_of)."""
        if online:
            score_online(self.model_, length, start, first, record, positions_of, loss_of, self.config())
        else:
            record(np.arange(first, length), self.model_)

    def tail_in_use(self) -> str:
        """How errors become scores: `tail`, or by default empirical for reconstruction, gaussian for
        prediction."""
        return self.tail or ("empirical" if self.method == "reconstruction" else "gaussian")

    def _scores(self, y, online: bool, start: int) -> list[np.ndarray]:
        """(T,) scores of every series; with blocks, only blocks' last steps score above 0."""
        tail = self.tail_in_use()
        scores = []
        for e in self.raw_errors(y, online, start):
            ends = block_ends(len(e), self.block_)  # every step when the network reads steps
            score = np.zeros(len(e))
            if tail == "empirical":
                score[ends] = empirical_surprise(trailing_mean(np.nan_to_num(e[ends]), self.short_window),
                                                 self.reference_, tail_index=self.tail_index)
            else:
                score[ends] = surprise(e[ends], self.long_window, self.short_window)
            scores.append(score)
        scores = [quieten(s, self.quiet_steps) for s in scores]
        if self.range_breaks:  # values beyond everything seen before, whatever the network rebuilt or forecast
            known = (None, None) if self.range_ is None else self.range_
            scores = [s + RANGE_BREAK * range_breaks(v, self.range_margin, *known)
                      for s, v in zip(scores, as_series(y)[0])]
        return scores

    def raw_errors(self, y, online: bool = False, start: int = 0) -> list[np.ndarray]:
        """(T,) errors of every series (NaN where no error exists: the first steps). Reconstruction:
        the rebuilt last step of the window ending at each step, in spreads (with blocks, the rebuilt
        last block mean, at the block's last step; NaN at its other steps). Prediction: the root
        mean square of the standardised misses of the H forecasts that reached the step, made 1 to H
        steps before it (Malhotra et al. 2015 score a step by all the predictions of it). See
        score_samples for online and start."""
        check_is_fitted(self, "model_")
        series, _ = as_series(y)
        if series[0].shape[1] != self.num_values_:
            raise ValueError(f"the detector reads {self.num_values_} value(s) per step; got series with "
                             f"{series[0].shape[1]}")
        if self.block_ > 1:  # errors of the blocks, at their last steps; NaN at the other steps
            B = self.block_
            errors = self._reconstruction_errors(blocked(y, series, B), block_means(series, B), online, start // B)
            return to_steps(errors, [len(s) for s in series], B, np.nan)
        if self.method == "reconstruction":
            return self._reconstruction_errors(y, series, online, start)
        H = self.horizon
        windows = Windows(series, self.context_length_, H, self.season_, _phases(y, self.season_))
        out = []
        for i, s in enumerate(series):
            misses = np.full((len(s), H), np.nan)  # [t, h]: the miss at step t of the forecast made h + 1 steps before
            steps = np.arange(H)

            def record(cuts: np.ndarray, model) -> None:
                if len(cuts):
                    at = cuts[:, None] + steps[None, :]
                    inside = at < len(s)
                    misses[at[inside], np.broadcast_to(steps, at.shape)[inside]] = \
                        self._misses(model, windows, i, cuts)[inside]

            def nll(model, cuts: np.ndarray) -> torch.Tensor:
                pairs = np.stack([np.full(len(cuts), i), cuts], axis=1)
                context, lengths, _, _, target = windows.batch(pairs, next(model.parameters()).device)
                return -model.distribution(model(context, lengths)).log_prob(target).mean()

            def forecasts_seen(seen: int) -> np.ndarray:  # forecasts whose targets are all seen
                return np.arange(MIN_CONTEXT, seen - H + 1)

            self._run(len(s), online, start, MIN_CONTEXT, record, forecasts_seen, nll)
            with np.errstate(invalid="ignore"):
                reached = np.isfinite(misses).sum(axis=1)
                errors = np.sqrt(np.nansum(misses ** 2, axis=1) / np.maximum(reached, 1))
            errors[reached == 0] = np.nan
            out.append(errors)
        return out

    def _reconstruction_errors(self, y, series: list[np.ndarray], online: bool, start: int) -> list[np.ndarray]:
        location, spread = self._scaling(y, len(series))
        windows = ScaledWindows(series, location, spread, self.context_length_)
        L, out = self.context_length_, []
        for i, s in enumerate(series):
            errors = np.full(len(s), np.nan)

            def record(ends: np.ndarray, model) -> None:
                if len(ends):
                    errors[ends] = self._rebuild_errors(model, windows, np.stack([np.full(len(ends), i), ends], 1))

            def squared_error(model, ends: np.ndarray) -> torch.Tensor:
                batch = windows.batch(np.stack([np.full(len(ends), i), ends], 1), next(model.parameters()).device)
                return (model(batch) - batch).pow(2).mean()

            def windows_seen(seen: int) -> np.ndarray:  # windows that end before step `seen`
                return np.arange(L - 1, seen)

            self._run(len(s), online, start, L - 1, record, windows_seen, squared_error)
            out.append(errors)
        return out

    def score_samples(self, y, online: bool = False, start: int = 0) -> np.ndarray:
        """Anomaly scores, higher = more anomalous: (T,) for one series, a list of (T,) for several.
        online: each step scored by a network that has learnt only from the steps before it, updated
        every `update_every` steps (blocks, with blocks) from step `start` on (earlier steps: the
        fitted network)."""
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
        return {**super()._fitted_state(), "threshold": self.threshold_, "location": self.location_.tolist(),
                "spread": self.spread_.tolist(), "scaling_ids": self.scaling_ids_, "band": self.band_,
                "reference": self.reference_.tolist(),
                "range": None if self.range_ is None else self.range_.tolist(), "block": self.block_}

    def _restore_fitted(self, state) -> None:
        super()._restore_fitted(state)
        threshold, band = state["threshold"], state["band"]
        for name, value in (("threshold", threshold), ("band", band)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
                raise ValueError(f"{name} must be a number")
        location = np.asarray(state["location"], dtype=np.float64).reshape(-1, self.num_values_)
        spread = np.asarray(state["spread"], dtype=np.float64).reshape(-1, self.num_values_)
        if location.shape != spread.shape or not np.all(np.isfinite(location)) or not np.all(spread > 0) \
                or not np.all(np.isfinite(spread)):
            raise ValueError("location and spread must be finite, spreads positive, one row per series")
        reference = np.asarray(state["reference"], dtype=np.float64).reshape(-1)
        if len(reference) > REFERENCE or not np.all(np.isfinite(reference)):
            raise ValueError(f"reference must hold at most {REFERENCE} finite errors")
        known_range = state.get("range")  # absent from detectors saved before range breaks: no known range
        if known_range is not None:
            known_range = np.asarray(known_range, dtype=np.float64)
            if known_range.shape != (2, self.num_values_) or not np.all(np.isfinite(known_range)):
                raise ValueError(f"range must be two rows (lowest, highest) of {self.num_values_} finite values")
        ids = state["scaling_ids"]
        if ids is not None and (not isinstance(ids, list) or len(ids) != len(location)
                                or not all(isinstance(i, str) for i in ids)):
            raise ValueError("scaling_ids must be a list of strings, one per series")
        block = state.get("block", 1)  # absent from detectors saved before blocks: steps
        if not isinstance(block, int) or isinstance(block, bool) or not 1 <= block <= 100_000 \
                or (block > 1 and self.method != "reconstruction"):
            raise ValueError("block must be a whole number from 1 to 100000 (above 1 for reconstruction only)")
        if self.method == "reconstruction" and len(location) == 0:
            raise ValueError("a reconstruction model needs its series' scaling")
        self.threshold_, self.band_, self.location_, self.spread_, self.scaling_ids_, self.reference_ = \
            float(threshold), float(band), location, spread, ids, reference
        self.range_, self.block_ = known_range, block
