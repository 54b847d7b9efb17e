"""Echo state networks (Jaeger 2001; Jaeger & Haas 2004, "Harnessing Nonlinearity", Science 304):
the reservoir alternative to backpropagation through time.

A fixed, sparse, random recurrent network (the reservoir) is driven by the input; only a linear
readout from its states is learnt, in closed form by ridge regression. With leak rate a:

    x_t = (1 - a) x_{t-1} + a tanh(W_in [1; u_t] + W x_{t-1})        x: (N,) reservoir state
    y_t = W_out [1; u_t; x_t]                                         W_out = Y Z^T (Z Z^T + ridge I)^-1

W is scaled to a chosen spectral radius (below about 1 the reservoir forgets its start: the echo
state property). For generation the output is fed back as the next input (teacher forcing while
the readout is fitted, its own predictions when running free). Shapes: T steps, D inputs, N units.
NumPy only: nothing here needs autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UsageError


@dataclass(frozen=True)
class ReservoirConfig:
    units: int = 500  # reservoir size N
    spectral_radius: float = 0.95  # largest |eigenvalue| of W after scaling; > 0
    density: float = 0.02  # share of nonzero recurrent weights
    input_scale: float = 0.2  # input weights ~ U(-s, s)
    leak: float = 1.0  # leak rate a in (0, 1]
    ridge: float = 1e-7  # readout regularisation
    washout: int = 100  # first steps whose states are not used to fit the readout
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.spectral_radius > 0:
            raise UsageError(f"spectral radius must be > 0 (got {self.spectral_radius}); an echo state network "
                             "needs a recurrence (about 0.8-1.2 is usual)")
        if not 1 <= self.units <= 20_000:
            raise UsageError(f"units must be in 1..20000 (got {self.units})")
        if not 0 < self.density <= 1 or not 0 < self.leak <= 1 or not self.ridge >= 0 or self.washout < 0:
            raise UsageError("density and leak must be in (0, 1], ridge >= 0 and washout >= 0 "
                             f"(got {self.density}, {self.leak}, {self.ridge}, {self.washout})")


class EchoStateNetwork:
    """Fit a readout on a sequence (teacher forcing) and predict or run free from its end."""

    def __init__(self, config: ReservoirConfig, inputs: int = 1, outputs: int = 1) -> None:
        self.config = config
        rng = np.random.default_rng(config.seed)
        N = config.units
        W = rng.uniform(-1, 1, (N, N)) * (rng.random((N, N)) < config.density)
        radius = np.max(np.abs(np.linalg.eigvals(W))) if N > 1 else abs(W[0, 0])
        if radius == 0:  # too sparse to have any cycle: redraw densely
            W, radius = rng.uniform(-1, 1, (N, N)), None
            radius = np.max(np.abs(np.linalg.eigvals(W)))
        self.W = W * (config.spectral_radius / radius)  # (N, N)
        self.W_in = rng.uniform(-config.input_scale, config.input_scale, (N, 1 + inputs))  # bias column first
        self.W_out = np.zeros((outputs, 1 + inputs + N))
        self.state = np.zeros(N)

    def _step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        a = self.config.leak
        return (1 - a) * x + a * np.tanh(self.W_in @ np.concatenate([[1.0], u]) + self.W @ x)

    def run(self, inputs: np.ndarray, state: np.ndarray | None = None) -> np.ndarray:
        """Reservoir states (T, N) for inputs (T, D), from `state` (default: the current one)."""
        x = self.state if state is None else state
        states = np.empty((len(inputs), self.W.shape[0]))
        for t, u in enumerate(inputs):
            x = self._step(x, u)
            states[t] = x
        self.state = x
        return states

    def _features(self, inputs: np.ndarray, states: np.ndarray) -> np.ndarray:
        return np.concatenate([np.ones((len(inputs), 1)), inputs, states], axis=1)  # (T, 1 + D + N)

    def fit(self, inputs: np.ndarray, targets: np.ndarray) -> "EchoStateNetwork":
        """Ridge readout from the states driven by inputs (T, D) to targets (T, K), washout dropped."""
        states = self.run(inputs, np.zeros(self.W.shape[0]))
        w = self.config.washout
        Z, Y = self._features(inputs, states)[w:], targets[w:]
        gram = Z.T @ Z + self.config.ridge * np.eye(Z.shape[1])
        self.W_out = np.linalg.solve(gram, Z.T @ Y).T  # (K, 1 + D + N)
        return self

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs (T, K) for inputs (T, D), continuing from the current state."""
        states = self.run(inputs)
        return self._features(inputs, states) @ self.W_out.T

    def generate(self, first_input: np.ndarray, steps: int) -> np.ndarray:
        """Run free: each output is the next input (outputs == inputs). Returns (steps, D)."""
        u, out = first_input, np.empty((steps, len(first_input)))
        for t in range(steps):
            self.state = self._step(self.state, u)
            u = self._features(u[None], self.state[None])[0] @ self.W_out.T
            out[t] = u
        return out


