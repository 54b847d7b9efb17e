"""Reconstruction scoring (EncDec-AD, Malhotra et al. 2016, "LSTM-based encoder-decoder for
multi-sensor anomaly detection"): an encoder reads the last L steps into its final state, a
decoder rebuilds them from that state alone, last step first, and a step's error is how far its
rebuilt value lies from the real one. A pattern (or a level) never seen in training is rebuilt
badly.

Unlike the forecaster's windows, values here are scaled once per series (shapes: B windows, L
steps, D values):

    z = (value - median) / spread,   median and spread (interquartile range / 1.349, or the
                                     standard deviation, or 1) of the training steps

so the level itself is part of what the network learns: on the Numenta Anomaly Benchmark a value
far from anything seen is the commonest anomaly, and per-window scaling would hide it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..recurrent import Recurrent
from ..reservoir import ridge_readout
from ..timeseries.task import PairsTask

EVAL_BATCH = 1024
SCORE_BATCH = 4096  # windows per network pass when scoring or explaining


class ReconstructionNetwork(nn.Module):
    """An LSTM (or any trainable cell) encoder-decoder; with a fixed reservoir (`cell="esn"`) an
    echo state autoencoder instead: no decoder, the window is read back linearly from the
    reservoir's final state (B, H) -> (B, L * D), a readout fitted in closed form (fit_rebuild)."""

    def __init__(self, num_values: int, cell: str = "lstm", hidden_size: int = 32, num_layers: int = 1,
                 input_size: int = 16, dropout: float = 0.0, window: int = 32, weight_drop: float = 0.0) -> None:
        super().__init__()
        self.project = nn.Linear(num_values, input_size)
        self.encoder = Recurrent(cell, input_size, hidden_size, num_layers, dropout, weight_drop=weight_drop)
        self.decoder = Recurrent(cell, input_size, hidden_size, num_layers, dropout,
                                 weight_drop=weight_drop) if self.encoder.trainable else None
        for layer in (self.encoder, self.decoder):
            if layer is not None:
                layer.reset_parameters("auto", 1.0)
        if self.decoder is None:
            self.project.requires_grad_(False)  # a fixed reservoir reads a fixed projection
            self.head = nn.Linear(hidden_size, window * num_values)
            return
        self.start = nn.Parameter(torch.zeros(input_size))  # the decoder's input at every step: state only
        self.head = nn.Linear(hidden_size, num_values)

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> the encoder's final state: the top layer's h (B, H) for a reservoir, else the
        whole state the decoder starts from."""
        _, state = self.encoder(self.project(windows))
        return state[0][-1] if self.decoder is None else state

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, L, D) scaled windows -> (B, L, D) their reconstruction, in time order."""
        state = self.encode(windows)
        if self.decoder is None:
            return self.head(state).view(windows.shape)
        steps = self.start.expand(windows.shape[0], windows.shape[1], -1)
        decoded, _ = self.decoder(steps, state)
        return self.head(decoded).flip(1)  # decoded last step first


class NetworkEnsemble(nn.Module):
    """Several reconstruction networks, each trained on its own from its own seed. Its output is
    their mean reconstruction (what `explain` and the expected range read); a step's error is the
    root mean square of the members' own errors (`members`), so a step one network happens to
    rebuild badly counts for less, and so does the seed that drew the networks."""

    def __init__(self, members: list[ReconstructionNetwork]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, L, D): the members' mean reconstruction."""
        return torch.stack([member(windows) for member in self.members]).mean(dim=0)


def members(model: nn.Module) -> list[nn.Module]:
    """The networks whose errors are averaged: an ensemble's members, or the one network."""
    return list(model.members) if isinstance(model, NetworkEnsemble) else [model]


