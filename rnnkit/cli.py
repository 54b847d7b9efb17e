"""`rnnkit` command line: train, sample, eval, info, gradcheck, diagnose, experiment, units, viz,
plot, serve. A thin layer over the Python API.

Bad input never produces a traceback: a UsageError (or a bad flag) prints one line on stderr
and exits with status 2. Logs and progress go to stderr; `sample` writes only text to stdout.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from . import cli_tasks
from .config import CELLS, CLIP_MODES, INIT_SCHEMES, OPTIMIZERS, SCHEDULES
from .data import BUNDLED
from .errors import UsageError
from .reference import CELLS as REFERENCE_CELLS

S = argparse.SUPPRESS  # flags the user did not give stay absent, so defaults live in one place


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a character-level language model on a text file",
        description="Train a character-level language model on a text file (UTF-8 code points by\n"
                    "default, raw bytes with --bytes). The last 10% of the text is held out for\n"
                    "validation unless --val-file is given. Checkpoints (best and last) go to --out;\n"
                    "Ctrl-C saves and stops; --resume DIR continues exactly where it stopped.",
        epilog="examples:\n  rnnkit train input.txt --time 300\n  rnnkit train --corpus shakespeare "
               "--cell gru --hidden-size 256 --num-layers 2 --max-steps 2000\n  rnnkit train --resume runs/input\n"
               "  torchrun --standalone --nproc-per-node 2 -m rnnkit train input.txt   # data-parallel: "
               "--batch-size is per process,\n"
               "      each process trains on its share of the text, only rank 0 prints and writes (README)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", help="text file to learn from")
    src = p.add_argument_group("data")
    src.add_argument("--corpus", choices=BUNDLED, default=S,
                     help="a bundled corpus instead of a file: shakespeare (37 plays) or python (stdlib source)")
    src.add_argument("--bytes", dest="raw_bytes", action="store_true", default=S,
                     help="treat the file as raw bytes (any encoding or binary) instead of UTF-8 text")
    src.add_argument("--out", default=S, metavar="DIR", help="run directory for checkpoints (default: runs/<file name>)")
    src.add_argument("--resume", metavar="DIR", default=S,
                     help="continue the run in DIR with its saved settings (--max-steps, --epochs, "
                          "--time, --device, --autocast may change)")
    src.add_argument("--val-file", default=S, metavar="FILE",
                     help="validate on this text instead of the end of FILE (then all of FILE trains)")
    src.add_argument("--val-fraction", type=float, default=S, help="share of the text held out at its end for validation (default 0.1)")
    src.add_argument("--test-fraction", type=float, default=S, help="share held out after validation as a test split (default 0)")
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=CELLS, default=S, help="recurrent cell (default lstm); irnn = ReLU RNN with identity-initialised recurrence; "
                   "lnlstm = layer-normalised LSTM (Ba et al. 2016; no fused kernel, ~1.5-3x slower)")
    m.add_argument("--hidden-size", type=int, default=S, help="units per recurrent layer (default 256; 384 "
                   "for --time >= 600, where it measured better)")
    m.add_argument("--num-layers", type=int, default=S, help="stacked recurrent layers (default 2)")
    m.add_argument("--embedding-size", type=int, default=S, help="learned input embedding width; 0 = one-hot input (default 64)")
    m.add_argument("--dropout", type=float, default=S, help="dropout between layers and before the output, in [0, 1) (default 0; 0.2 "
                   "for --time >= 600)")
    m.add_argument("--init", choices=INIT_SCHEMES, default=S,
                   help="weight init: auto (orthogonal recurrence, identity for irnn), orthogonal, identity, "
                        "glorot, uniform (+-0.08, as char-rnn), pytorch (default auto)")
    m.add_argument("--forget-bias", type=float, default=S, help="LSTM forget-gate bias at init (default 1)")
    t = p.add_argument_group("training")
    t.add_argument("--seq-length", type=int, default=S, help="characters per truncated-BPTT chunk (default 64)")
    t.add_argument("--batch-size", type=int, default=S, help="parallel streams through the text (default 32)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=S, help="default adam")
    t.add_argument("--lr", type=float, default=S, help="peak learning rate (default 6e-3)")
    t.add_argument("--momentum", type=float, default=S, help="for sgd and rmsprop (default 0.9)")
    t.add_argument("--weight-decay", type=float, default=S, help="default 0")
    t.add_argument("--schedule", choices=SCHEDULES, default=S, help="learning-rate schedule over the run (default cosine, with warmup)")
    t.add_argument("--warmup", type=float, default=S, help="fraction of the run spent warming up (cosine; default 0.02)")
    t.add_argument("--min-lr-ratio", type=float, default=S, help="cosine ends at this fraction of --lr (default 0.05)")
    t.add_argument("--step-every", type=float, default=S, help="step schedule: decay after each this fraction of the run (default 0.33)")
    t.add_argument("--step-gamma", type=float, default=S, help="step schedule: decay factor (default 0.5)")
    t.add_argument("--clip", type=float, default=S, help="gradient clipping threshold, 0 = off (default 1)")
    t.add_argument("--clip-mode", choices=CLIP_MODES, default=S, help="clip the global norm or each value (default norm)")
    t.add_argument("--seed", type=int, default=S, help="random seed (default 1337)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default=S, help="default auto (cuda if available)")
    t.add_argument("--autocast", choices=("off", "bf16", "fp16"), default=S,
                   help="mixed precision on the GPU: bf16, or fp16 with loss scaling (default off; "
                        "bf16 also runs on CPU, but only CPUs with bf16 instructions gain from it)")
    s = p.add_argument_group("when to stop (the first reached; the schedule spans the run; default --time 600)")
    s.add_argument("--max-steps", type=int, default=S, help="optimizer steps")
    s.add_argument("--epochs", type=float, default=S, help="passes over the training text")
    s.add_argument("--time", type=float, default=S, metavar="SECONDS", help="wall-clock budget, evaluation included")
    e = p.add_argument_group("evaluation and checkpoints")
    e.add_argument("--eval-every", type=int, default=S, help="steps between validations (default: 10 per run, 8 under --time)")
    e.add_argument("--eval-chars", type=int, default=S, help="validation characters per evaluation, from the start of the split (default 64000)")
    e.add_argument("--checkpoint-every", type=int, default=S, help="steps between extra checkpoints (default: at each validation)")


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a trained model",
                       description="Generate text from a trained model. Text streams to stdout as it is "
                                   "generated; with --num-samples N the samples are generated in one batch "
                                   "and printed one after another, separated by --separator.")
    p.add_argument("run_dir", metavar="DIR", help="run directory written by `rnnkit train`")
    p.add_argument("--length", type=int, default=500, help="characters to generate (default 500)")
    p.add_argument("--temperature", type=float, default=1.0, help="> 0; lower is more conservative (default 1)")
    p.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely characters")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling: the smallest set reaching probability p, in (0, 1]")
    p.add_argument("--greedy", action="store_true", help="always take the most likely character")
    p.add_argument("--prime", default="", help="text to start from (printed before the continuation)")
    p.add_argument("--seed", type=int, default=None, help="same seed, same output")
    p.add_argument("--num-samples", type=int, default=1, help="samples generated together in one batch")
    p.add_argument("--separator", default="\n\n----\n\n",
                   help="printed between samples when --num-samples > 1 (default: a line of four dashes)")
    p.add_argument("--which", choices=("best", "last"), default="best", help="best (lowest validation loss) or last weights")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="bits and nats per character of a model on a text")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("file", metavar="FILE", help="text to score")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="configuration, size and training metrics of a run")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_gradcheck(sub) -> None:
    p = sub.add_parser(
        "gradcheck", help="check backpropagation: NumPy reference vs finite differences vs the engine",
        description="Check gradients on a tiny language model (V=5, H=4, batch 2, 6 steps, float64):\n"
                    "(a) the NumPy reference's hand-written BPTT against centred finite differences\n"
                    "(target < 1e-6), (b) the PyTorch engine (fused kernel, and the cells' step functions)\n"
                    "against the reference on the same weights (target < 1e-8). Errors are\n"
                    "||a - b|| / max(||a||, ||b||) per parameter tensor (and per initial-state tensor).\n"
                    "Exit status 0 when every target is met, 1 otherwise.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cell", choices=REFERENCE_CELLS, action="append", default=None,
                   help="cell to check; repeat for several (default: all four)")
    p.add_argument("--layers", type=int, default=1, help="stacked layers (default 1)")
    p.add_argument("--embedding-size", type=int, default=3, help="input embedding width; 0 = one-hot (default 3)")
    p.add_argument("--seed", type=int, default=0, help="weights, data and initial state (default 0)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per cell (one per line): cell, reference_vs_numeric, "
                        "engine_vs_reference, engine_steps_vs_reference, targets, passed")


def _add_diagnose(sub) -> None:
    p = sub.add_parser(
        "diagnose", help="gradient flow, recurrent spectra and saturation of a model on a text",
        description="Diagnose a trained model (or, with --untrained, the same architecture freshly\n"
                    "initialised) on a sample of FILE: the norm of dL_T/dh_t against the distance T - t\n"
                    "(vanishing or exploding gradients), singular values and spectral radius of each\n"
                    "recurrent matrix, gate saturation, and the hidden-state norm over time.\n"
                    "Writes PREFIX.png (four panels) and PREFIX.json (the numbers).",
        epilog="example:\n  rnnkit diagnose runs/demo input.txt --out diag/demo",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="DIR", help="run directory written by `rnnkit train`")
    p.add_argument("file", metavar="FILE", help="text to run the model on (its first 200,000 characters)")
    p.add_argument("--out", metavar="PREFIX", default=None, help="output files PREFIX.png and PREFIX.json "
                   "(default: DIR/diagnostics)")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--untrained", action="store_true", help="re-initialise the weights (same architecture and init)")
    p.add_argument("--span", type=int, default=100, help="steps back to follow the gradient (default 100)")
    p.add_argument("--batch", type=int, default=16, help="random windows of the text averaged over (default 16)")
    p.add_argument("--seed", type=int, default=0, help="which windows, and the weights with --untrained (default 0)")


def _add_experiment(sub) -> None:
    from .experiments import EXPERIMENTS
    p = sub.add_parser(
        "experiment", help="reproduce a classic claim about RNN training; writes a figure",
        description="Run one of the experiments of docs/experiments.md; writes OUT/NAME.png and\n"
                    "OUT/NAME.json. --size smoke runs in seconds (a check that it works); full is\n"
                    "the size reported in the docs (minutes).\n\nexperiments:\n"
                    + "\n".join(f"  {name:<12} {about}" for name, (_, about) in EXPERIMENTS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME", help="which experiment (listed above)")
    p.add_argument("--size", choices=("smoke", "full"), default="full", help="default full")
    p.add_argument("--out", default="experiments", metavar="DIR", help="output folder (default: experiments)")


def _add_units(sub) -> None:
    p = sub.add_parser(
        "units", help="find units that track quotes, brackets, line position, ...",
        description="Run the model over FILE and rank every hidden unit (and LSTM cell unit) by the\n"
                    "correlation of its activation with simple properties of the text: inside quotes,\n"
                    "inside brackets, bracket depth, position in line, indentation, start of word,\n"
                    "vowel, uppercase, inside a # comment. Prints the top units per property.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="DIR", help="run directory written by `rnnkit train`")
    p.add_argument("file", metavar="FILE", help="text to read (its first --chars characters)")
    p.add_argument("--chars", type=int, default=20_000, help="characters of FILE to read (default 20000)")
    p.add_argument("--top", type=int, default=3, help="units listed per property (default 3)")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--json", action="store_true", help="print one JSON object: property -> [[unit, r], ...]")


def _add_viz(sub) -> None:
    p = sub.add_parser(
        "viz", help="write an HTML page: text coloured by a unit, predictions on hover",
        description="Write one self-contained HTML page (opens offline): FILE's first --chars characters\n"
                    "coloured by a chosen unit's activation, a unit picker with the unit finder's best\n"
                    "units first, and the model's top-5 next characters under the pointer.",
        epilog="example:\n  rnnkit viz runs/demo input.txt -o demo.html", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="DIR", help="run directory written by `rnnkit train`")
    p.add_argument("file", metavar="FILE", help="text to show")
    p.add_argument("-o", "--out", default=None, metavar="PAGE", help="output file (default DIR/viz.html)")
    p.add_argument("--chars", type=int, default=2000, help="characters of FILE to show (default 2000)")
    p.add_argument("--which", choices=("best", "last"), default="best")


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="PNG of training and validation loss against steps and time",
                       description="Plot a run's training and validation loss (nats and bits per char) "
                                   "against steps and seconds, from the metrics saved in its checkpoint.")
    p.add_argument("run_dir", metavar="DIR", help="run directory written by `rnnkit train`")
    p.add_argument("-o", "--out", default=None, metavar="PNG", help="output file (default DIR/loss.png)")


def _add_serve(sub) -> None:
    p = sub.add_parser(
        "serve", help="a local web app: type a prompt, watch the model write, see inside",
        description="Serve a page where you type a prompt and watch a sample stream in, with\n"
                    "temperature / top-k / length controls and a stop button, the generated text\n"
                    "coloured by a chosen unit with next-character predictions on hover, and the\n"
                    "training curves. Listens on 127.0.0.1 only unless --host is given.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="DIR", help="run directory written by `rnnkit train`")
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 exposes the app to your network (default 127.0.0.1)")
    p.add_argument("--which", choices=("best", "last"), default="best")


def build_parser() -> Parser:
    parser = Parser(prog="rnnkit", description="Recurrent neural networks: train character-level "
                    "language models on any text, sample from them, score text, check their gradients "
                    "and look inside them.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for add in (_add_train, _add_sample, _add_eval, _add_info, _add_gradcheck, _add_diagnose,
                _add_experiment, _add_units, _add_viz, _add_plot, _add_serve,
                lambda sub: cli_tasks.add_classify(sub, Parser), lambda sub: cli_tasks.add_tag(sub, Parser),
                lambda sub: cli_tasks.add_seq2seq(sub, Parser)):
        add(sub)
    for command in sub.choices.values():  # short metavars keep the usage lines readable
        for action in command._actions:
            if action.metavar is None and action.type in (int, float):
                action.metavar = "N" if action.type is int else "X"
    return parser


# ----------------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from .api import train
    options: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in ("command", "file")}
    train(args.file, corpus=options.pop("corpus", None), val_file=options.pop("val_file", None),
          out=options.pop("out", None),
          resume=options.pop("resume", None), raw_bytes=options.pop("raw_bytes", False), **options)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .api import load
    model = load(args.run_dir, which=args.which)
    out = sys.stdout

    def write_now(piece: str) -> None:
        out.write(piece)
        out.flush()

    streaming = args.num_samples == 1  # a batch of samples is printed when it is complete
    if streaming:
        write_now(args.prime)
    texts = model.generate(prime=args.prime, length=args.length, temperature=args.temperature,
                           top_k=args.top_k, top_p=args.top_p, greedy=args.greedy, seed=args.seed,
                           num_samples=args.num_samples, stream=write_now if streaming else None)
    if streaming:
        out.write("\n")
    else:
        out.write(args.separator.join(args.prime + text for text in texts) + "\n")
    out.flush()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .api import load
    result = load(args.run_dir, which=args.which).evaluate_file(args.file)
    if args.json:
        print(json.dumps({"file": args.file, **result}))
    else:
        print(f"{args.file}: {result['bits_per_char']:.4f} bits/char, {result['nats_per_char']:.4f} nats/char "
              f"over {result['chars']:,} characters")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .api import load
    info = load(args.run_dir).info()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    mc, tc = info["model_config"], info["train_config"]
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
        print(f"best val:   {info['best_val_nats']:.4f} nats/char, {info['best_val_bpc']:.4f} bits/char "
              f"(step {info['best_step']})")
    if info["test"]:
        print(f"test:       {info['test']['nats_per_char']:.4f} nats/char, {info['test']['bits_per_char']:.4f} "
              f"bits/char ({info['test']['chars']:,} characters)")
    if info["metrics"]:
        print("history:    step    seconds  train nats  val nats  val bpc")
        for row in info["metrics"]:
            print(f"            {row['step']:<7} {row['elapsed']:<8.0f} {row['train_nats']:<11.4f} "
                  f"{row['val_nats']:<9.4f} {row['val_bpc']:.4f}")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from .reference import gradcheck
    from .reference.gradcheck import ENGINE_TOLERANCE, REFERENCE_TOLERANCE, SIZES
    if not 1 <= args.layers <= 4:
        raise UsageError(f"--layers must be between 1 and 4 (got {args.layers})")
    if args.embedding_size < 0:
        raise UsageError(f"--embedding-size must be >= 0 (0 = one-hot; got {args.embedding_size})")
    reports = [gradcheck(cell, args.layers, args.embedding_size, args.seed) for cell in args.cell or REFERENCE_CELLS]
    if args.json:
        for report in reports:
            print(json.dumps(report.to_dict()))
        return 0 if all(r.passed for r in reports) else 1
    print(f"gradcheck: V={SIZES['vocab_size']}, H={SIZES['hidden_size']}, batch {SIZES['batch']}, "
          f"{SIZES['time']} steps, {args.layers} layer(s), "
          f"{'embedding ' + str(args.embedding_size) if args.embedding_size else 'one-hot input'}, float64")
    print(f"relative errors; targets: reference vs numeric < {REFERENCE_TOLERANCE:.0e}, "
          f"engine vs reference < {ENGINE_TOLERANCE:.0e}")
    for r in reports:
        print(f"\n{r.cell:<32} {'ref vs numeric':>15} {'engine vs ref':>15} {'steps vs ref':>15}")
        names = ["loss", *r.reference_vs_numeric]
        for name in names:
            ref = r.reference_vs_numeric.get(name)
            print(f"  {name:<30} {'' if ref is None else f'{ref:.2e}':>15} "
                  f"{r.engine_vs_reference[name]:>15.2e} {r.engine_steps_vs_reference[name]:>15.2e}")
        print(f"  {'worst':<30} {max(r.reference_vs_numeric.values()):>15.2e} "
              f"{max(r.engine_vs_reference.values()):>15.2e} {max(r.engine_steps_vs_reference.values()):>15.2e}"
              f"   {'PASS' if r.passed else 'FAIL'}")
    return 0 if all(r.passed for r in reports) else 1


def cmd_diagnose(args: argparse.Namespace) -> int:
    import torch

    from .api import load
    from .diagnostics import diagnose
    from .diagnostics.figures import plot_diagnostics
    for flag, value in (("--span", args.span), ("--batch", args.batch)):
        if value < 1:
            raise UsageError(f"{flag} must be >= 1 (got {value})")
    model = load(args.run_dir, which=args.which)
    tokens = model.file_tokens(args.file, 200_000)
    if args.untrained:
        torch.manual_seed(args.seed)
        model.module.reset_parameters()
    prefix = args.out or str(Path(args.run_dir) / "diagnostics")
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    report = diagnose(model.module, tokens, span=args.span, batch=args.batch, seed=args.seed)
    report["run_dir"], report["file"], report["untrained"] = str(args.run_dir), str(args.file), args.untrained
    Path(prefix + ".json").write_text(json.dumps(report, indent=1) + "\n")
    c = model.config
    plot_diagnostics(report, prefix + ".png", title=f"{args.run_dir}: {c.cell} {c.num_layers} x {c.hidden_size}"
                                                    f"{' (untrained)' if args.untrained else ''}")
    flow = report["gradient_by_distance"]
    for k, (norm, rate) in enumerate(zip(flow["norm"], flow["decay_per_step"])):
        far = min(len(norm) - 1, 50)
        print(f"layer {k + 1}: ||dL/dh|| {norm[0]:.2e} at distance 0, {norm[far]:.2e} at {far}; "
              f"x{rate:.3f} per step" if rate is not None else f"layer {k + 1}: no gradient reaches back")
        radii = ", ".join(f"{name} {s['spectral_radius']:.2f}" for name, s in report["recurrent_spectra"][k].items())
        print(f"         spectral radius of W_hh: {radii}")
        sat = ", ".join(f"{name} {f['low']:.0%} low / {f['high']:.0%} high" for name, f in report["saturation"][k].items())
        print(f"         saturation: {sat}")
    print(f"wrote {prefix}.png and {prefix}.json")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from .experiments import run_experiment
    result = run_experiment(args.name, args.size, args.out, log=lambda line: print(line, file=sys.stderr))
    print(f"{args.name}: done in {result['seconds']:.0f} s; wrote {Path(args.out) / args.name}.png and .json")
    return 0


def _text_sample(model, path: str, chars: int):
    if chars < 2:
        raise UsageError(f"--chars must be >= 2 (got {chars})")
    tokens = model.file_tokens(path, chars)
    if len(tokens) < 2:
        raise UsageError(f"{path} is too short: it needs at least 2 characters")
    return tokens


def cmd_units(args: argparse.Namespace) -> int:
    from .api import load
    from .diagnostics.activations import capture
    from .diagnostics.units import rank_units, text_properties
    if args.top < 1:
        raise UsageError(f"--top must be >= 1 (got {args.top})")
    model = load(args.run_dir, which=args.which)
    tokens = _text_sample(model, args.file, args.chars)
    acts = capture(model.module, tokens, gates=False)
    text = "".join(model.vocab.display(t) for t in tokens.tolist())
    ranked = rank_units(acts.unit_names, acts.units, text_properties(text), top=args.top)
    if args.json:
        print(json.dumps({prop: [[u, round(r, 4)] for u, r in units] for prop, units in ranked.items()}))
        return 0
    print(f"{len(acts.unit_names)} units over {len(tokens):,} characters of {args.file}; "
          f"Pearson r of activation with each property (|r| near 1: the unit tracks it)")
    for prop, units in sorted(ranked.items(), key=lambda item: -abs(item[1][0][1])):
        print(f"  {prop:<22} " + "   ".join(f"{u} {r:+.2f}" for u, r in units))
    return 0


def cmd_viz(args: argparse.Namespace) -> int:
    from .api import load
    from .viz.page import build_page
    model = load(args.run_dir, which=args.which)
    tokens = _text_sample(model, args.file, args.chars)
    out = Path(args.out) if args.out else Path(args.run_dir) / "viz.html"
    if out.is_dir():
        raise UsageError(f"{out} is a directory; give a file name for the page")
    page = build_page(model, tokens, title=f"{Path(args.run_dir).name}: {Path(args.file).name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out} ({len(page) / 1e6:.1f} MB); open it in a browser")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .api import load
    from .viz.plots import write_training_plot
    model = load(args.run_dir)
    if not model.meta["metrics"]:
        raise UsageError(f"{args.run_dir} has no validation history yet; train longer")
    out = Path(args.out) if args.out else Path(args.run_dir) / "loss.png"
    if out.is_dir():
        raise UsageError(f"{out} is a directory; give a file name for the figure")
    write_training_plot(model.meta, out, title=str(args.run_dir))
    print(f"wrote {out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .viz.server import serve
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535 (got {args.port})")
    serve(args.run_dir, host=args.host, port=args.port, which=args.which)
    return 0


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "info": cmd_info,
            "gradcheck": cmd_gradcheck, "diagnose": cmd_diagnose, "experiment": cmd_experiment,
            "units": cmd_units, "viz": cmd_viz, "plot": cmd_plot, "serve": cmd_serve,
            "classify": cli_tasks.run_classify, "tag": cli_tasks.run_tag,
            "seq2seq": cli_tasks.run_seq2seq}


def _sigterm_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from .training import TrainingDiverged, TrainingInterrupted
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        print(f"rnnkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"rnnkit train: {e}", file=sys.stderr)
        return 1
    except TrainingInterrupted as e:
        print(f"rnnkit train: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"rnnkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rnnkit sample DIR | head` closed our stdout: not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
