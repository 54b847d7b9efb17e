"""What every estimator shares: hyperparameters generated from its config dataclass, one `fit`
(split, build, train with the one Trainer), and save/load in rnnkit's checkpoint format
(the config and fitted vocabularies as JSON, the network's weights as safetensors; never pickle).

scikit-learn's rules hold: `__init__` only stores hyperparameters (scikit-learn reads their names
and defaults from its signature, made here from the config's fields); learned attributes end in
`_`; `fit` returns self; the config is validated when `fit` starts.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .. import checkpoint, logs
from ..api import resolve_device
from ..config import TrainConfig, from_dict
from ..data.sequences import pad
from ..errors import UsageError
from ..precision import flush_denormals
from ..schema import ESTIMATOR, validate
from ..training import Trainer

LOG = logs.get(__name__)


PREDICT_BATCH = 256
EXTRA = "extra."  # saved tensors of what is fitted beside the network (no module of a network has this name)


def init_from_config(config_class: type):
    """An `__init__` that stores one keyword argument per field of `config_class`, defaulting to
    the field's default, with the matching signature (scikit-learn's get_params reads it)."""
    params = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
              for f in fields(config_class)]

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - {p.name for p in params})
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected parameter(s): {', '.join(unknown)}")
        for p in params:
            setattr(self, p.name, kwargs.get(p.name, p.default))

    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *params])
    return __init__


def strings(X, what: str = "X") -> list[str]:
    if isinstance(X, str):
        raise ValueError(f"{what} must be a sequence of strings, not one string")
    texts = list(X)
    for i, x in enumerate(texts):
        if not isinstance(x, str):
            raise ValueError(f"{what} must contain strings; item {i} is {type(x).__name__}")
    return texts


def _rows(values, chosen):
    return values[chosen] if isinstance(values, torch.Tensor) else [values[i] for i in chosen]


class RNNEstimator(BaseEstimator):
    """Subclasses set `config_class` (and `__init__ = init_from_config(config_class)`), and write
    the hooks below; `fit` and save/load are shared."""

    config_class: type

    def __sklearn_tags__(self):
        """What scikit-learn's checks may feed us. The base says: sequences only, never a 2-D
        numeric table (taggers read token lists, seq2seq strings, which the checks cannot
        generate); the text estimators, which also read numeric sequences, say more."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    # ------------------------------------------------------------------ hooks
    def _prepare(self, X, y) -> tuple[list, Any]:
        """Check X and y; fit tokenizers and classes; return input id lists and encoded targets."""
        raise NotImplementedError

    def _build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def _make_task(self, train: tuple[list, Any], val: tuple[list, Any], device: torch.device):
        raise NotImplementedError

    def _after_build(self) -> None:
        """Hook: runs once the fresh network exists (transfer from a pretrained model)."""

    def _before_training(self, trainer: Trainer) -> None:
        """Hook: runs once the Trainer exists, before its first step (schedules over epochs)."""

    def _after_fit(self, X, y, train_rows: np.ndarray, val_rows: np.ndarray | None) -> None:
        """Hook: runs once the network is trained, with the raw rows and the split (val_rows None when
        nothing was held out): models fitted beside the network (an ensemble)."""

    def _fitted_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        """Arrays fitted beside the network, saved with its weights (names get the prefix `extra.`)."""
        return {}

    def _restore_extra(self, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Hook, after `_restore_fitted`: the fitted state again and the arrays `_extra_tensors` saved."""

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting
    def config(self):
        """The hyperparameters as a validated config (UsageError, a ValueError, when one is not sane)."""
        return self.config_class(**self.get_params())

    def _prepare_again(self, X, y) -> tuple[list, Any]:
        """Hook for warm_start: like `_prepare`, with the tokenizers and classes of the previous fit."""
        raise NotImplementedError(f"{type(self).__name__} has no warm_start")

    def fit(self, X, y, on_epoch_end: Callable[[Any, dict], bool | None] | None = None):
        """Fit the network to X and y. on_epoch_end(estimator, record), if given, is called after each
        epoch's validation with that epoch's row of `history_` (step, train_loss, val_loss, ...), the
        network as it stands in `model_`; returning True ends training there."""
        config = self.config()
        torch.manual_seed(config.random_state)
        warm = config.warm_start and hasattr(self, "model_")
        inputs, targets = self._prepare_again(X, y) if warm else self._prepare(X, y)
        if len(inputs) < 2:
            raise ValueError(f"fit needs at least 2 samples; got {len(inputs)} sample(s)")
        order = np.random.default_rng(config.random_state).permutation(len(inputs))
        n_val = int(len(inputs) * config.validation_fraction)
        n_val = n_val if n_val >= 2 else 0  # too few to hold some out: validate on the training rows
        val, train = (order[:n_val], order[n_val:]) if n_val else (order, order)
        device = resolve_device(config.device)
        if warm:
            self.model_.to(device)
        else:
            self.model_ = self._build_model().to(device)
            self._after_build()
        task = self._make_task(([inputs[i] for i in train], _rows(targets, train)),
                               ([inputs[i] for i in val], _rows(targets, val)), device)
        self._train(task, config, device, on_epoch_end=on_epoch_end)
        self._after_fit(X, y, train, val if n_val else None)
        return self

    def _log(self, line: str) -> None:
        """A note for the user: logged at INFO when verbose (on stderr unless logging is configured,
        see rnnkit.logs), at DEBUG otherwise."""
        if getattr(self, "verbose", 0):
            logs.console()
            LOG.info(line)
        else:
            LOG.debug(line)

    def _train(self, task, config, device: torch.device, on_epoch_end=None, **train_config: Any) -> None:
        """Train model_ on `task` with the one Trainer (no checkpoints); keep the best epoch's weights
        under early stopping; set best_epoch_ and history_. `train_config`: more TrainConfig fields."""
        settings = dict(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, optimizer=config.optimizer,
                        schedule=config.schedule, clip=config.clip, seed=config.random_state, device=str(device.type),
                        eval_every=max(1, task.steps_per_epoch()),
                        patience=config.patience if config.early_stopping else None)
        train_config = TrainConfig(**{**settings, **train_config})
        trainer = Trainer(self.model_, task, train_config, None, dict, device, log=self._log,
                          progress=bool(config.verbose))
        if on_epoch_end is not None:
            def after_validation(step: int) -> None:
                self.history_ = self._history(trainer, task)
                trainer.stop_requested = bool(on_epoch_end(self, self.history_[-1]))
            trainer.on_evaluate.append(after_validation)
        self._before_training(trainer)
        trainer.fit()
        if config.early_stopping and trainer.best_weights is not None:
            self.model_.load_state_dict(trainer.best_weights)  # the best epoch, not the last
        self.best_epoch_ = None if trainer.progress.best_step is None else \
            round(trainer.progress.best_step / max(1, task.steps_per_epoch()), 2)
        self.n_steps_ = trainer.progress.step
        self.history_ = self._history(trainer, task)
        self.model_.eval()

    @staticmethod
    def _history(trainer, task) -> list[dict]:
        loss, per_epoch = task.loss_name, max(1, task.steps_per_epoch())
        return [{"epoch": round(m["step"] / per_epoch, 2), "step": m["step"], "train_loss": m[f"train_{loss}"],
                 "val_loss": m[f"val_{loss}"], **{k: v for k, v in m.items() if k.startswith("val_") and
                                                   k != f"val_{loss}"}} for m in trainer.progress.metrics]

    # ------------------------------------------------------------------ predicting
    @torch.no_grad()
    def _network_outputs(self, sequences: list[list[int]], forward=None) -> Iterator[torch.Tensor]:
        """The network's outputs (or `forward(tokens, lengths)`'s) for token id sequences,
        PREDICT_BATCH sequences at a time, on the CPU."""
        self.model_.eval()
        forward = forward or self.model_
        device = next(self.model_.parameters()).device
        for start in range(0, len(sequences), PREDICT_BATCH):
            tokens, lengths = pad(sequences[start:start + PREDICT_BATCH], device)
            with flush_denormals():  # a state decaying over a long sequence passes through the slow denormals
                outputs = forward(tokens, lengths).cpu()
            yield outputs

    def _vectors(self, sequences: list, pooling: str) -> np.ndarray:
        """One pooled vector of the recurrent stack's top-layer outputs per sequence (N, H * directions)."""
        from ..models.classifier import pool_outputs
        hidden = self.model_.recurrent.hidden_size
        chunks = list(self._network_outputs(sequences, lambda tokens, lengths: pool_outputs(
            self.model_.outputs(tokens, lengths), lengths, pooling, hidden)))
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, self.model_.recurrent.output_size), np.float32)

    def _sentence_encoder(self, tokenize):
        from ..api.embed import SentenceEncoder
        return SentenceEncoder(self.model_.embed, self.model_.recurrent, tokenize, (), type(self).__name__)

    # ------------------------------------------------------------------ save / load
    def save(self, directory: str | Path) -> None:
        check_is_fitted(self, "model_")
        meta = {"task": type(self).__name__, "config": asdict(self.config()), "fitted": self._fitted_state(),
                "step": 0}
        extra = {f"{EXTRA}{name}": tensor for name, tensor in self._extra_tensors().items()}
        checkpoint.save(Path(directory), meta, {"model": {**self.model_.state_dict(), **extra}})

    @classmethod
    def load(cls, directory: str | Path):
        meta = checkpoint.read_meta(directory)
        if meta.get("task") != cls.__name__:
            task = meta.get("task", "language_model")
            raise UsageError(f"{directory} holds a {task!r} model, not a {cls.__name__}")
        validate(meta, ESTIMATOR, "rnnkit.json", f"{directory}")
        # "params": the name directories written before configs were saved use
        config = from_dict(cls.config_class, meta.get("config", meta.get("params")), f"{directory}")
        estimator = cls(**asdict(config))
        weights = checkpoint.load_tensors(directory, meta, "model")
        try:
            estimator._restore_fitted(meta["fitted"])
            estimator._restore_extra(meta["fitted"], {name[len(EXTRA):]: weights.pop(name) for name in list(weights)
                                                      if name.startswith(EXTRA)})
            estimator.model_ = estimator._build_model()
            estimator.model_.load_state_dict(weights)
        except UsageError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError, OverflowError) as e:
            # a fitted state or weights that do not fit the config: tampered, or written by something else
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise UsageError(f"{directory} is corrupted: its fitted state or weights do not match its "
                             f"{cls.__name__} settings ({first[:200]})") from None
        # where fit would have put it (device auto: the GPU if there is one), so a loaded estimator predicts
        # as the fitted one did; one saved with device cuda still loads on a machine without a GPU
        where = "cpu" if config.device == "cuda" and not torch.cuda.is_available() else config.device
        estimator.model_.to(resolve_device(where)).eval()
        return estimator
