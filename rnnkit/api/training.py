"""Training a character-level language model: `rnnkit.train(...)`.

Three stages: prepare (check the run directory, find the vocabulary, encode the text into the
run's token file, on rank 0 only), or resume (read the run's description back and check it),
then run (the one Trainer on a LanguageModelTask; the test split scored once at the end).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import checkpoint, distributed, logs
from ..config import ModelConfig, TrainConfig, from_dict, split_options, to_dict
from ..data import Vocabulary, corpus_path, scan_vocabulary
from ..data.vocab import END, vocabulary_from_json
from ..data import documents, subwords
from ..data.corpus import text_files
from ..errors import UsageError
from ..models.language_model import LanguageModel
from ..tasks.documents import DocumentTask
from ..tensorboard import check_log_dir
from ..tasks.language_model import LanguageModelTask
from ..schema import check_language_model
from ..sampling import SamplingConfig, generate_tokens, until_end
from ..training import Trainer
from ..version import __version__
from . import finetune
from .prepare import DEFAULT_TIME, check_sizes, corpus_identity, prepare_corpus, source_name, vocab_kind
from .model import TOKENS_FILE, Model, load, read_vocabulary, resolve_device

LOG = logs.get(__name__)
# Settings that may change when a run is resumed: how long to go on, and where to run.
RESUMABLE_OVERRIDES = {"max_steps", "epochs", "time", "device", "autocast"}
BUDGETS = {"max_steps", "epochs", "time"}
SAMPLE_CHARS = 200  # --sample-every: characters per sample in the log
# Model defaults for long time budgets, chosen by measurement (docs/performance.md, bench/sweep.py):
# on tiny Shakespeare at --time 600 the 2 x 256 default overfits (val 1.506 nats/char) where
# 2 x 384 with dropout 0.2 reaches 1.443; at --time 130 the small model is best. Applied to
# --time budgets of at least LONG_BUDGET seconds (also the default budget), for settings the
# user did not give.
LONG_BUDGET = 600.0
LONG_BUDGET_MODEL = {"hidden_size": 384, "dropout": 0.2}
# ... but dropout 0.1 for the parallel-scan cells: at 600 s their residual stacks with feed-forward
# blocks and AdamW measured 1.4584 (minGRU) and 1.4745 (minLSTM) with 0.1 against 1.4947 and 1.5110
# with 0.2, whose training loss stayed at the validation loss (docs/language-models.md).
LONG_BUDGET_DROPOUT = {"mingru": 0.1, "minlstm": 0.1}
# ... and on the CPU with rnnkit's C kernels the layer-normalised LSTM (Ba et al. 2016): at 600 s it
# measured better than the LSTM on tiny Shakespeare and on the Python corpus (docs/language-models.md).
# Not on a GPU, where nn.LSTM has cuDNN and the LN-LSTM does not, nor under --autocast or --zoneout,
# which take it off the kernels.
LONG_BUDGET_CPU_CELL = "lnlstm"
# With it, AdamW's decoupled weight decay (Loshchilov & Hutter 2019) as the regulariser beside dropout:
# measured with the LN-LSTM at 600 s on tiny Shakespeare and the Python corpus (docs/language-models.md).
# Only where neither --optimizer nor --weight-decay is given.
LONG_BUDGET_CPU_TRAIN = {"optimizer": "adamw", "weight_decay": 0.1}
# ... 2 x 512 rather than 2 x 384 on the newer, faster CPUs that the AMX flag marks (Intel Sapphire
# Rapids and later): there the 600 s LN-LSTM default made 3,900 steps against 2,400-2,700 on the AMD
# EPYCs measured, and 2 x 512 reached 1.394 and 1.391 against 1.401 and 1.397 for 2 x 384; on an EPYC
# 2 x 512 made 1,527 steps and lost (docs/language-models.md). The flag is read, not timed, so the
# defaults are the same on every run on a machine.
LONG_BUDGET_FAST_CPU_HIDDEN = 512


def long_budget_cpu_defaults(model_options: dict[str, Any], train_options: dict[str, Any],
                             train_config: TrainConfig, device: torch.device, size_open: bool) -> tuple[dict, dict]:
    """({"cell": LONG_BUDGET_CPU_CELL} and the width on a fast CPU, its training settings the user
    left open) where a long --time budget should use the LN-LSTM, else ({}, {}); size_open: the user
    gave no --hidden-size."""
    from ..native import library
    from ..precision import cpu_bf16_matrix_units
    if ("cell" in model_options or device.type != "cpu" or train_config.autocast != "off"
            or model_options.get("zoneout") or library() is None):
        return {}, {}
    given = {"optimizer", "weight_decay"} & set(train_options)
    model = {"cell": LONG_BUDGET_CPU_CELL}
    if size_open and cpu_bf16_matrix_units():
        model["hidden_size"] = LONG_BUDGET_FAST_CPU_HIDDEN
    return model, ({} if given else dict(LONG_BUDGET_CPU_TRAIN))


# On a CPU with bf16 matrix units (Intel AMX), bf16 autocast runs an LSTM's training step 1.8-2.1x
# faster than float32 (2 x 256 to 2 x 1024, measured), which at a short --time budget buys a wider
# model: on tiny Shakespeare at --time 130, 2 x 384 with dropout 0.1 under bf16 reached 1.435
# nats/char where the float32 2 x 256 default reached 1.456 (docs/language-models.md). Applied to
# --time budgets under LONG_BUDGET where the user chose none of the model's cell, size, dropout or
# precision. Elsewhere nothing changes: with AVX-512 bf16 but no AMX, bf16 at 130 s measured at
# most 0.008 better than float32, and a bf16 2 x 384 was worse there (1.498, fewer steps).
SHORT_BUDGET_BF16 = {"autocast": "bf16", "hidden_size": 384, "dropout": 0.1}


def short_budget_bf16_defaults(model_options: dict[str, Any], train_options: dict[str, Any],
                               device: torch.device) -> dict[str, Any]:
    """SHORT_BUDGET_BF16 where a short --time budget trains the default model on a CPU with bf16
    matrix units, else {}."""
    from ..precision import cpu_bf16_matrix_units
    budget = train_options.get("time") or 0
    if (device.type != "cpu" or not 0 < budget < LONG_BUDGET or {"max_steps", "epochs", "autocast"} & set(train_options)
            or {"cell", "hidden_size", "dropout", "zoneout", "weight_drop"} & set(model_options)):
        return {}
    return dict(SHORT_BUDGET_BF16) if cpu_bf16_matrix_units() else {}


def train(text_file: str | os.PathLike | list[str | os.PathLike] | None = None, *, corpus: str | None = None,
          val_file: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
          resume: str | os.PathLike | None = None, raw_bytes: bool = False,
          init_from: str | os.PathLike | None = None, log: Callable[[str], None] | None = None, progress: bool = True,
          on_step: Callable[[int, float], None] | None = None, **options: Any) -> "Model":
    """Train a character-level language model and return it (best weights).

    text_file or corpus ("shakespeare", "python") names the text; text_file may be a list of files,
    directories (their files) and glob patterns, joined into one text with a blank line between
    files (the list is saved in the run); val_file, if given, is the
    validation text (then all of text_file trains); options are the fields of ModelConfig and
    TrainConfig (cell, hidden_size, num_layers, lr, time, max_steps, ...).
    resume continues the run in that directory (only max_steps/epochs/time/device/autocast may change).
    init_from starts a new run from a trained model (fine-tuning: its architecture, its weights
    for every symbol it knew; see `finetune`).
    Started by torchrun with several processes, it trains data-parallel (see `distributed`):
    batch_size is then per process, and only rank 0 prints and writes the run directory.
    """
    if log is None:
        logs.console()  # a plain script: print on stderr, as before logging was configured
    say = log or LOG.info
    settings = {"on_step": on_step, "progress": progress}
    if text_file is not None and corpus is not None:
        raise UsageError("give either a text file or --corpus, not both")
    files = None if text_file is None else text_files(
        list(text_file) if isinstance(text_file, (list, tuple)) else [text_file])
    source = [corpus_path(corpus)] if corpus is not None else files
    if resume is not None:
        if val_file is not None or init_from is not None:
            raise UsageError(f"--resume continues a run as it was; drop {'--val-file' if val_file else '--init-from'}")
        return _resume(Path(resume), source, options, say, settings)
    if not source:
        raise UsageError("give a text file to train on (or --corpus shakespeare|python)")

    model_options, train_options = split_options(options)
    reads = vocab_kind(raw_bytes, train_options.get("tokens", "char"))
    base = finetune.load_base(init_from, reads, model_options) if init_from is not None else None
    if base is not None:
        model_options = finetune.architecture(base, model_options)
    default_budget = not {"max_steps", "epochs", "time"} & set(train_options)
    if default_budget:
        train_options["time"] = DEFAULT_TIME
    time_only = ((train_options.get("time") or 0) >= LONG_BUDGET and not {"max_steps", "epochs"} & set(train_options)
                 and base is None)
    long_model = {**LONG_BUDGET_MODEL,
                  "dropout": LONG_BUDGET_DROPOUT.get(model_options.get("cell"), LONG_BUDGET_MODEL["dropout"])}
    long_budget = {k: v for k, v in long_model.items() if k not in model_options} if time_only else {}
    model_options.update(long_budget)
    train_config = TrainConfig(**train_options)
    ModelConfig(vocab_size=1, **model_options)  # validate flags before reading a large file
    if train_config.tensorboard is not None:
        check_log_dir(train_config.tensorboard)
    device, world = _join(train_config)
    if long_budget:
        model, training = long_budget_cpu_defaults(model_options, train_options, train_config, device,
                                                   size_open="hidden_size" in long_budget)
        long_budget.update(model | training)
        model_options.update(model)
        train_config = dataclasses.replace(train_config, **training)
    short_budget = short_budget_bf16_defaults(model_options, train_options, device) if base is None else {}
    if short_budget:
        model_options.update({k: v for k, v in short_budget.items() if k != "autocast"})
        train_config = dataclasses.replace(train_config, autocast=short_budget["autocast"])
    if world.active and train_config.documents is not None:
        raise UsageError("--documents does not train data-parallel yet; run it in one process (without torchrun)")
    if not world.is_main:  # rank 0 reads and encodes the corpus; the others take its results
        say = lambda line: None  # noqa: E731
    prepared = (prepare_corpus(source, val_file, out, raw_bytes, train_config, world, say, default_budget,
                                base.vocab if base is not None else None) if world.is_main else None)
    run_dir, vocab_json, corpus_info = distributed.share(world, prepared)
    if long_budget:  # said once the input is known to be good, so an error stays one line
        say(f"--time {train_options['time']:g} >= {LONG_BUDGET:g} s: using the long-budget defaults "
            + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in long_budget.items()))
    if short_budget:
        say(f"--time {train_options['time']:g} on a CPU with bf16 matrix units (AMX): using "
            + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in short_budget.items())
            + " (--autocast off keeps float32 and the 2 x 256 model)")
    vocab = vocabulary_from_json(vocab_json)
    model_config = ModelConfig(vocab_size=len(vocab), **model_options)
    torch.manual_seed(train_config.seed)
    model = LanguageModel(model_config)
    origin = finetune.transfer(base, model, vocab) if base is not None else None
    if origin is not None:
        new = origin["new_symbols"]
        say(f"starting from {origin['run']} (step {origin['step']}): {origin['shared_symbols']} of {len(vocab)} "
            f"symbols known" + (f"; new, initialised fresh: {' '.join(new[:20])}{' ...' if len(new) > 20 else ''}"
                                if new else ""))
    return _run(Path(run_dir), model.to(device), vocab, corpus_info, train_config, device, say, settings, meta=None,
                world=world, init_from=origin)


def _join(train_config: TrainConfig) -> tuple[torch.device, distributed.World]:
    """The device, and the data-parallel world when torchrun started us (one GPU per local rank)."""
    device = resolve_device(train_config.device)
    if train_config.autocast == "fp16" and device.type != "cuda":
        raise UsageError("--autocast fp16 needs a CUDA GPU (on CPU use --autocast bf16 or off)")
    world = distributed.join(device.type)
    if world.active and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    return device, world


def _resume(run_dir: Path, source: list[Path] | None, options: dict[str, Any], say, settings: dict) -> "Model":
    if run_dir.is_dir() and not checkpoint.is_run_dir(run_dir) and (run_dir / TOKENS_FILE).exists():
        raise UsageError(f"{run_dir} stopped before its first checkpoint was written, so there is nothing to "
                         f"resume; start it again with `rnnkit train FILE --out {run_dir}`")
    meta = checkpoint.read_meta(run_dir)
    not_allowed = sorted(set(options) - RESUMABLE_OVERRIDES)
    if not_allowed:
        flags = ", ".join("--" + k.replace("_", "-") for k in not_allowed)
        raise UsageError(f"--resume continues a run with its saved settings; drop {flags} "
                         "(only --max-steps, --epochs, --time, --device and --autocast may change)")
    check_language_model(meta, run_dir, resumable=True)
    what = f"checkpoint {run_dir}"
    corpus_info, vocab = meta["corpus"], read_vocabulary(meta["vocab"], what)
    model_config = from_dict(ModelConfig, meta["model_config"], what)
    saved = dict(meta["train_config"])
    from_dict(TrainConfig, saved, what)  # the saved settings must be sane before flags change them
    if BUDGETS & set(options):  # a new budget replaces the old one whole: --time extends a --max-steps run
        saved.update({k: None for k in BUDGETS})
    saved.update(options)
    train_config = from_dict(TrainConfig, saved)
    device, world = _join(train_config)
    if world.active and train_config.documents is not None:
        raise UsageError("--documents does not train data-parallel yet; resume it in one process (without torchrun)")
    if not world.is_main:
        say = lambda line: None  # noqa: E731
    if source is not None and world.is_main:
        sha = corpus_identity(source, vocab.kind)[0]
        if sha != corpus_info["sha256"]:
            differs = (vocab.kind in ("chars", "bytes") and scan_vocabulary(source, vocab.kind)[0].symbols
                       != tuple(s for s in vocab.symbols if s != END[vocab.kind]))
            raise UsageError(f"{source_name(source)} is not the corpus this run was trained on ({corpus_info['source']}"
                             f"{', and its vocabulary differs' if differs else ''}); resume with the same file, or "
                             f"leave the file out to reuse the run's encoded copy")
    if corpus_info.get("documents") is None:  # a documents run's batches are whole documents, of any number
        check_sizes(f"the corpus of {run_dir}", corpus_info["splits"], train_config, world.size)
    tokens_path = run_dir / corpus_info["tokens_file"]
    if tokens_path.is_symlink() or not tokens_path.is_file() or tokens_path.stat().st_size != corpus_info["num_tokens"] * vocab.token_dtype.itemsize:
        raise UsageError(f"checkpoint {run_dir} is incomplete: its encoded corpus {tokens_path} is missing "
                         "or truncated")
    model = LanguageModel(model_config).to(device)
    return _run(run_dir, model, vocab, corpus_info, train_config, device, say, settings, meta=meta, world=world,
                init_from=meta.get("init_from"))


def _sampler(model: LanguageModel, vocab: Vocabulary, every: int, device: torch.device, say) -> Callable[[int], None]:
    """A validation callback that logs a short sample when `every` steps have passed since the last."""
    last = 0

    def log_sample(step: int) -> None:
        nonlocal last
        if step - last >= every:
            last = step
            tokens = generate_tokens(model, [], vocab.start_id, SamplingConfig(length=SAMPLE_CHARS, temperature=0.8, seed=step),
                                     device=device, stop=vocab.end_id)
            say(f"sample at step {step}: {vocab.decode(until_end(tokens[0].tolist(), vocab.end_id))!r}")
    return log_sample


def _task(tokens: np.ndarray, vocab: Vocabulary, corpus_info: dict[str, Any], train_config: TrainConfig,
          device: torch.device, world: distributed.World) -> LanguageModelTask | DocumentTask:
    (a, b), (c, d) = corpus_info["splits"]["train"], corpus_info["splits"]["val"]
    if corpus_info.get("documents") is None:
        a, b = distributed.shard(a, b, world)  # each rank trains on its own share of the text
        return LanguageModelTask(tokens[a:b], tokens[c:d], train_config.batch_size, train_config.seq_length,
                                 train_config.eval_chars, device, vocab if vocab.kind in subwords.KINDS else None,
                                 train_config.state_reset)
    train_ends = documents.document_ends(tokens[a:b], vocab.end_id)
    val_ends = documents.document_ends(tokens[c:d], vocab.end_id)
    if len(train_ends) < 2 or len(val_ends) < 2 or train_ends[0] != 0 or val_ends[0] != 0:
        raise UsageError("the run's encoded documents do not start and end at its splits; the run is corrupted")
    return DocumentTask(tokens[a:b], train_ends, tokens[c:d], val_ends, train_config.batch_size,
                        train_config.seq_length, train_config.eval_chars, train_config.seed, device,
                        vocab if vocab.kind in subwords.KINDS else None)


def _run(run_dir: Path, model: LanguageModel, vocab: Vocabulary, corpus_info: dict[str, Any],
         train_config: TrainConfig, device: torch.device, say, settings: dict, meta: dict | None,
         world: distributed.World = distributed.SINGLE, init_from: dict | None = None) -> "Model":
    tokens = np.memmap(run_dir / corpus_info["tokens_file"], dtype=vocab.token_dtype, mode="r",
                       shape=(corpus_info["num_tokens"],))
    task = _task(tokens, vocab, corpus_info, train_config, device, world).bind(model)

    def describe() -> dict[str, Any]:
        return {"rnnkit_version": __version__, "task": "language_model",
                "model_config": to_dict(model.config), "train_config": to_dict(train_config),
                "vocab": vocab.to_json(), "corpus": corpus_info, "num_parameters": model.num_parameters(),
                "device": str(device), **({"init_from": init_from} if init_from else {})}

    trainer = Trainer(model, task, train_config, run_dir, describe, device, log=say, world=world,
                      progress=settings["progress"])
    if settings["on_step"] is not None:
        trainer.on_step.append(settings["on_step"])
    if train_config.sample_every is not None and world.is_main:
        trainer.on_evaluate.append(_sampler(model, vocab, train_config.sample_every, device, say))
    if meta is not None:
        trainer.restore(meta)
        if trainer.fraction_done() >= 1.0:
            c = train_config
            budget = ", ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in
                               (("max_steps", c.max_steps), ("epochs", c.epochs), ("time", c.time)) if v is not None)
            raise UsageError(f"{run_dir} has already used its budget ({budget}) at step {trainer.progress.step}, "
                             f"{trainer.progress.elapsed:.0f} s trained; give a larger --max-steps, --epochs or "
                             "--time to continue")
        say(f"resuming {run_dir} at step {trainer.progress.step} ({trainer.progress.elapsed:.0f} s trained)")
    else:
        say(f"training {model.config.cell} {model.config.num_layers} x {model.config.hidden_size} "
            f"({model.num_parameters():,} parameters) on {corpus_info['source']}: "
            f"{corpus_info['num_tokens']:,} {vocab.kind}, vocabulary {len(vocab)}, device {device}")
        say(f"model: {to_dict(model.config)}")
        say(f"training: {to_dict(train_config)}")
        say(f"run directory: {run_dir}")
        if world.active:
            say(f"data-parallel: {world.size} processes, each on 1/{world.size} of the training text with "
                f"--batch-size {train_config.batch_size} (global batch {world.size * train_config.batch_size})")
    progress = trainer.fit()
    distributed.barrier(world)  # rank 0's last checkpoint is on disk before anyone reads it
    unit = task.units[:-1]  # "char" or "token"
    best_val = (f"best val {progress.best_val:.4f} nats/{unit} ({task.bpc(progress.best_val):.3f} bits/char) at step "
                f"{progress.best_step}" if progress.best_val is not None else "no finite validation loss")
    say(f"done: {progress.step} steps in {progress.elapsed:.0f} s; {best_val}; saved in {run_dir}")
    best = load(run_dir, device=str(device))
    e, f = corpus_info["splits"]["test"]
    if f - e >= 2 and world.is_main:  # the test split is scored once, with the best weights, at the very end
        nats, count = best.module.evaluate_tokens(tokens[e:f], device=device)
        best.meta["test"] = {"nats_per_char": task.per_char(nats), "bits_per_char": task.bpc(nats),
                             "chars": round(count * getattr(task, "chars_per_token", 1.0)),
                             **({"nats_per_token": nats} if task.units == "tokens" else {})}
        checkpoint.update_meta(run_dir, test=best.meta["test"])
        say(f"test: {nats:.4f} nats/{unit} ({task.bpc(nats):.3f} bits/char) over {count:,} {task.units}")
    distributed.leave(world)
    return best
