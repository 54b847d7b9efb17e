"""The output layer of an echo state classifier or regressor, fitted in closed form.

With `cell="esn"` nothing below the output layer learns (a fixed random reservoir, Jaeger 2001),
so the layer is a linear map of one pooled reservoir state per sequence, and the least-squares
map is a ridge regression (Lukosevicius 2012, "A practical guide to applying echo state
networks"; reservoir classifiers of time series read out the same way, Bianchi et al. 2021):

    outputs = states @ W + b        states (N, F) pooled, W (F, K), b (K,)

For classes the regression targets are one-hot rows (K = C), and a softmax over the raw outputs
would be poorly calibrated, so the logits are the outputs times one temperature-like factor k,
chosen to minimise the cross-entropy of the leave-one-out outputs (those of a readout that had
not seen the row). For values the targets are the standardised values (K = 1). The penalty is
chosen by generalised cross-validation (`rnnkit.reservoir.ridge_readout`): training sequences
are exchangeable, unlike the overlapping windows of one series.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..reservoir import ridge_readout

LOGIT_FACTORS = np.logspace(-1, 2, 61)  # k tried: softmax(k * outputs); one-hot outputs lie about 1 apart


def _cross_entropy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log softmax(outputs)[label] over rows: outputs (N, C), labels (N,)."""
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return float((log_norm - shifted[np.arange(len(labels)), labels]).mean())


@torch.no_grad()
def fit_readout(head: nn.Linear, states: np.ndarray, targets: torch.Tensor, loss: str) -> dict[str, float]:
    """Set `head` (F -> K) to the ridge readout of `targets` from `states` (N, F); targets are class
    ids (N,) for loss "nats", standardised values (N,) or (N, K) for "mse". Returns the penalty
    chosen and the training and leave-one-out losses, in the loss's own units."""
    X = np.asarray(states, dtype=np.float64)
    if loss == "nats":
        labels = targets.cpu().numpy().astype(np.int64)
        Y = np.eye(head.out_features)[labels]  # (N, C) one-hot
    else:
        Y = targets.double().cpu().numpy().reshape(len(X), -1)
    W, b, penalty, residuals = ridge_readout(X, Y)
    left_out = Y - residuals  # (N, K): each row's outputs from a readout fitted without it
    fitted = X @ W + b
    if loss == "nats":
        losses = [_cross_entropy(k * left_out, labels) for k in LOGIT_FACTORS]
        factor = float(LOGIT_FACTORS[int(np.argmin(losses))])
        W, b = W * factor, b * factor
        train_loss, left_out_loss = _cross_entropy(factor * fitted, labels), float(min(losses))
    else:
        factor = 1.0
        train_loss, left_out_loss = float(((Y - fitted) ** 2).mean()), float((residuals ** 2).mean())
    head.weight.copy_(torch.from_numpy(W.T).to(head.weight))
    head.bias.copy_(torch.from_numpy(b).to(head.bias))
    return {"penalty": penalty, "logit_factor": factor, "train_loss": train_loss, "left_out_loss": left_out_loss}
