"""Text in, one prediction per text out: `RNNClassifier` (labels) and `RNNRegressor` (numbers), on
the shared `TextEstimator` (text_base.py: tokenizing, transfer from a language model, training).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets

from .base import init_from_config, strings
from .configs import ClassifierConfig, RegressorConfig
from .stacking import Stacker
from .text_base import TextEstimator


class RNNClassifier(ClassifierMixin, TextEstimator):
    """Text classification with a recurrent network: strings in, labels (any hashable values) out.
    Hyperparameters: the fields of `ClassifierConfig`."""

    config_class = ClassifierConfig
    __init__ = init_from_config(ClassifierConfig)

    def _encode_targets(self, y) -> torch.Tensor:
        check_classification_targets(y)  # a continuous y is refused, not made into thousands of classes
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs at least two")
        return torch.from_numpy(encoded.astype(np.int64))

    def _encode_targets_again(self, y) -> torch.Tensor:
        new = sorted(set(y.tolist()) - set(self.classes_.tolist()), key=str)
        if new:
            raise ValueError(f"warm_start keeps the classes of the first fit; y has new ones: "
                             f"{', '.join(map(repr, new[:5]))}")
        return torch.from_numpy(np.searchsorted(self.classes_, y).astype(np.int64))

    def _num_outputs(self) -> int:
        return len(self.classes_)

    def predict_proba(self, X) -> np.ndarray:
        network = self.network_proba(X)  # first: it raises NotFittedError before fit
        if getattr(self, "nbsvm_", None) is None:
            return network
        return self.stacker_(network, self.nbsvm_.predict_proba(X))

    def network_proba(self, X) -> np.ndarray:
        """The network's own class probabilities (N, C), without the ensemble's NBSVM."""
        return torch.softmax(self._outputs(X), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        best = self.predict_proba(X).argmax(axis=1)  # first: it raises NotFittedError before fit
        return self.classes_[best]

    # ------------------------------------------------------------------ ensemble
    def _after_fit(self, X, y, train_rows, val_rows) -> None:
        """ensemble="nbsvm": an NBSVM fitted on the training rows only and the network both predict the
        validation rows; a stacker (estimators/stacking.py) learns from them how to combine the two;
        then the NBSVM is refitted on every row. Without validation rows the two count equally."""
        self.nbsvm_, self.stacker_ = None, None
        if self.ensemble == "none" or self.features_ is not None:  # auto: none for numeric sequences
            return
        from .nbsvm import NBSVMClassifier
        texts, labels = strings(X), np.asarray(y)
        self.stacker_ = Stacker.equal(len(self.classes_))
        if val_rows is not None:
            held_in = NBSVMClassifier().fit([texts[i] for i in train_rows], labels[train_rows])
            if list(held_in.classes_) == list(self.classes_):
                validation = [texts[i] for i in val_rows]
                self.stacker_ = Stacker.fit(self.network_proba(validation), held_in.predict_proba(validation),
                                            np.searchsorted(self.classes_, labels[val_rows]))
        self.nbsvm_ = NBSVMClassifier().fit(texts, labels)
        self._log(f"ensemble: the network and an NBSVM, stacked on the validation rows "
                  f"({self.stacker_.network_share():.0%} of the weight on the network)")

    def _fitted_state(self) -> dict[str, Any]:
        state = {**super()._fitted_state(), "classes": self.classes_.tolist()}
        if getattr(self, "nbsvm_", None) is not None:
            state["ensemble"] = {"stacker": self.stacker_.to_json(), "nbsvm": self.nbsvm_.to_state()[0]}
        return state

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        if getattr(self, "nbsvm_", None) is None:
            return {}
        return {f"nbsvm.{name}": torch.from_numpy(array) for name, array in self.nbsvm_.to_state()[1].items()}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        super()._restore_fitted(state)
        self.classes_ = np.asarray(state["classes"])
        self.nbsvm_, self.stacker_ = None, None

    def _restore_extra(self, state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        ensemble = state.get("ensemble")
        if ensemble is None:
            return
        from .nbsvm import NBSVMClassifier
        stacker = Stacker.from_json(ensemble["stacker"])
        arrays = {name[len("nbsvm."):]: tensor.numpy() for name, tensor in tensors.items() if name.startswith("nbsvm.")}
        self.nbsvm_ = NBSVMClassifier.from_state(ensemble["nbsvm"], arrays)
        if list(self.nbsvm_.classes_) != self.classes_.tolist() or len(stacker.bias) != len(self.classes_):
            raise ValueError("the ensemble's classes differ from the network's")
        self.stacker_ = stacker


class RNNRegressor(RegressorMixin, TextEstimator):
    """Text regression with a recurrent network: strings in, numbers out (targets are standardised
    for training and mapped back for prediction). Hyperparameters: the fields of `RegressorConfig`."""

    config_class = RegressorConfig
    __init__ = init_from_config(RegressorConfig)
    loss = "mse"

    def _encode_targets(self, y) -> torch.Tensor:
        y = _finite(y)
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std() or 1.0)
        return self._encode_targets_again(y)

    def _encode_targets_again(self, y) -> torch.Tensor:
        """y standardised with the scaling of the first fit (warm_start keeps it)."""
        return torch.from_numpy(((_finite(y) - self.y_mean_) / self.y_scale_).astype(np.float32)).reshape(-1, 1)

    def _num_outputs(self) -> int:
        return 1

    def predict(self, X) -> np.ndarray:
        return self._outputs(X).numpy()[:, 0] * self.y_scale_ + self.y_mean_

    def _fitted_state(self) -> dict[str, Any]:
        return {**super()._fitted_state(), "y_mean": self.y_mean_, "y_scale": self.y_scale_}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        super()._restore_fitted(state)
        self.y_mean_, self.y_scale_ = float(state["y_mean"]), float(state["y_scale"])


def _finite(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("y must be finite numbers")
    return y
