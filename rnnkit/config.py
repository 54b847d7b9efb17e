"""Typed, frozen configuration for models and training.

Every field has a comment; the resolved configs are printed when training starts and saved in
the run directory (`rnnkit.json`). Values are validated here, so the CLI and the Python API
reject nonsense the same way, naming the CLI flag.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, fields
from typing import Any

from .errors import UsageError

CELLS = ("lstm", "gru", "rnn", "irnn", "lnlstm", "bnlstm", "gfrnn", "indrnn", "mingru", "minlstm", "esn")
NO_ZONEOUT = ("bnlstm", "gfrnn", "mingru", "minlstm")  # cells that refuse --zoneout (Cell.zoneout_ready)
NO_WEIGHT_DROP = ("indrnn", "mingru", "minlstm", "esn")  # cells without a learnt W_hh (Cell.recurrent_matrix)
INIT_SCHEMES = ("auto", "orthogonal", "identity", "glorot", "uniform", "pytorch")
OPTIMIZERS = ("adam", "adamw", "rmsprop", "adagrad", "sgd")
SCHEDULES = ("cosine", "constant", "step")
CLIP_MODES = ("norm", "value")
DEVICES = ("auto", "cpu", "cuda")
AUTOCAST = ("off", "bf16", "fp16")
POOLINGS = ("last", "mean", "max")
LEVELS = ("char", "word")
ENSEMBLES = ("auto", "nbsvm", "none")  # what a classifier combines with its network
TOKENS = ("char", "bytes", "word", "bpe")
# The allowed values of every field that has a fixed set, by field name: validation and the
# command line's `choices` both read this.
CHOICES: dict[str, tuple[str, ...]] = {
    "cell": CELLS, "init": INIT_SCHEMES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES,
    "clip_mode": CLIP_MODES, "device": DEVICES, "autocast": AUTOCAST, "pooling": POOLINGS,
    "level": LEVELS, "source_level": LEVELS, "target_level": LEVELS, "tokens": TOKENS, "ensemble": ENSEMBLES,
}
MAX_SEED = 2**63 - 1


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_types(obj: Any) -> None:
    """Every field holds a value of its declared type (int, float, str, bool, or None where the
    type allows it), and numbers are finite: a config read from a file or a web request is
    untrusted. An int is accepted where a float is declared."""
    for f in fields(obj):
        value, declared = getattr(obj, f.name), str(f.type)
        if value is None and "None" in declared:
            continue
        base = declared.split("|")[0].strip()
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "bool": isinstance(value, bool), "str": isinstance(value, str)}.get(base, True)
        if not ok:
            raise UsageError(f"{_flag(f.name)} must be {'a whole number' if base == 'int' else 'a ' + base} "
                             f"(got {value!r})")
        if base == "float" and not math.isfinite(value):
            raise UsageError(f"{_flag(f.name)} must be a finite number (got {value})")
        if f.name in CHOICES and value not in CHOICES[f.name]:
            raise UsageError(f"{_flag(f.name)} must be one of {', '.join(CHOICES[f.name])} (got {value!r})")


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value > 0:
            raise UsageError(f"{_flag(name)} must be > 0 (got {value})")


def _at_least(obj: Any, low: float, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value >= low:
            raise UsageError(f"{_flag(name)} must be >= {low:g} (got {value})")


def _in_range(obj: Any, name: str, low: float, high: float) -> None:
    value = getattr(obj, name)
    if not low <= value <= high:
        shown = "2^63-1" if high == MAX_SEED else f"{high:g}"
        raise UsageError(f"{_flag(name)} must be in {low:g}..{shown} (got {value})")


# Every field's comment is also its command-line help (`rnnkit.cli.flags` reads it, with any
# comment lines right below the field); a "# --- title" line starts a group of flags.
@dataclass(frozen=True)
class ModelConfig:
    # Defaults: the best of a 130 s sweep on tiny Shakespeare (docs/language-models.md,
    # docs/performance.md); `rnnkit train --time >= 600` uses 2 x 384 with dropout 0.2 instead, and on
    # the CPU the LN-LSTM trained by AdamW with weight decay 0.1, unless told otherwise
    # (api.training.LONG_BUDGET_MODEL and long_budget_cpu_defaults: measured better at that budget;
    # 2 x 512 there on a CPU with AMX, which marks the faster CPUs measured); shorter --time budgets on
    # a CPU with AMX: 2 x 384, dropout 0.1, bf16 (SHORT_BUDGET_BF16).
    vocab_size: int  # number of distinct symbols (code points or bytes) in the corpus
    # --- model
    cell: str = "lstm"  # recurrent cell: lstm, gru, rnn (tanh), irnn (ReLU with identity-initialised
    # recurrence), lnlstm (layer-normalised LSTM, Ba et al. 2016; on rnnkit's C kernels, 1.4-1.7x slower
    # per step than lstm on the CPU),
    # bnlstm (batch-normalised LSTM, Cooijmans et al. 2016: statistics per time step, running averages
    # for evaluation and sampling), gfrnn (gated-feedback LSTM stack, Chung et al. 2015: every layer
    # reads all layers' previous states through learned reset gates),
    # indrnn (ReLU, one bounded recurrent weight per unit, Li et al. 2018), mingru, minlstm (gates from the
    # input only, Feng et al. 2024: a sequence is one parallel scan), esn (echo state network: a fixed random
    # reservoir, Jaeger 2001; only the output layer learns, with no backpropagation through time); lnlstm
    # when --time >= 600 on the CPU with rnnkit's C kernels, where it measured better
    hidden_size: int = 256  # units per recurrent layer (384 when --time >= 600, where it measured better,
    # 512 for that LN-LSTM on a CPU with bf16 matrix units, AMX, which marks the faster CPUs measured;
    # 384 for shorter --time budgets on such a CPU, under bf16)
    num_layers: int = 2  # stacked recurrent layers
    embedding_size: int = 64  # learned input embedding width; 0 = one-hot input
    dropout: float = 0.0  # dropout between layers and before the output, in [0, 1) (0.2 when --time >= 600;
    # 0.1 for mingru and minlstm there, and for shorter --time budgets on a CPU with AMX)
    zoneout: float = 0.0  # zoneout probability in [0, 1) (Krueger et al. 2016): in training each unit keeps
    # its previous state with this probability; runs on the step path (slower than the fused kernels)
    weight_drop: float = 0.0  # weight drop in [0, 1) (DropConnect on the recurrent matrices, as AWD-LSTM,
    # Merity et al. 2018): in training each element of every W_hh is zeroed with this probability, one mask
    # per batch shared by all its time steps; keeps the fused and C kernels
    init: str = "auto"  # weight init: auto (orthogonal recurrence, identity for irnn), orthogonal,
    # identity, glorot, uniform (+-0.08, as char-rnn), pytorch
    forget_bias: float = 1.0  # LSTM forget-gate bias at init (Gers et al. 2000; Jozefowicz et al. 2015)
    residual: bool = False  # layers above the first read LayerNorm of their input and add their output to it,
    # the top is normalised (pre-norm residual stacking, as Feng et al. 2024 stack minGRU/minLSTM); with
    # lstm/gru/rnn this leaves the fused kernel for the step path
    feed_forward: int = 0  # with --residual: after each recurrent layer a feed-forward block (LayerNorm, a GELU
    # layer this many times the hidden size wide, back to the hidden size, added to its input), as Feng et al.
    # 2024 stack minGRU/minLSTM; 0 = none
    spectral_radius: float = 0.95  # --cell esn: largest absolute eigenvalue of the fixed recurrent weights,
    # > 0 (about 0.8-1.2 is usual; below 1 the reservoir forgets its start)

    def __post_init__(self) -> None:
        check_types(self)
        _positive(self, "vocab_size", "hidden_size", "num_layers")
        if self.embedding_size < 0:
            raise UsageError(f"--embedding-size must be >= 0 (0 = one-hot input; got {self.embedding_size})")
        check_dropout(self.dropout)
        if not 0.0 <= self.zoneout < 1.0:
            raise UsageError(f"--zoneout must be in [0, 1) (got {self.zoneout})")
        if self.feed_forward < 0:
            raise UsageError(f"--feed-forward must be >= 0 (got {self.feed_forward}; 0 = no feed-forward blocks)")
        if self.feed_forward and not (self.residual and self.num_layers > 1):
            raise UsageError("--feed-forward adds a block after each layer of a residual stack: add --residual "
                             "and --num-layers 2 or more, or leave it out")
        if self.residual and self.cell == "gfrnn":
            raise UsageError("the gfrnn cell already connects every layer to every other; leave out --residual")
        check_weight_drop(self.weight_drop, self.cell)
        if self.zoneout and self.cell in NO_ZONEOUT:
            raise UsageError(f"--zoneout does not apply to the {self.cell} cell; leave it out or choose lstm or gru")
        _in_range(self, "forget_bias", -1000, 1000)
        if not 0 < self.spectral_radius <= 100:
            raise UsageError(f"--spectral-radius must be in (0, 100] (got {self.spectral_radius}); an echo state "
                             "network needs a recurrence, about 0.8-1.2 is usual")
        reservoir = self.num_layers * self.hidden_size * (self.hidden_size + (self.embedding_size or self.vocab_size) + 1) \
            if self.cell == "esn" else 0  # fixed weights: stored, but not parameters
        check_fits_in_memory((self.num_parameters() + reservoir) * 4, "the model's weights")

    def num_parameters(self) -> int:
        """Parameters of the language model this config describes, counted without building it."""
        gates = {"lstm": 4, "lnlstm": 4, "bnlstm": 4, "gfrnn": 4, "gru": 3, "mingru": 2, "minlstm": 3}.get(self.cell, 1)
        # recurrent weights per unit and gate: H (a matrix row), 1 (IndRNN's vector) or none (minimal cells)
        recurrent = {"mingru": 0, "minlstm": 0, "indrnn": 1}.get(self.cell, self.hidden_size)
        V, E, H = self.vocab_size, self.embedding_size, self.hidden_size
        total = V * E + H * V + V  # embedding (none for one-hot), output layer
        if self.residual and self.num_layers > 1:  # a LayerNorm (gain, shift) per layer above the first, and the top's
            total += 2 * H * self.num_layers
            if self.feed_forward:  # per layer: a LayerNorm, H -> mH and mH -> H with biases
                total += self.num_layers * (2 * self.feed_forward * H * H + self.feed_forward * H + 3 * H)
        if self.cell == "esn":  # the reservoir's weights are fixed buffers
            return total
        biases = 1 if self.cell in ("mingru", "minlstm") else 2
        extra = 10 * H if self.cell in ("lnlstm", "bnlstm") else 0  # gains and shifts (bnlstm: + statistics)
        total += gates * H * ((E or V) + recurrent + biases) + extra  # the first layer reads the input
        if self.cell == "gfrnn":  # per layer: L - 1 feedback matrices, reset gates on the input and on h*
            L = self.num_layers
            total += L * ((L - 1) * H * H + L * L * H + L) + L * (E or V) + (L - 1) * L * H
        # the others read H each (in closed form: a corrupted num_layers of 10^18 must not loop)
        return total + (self.num_layers - 1) * (gates * H * (H + recurrent + biases) + extra)


@dataclass(frozen=True)
class TrainConfig:
    # --- data
    val_fraction: float = 0.1  # share of the text held out at its end for validation
    test_fraction: float = 0.0  # share held out after validation as a test split, scored once at the end
    tokens: str = "char"  # what the model reads and writes: char (Unicode characters), bytes (raw bytes, as
    # --bytes), word (words with their leading space, punctuation, white space) or bpe (byte-level byte-pair
    # encoding); word and bpe learn their vocabulary from the text (needs `pip install 'rnnkit[tokens]'`)
    max_vocab: int = 4000  # --tokens word|bpe: the size of the vocabulary to learn
    documents: str | None = None  # documents mode, for many short texts: line (one document per line),
    # blank-line (paragraphs) or a separator string (\n, \t allowed); each document is learnt from a fresh
    # state and ends with an end-of-text symbol, sampling prints one document per sample, and the
    # held-out splits are whole documents
    # --- training
    seq_length: int = 64  # characters per truncated-BPTT chunk
    batch_size: int = 32  # parallel streams through the text (per process under torchrun)
    state_reset: float = 0.05  # chance that a stream's carried state starts afresh (from zero) at each chunk,
    # so the model also learns to start from nothing, as `rnnkit sample --prime` and evaluation do; 0 carries
    # it through each epoch (a model trained so may write garbage for its first characters from a short prime)
    optimizer: str = "adam"  # the optimizer (adamw with --weight-decay 0.1 when --time >= 600 trains the
    # LN-LSTM by default and neither flag is given, where it measured better)
    lr: float = 6e-3  # peak learning rate
    momentum: float = 0.9  # momentum of sgd and rmsprop; ignored by the others
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw; see --optimizer for the long-budget default)
    schedule: str = "cosine"  # learning-rate schedule over the run: cosine (with warmup), constant, step
    warmup: float = 0.02  # fraction of the run spent warming the learning rate up (cosine)
    min_lr_ratio: float = 0.05  # cosine ends at this fraction of --lr
    step_every: float = 0.33  # step schedule: decay after each this fraction of the run
    step_gamma: float = 0.5  # step schedule: multiply the learning rate by this
    clip: float = 1.0  # gradient clipping threshold; 0 disables clipping
    clip_mode: str = "norm"  # clip the global L2 norm, or each value
    seed: int = 1337  # random seed of the weights and dropout
    device: str = "auto"  # auto = cuda when PyTorch sees a GPU
    autocast: str = "off"  # mixed precision: bf16, or fp16 with loss scaling (CUDA only); bf16 also runs
    # on CPU, but only CPUs with bf16 instructions gain from it; bf16 by default for `rnnkit train --time`
    # under 600 with the default model on a CPU with bf16 matrix units (AMX), where it measured better
    # --- when to stop (the first reached; the learning-rate schedule spans the run; default --time 600)
    max_steps: int | None = None  # optimizer steps
    epochs: float | None = None  # passes over the training text
    time: float | None = None  # wall-clock budget in seconds, evaluation included
    # --- evaluation and checkpoints
    eval_every: int | None = None  # steps between validations (default: 10 per run, 8 under --time)
    eval_chars: int = 64_000  # validation characters per evaluation, from the start of the split
    checkpoint_every: int | None = None  # steps between extra checkpoints (default: at each validation)
    sample_every: int | None = None  # steps between short samples written to the log, at the next validation
    tensorboard: str | None = None  # also write the metrics of metrics.jsonl as a TensorBoard log in this
    # folder (`tensorboard --logdir DIR` shows it; writing needs no TensorBoard package)
    patience: int | None = None  # early stopping: stop after this many validations in a row without a new
    # best (default: train the whole budget); the best weights are kept either way

    def __post_init__(self) -> None:
        check_types(self)
        _positive(self, "seq_length", "batch_size", "lr", "max_steps", "epochs", "time",
                  "eval_every", "eval_chars", "checkpoint_every", "sample_every", "patience", "step_every", "step_gamma")
        _at_least(self, 0, "clip", "momentum", "weight_decay")
        _in_range(self, "seed", 0, MAX_SEED)
        for name, most in (("epochs", 1e6), ("time", 1e8), ("max_steps", 1e12), ("eval_every", 1e12),
                           ("checkpoint_every", 1e12), ("sample_every", 1e12), ("patience", 1e6),
                           ("eval_chars", 1e12), ("seq_length", 1e6), ("batch_size", 1e6)):
            if getattr(self, name) is not None:
                _in_range(self, name, 0, most)
        if not 0 < self.val_fraction < 1 or not 0 <= self.test_fraction < 1 \
                or self.val_fraction + self.test_fraction >= 1:
            raise UsageError("--val-fraction must be in (0, 1), --test-fraction in [0, 1), "
                             f"and together below 1 (got {self.val_fraction}, {self.test_fraction})")
        if not 0 <= self.warmup < 1:
            raise UsageError(f"--warmup must be in [0, 1) (got {self.warmup})")
        _in_range(self, "min_lr_ratio", 0, 1)
        _in_range(self, "state_reset", 0, 1)
        _in_range(self, "max_vocab", 300, 1_000_000)  # bpe starts from 256 byte tokens
        if self.tensorboard is not None and not 0 < len(self.tensorboard) <= 4096:
            raise UsageError("--tensorboard needs a folder name")
        if self.documents is not None:
            from .data.documents import check_separator
            check_separator(self.documents)


def available_memory() -> int:
    """Bytes of memory free on this machine now (the kernel's estimate of what can be allocated)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 50


def check_fits_in_memory(needed: int, what: str) -> None:
    free = available_memory()
    if needed > free:
        raise UsageError(f"{what} would need {needed / 2**30:,.1f} GiB but this machine has "
                         f"{free / 2**30:,.1f} GiB free; choose a smaller --hidden-size / --num-layers / --batch-size")


def check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise UsageError(f"--dropout must be in [0, 1) (got {dropout})")


def check_weight_drop(weight_drop: float, cell: str) -> None:
    if not 0.0 <= weight_drop < 1.0:
        raise UsageError(f"--weight-drop must be in [0, 1) (got {weight_drop})")
    if weight_drop and cell in NO_WEIGHT_DROP:
        raise no_matrix_to_drop(cell)


def no_matrix_to_drop(cell: str) -> UsageError:
    """The refusal of --weight-drop for a cell without a learnt W_hh (configs and `Recurrent` alike)."""
    return UsageError(f"--weight-drop drops elements of a recurrent matrix, which the {cell} cell does not learn; "
                      "leave it out or choose a cell with one (lstm, gru, lnlstm, ...)")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict[str, Any], what: str | None = None) -> Any:
    """Build a config from saved JSON; unknown keys are errors, not silently new attributes.
    `what` names the file it came from ("checkpoint runs/x"): problems then say it is corrupted."""
    try:
        if not isinstance(data, dict):
            raise UsageError(f"{cls.__name__} must be a JSON object (got {type(data).__name__})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}")
        missing = sorted(f.name for f in fields(cls) if f.default is dataclasses.MISSING and f.name not in data)
        if missing:
            raise UsageError(f"{cls.__name__} lacks {', '.join(missing)}")
        return cls(**data)
    except UsageError as e:
        if what is None:
            raise
        raise UsageError(f"{what} is corrupted ({cls.__name__}: {e})") from None


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
