"""Batch-normalised LSTM (Cooijmans et al. 2016, "Recurrent Batch Normalization", arXiv 1603.09025, §4):

    gates = BN_t(W_hh h; γ_hh) + BN_t(W_ih x; γ_ih) + b         no shift inside: b does that
    c'    = σ(f) c + σ(i) tanh(g)
    h'    = σ(o) tanh(BN_t(c'; γ_c, β_c))

BN_t normalises each feature over the batch with statistics of its own for every time step
t < MAX_STEPS (the paper's rule: early steps differ from later ones, as the first and the last
pixels of an image do; later steps share the last step's statistics). γ starts at 0.1 (the paper,
§5: with unit gains tanh saturates and gradients vanish).

In training each step uses its batch's statistics and updates that step's running averages (the
plain mean of its first batches, then an exponential average); evaluation and sampling use the
running averages, so a row's result never depends on the rest of its batch. `population_statistics`
replaces them by plain means over many batches with the weights as they are (the authors'
population statistics, §4): an exponential average over the last few batches is too rough where a
feature's variance comes from a handful of rows (the corner pixels of images, which only some
images reach), and read in pixel order a Fashion-MNIST BN-LSTM went from 0.18 test accuracy on the
running averages to 0.36 on population statistics (docs/experiments.md). A step that fewer
than MIN_BATCHES training batches reached is evaluated with the statistics of the last step
trained instead: with a state carried along a text, each early step is reached once per epoch
while the last one is reached at every training step. Checkpoints hold the rows of the steps seen
in training only.

Each row's step count is part of the state (``t``, (B, H), every column the same), so it is saved,
carried across truncated-BPTT chunks and restored with h and c: a carried state continues at the
right step, and a padded row stops counting at its end. In training the statistics are taken over
the rows that still have a real step (`live`), so padding never enters them.

A training chunk whose rows are all real and at the same step runs as one autograd node on C
kernels (`recurrent_sequence`, `batchnorm_sequence`); everything else, and evaluation, runs
`recurrent_step`, the reference the kernels are tested against.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..native.calls import usable
from .base import State
from .batchnorm_sequence import BatchNormLSTMSequence
from .standard import LSTMCell

MAX_STEPS = 1024  # time steps with statistics of their own (784 pixels fit); later ones share the last
INITIAL_GAIN = 0.1
MOMENTUM = 0.1  # weight of a new batch in a step's running averages once it has 1 / MOMENTUM batches
MIN_BATCHES = 10  # batches a step needs before evaluation trusts its own statistics
EPS = 1e-5
STATISTICS = ("running_mean_ih", "running_var_ih", "running_mean_hh", "running_var_hh", "running_mean_c",
              "running_var_c", "batches")  # one row per step


class BatchNormLSTMCell(LSTMCell):
    fused_mode = None
    state_names = ("h", "c", "t")
    counter_states = ("t",)  # a fresh start keeps the step: rows at one step share their statistics (and kernels)
    reads_live = True  # `Recurrent` passes which rows have a real step: batch statistics skip padding
    zoneout_ready = False  # keeping a unit's old value at random would also freeze the step count

    def add_parameters(self) -> None:
        H = self.hidden_size
        self.bn_ih_gain = nn.Parameter(torch.empty(4 * H))  # γ_ih
        self.bn_hh_gain = nn.Parameter(torch.empty(4 * H))  # γ_hh
        self.bn_c_gain = nn.Parameter(torch.empty(H))  # γ_c
        self.bn_c_bias = nn.Parameter(torch.empty(H))  # β_c
        for name, width in (("ih", 4 * H), ("hh", 4 * H), ("c", H)):
            self.register_buffer(f"running_mean_{name}", torch.zeros(MAX_STEPS, width))
            self.register_buffer(f"running_var_{name}", torch.ones(MAX_STEPS, width))
        self.register_buffer("batches", torch.zeros(MAX_STEPS, dtype=torch.long))  # training batches per step
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))  # steps with running statistics
        self.population_start: torch.Tensor | None = None  # `batches` when population statistics began

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        """Only the rows of the steps seen in training: a model trained on 100-step sequences saves
        100 rows of statistics, not MAX_STEPS."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        seen = max(int(self.steps_seen), 1)
        for name in STATISTICS:
            destination[prefix + name] = destination[prefix + name][:seen].clone()

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        """Rows of n <= MAX_STEPS steps fill the first n rows (the rest start fresh); any other shape
        is left to PyTorch's own size check, which reports it."""
        for name in STATISTICS:
            incoming, mine = state_dict.get(prefix + name), getattr(self, name)
            if (isinstance(incoming, torch.Tensor) and incoming.dim() == mine.dim() and incoming.dtype == mine.dtype
                    and 1 <= incoming.shape[0] <= MAX_STEPS and incoming.shape[1:] == mine.shape[1:]):
                full = torch.ones_like(mine) if name.startswith("running_var") else torch.zeros_like(mine)
                full[:incoming.shape[0]] = incoming
                state_dict[prefix + name] = full
        super()._load_from_state_dict(state_dict, prefix, *args)

    def reset_parameters(self, scheme: str = "auto", forget_bias: float = 1.0) -> None:
        super().reset_parameters(scheme, forget_bias)
        with torch.no_grad():
            for gain in (self.bn_ih_gain, self.bn_hh_gain, self.bn_c_gain):
                gain.fill_(INITIAL_GAIN)
            self.bn_c_bias.zero_()

    def input_projection(self, x: torch.Tensor) -> torch.Tensor:
        """W_ih x alone: it is normalised with its step's statistics inside `recurrent_step`."""
        return F.linear(x, self.weight_ih)

    def recurrent_step(self, xp: torch.Tensor, state: State, record: dict | None = None,
                       live: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """live (B, 1) bool or None (all rows real): the rows whose statistics count in training."""
        h, c, t = state
        step = t[:, 0].long().clamp(0, MAX_STEPS - 1)  # (B,): each row's step
        rows = None if live is None or bool(live.all()) else live[:, 0]
        k, momentum = self._training_step(step, rows)
        index = step if k is not None else self._evaluation_rows(step)
        gates = (self._normalise(xp, "ih", self.bn_ih_gain, None, index, rows, k, momentum)
                 + self._normalise(h @ self.weight_hh.t(), "hh", self.bn_hh_gain, None, index, rows, k, momentum)
                 + self.bias_ih + self.bias_hh)
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(self._normalise(c, "c", self.bn_c_gain, self.bn_c_bias, index, rows, k, momentum))
        if record is not None:
            record.update(input_gate=i, forget_gate=f, candidate=g, output_gate=o)
        return h, (h, c, (t + 1).clamp(max=MAX_STEPS))

    def recurrent_sequence(self, projections: torch.Tensor, state: State) -> tuple[torch.Tensor, State] | None:
        """A training chunk, projections (T, B, 4H), on the native kernels; None where they do not apply
        (evaluation, a single row, rows at different steps). A chunk at or past MAX_STEPS runs here too:
        training normalises with each step's batch statistics whatever its index, and only the running
        averages differ (the steps from MAX_STEPS - 1 on all update its row, one after another)."""
        h, c, t = state
        T, B = projections.shape[:2]
        if not self.training or B < 2 or not usable(projections):
            return None
        first = int(t[0, 0])
        if not bool((t == first).all()):
            return None
        out, h, c, mean_ih, var_ih, mean_hh, var_hh, mean_c, var_c = BatchNormLSTMSequence.apply(
            projections, h, c, self.weight_hh, self.bn_ih_gain, self.bias_ih + self.bias_hh, self.bn_hh_gain,
            self.bn_c_gain, self.bn_c_bias)
        self._update_running(first, B, {"ih": (mean_ih, var_ih), "hh": (mean_hh, var_hh), "c": (mean_c, var_c)})
        return out, (h, c, (t + T).clamp(max=MAX_STEPS))

    @torch.no_grad()
    def _update_running(self, first: int, batch: int, statistics: dict) -> None:
        """What `_training_step` and F.batch_norm do step by step, for the T steps of a chunk starting
        at step `first` at once; statistics: name -> (means, biased variances), (T, W) each. Each step
        counts its batch, then moves its row's running averages towards its batch statistics (the
        variance unbiased, as PyTorch keeps it). Steps before the last row (MAX_STEPS - 1) each have
        a row of their own: one vectorised update. The rest all update the last row in turn, r
        exponential averages in a row, which is one weighted sum: with m_j the j-th update's
        momentum, the old value keeps prod_j (1 - m_j) and the j-th statistics get m_j prod_{l>j} (1 - m_l)."""
        T = next(iter(statistics.values()))[0].shape[0]
        last = MAX_STEPS - 1
        own = max(0, min(T, last - first))  # steps first .. first + own - 1 have rows of their own
        self.steps_seen.clamp_(min=min(first + T, MAX_STEPS))
        steps = torch.arange(first, first + own, device=self.batches.device)
        self.batches[steps] += 1
        momentum = self._momentum(self.batches[steps].double(), steps)[:, None]  # (own, 1)
        repeats = T - own  # updates of the last row, one after another
        counts = int(self.batches[last]) + torch.arange(1, repeats + 1, dtype=torch.float64, device=steps.device)
        self.batches[last] += repeats
        m_last = self._momentum(counts, last)  # (repeats,)
        # kept[j] = prod_{l >= j} (1 - m_l); kept[repeats] = 1
        kept = torch.cat([torch.flip(torch.cumprod(torch.flip(1 - m_last, [0]), 0), [0]), m_last.new_ones(1)])
        weights = (m_last * kept[1:])[:, None]  # (repeats, 1): each update's share of the final value
        for name, (mean, var) in statistics.items():
            unbiased = var.detach() * (batch / (batch - 1))
            for buffer, value in ((getattr(self, f"running_mean_{name}"), mean.detach()),
                                  (getattr(self, f"running_var_{name}"), unbiased)):
                m = momentum.to(buffer.dtype)
                buffer[steps] = (1 - m) * buffer[steps] + m * value[:own].to(buffer.dtype)
                if repeats:
                    tail = (weights * value[own:].double()).sum(0)
                    buffer[last] = (kept[0] * buffer[last].double() + tail).to(buffer.dtype)

    def _training_step(self, step: torch.Tensor, rows: torch.Tensor | None) -> tuple[int | None, float]:
        """In training, the step k whose statistics this batch uses and updates, and the weight of
        this batch in k's running averages; (None, 0) in evaluation, or when fewer than two rows
        are real (no batch statistics): then the running statistics normalise."""
        if not self.training:
            return None, 0.0
        real = step if rows is None else step[rows]
        if real.numel() < 2:
            return None, 0.0
        k = int(real.max())
        self.steps_seen.clamp_(min=k + 1)
        self.batches[k] += 1
        return k, float(self._momentum(self.batches[k].double(), k))

    def _momentum(self, counts: torch.Tensor, steps: torch.Tensor | int) -> torch.Tensor:
        """The weight of the batch that brought each step's count to `counts` (float64; `steps`: the
        step of each count, or one step for all) in its running averages: the plain mean over a
        step's first 1 / MOMENTUM batches, then an exponential average; while population statistics
        are counted, the plain mean over the batches of that count (the first of them replaces what
        the step had)."""
        if self.population_start is None:
            return counts.reciprocal().clamp(min=MOMENTUM)
        return (counts - self.population_start[steps].double()).reciprocal()

    def _evaluation_rows(self, step: torch.Tensor) -> torch.Tensor:
        """(B,) the row of statistics each step uses: its own once MIN_BATCHES batches reached it,
        else the last trained step's (also for steps past it)."""
        last = max(int(self.steps_seen) - 1, 0)
        index = step.clamp(max=last)
        return torch.where(self.batches[index] >= MIN_BATCHES, index, torch.full_like(index, last))

    def _normalise(self, z: torch.Tensor, name: str, gain: torch.Tensor, shift: torch.Tensor | None,
                   index: torch.Tensor, rows: torch.Tensor | None, k: int | None, momentum: float) -> torch.Tensor:
        """γ (z - mean) / sqrt(var + eps) + β for z (B, W): in training the statistics of the batch's
        real rows (PyTorch's batch_norm also updates step k's running averages), else the running
        statistics at each row's `index`. Rows that are not real get 0 (their outputs are discarded)."""
        means, variances = getattr(self, f"running_mean_{name}"), getattr(self, f"running_var_{name}")
        if k is not None:
            if rows is None:
                return F.batch_norm(z, means[k], variances[k], gain, shift, True, momentum, EPS)
            out = z.new_zeros(z.shape)
            out[rows] = F.batch_norm(z[rows], means[k], variances[k], gain, shift, True, momentum, EPS)
            return out
        # the usual case: every row at the same step (not while tracing for export: the step must stay
        # an input of the traced graph, not the example's step fixed as a constant)
        if not torch.jit.is_tracing() and bool((index == index[0]).all()):
            j = int(index[0])
            return F.batch_norm(z, means[j], variances[j], gain, shift, False, 0.0, EPS)
        mean, var = means[index].to(z.dtype), variances[index].to(z.dtype)  # (B, W)
        normalised = (z - mean) * torch.rsqrt(var + EPS) * gain
        return normalised if shift is None else normalised + shift


@contextmanager
def population_statistics(model: nn.Module) -> Iterator[bool]:
    """Recompute the statistics of `model`'s BN-LSTM cells from the batches run through it inside
    the block: each step that a batch reaches gets the plain mean of those batches' statistics in
    place of its running averages (the weights are not touched). Inside, only those cells are in
    training mode (no dropout or weight drop elsewhere: statistics of the network as evaluated) and
    no gradient is kept. Yields whether `model` has such a cell, so a caller can skip its batches.
    Steps that no batch reaches keep their running averages; each step's batch count grows by the
    batches counted, so the evaluation rule of MIN_BATCHES keeps counting every batch ever seen."""
    cells = [m for m in model.modules() if isinstance(m, BatchNormLSTMCell)]
    if not cells:
        yield False
        return
    was_training = model.training
    model.eval()
    for cell in cells:
        cell.train()
        cell.population_start = cell.batches.clone()
    try:
        with torch.no_grad():
            yield True
    finally:
        for cell in cells:
            cell.population_start = None
        model.train(was_training)
