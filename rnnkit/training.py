"""One Trainer for every head.

The trainer owns what every task shares: the optimizer and learning-rate schedule, gradient
clipping, when to stop (steps, epochs or a wall-clock budget), when to evaluate and checkpoint,
the progress bar, divergence detection, Ctrl-C, and exact resumption. What is specific to a task
(how batches are drawn, what the loss is, what carries over between batches) lives in a `Task`.
Under torchrun it also runs data-parallel (see `distributed`): the training step goes through
DistributedDataParallel, control-flow values are agreed on by all ranks, and only rank 0 prints
and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from . import checkpoint, distributed, logs, precision
from .config import TrainConfig
from .distributed import SINGLE, World
from .errors import UsageError
from .metrics_log import MetricsLog
from .tasks.base import Task

LOG = logs.get(__name__)


# A checkpoint at least this often (seconds of training), evaluation or not: a kill loses at most
# about a minute of work, whatever the budget.
CHECKPOINT_SECONDS = 60.0


class TrainingDiverged(Exception):
    """The loss became NaN/inf or exploded; the message says where the last good checkpoint is."""


class TrainingInterrupted(Exception):
    """Ctrl-C (or SIGTERM): a checkpoint was written before stopping."""


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    c = config
    if c.optimizer == "adam":
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    if c.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=c.lr, weight_decay=c.weight_decay)
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)


def learning_rate(config: TrainConfig, progress: float) -> float:
    """Learning rate at `progress` in [0, 1] of the run. Schedules are defined on progress, not
    steps, so the same schedule fits a step budget, an epoch budget or a wall-clock budget."""
    c, p = config, min(max(progress, 0.0), 1.0)
    if c.schedule == "constant":
        return c.lr
    if c.schedule == "step":
        return c.lr * c.step_gamma ** math.floor(p / c.step_every)
    if p < c.warmup:
        return c.lr * (p / c.warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * (p - c.warmup) / (1 - c.warmup)))
    return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * cosine)


@dataclass
class Progress:
    """Everything about where a run stands, saved in the checkpoint."""
    step: int = 0
    elapsed: float = 0.0  # seconds of training so far, across resumptions
    best_val: float | None = None
    best_step: int | None = None
    metrics: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    def __init__(self, model: nn.Module, task: Task, config: TrainConfig, run_dir: Path | None,
                 describe: Callable[[], dict[str, Any]], device: torch.device,
                 log: Callable[[str], None] | None = None, world: World = SINGLE, progress: bool = True) -> None:
        self.model = model
        self.show_progress = progress and world.is_main  # the bar on stderr (shown on a terminal)
        self.task = task
        self.config = config
        self.run_dir = run_dir  # None: keep no checkpoints (experiments, tests)
        self.describe = describe  # run metadata for rnnkit.json (configs, vocab, corpus)
        self.device = device
        self.optimizer = make_optimizer(config, model.parameters())
        # Mixed precision: the forward pass under autocast (cuDNN's RNN kernels then run in half
        # precision); fp16 also scales the loss so small gradients do not flush to zero.
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.autocast)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.autocast_dtype == torch.float16)
        self.progress = Progress()
        self.last_val: dict[str, float] = {}  # the latest validation metrics, for the progress bar
        self.reserve = 0.0  # seconds the last validation and checkpoint took (agreed by all ranks)
        self.best_weights: dict[str, torch.Tensor] | None = None  # runs without checkpoints: the best so far
        self.metrics_log = MetricsLog(run_dir if world.is_main else None, getattr(config, "tensorboard", None))
        self.on_step: list[Callable[[int, float], None]] = []  # called with (step, loss)
        self.on_evaluate: list[Callable[[int], None]] = []  # called with the step, after each validation
        self.stop_requested = False  # set by a callback: the run ends after the current step
        self.world = world  # this process's rank among the data-parallel workers (SINGLE: just us)
        if log is None:
            logs.console()
        self.log = (log or LOG.info) if world.is_main else (lambda line: None)
        if self.autocast_dtype == torch.bfloat16 and device.type == "cpu" and not precision.onednn_bf16_rnn():
            self.log("note: this CPU has no bf16 kernel for the recurrent layers; they run in float32 "
                     "(PyTorch's native kernel), the embedding and output layers in bf16")

    # ------------------------------------------------------------------ budget
    def total_steps(self) -> int | None:
        """Steps in the run when a step or epoch budget is set (the smaller), else None."""
        c = self.config
        budgets = []
        if c.max_steps is not None:
            budgets.append(c.max_steps)
        if c.epochs is not None:
            budgets.append(max(1, round(c.epochs * self.task.steps_per_epoch())))
        return min(budgets) if budgets else None

    def fraction_done(self) -> float:
        fractions = []
        total = self.total_steps()
        if total is not None:
            fractions.append(self.progress.step / total)
        if self.config.time is not None:
            # the last validation's duration is set aside, so the final one ends by the budget
            fractions.append((self.progress.elapsed + self.reserve) / self.config.time)
        return max(fractions)

    def out_of_patience(self) -> bool:
        """Early stopping: `patience` validations in a row without a new best. Every rank validates
        the same text with the same weights, so all ranks decide alike."""
        p, patience = self.progress, self.config.patience
        if patience is None or p.best_step is None:
            return False
        return sum(row["step"] > p.best_step for row in p.metrics) >= patience

    def _eval_due(self, last_eval_elapsed: float) -> bool:
        c = self.config
        if c.eval_every is not None:
            return self.progress.step % c.eval_every == 0
        total = self.total_steps()
        if total is not None:
            return self.progress.step % max(1, total // 10) == 0
        return self.progress.elapsed - last_eval_elapsed >= c.time / 8

    # ------------------------------------------------------------------ checkpoints
    def save(self, improved: bool) -> None:
        """Write a checkpoint. With several ranks every rank must call this at the same step: each
        rank's carried state and RNG state are gathered (stacked by rank) and rank 0 writes them."""
        if self.run_dir is None:
            return
        self.metrics_log.flush()
        per_rank = {**{f"task.{k}": v for k, v in self.task.resume_tensors().items()}, "rng.torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            per_rank["rng.cuda"] = torch.cuda.get_rng_state()
        if self.world.active:
            per_rank = {k: v.cpu() for k, v in distributed.gather(self.world, per_rank, self.device).items()}
            if not self.world.is_main:
                return
        opt_tensors, opt_plain = checkpoint.flatten_optimizer(self.optimizer.state_dict())
        resume = {**opt_tensors, **per_rank}
        weights = self.model.state_dict()
        meta = {**self.describe(), "step": self.progress.step, "elapsed": self.progress.elapsed,
                "world_size": self.world.size,
                "best_val": self.progress.best_val, "best_step": self.progress.best_step,
                "metrics": self.progress.metrics, "cursor": self.task.cursor(), "optimizer": opt_plain}
        checkpoint.save(self.run_dir, meta, {"model": weights, "best": weights if improved else None,
                                             "resume": resume})

    def restore(self, meta: dict[str, Any]) -> None:
        """Continue a saved run exactly: weights, optimizer moments, RNG, data cursor, carried state."""
        saved_world = int(meta.get("world_size", 1))
        if saved_world != self.world.size:
            raise UsageError(f"{self.run_dir} was trained by {saved_world} process(es) and this is "
                             f"{self.world.size}; resume with the same number "
                             f"({'torchrun --nproc-per-node ' + str(saved_world) + ' -m rnnkit' if saved_world > 1 else 'rnnkit'}"
                             " train --resume ...), since each process owns its share of the data")
        weights = checkpoint.load_tensors(self.run_dir, meta, "model")
        resume = checkpoint.load_tensors(self.run_dir, meta, "resume")
        try:
            self._restore(meta, weights, resume)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
            first = (str(e).splitlines() or [type(e).__name__])[0][:200]
            raise UsageError(f"checkpoint {self.run_dir} is corrupted: its saved state does not fit the run "
                             f"({first})") from None

    def _restore(self, meta: dict[str, Any], weights: dict[str, torch.Tensor], resume: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(weights)
        if self.world.active:  # per-rank tensors were saved stacked by rank: take ours
            # (cloned: set_rng_state reads a view's storage from its start and crashes on an offset view)
            resume = {k: v[self.world.rank].clone() if k.startswith(("task.", "rng.")) else v for k, v in resume.items()}
        optimizer_state = checkpoint.unflatten_optimizer(resume, meta["optimizer"])
        params = list(self.model.parameters())
        for pid, slots in optimizer_state["state"].items():
            for name, value in slots.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[pid].shape:
                    raise ValueError(f"optimizer {name} of parameter {pid} has shape {tuple(value.shape)}, "
                                     f"the parameter {tuple(params[pid].shape)}")
        _check_like(optimizer_state["param_groups"], self.optimizer.state_dict()["param_groups"], "optimizer settings")
        self.optimizer.load_state_dict(optimizer_state)
        torch.set_rng_state(resume["rng.torch"])
        if "rng.cuda" in resume and torch.cuda.is_available():
            torch.cuda.set_rng_state(resume["rng.cuda"])
        self.task.restore_cursor(meta["cursor"])
        if not self.task.index < self.task.steps_per_epoch():
            raise ValueError(f"the data cursor (batch {self.task.index}) is past the end of an epoch")
        self.task.restore_tensors({k[5:]: v.to(self.device) for k, v in resume.items() if k.startswith("task.")})
        self.progress = Progress(step=meta["step"], elapsed=meta["elapsed"], best_val=meta["best_val"],
                                 best_step=meta["best_step"], metrics=list(meta["metrics"]))
        self.metrics_log.keep_until(self.progress.step)

    # ------------------------------------------------------------------ the loop
    @precision.flush_denormals()  # gradients fading over long sequences pass through the slow denormals
    def fit(self) -> Progress:
        c, p = self.config, self.progress
        total = self.total_steps()
        bar_total = total if total is not None else round(c.time)
        diverge_at = self.task.max_sane_loss
        bar = tqdm(total=bar_total, initial=p.step if total is not None else int(p.elapsed),
                   unit="step" if total is not None else "s", file=sys.stderr, dynamic_ncols=True,
                   disable=None if self.show_progress else True, leave=False, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
        last_eval_elapsed = last_save_elapsed = p.elapsed
        window_start, window_units = time.perf_counter(), 0
        per_s = 0.0
        started = time.perf_counter() - p.elapsed
        self.model.train()
        step_model = distributed.wrap(self.model, self.world, self.device)  # DDP when several ranks
        stop = _StopRequests()
        try:
            while self.fraction_done() < 1.0 and not self.out_of_patience() and not self.stop_requested:
                if stop.requested:
                    raise KeyboardInterrupt
                lr = learning_rate(c, self.fraction_done())
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                with (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype
                      else contextlib.nullcontext()):
                    loss = self.task.training_loss(step_model)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)  # clip the true gradients (a no-op unless fp16)
                if c.clip > 0:
                    if c.clip_mode == "norm":
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.clip)
                    else:
                        torch.nn.utils.clip_grad_value_(self.model.parameters(), c.clip)
                value, elapsed = loss.item(), time.perf_counter() - started
                if self.world.active:  # every rank must make the same stop / evaluate / diverge decisions
                    value, elapsed, self.reserve = distributed.agree(self.world, [value, elapsed, self.reserve],
                                                                     self.device)
                if not math.isfinite(value) or value > diverge_at:
                    raise TrainingDiverged(self._divergence_message(value, lr))
                self.scaler.step(self.optimizer)  # skips the step if fp16 gradients overflowed
                self.scaler.update()
                p.step += 1
                p.elapsed = elapsed if self.world.active else time.perf_counter() - started
                window_units += self.task.units_per_step() * self.world.size
                now = time.perf_counter()
                per_s = window_units / max(now - window_start, 1e-9)
                if now - window_start >= 5.0:  # a sliding measure, not the run's average
                    window_start, window_units = now, 0
                val = f", val {self.task.format_metrics(self.last_val)}" if self.last_val else ""
                bar.set_postfix_str(f"step {p.step}, loss {value:.3f}{val}, "
                                    f"{per_s / 1000:.1f}k {self.task.units}/s", refresh=False)
                bar.update((p.step - bar.n) if total is not None else int(p.elapsed) - bar.n)
                finished = self.fraction_done() >= 1.0
                row = {"step": p.step, "elapsed": round(p.elapsed, 3), f"train_{self.task.loss_name}": value,
                       "lr": lr, f"{self.task.units}_per_s": round(per_s, 1)}
                if finished or self._eval_due(last_eval_elapsed):
                    evaluation_started = time.perf_counter()
                    self._evaluate_and_save(value, lr, per_s)
                    self.reserve = time.perf_counter() - evaluation_started
                    last_eval_elapsed = last_save_elapsed = p.elapsed
                    p.elapsed = time.perf_counter() - started
                    if self.world.active:  # the loop's condition must read the same on every rank
                        p.elapsed, self.reserve = distributed.agree(self.world, [p.elapsed, self.reserve], self.device)
                    row.update({f"val_{name}": v for name, v in self.last_val.items()})
                    window_start, window_units = time.perf_counter(), 0
                elif ((c.checkpoint_every is not None and p.step % c.checkpoint_every == 0)
                      or p.elapsed - last_save_elapsed >= CHECKPOINT_SECONDS):
                    self.save(improved=False)
                    last_save_elapsed = p.elapsed
                self.metrics_log.add(row)
                for callback in self.on_step:
                    callback(p.step, value)
        except KeyboardInterrupt:
            bar.close()
            p.elapsed = time.perf_counter() - started
            if self.world.active:  # a checkpoint needs every rank at the same step, which a signal does not give
                where = (f"the last checkpoint (step {checkpoint.read_meta(self.run_dir)['step']}) is in {self.run_dir}"
                         if self.run_dir is not None and checkpoint.is_run_dir(self.run_dir) else "no checkpoint was written")
                raise TrainingInterrupted(f"interrupted at step {p.step}; {where}") from None
            self.save(improved=False)
            if self.run_dir is None:
                raise TrainingInterrupted(f"interrupted at step {p.step} (this run keeps no checkpoints)") from None
            raise TrainingInterrupted(f"interrupted at step {p.step}; checkpoint saved in {self.run_dir}; "
                                      f"continue with `rnnkit train --resume {self.run_dir}`") from None
        finally:
            stop.restore()
            self.metrics_log.flush()
            # An exception's traceback keeps this frame's locals alive: drop the DDP wrapper here, so it
            # is not destroyed after the process group is left (gloo then aborts the process now and then)
            step_model = None  # noqa: F841
        bar.close()
        self.metrics_log.flush()
        if self.run_dir is not None and self.world.is_main and checkpoint.is_run_dir(self.run_dir):
            checkpoint.update_meta(self.run_dir, elapsed=p.elapsed)  # the time includes the last validation
        return p

    def _evaluate_and_save(self, train_loss: float, lr: float, per_s: float) -> None:
        p, task = self.progress, self.task
        metrics = self.last_val = task.evaluate(self.model)
        self.model.train()
        val = metrics[task.loss_name]
        improved = math.isfinite(val) and (p.best_val is None or val < p.best_val)
        if improved:
            p.best_val, p.best_step = val, p.step
            if self.run_dir is None:  # no checkpoint holds the best weights: keep a copy
                self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        p.metrics.append({"step": p.step, "elapsed": round(p.elapsed, 3), f"train_{task.loss_name}": train_loss,
                          **{f"val_{name}": value for name, value in metrics.items()}, "lr": lr,
                          f"{task.units}_per_s": round(per_s, 1)})
        self.log(f"step {p.step:>6} | {p.elapsed:7.1f}s | train {train_loss:.4f} | val "
                 f"{task.format_metrics(metrics)}{' *' if improved else ''} | lr {lr:.2e} | "
                 f"{per_s / 1000:.1f}k {task.units}/s")
        for callback in self.on_evaluate:
            callback(p.step)
        self.model.train()
        self.save(improved)

    def _divergence_message(self, value: float, lr: float) -> str:
        what = "NaN" if math.isnan(value) else "infinite" if math.isinf(value) else f"{value:.1f} nats (exploding)"
        where = (f"the last good checkpoint (step {checkpoint.read_meta(self.run_dir)['step']}) is in {self.run_dir}"
                 if self.run_dir is not None and checkpoint.is_run_dir(self.run_dir)
                 else "no checkpoint had been written yet")
        return (f"training diverged at step {self.progress.step + 1}: loss is {what} at learning rate {lr:.2e}; "
                f"{where}; try a lower --lr or a tighter --clip")


def _check_like(saved: Any, fresh: Any, where: str) -> None:
    """saved has the structure and value types of fresh (lists and tuples alike, numbers finite):
    an optimizer's settings read back from JSON, against those of the optimizer the run builds."""
    if isinstance(fresh, dict):
        if not isinstance(saved, dict) or set(saved) != set(fresh):
            raise ValueError(f"{where} do not have the expected fields")
        for key in fresh:
            if key != "params":
                _check_like(saved[key], fresh[key], f"{where}.{key}")
    elif isinstance(fresh, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(fresh):
            raise ValueError(f"{where} has the wrong length")
        for a, b in zip(saved, fresh):
            _check_like(a, b, where)
    elif isinstance(fresh, bool) or fresh is None or isinstance(fresh, str):
        if type(saved) is not type(fresh):
            raise ValueError(f"{where} has the wrong type")
    elif isinstance(fresh, (int, float)):
        if isinstance(saved, bool) or not isinstance(saved, (int, float)) or not math.isfinite(saved):
            raise ValueError(f"{where} must be a finite number")


class _StopRequests:
    """Ctrl-C and SIGTERM during training only raise a flag, checked between steps, so a
    checkpoint is never taken halfway through an optimizer step (when the weights, the data
    cursor and the carried state would disagree). A second signal stops at once; checkpoints
    are atomic, so that is safe too."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
