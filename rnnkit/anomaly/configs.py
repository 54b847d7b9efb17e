"""The anomaly detector's hyperparameters: the forecaster's (its network forecasts the next step)
and what detection adds: how prediction errors become scores, where the threshold comes from,
and how the network keeps learning while it scores online. `rnnkit anomaly train` generates its
flags from these fields."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import CHOICES, MAX_SEED, _in_range
from ..errors import UsageError
from ..timeseries.configs import ForecasterConfig


CHOICES["method"] = ("reconstruction", "prediction")  # the flag's choices and the config check read this table
CHOICES["tail"] = ("empirical", "gaussian")


@dataclass(frozen=True)
class AnomalyConfig(ForecasterConfig):
    # --- model
    method: str = "reconstruction"  # how a step's error is found: reconstruction (an encoder-decoder rebuilds the
    # last --context-length steps; a level or pattern never seen is rebuilt badly) or prediction (the forecaster
    # misses it)
    hidden_size: int = 32  # units per recurrent layer (of the encoder and of the decoder, for reconstruction)
    context_length: int | None = 32  # steps each window holds: what a forecast reads, or what is rebuilt
    block_steps: int = 1  # reconstruction: the network reads the means of blocks of this many steps, and
    # --context-length counts blocks (fewer steps per block where a training series would hold fewer than
    # --context-length + 2 blocks); a block's score goes on its last step, the other steps score 0 (1: steps)
    networks: int = 1  # reconstruction: train this many networks, from seeds --seed, --seed + 1, ...; a step's error
    # is the root mean square of theirs, so scores depend less on the seed (each network costs as much as one)
    # --- training
    min_steps: int = 300  # train for at least this many batches
    validation_fraction: float = 0.1  # share held out at the end of every series: the threshold comes from its
    # scores; 0: the threshold comes from the training steps' scores
    # --- scoring
    tail: str | None = None  # how errors become scores: empirical (how rare among the training errors and all
    # earlier errors) or gaussian (against the mean and spread of the last --long-window errors); default:
    # empirical for reconstruction, gaussian for prediction (the better of each on the Numenta Anomaly Benchmark)
    tail_index: float = 0.0  # with --tail empirical: a record error (above every earlier one) scores more the further
    # it tops the last record: beyond the largest error seen, errors over the training errors' median are taken to
    # follow a power-law tail of this index (2: a record twice as far above the median scores 2 x log10(2) more;
    # 0: a record scores log10 of the errors seen, however far it tops them)
    horizon: int = 1  # prediction: steps ahead each forecast reaches: every step is scored by the forecasts of it made 1 to
    # --horizon steps before (a deviation that builds up over several steps shows in the longer ones)
    long_window: int = 8000  # with --tail gaussian: past steps whose errors give the typical error level
    short_window: int = 1  # recent steps whose mean error is compared with that level (1: each step alone)
    range_breaks: bool = True  # a value beyond the range of every earlier value (the normal data's included) by more
    # than --range-margin of its width scores 10 more, whatever the network says (as Numenta's detector does)
    range_margin: float = 0.02  # share of the range's width a value must lie beyond it to break it
    quiet_steps: int = 0  # a score that does not exceed every score of this many steps before it becomes 0, so
    # one anomaly raises one alarm rather than a run of them (0: every score kept)
    contamination: float = 0.001  # expected share of anomalies in normal data: the threshold is the validation
    # window's (1 - contamination) score quantile, and at least -log10(contamination); 0: its highest score
    # --- online scoring (score --online)
    update_every: int = 1000  # steps (blocks, with --block-steps) scored between two updates of the network on
    # everything seen so far
    update_steps: int = 10  # batches of each update

    def __post_init__(self) -> None:
        super().__post_init__()
        # the detector scores the values as they are: these forecasting settings would train on other values
        for name, plain in (("transform", "none"), ("deseasonalize", "none"), ("calibrate", False)):
            if getattr(self, name) != plain:
                raise UsageError(f"{name} is a forecasting setting the anomaly detector does not use; leave it at "
                                 f"{plain!r}")
        _in_range(self, "long_window", 10, 10_000_000)
        _in_range(self, "short_window", 1, 100_000)
        if self.short_window >= self.long_window:
            raise UsageError("--short-window must be shorter than --long-window")
        if not 0 <= self.contamination < 0.5:
            raise UsageError(f"--contamination must be in [0, 0.5) (got {self.contamination})")
        if not 0 <= self.range_margin <= 100:
            raise UsageError(f"--range-margin must be in [0, 100] (got {self.range_margin})")
        _in_range(self, "quiet_steps", 0, 10_000_000)
        _in_range(self, "tail_index", 0, 100)
        _in_range(self, "block_steps", 1, 100_000)
        if self.block_steps > 1 and self.method != "reconstruction":
            raise UsageError("--block-steps above 1 needs --method reconstruction (a forecaster reads steps)")
        _in_range(self, "networks", 1, 64)
        if self.networks > 1 and self.method != "reconstruction":
            raise UsageError("--networks above 1 needs --method reconstruction (rnnkit builds no ensemble of "
                             "forecasters)")
        if self.random_state + self.networks - 1 > MAX_SEED:
            raise UsageError(f"--networks {self.networks} from --seed {self.random_state} would pass the largest seed, "
                             f"{MAX_SEED}; choose a smaller --seed")
        _in_range(self, "update_every", 1, 10_000_000)
        _in_range(self, "update_steps", 0, 1_000_000)