def robust_scaling(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per series (S, D) medians and spreads of (T, D) arrays."""
    location, spread = [], []
    for s in series:
        q1, median, q3 = np.quantile(s, [0.25, 0.5, 0.75], axis=0)
        width = (q3 - q1) / 1.349  # a Gaussian's standard deviation, from its quartiles
        width = np.where(width > 0, width, s.std(axis=0))
        location.append(median)
        spread.append(np.where(width > 0, width, 1.0))
    return np.array(location), np.array(spread)


class ScaledWindows:
    """Windows of L steps ending at a given step, gathered from one flat array of all series."""

    def __init__(self, series: list[np.ndarray], location: np.ndarray, spread: np.ndarray, length: int) -> None:
        self.lengths = np.array([len(s) for s in series], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.flat = np.concatenate([(s - location[i]) / spread[i] for i, s in enumerate(series)]).astype(np.float32)
        self.length = length

    def pairs(self, series: int, first: int = 0, end: int | None = None) -> np.ndarray:
        """(n, 2) [series, last step] of the windows whose last step lies in [max(first, L - 1), end)."""
        end = self.lengths[series] if end is None else end
        last = np.arange(max(first, self.length - 1), end)
        return np.stack([np.full(len(last), series), last], axis=1)

    def batch(self, pairs: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        index = (self.offsets[pairs[:, 0]] + pairs[:, 1] - self.length + 1)[:, None] + np.arange(self.length)
        return torch.from_numpy(self.flat[index]).to(device)  # (B, L, D)


class ReconstructionTask(PairsTask):
    """The loss is the mean squared error of the reconstruction (in scaled units)."""

    loss_name = "mse"

    def training_loss(self, model: nn.Module) -> torch.Tensor:
        windows = self.windows.batch(self.next_pairs(), self.device)
        return (model(windows) - windows).pow(2).mean()

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        total = 0.0
        for start in range(0, len(self.val_pairs), EVAL_BATCH):
            windows = self.windows.batch(self.val_pairs[start:start + EVAL_BATCH], self.device)
            total += (model(windows) - windows).pow(2).mean().item() * len(windows)
        return {"mse": total / max(len(self.val_pairs), 1)}


READOUT_WINDOWS = 50_000  # at most this many training windows (evenly spaced) fit an echo state readout


@torch.no_grad()
def fit_rebuild(model: ReconstructionNetwork, windows: ScaledWindows, pairs: np.ndarray,
                device: torch.device | str = "cpu") -> dict[str, float]:
    """Fit the echo state autoencoder's readout: each window's L x D values ~ W h + b, h the
    reservoir's final state, by ridge regression (`ridge_readout`). The penalty is the one whose
    readout, fitted on windows that end at least L steps before each series' last fifth of windows
    (no step shared with them), rebuilds that last fifth best; the readout kept is fitted on all.
    Returns the penalty and the mean squared errors (scaled units) of the training windows and of
    the last fifth, by the readout that chose the penalty."""
    if len(pairs) > READOUT_WINDOWS:
        pairs = pairs[np.linspace(0, len(pairs) - 1, READOUT_WINDOWS).round().astype(np.int64)]
    states, targets = [], []
    for start in range(0, len(pairs), EVAL_BATCH):
        batch = windows.batch(pairs[start:start + EVAL_BATCH], device)
        states.append(model.encode(batch).double().cpu().numpy())  # (B, H)
        targets.append(batch.reshape(len(batch), -1).double().cpu().numpy())  # (B, L * D)
    later, earlier = np.zeros(len(pairs), dtype=bool), np.zeros(len(pairs), dtype=bool)
    for i in np.unique(pairs[:, 0]):
        rows, ends = pairs[:, 0] == i, pairs[:, 1]
        first = np.quantile(ends[rows], 0.8)
        later[rows], earlier[rows] = ends[rows] >= first, ends[rows] <= first - windows.length
    X, Y = np.concatenate(states), np.concatenate(targets)
    W, b, penalty, held_out = ridge_readout(X, Y, earlier, later)
    model.head.weight.copy_(torch.from_numpy(W.T).to(model.head.weight))
    model.head.bias.copy_(torch.from_numpy(b).to(model.head.bias))
    return {"penalty": penalty, "train_loss": float(((Y - X @ W - b) ** 2).mean()),
            "val_loss": float((held_out ** 2).mean())}


def rebuilt_saliency(model: nn.Module, windows: ScaledWindows, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rebuilt value (D,) of step t of the first series, from the window ending there, and the
    gradient x input and the gradient of it for every step of that window (L, D) each."""
    batch = windows.batch(np.array([[0, t]]), next(model.parameters()).device).requires_grad_(True)
    with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):  # cuDNN's RNN backward needs train mode
        rebuilt = model(batch)[0, -1]  # (D,)
        (gradient,) = torch.autograd.grad(rebuilt.sum(), batch)
    return (rebuilt.detach().double().cpu().numpy(), (gradient * batch).detach()[0].double().cpu().numpy(),
            gradient[0].double().cpu().numpy())
