"""The forecasting network: a scaled context (B, L, D) read by the shared Recurrent stack; from
the final state one linear layer gives, for every future step and value column, the parameters
of a predictive distribution (B, H, D, P), all H steps at once (direct multi-horizon output, as
in MQ-RNN, Wen et al. 2017). Likelihoods: Gaussian (mean, scale) or Student-t (mean, scale,
degrees of freedom > 2, so a variance exists; heavier tails for series with jumps; DeepAR,
Salinas et al. 2020, uses both)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..recurrent import Recurrent

LIKELIHOODS = ("gaussian", "studentt")
_PARAMETERS = {"gaussian": 2, "studentt": 3}


class ForecastNetwork(nn.Module):
    def __init__(self, num_values: int, horizon: int, likelihood: str = "gaussian", cell: str = "lstm",
                 hidden_size: int = 64, num_layers: int = 1, input_size: int = 16, dropout: float = 0.0,
                 extra_inputs: int = 0, weight_drop: float = 0.0) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)} (got {likelihood!r})")
        self.num_values, self.horizon, self.likelihood = num_values, horizon, likelihood
        # each step's D values (and `extra_inputs` features, such as the place in the season) -> input_size
        self.project = nn.Linear(num_values + extra_inputs, input_size)
        self.recurrent = Recurrent(cell, input_size, hidden_size, num_layers, dropout, weight_drop=weight_drop)
        self.recurrent.reset_parameters("auto", 1.0)
        if not self.recurrent.trainable:  # a fixed reservoir reads a fixed projection: only the head is fitted
            self.project.requires_grad_(False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, horizon * num_values * _PARAMETERS[likelihood])

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L, D) scaled contexts, (B,) lengths -> raw distribution parameters (B, H, D, P)."""
        _, state = self.recurrent(self.project(context), lengths=lengths)
        last = state[0][-1]  # the top layer's h after each context's last real step: (B, H)
        out = self.head(self.dropout(last))
        return out.view(len(context), self.horizon, self.num_values, -1)

    def distribution(self, raw: torch.Tensor) -> torch.distributions.Distribution:
        mean, scale = raw[..., 0], F.softplus(raw[..., 1]) + 1e-3
        if self.likelihood == "gaussian":
            return torch.distributions.Normal(mean, scale)
        return torch.distributions.StudentT(2.0 + F.softplus(raw[..., 2]), mean, scale)


def quantiles(distribution: torch.distributions.Distribution, levels: list[float]) -> np.ndarray:
    """(B, H, D, Q) quantiles of the predictive distribution (in scaled units)."""
    q = np.asarray(levels, dtype=np.float64)
    loc = distribution.loc.double().cpu().numpy()[..., None]
    scale = distribution.scale.double().cpu().numpy()[..., None]
    if isinstance(distribution, torch.distributions.Normal):
        from scipy.stats import norm
        return loc + scale * norm.ppf(q)
    from scipy.stats import t
    df = distribution.df.double().cpu().numpy()[..., None]
    return loc + scale * t.ppf(q, df)
