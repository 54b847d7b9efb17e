"""The language model's commands: `rnnkit train`, `sample`, `eval`, `info`. Their model, training
and sampling flags are generated from ModelConfig, TrainConfig and SamplingConfig (flags.py)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from ..config import ModelConfig, TrainConfig
from ..data import BUNDLED
from ..data.documents import output_separator
from ..dynamic import DynamicConfig
from ..errors import UsageError
from ..sampling import SamplingConfig
from .flags import S, add_command, add_config_flags, config_values


def add_commands(sub) -> dict:
    _add_train(sub)
    _add_sample(sub)
    _add_eval(sub)
    _add_info(sub)
    return {"train": run_train, "sample": run_sample, "eval": run_eval, "info": run_info}


def _add_train(sub) -> None:
    p = add_command(
        sub, "train", "train a character-level language model on a text file",
        "Train a character-level language model on a text file (UTF-8 code points by\n"
                    "default, raw bytes with --bytes). The last 10% of the text is held out for\n"
                    "validation unless --val-file is given. Checkpoints (best and last) go to --out;\n"
                    "Ctrl-C saves and stops; --resume DIR continues exactly where it stopped.",
        epilog="examples:\n  rnnkit train input.txt --time 300\n  rnnkit train --corpus shakespeare "
               "--cell gru --hidden-size 256 --num-layers 2 --max-steps 2000\n  rnnkit train --resume runs/input\n"
               "  torchrun --standalone --nproc-per-node 2 -m rnnkit train input.txt   # data-parallel: "
               "--batch-size is per process,\n"
               "      each process trains on its share of the text, only rank 0 prints and writes (README)\n"
               "  OMP_NUM_THREADS=1 rnnkit train a.txt & OMP_NUM_THREADS=1 rnnkit train b.txt   # two runs at once "
               "on 2 cores:\n      give each its share of the cores, or both run many times slower "
               "(docs/performance.md)")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="text to learn from: files, directories (their files) or quoted glob patterns; several "
                        "are joined with a blank line between them")
    src = p.add_argument_group("data")
    src.add_argument("--corpus", choices=BUNDLED, default=S,
                     help="a bundled corpus instead of a file: shakespeare (37 plays) or python (stdlib source)")
    src.add_argument("--bytes", dest="raw_bytes", action="store_true", default=S,
                     help="treat the file as raw bytes (any encoding or binary) instead of UTF-8 text")
    src.add_argument("--out", default=S, metavar="DIR", help="run directory for checkpoints (default: runs/<file name>)")
    src.add_argument("--resume", metavar="DIR", default=S,
                     help="continue the run in DIR with its saved settings (--max-steps, --epochs, "
                          "--time, --device, --autocast may change)")
    src.add_argument("--init-from", default=S, metavar="DIR",
                     help="fine-tune: start from the trained model in DIR (its architecture and weights; symbols "
                          "new to it start fresh) with a new optimizer and schedule")
    src.add_argument("--quiet", action="store_true", default=S,
                     help="print nothing while training (no progress bar, no log lines); errors still show")
    src.add_argument("--val-file", default=S, metavar="FILE",
                     help="validate on this text instead of the end of FILE (then all of FILE trains)")
    add_config_flags(p, ModelConfig)
    add_config_flags(p, TrainConfig)  # its "data" fields join the group above


def _add_sample(sub) -> None:
    p = add_command(sub, "sample", "generate text from a trained model",
                    "Generate text from a trained model. Text streams to stdout as it is generated;\n"
                    "with --num-samples N the samples are generated in one batch and printed one after\n"
                    "another, separated by --separator. A model trained with --documents writes one\n"
                    "document per sample: each starts where the corpus's documents start and stops at\n"
                    "the end-of-text symbol (or after --length characters).", run_dir=True, which=True)
    p.add_argument("--prime", default="", help="text to start from (printed before the continuation)")
    add_config_flags(p, SamplingConfig, groups=False)
    p.add_argument("--interactive", action="store_true",
                   help="read prompts from the terminal (one per line) and print each continuation; an empty "
                        "line or Ctrl-D ends. --seed, if given, makes the whole session repeatable")
    p.add_argument("--int8", action="store_true",
                   help="generate with int8 recurrent weights (dynamic quantisation, on the CPU): faster one "
                        "sample at a time, the top next character the float model's on nearly every position "
                        "(measured in docs/performance.md); lstm, gru, rnn and irnn cells")
    p.add_argument("--separator", default=None,
                   help="printed between samples when --num-samples > 1 (default: a line of four dashes; for a "
                        "model trained on documents, the separator of its corpus: one document per line for "
                        "--documents line)")


def _add_eval(sub) -> None:
    p = add_command(sub, "eval", "bits and nats per character of a model on a text",
                    "Score FILE with a trained model: cross-entropy in nats and bits per character.",
                    run_dir=True, file="text to score", which=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    defaults = DynamicConfig()
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic evaluation (Krause et al. 2018): read FILE in order as one stream and learn from "
                        "each segment after scoring it, so every character is scored by weights that saw only "
                        "the text before it; slower (batch 1), and a different number from the plain score")
    p.add_argument("--dynamic-lr", type=float, default=defaults.lr, metavar="LR",
                   help=f"--dynamic: step per weight in units of its gradient's running RMS (default {defaults.lr:g})")
    p.add_argument("--dynamic-decay", type=float, default=defaults.decay, metavar="D",
                   help=f"--dynamic: pull towards the trained weights per segment, in [0, 1) "
                        f"(default {defaults.decay:g})")
    p.add_argument("--dynamic-segment", type=int, default=defaults.segment, metavar="N",
                   help=f"--dynamic: tokens scored between updates (default {defaults.segment})")


def _add_info(sub) -> None:
    p = add_command(sub, "info", "configuration, size and training metrics of a run",
                    "Show a run's configuration, size, vocabulary and validation history.", run_dir=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run_train(args: argparse.Namespace) -> int:
    from ..api import train
    options: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in ("command", "files")}
    if options.pop("quiet", False):
        options.update(log=lambda line: None, progress=False)
    train(args.files or None, corpus=options.pop("corpus", None), val_file=options.pop("val_file", None),
          out=options.pop("out", None),
          resume=options.pop("resume", None), raw_bytes=options.pop("raw_bytes", False),
          init_from=options.pop("init_from", None), **options)
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from ..api import load
    config = SamplingConfig(**config_values(args, {f: f for f in SamplingConfig.__dataclass_fields__}))
    if args.int8 and args.device == "cuda":
        raise UsageError("--int8 runs on the CPU; drop --device cuda")
    model = load(args.run_dir, which=args.which, device="cpu" if args.int8 else args.device)
    if args.int8:
        model = model.int8()
    prime_ids = model.encode(args.prime, "the prime text")  # checked before anything is written
    out = sys.stdout
    if args.interactive:
        return _interactive(model, config, out)

    def write_now(piece: str) -> None:
        out.write(piece)
        out.flush()

    separator = args.separator
    if separator is None:
        separator = output_separator(model.documents) if model.documents is not None else "\n\n----\n\n"
    streaming = config.num_samples == 1  # a batch of samples is printed when it is complete
    if streaming:
        write_now(args.prime)
    texts = model.sample(prime_ids, config, stream=write_now if streaming else None)
    if streaming:
        out.write("\n")
    else:
        out.write(separator.join(args.prime + text for text in texts) + "\n")
    out.flush()
    return 0


def _interactive(model, config: SamplingConfig, out) -> int:
    """Prompt, continuation, prompt, ...: the prompt is asked on stderr so stdout holds only text.
    A prompt the model cannot read is said on stderr and the session goes on."""
    import dataclasses
    from ..errors import UsageError
    if config.num_samples != 1:
        raise UsageError("--interactive writes one continuation per prompt; drop --num-samples")
    turn = 0
    while True:
        sys.stderr.write("prompt> ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line.strip():
            return 0
        prompt = line.rstrip("\n")
        try:
            ids = model.encode(prompt, "the prompt")
        except UsageError as e:
            sys.stderr.write(f"{e}\n")
            continue
        seeded = dataclasses.replace(config, seed=None if config.seed is None else config.seed + turn)
        out.write(prompt)
        model.sample(ids, seeded, stream=lambda piece: (out.write(piece), out.flush()))
        out.write("\n")
        out.flush()
        turn += 1


def run_eval(args: argparse.Namespace) -> int:
    from ..api import load
    dynamic = DynamicConfig(args.dynamic_lr, args.dynamic_decay, args.dynamic_segment) if args.dynamic else None
    result = load(args.run_dir, which=args.which, device=args.device).evaluate_file(args.file, dynamic)
    if args.json:
        extra = {"dynamic": dataclasses.asdict(dynamic)} if dynamic else {}
        print(json.dumps({"file": args.file, **result, **extra}))
    else:
        per_token = (f", {result['nats_per_token']:.4f} nats/token over {result['tokens']:,} tokens"
                     if "tokens" in result else "")
        print(f"{args.file}: {result['bits_per_char']:.4f} bits/char, {result['nats_per_char']:.4f} nats/char "
              f"over {result['chars']:,} characters{per_token}"
              + (f" in {result['documents']:,} documents (each end counted as a character)" if "documents" in result
                 else "")
              + (" (dynamic evaluation)" if dynamic else ""))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..api import load
    info = load(args.run_dir).info()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    mc, tc = info["model_config"], info["train_config"]
    unit = "token" if info["vocab_kind"] in ("word", "bpe") else "char"  # what the loss is counted per
    print(f"run:        {info['run_dir']} (rnnkit {info['rnnkit_version']})")
    print(f"model:      {mc['cell']}, {mc['num_layers']} x {mc['hidden_size']}, embedding "
          f"{mc['embedding_size'] or 'one-hot'}, dropout {mc['dropout']}, init {mc['init']}")
    print(f"parameters: {info['num_parameters']:,}")
    print(f"vocabulary: {info['vocab_size']} {info['vocab_kind']}")
    print(f"corpus:     {info['corpus']['source']} ({info['corpus']['num_tokens']:,} tokens)")
    print(f"training:   {tc['optimizer']} lr {tc['lr']}, {tc['schedule']} schedule, batch {tc['batch_size']} "
          f"x seq {tc['seq_length']}, clip {tc['clip']} ({tc['clip_mode']})")
    print(f"progress:   step {info['step']}, {info['elapsed_s']:.0f} s")
    if info["best_val_nats"] is not None:
        print(f"best val:   {info['best_val_nats']:.4f} nats/{unit}, {info['best_val_bpc']:.4f} bits/char "
              f"(step {info['best_step']})")
    if info["test"]:
        print(f"test:       {info['test']['nats_per_char']:.4f} nats/char, {info['test']['bits_per_char']:.4f} "
              f"bits/char ({info['test']['chars']:,} characters)")
    if info["metrics"]:
        print(f"history:    step    seconds  train nats  val nats  val bpc   (nats per {unit})")
        for row in info["metrics"]:
            print(f"            {row['step']:<7} {row['elapsed']:<8.0f} {row['train_nats']:<11.4f} "
                  f"{row['val_nats']:<9.4f} {row['val_bpc']:.4f}")
    return 0
