"""The forecaster's hyperparameters: the shared network and training fields, and what forecasting
adds (horizon, context, season, likelihood). The `rnnkit forecast train` flags are generated
from these fields, like the other estimators'."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import CHOICES, _in_range, _positive, check_weight_drop
from ..estimators.configs import NetworkConfig
from .network import LIKELIHOODS
from .seasonal import MODES

CHOICES["likelihood"] = LIKELIHOODS  # the flag's choices and the config check read this table
TRANSFORMS = ("none", "log", "auto")
CHOICES["transform"] = TRANSFORMS
CHOICES["deseasonalize"] = MODES


@dataclass(frozen=True)
class ForecasterConfig(NetworkConfig):
    # --- model
    hidden_size: int = 128  # units per recurrent layer
    num_layers: int = 1  # stacked recurrent layers
    embedding_size: int = 16  # width of the linear projection of each step's values before the recurrent layer
    likelihood: str = "gaussian"  # predictive distribution of every future step: gaussian or studentt
    weight_drop: float = 0.0  # weight drop in [0, 1) (DropConnect on the recurrent matrices, as AWD-LSTM,
    # Merity et al. 2018): in training each element of every W_hh is zeroed with this probability, one mask
    # per batch
    # --- training
    epochs: float = 50.0  # passes over the training windows (every cut of every series)
    batch_size: int = 64  # windows per batch
    min_steps: int = 500  # train for at least this many batches, however few windows the series give
    early_stopping: bool = True  # keep the weights of the best validation, and stop once --patience validations
    # in a row have not improved on it (one short series overfits quickly)
    patience: int = 10  # validations without a better validation loss before early stopping stops
    max_time: float | None = None  # stop training after this many seconds even if --epochs are not done
    validation_fraction: float = 0.1  # above 0: the last --horizon steps of every series long enough are held
    # out and forecast after each epoch (validation loss, and --early-stopping); 0: every step trains
    calibrate: bool = False  # with held-out steps (--validation-fraction > 0): widen or narrow every interval by one
    # factor so that 4 in 5 held-out values fall inside the interval from the 0.1 to the 0.9 quantile (split conformal; the factor is shrunk
    # toward 1 when there are few held-out values). Off by default: under early stopping those steps also choose the
    # kept weights, so they flatter the network, and in the benchmark the factor narrowed intervals that were
    # already too narrow; with --no-early-stopping it widened them to cover about 4 in 5 on AirPassengers and M1
    # --- forecasting
    horizon: int = 1  # steps forecast after the end of each series
    context_length: int | None = None  # most past steps one forecast reads (default: 4 x the larger of
    # horizon and season, at least 16)
    transform: str = "none"  # none; log: model the logarithm of the values (every value must be > 0), so
    # seasonal swings that grow with the level become constant; forecasts and quantiles are mapped back, and the
    # point forecast is then the median; auto: log when every value of every series is > 0
    deseasonalize: str = "none"  # auto: subtract each seasonal series' classical-decomposition indices (from its
    # own history, found again at every forecast) before the network reads it, and add them back to the forecast;
    # a series is adjusted when it has 3 seasons or more and its autocorrelation one season apart is significant;
    # always: every series with 2 seasons or more; none
    season: int | None = None  # season length in steps (default: from the frequency: 12 monthly, 4 quarterly,
    # 7 daily, 24 hourly, 1 = none), used by the default context and by MASE

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "max_time", "context_length", "season")
        _in_range(self, "horizon", 1, 10_000)
        if self.context_length is not None:
            _in_range(self, "context_length", 3, 100_000)
        if self.season is not None:
            _in_range(self, "season", 1, 100_000)
        _in_range(self, "num_layers", 1, 64)
        _in_range(self, "min_steps", 0, 1e9)
        check_weight_drop(self.weight_drop, self.cell)

    def recurrent_parameters(self) -> int:
        H = self.hidden_size
        return 4 * H * (self.embedding_size + H + 2) * self.num_layers

    def context_for(self, season: int) -> int:
        return self.context_length or max(16, 4 * max(self.horizon, season))
