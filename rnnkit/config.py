"""Typed, frozen configuration for models and training.

Every field has a comment; the resolved configs are printed when training starts and saved in
the run directory (`rnnkit.json`). Values are validated here, so the CLI and the Python API
reject nonsense the same way, naming the CLI flag.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

from .errors import UsageError

CELLS = ("lstm", "gru", "rnn", "irnn", "lnlstm")
INIT_SCHEMES = ("auto", "orthogonal", "identity", "glorot", "uniform", "pytorch")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "adagrad", "sgd")
SCHEDULES = ("cosine", "constant", "step")
CLIP_MODES = ("norm", "value")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value > 0:
            raise UsageError(f"{_flag(name)} must be > 0 (got {value})")


def _choice(obj: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(obj, name)
    if value not in choices:
        raise UsageError(f"{_flag(name)} must be one of {', '.join(choices)} (got {value!r})")


@dataclass(frozen=True)
class ModelConfig:
    # Defaults: the best of a 130 s sweep on tiny Shakespeare (docs/language-models.md,
    # docs/performance.md); `rnnkit train --time >= 600` uses 2 x 384 with dropout 0.2 instead
    # unless told otherwise (api.LONG_BUDGET_MODEL: measured better at that budget).
    vocab_size: int  # number of distinct symbols (code points or bytes) in the corpus
    cell: str = "lstm"  # lstm | gru | rnn (tanh) | irnn (ReLU, identity-init) | lnlstm (layer-normalised LSTM)
    hidden_size: int = 256  # width of every recurrent layer
    num_layers: int = 2  # stacked recurrent layers
    embedding_size: int = 64  # learned input embedding width; 0 means one-hot input
    dropout: float = 0.0  # dropout between layers and before the output layer, in [0, 1)
    init: str = "auto"  # weight init scheme; auto = orthogonal recurrence (identity for irnn)
    forget_bias: float = 1.0  # LSTM forget-gate bias at init (Gers et al. 2000; Jozefowicz et al. 2015)

    def __post_init__(self) -> None:
        _positive(self, "vocab_size", "hidden_size", "num_layers")
        _choice(self, "cell", CELLS)
        _choice(self, "init", INIT_SCHEMES)
        if self.embedding_size < 0:
            raise UsageError(f"--embedding-size must be >= 0 (0 = one-hot input; got {self.embedding_size})")
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"--dropout must be in [0, 1) (got {self.dropout})")
        if not math.isfinite(self.forget_bias):
            raise UsageError(f"--forget-bias must be a finite number (got {self.forget_bias})")


@dataclass(frozen=True)
class TrainConfig:
    # --- data
    seq_length: int = 64  # characters per truncated-BPTT chunk
    batch_size: int = 32  # parallel streams through the corpus
    val_fraction: float = 0.1  # the last part of the text held out for validation
    test_fraction: float = 0.0  # an optional test split, held out after validation
    # --- optimisation
    optimizer: str = "adam"  # adam | adamw | rmsprop | adagrad | sgd
    lr: float = 6e-3  # peak learning rate
    momentum: float = 0.9  # SGD momentum (RMSprop too); ignored by the others
    weight_decay: float = 0.0  # L2 (decoupled for adamw)
    schedule: str = "cosine"  # cosine (with warmup) | constant | step
    warmup: float = 0.02  # fraction of the run spent warming the learning rate up (cosine)
    min_lr_ratio: float = 0.05  # cosine decays to this fraction of the peak
    step_every: float = 0.33  # step schedule: decay after every this fraction of the run
    step_gamma: float = 0.5  # step schedule: multiply the learning rate by this
    clip: float = 1.0  # gradient clipping threshold; 0 disables clipping
    clip_mode: str = "norm"  # norm (global L2 norm) | value (element-wise)
    # --- when to stop (the first one reached); the schedule spans the whole run
    max_steps: int | None = None
    epochs: float | None = None
    time: float | None = None  # wall-clock budget in seconds, evaluation included
    # --- bookkeeping
    eval_every: int | None = None  # steps between validations; None = 10 per step budget, 8 per time budget
    eval_chars: int = 64_000  # validation characters per evaluation (the start of the split)
    checkpoint_every: int | None = None  # steps between checkpoints; None = at every evaluation
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda
    autocast: str = "off"  # off | bf16 | fp16: mixed precision for the forward pass (fp16: CUDA only, loss scaled)

    def __post_init__(self) -> None:
        _positive(self, "seq_length", "batch_size", "lr", "max_steps", "epochs", "time",
                  "eval_every", "eval_chars", "checkpoint_every", "step_every", "step_gamma")
        _choice(self, "optimizer", OPTIMIZERS)
        _choice(self, "schedule", SCHEDULES)
        _choice(self, "clip_mode", CLIP_MODES)
        _choice(self, "device", ("auto", "cpu", "cuda"))
        _choice(self, "autocast", ("off", "bf16", "fp16"))
        if self.clip < 0:
            raise UsageError(f"--clip must be >= 0 (0 disables clipping; got {self.clip})")
        if not 0 < self.val_fraction < 1 or not 0 <= self.test_fraction < 1 \
                or self.val_fraction + self.test_fraction >= 1:
            raise UsageError("--val-fraction must be in (0, 1), --test-fraction in [0, 1), "
                             f"and together below 1 (got {self.val_fraction}, {self.test_fraction})")
        if not 0 <= self.warmup < 1:
            raise UsageError(f"--warmup must be in [0, 1) (got {self.warmup})")
        if not 0 <= self.min_lr_ratio <= 1:
            raise UsageError(f"--min-lr-ratio must be in [0, 1] (got {self.min_lr_ratio})")
        if self.momentum < 0 or self.weight_decay < 0:
            raise UsageError("--momentum and --weight-decay must be >= 0")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build a config from saved JSON; unknown keys are errors, not silently new attributes."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}")
    return cls(**data)


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Route flat keyword options (as the CLI and `rnnkit.train` take them) to the two configs."""
    model_keys = {f.name for f in fields(ModelConfig)} - {"vocab_size"}
    train_keys = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - model_keys - train_keys)
    if unknown:
        raise UsageError(f"unknown option(s): {', '.join(unknown)}")
    model = {k: v for k, v in options.items() if k in model_keys}
    train = {k: v for k, v in options.items() if k in train_keys}
    return model, train