def mackey_glass(length: int, tau: float = 17.0, dt: float = 0.1, sample_every: float = 1.0,
                 seed: int = 0, discard: int = 1000) -> np.ndarray:
    """The Mackey-Glass delay equation dx/dt = 0.2 x(t - tau) / (1 + x(t - tau)^10) - 0.1 x(t)
    (chaotic for tau = 17), integrated with Heun's method at dt and sampled every `sample_every`
    time units; the first `discard` samples (the transient) are dropped. Returns (length,)."""
    rng = np.random.default_rng(seed)
    lag, stride = int(round(tau / dt)), int(round(sample_every / dt))
    total = (length + discard) * stride
    x = np.empty(total + lag + 1)
    x[:lag + 1] = 1.2 + 0.1 * rng.standard_normal(lag + 1)  # a random constant-ish history

    def f(now: float, delayed: float) -> float:
        return 0.2 * delayed / (1 + delayed ** 10) - 0.1 * now

    for i in range(lag, lag + total):
        k1 = f(x[i], x[i - lag])
        guess = x[i] + dt * k1
        k2 = f(guess, x[i - lag + 1])
        x[i + 1] = x[i] + dt * (k1 + k2) / 2
    samples = x[lag + 1::stride]
    return samples[discard:discard + length]


class _RidgePath:
    """Ridge solutions targets ~ states @ W + b for any penalty from one eigendecomposition of the
    centred Gram matrix: with X^T X = V diag(lam) V^T, W(alpha) = V diag(1 / (lam + alpha)) V^T X^T Y.
    The bias is not penalised. states (N, F), targets (N, K)."""

    def __init__(self, states: np.ndarray, targets: np.ndarray) -> None:
        self.mean_x, self.mean_y = states.mean(axis=0), targets.mean(axis=0)
        self.X, self.Y = states - self.mean_x, targets - self.mean_y
        lam, self.V = np.linalg.eigh(self.X.T @ self.X)  # (F,), (F, F)
        self.lam = np.maximum(lam, 0.0)
        self.projected = self.V.T @ (self.X.T @ self.Y)  # (F, K)
        self.scale = max(float(self.lam.mean()), 1e-12)  # the penalties tried are multiples of this

    def solve(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        W = self.V @ (self.projected / (self.lam + alpha)[:, None])
        return W, self.mean_y - self.mean_x @ W


PENALTIES = np.logspace(-8, 4, 13)  # ridge penalties tried, as multiples of the mean eigenvalue


def ridge_readout(states: np.ndarray, targets: np.ndarray, fit_rows: np.ndarray | None = None,
                  check_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The linear readout targets ~ states @ W + b in closed form, for the estimators' echo state
    networks: states (N, F), targets (N, K) -> W (F, K), b (K,), the ridge penalty chosen, and
    residuals (M, K) of rows the readout that chose the penalty had not seen.

    Given boolean masks `fit_rows` and `check_rows` (rows of a later time, say, with the rows whose
    targets overlap theirs in neither), the penalty is the one whose readout fitted on `fit_rows`
    predicts `check_rows` best, and the residuals are theirs; the readout returned is then refitted
    on all rows (penalty scaled by the row counts). Otherwise the penalty is chosen by generalised
    cross-validation (Golub, Heath & Wahba 1979), GCV(alpha) = N RSS / (N - sum lam / (lam + alpha))^2,
    and the residuals are the exact leave-one-out ones, residual / (1 - leverage). Leave-one-out
    suits rows that are exchangeable; overlapping windows of one series are not (a window's target
    sits in its neighbours' contexts), which is why the forecaster checks on later windows instead."""
    X, Y = np.asarray(states, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    if fit_rows is not None and check_rows is not None and fit_rows.sum() >= 2 and check_rows.any():
        part = _RidgePath(X[fit_rows], Y[fit_rows])

        def check_residuals(alpha: float) -> np.ndarray:
            W, b = part.solve(alpha)
            return Y[check_rows] - X[check_rows] @ W - b
        errors = {alpha: check_residuals(alpha) for alpha in part.scale * PENALTIES}
        alpha = min(errors, key=lambda a: float((errors[a] ** 2).mean()))
        residuals = errors[alpha]
        alpha *= len(X) / fit_rows.sum()  # the same penalty per row on all of them
        return (*_RidgePath(X, Y).solve(alpha), float(alpha), residuals)
    path, N = _RidgePath(X, Y), len(X)
    XV = path.X @ path.V  # (N, F)
    best = None
    for alpha in path.scale * PENALTIES:
        residuals = path.Y - XV @ (path.projected / (path.lam + alpha)[:, None])
        freedom = float((path.lam / (path.lam + alpha)).sum())
        score = N * float((residuals ** 2).sum()) / max(N - freedom, 1e-9) ** 2
        if best is None or score < best[0]:
            best = (score, alpha, residuals)
    _, alpha, residuals = best
    leverage = 1.0 / N + (XV ** 2 / (path.lam + alpha)).sum(axis=1)  # (N,)
    return (*path.solve(alpha), float(alpha), residuals / np.maximum(1.0 - leverage, 1e-3)[:, None])
