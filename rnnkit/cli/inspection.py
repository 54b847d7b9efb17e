"""Commands that look inside a model: `rnnkit gradcheck`, `diagnose`, `experiment`, `units`, `viz`,
`plot`, `serve`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UsageError
from ..extras import require
from ..reference import CELLS as REFERENCE_CELLS
from .. import metrics_log
from ..outputs import claim, write
from .flags import add_command

MAX_UNITS_CHARS = 200_000  # the unit finder reads one character at a time (~0.5 ms each)
MAX_PAGE_CHARS = 100_000  # a page holds every unit's activation at every character


def add_commands(sub) -> dict:
    for add in (_add_gradcheck, _add_diagnose, _add_experiment, _add_units, _add_viz, _add_plot, _add_serve):
        add(sub)
    return {"gradcheck": run_gradcheck, "diagnose": run_diagnose, "experiment": run_experiment,
            "units": run_units, "viz": run_viz, "plot": run_plot, "serve": run_serve}


def _add_gradcheck(sub) -> None:
    p = add_command(
        sub, "gradcheck", "check backpropagation: NumPy reference vs finite differences vs the engine",
        "Check gradients on a tiny language model (V=5, H=4, batch 2 (5 for bnlstm), 6 steps,\n"
                    "float64):\n"
                    "(a) the NumPy reference's hand-written BPTT against centred finite differences\n"
                    "(target < 1e-6), (b) the PyTorch engine (fused kernel, and the cells' step functions)\n"
                    "against the reference on the same weights (target < 1e-8). Errors are\n"
                    "||a - b|| / max(||a||, ||b||) per parameter tensor (and per initial-state tensor).\n"
                    "Exit status 0 when every target is met, 1 otherwise.")
    p.add_argument("--cell", choices=REFERENCE_CELLS, action="append", default=None,
                   help="cell to check; repeat for several (default: every cell the NumPy reference has)")
    p.add_argument("--layers", type=int, default=1, help="stacked layers (default 1)")
    p.add_argument("--embedding-size", type=int, default=3, help="input embedding width; 0 = one-hot (default 3)")
    p.add_argument("--seed", type=int, default=0, help="weights, data and initial state (default 0)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per cell (one per line): cell, reference_vs_numeric, "
                        "engine_vs_reference, engine_steps_vs_reference, targets, passed")


def _add_diagnose(sub) -> None:
    p = add_command(
        sub, "diagnose", "gradient flow, recurrent spectra and saturation of a model on a text",
        "Diagnose a trained model (or, with --untrained, the same architecture freshly\n"
                    "initialised) on a sample of FILE: the norm of dL_T/dh_t against the distance T - t\n"
                    "(vanishing or exploding gradients), singular values and spectral radius of each\n"
                    "recurrent matrix, gate saturation, and the hidden-state norm over time.\n"
                    "Writes PREFIX.png (four panels) and PREFIX.json (the numbers).",
        epilog="example:\n  rnnkit diagnose runs/demo input.txt --out diag/demo",
        run_dir=True, file="text to run the model on (its first 200,000 characters)", which=True,
        output=(("--out",), "PREFIX", None, "output files PREFIX.png and PREFIX.json (default: DIR/diagnostics)"))
    p.add_argument("--untrained", action="store_true", help="re-initialise the weights (same architecture and init)")
    p.add_argument("--span", type=int, default=100, help="steps back to follow the gradient (default 100)")
    p.add_argument("--batch", type=int, default=16, help="random windows of the text averaged over (default 16)")
    p.add_argument("--seed", type=int, default=0, help="which windows, and the weights with --untrained (default 0)")


def _add_experiment(sub) -> None:
    from ..experiments import EXPERIMENTS
    p = add_command(
        sub, "experiment", "reproduce a classic claim about RNN training; writes a figure",
        "Run one of the experiments of docs/experiments.md; writes OUT/NAME.png and\n"
                    "OUT/NAME.json. --size smoke runs in seconds (a check that it works); full is\n"
                    "the size reported in the docs (minutes).\n\nexperiments:\n"
                    + "\n".join(f"  {name:<{max(map(len, EXPERIMENTS))}} {about}" for name, (_, about) in EXPERIMENTS.items()),
        output=(("--out",), "DIR", "experiments", "output folder (default: experiments)"))
    p.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME", help="which experiment (listed above)")
    p.add_argument("--quiet", action="store_true", help="no progress lines; the result line and errors still show")
    p.add_argument("--size", choices=("smoke", "full"), default="full", help="default full")


def _add_units(sub) -> None:
    p = add_command(
        sub, "units", "find units that track quotes, brackets, line position, ...",
        "Run the model over FILE and rank every hidden unit (and LSTM cell unit) by the\n"
        "correlation of its activation with simple properties of the text: inside quotes,\n"
        "inside brackets, bracket depth, position in line, indentation, start of word,\n"
        "vowel, uppercase, inside a # comment. Prints the top units per property.",
        run_dir=True, file="text to read (its first --chars characters)", which=True)
    p.add_argument("--chars", type=int, default=20_000,
                   help=f"characters of FILE to read, at most {MAX_UNITS_CHARS:,} (default 20000)")
    p.add_argument("--top", type=int, default=3, help="units listed per property (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object: property -> [[unit, r], ...]")


def _add_viz(sub) -> None:
    p = add_command(
        sub, "viz", "write an HTML page: text coloured by a unit, predictions on hover",
        "Write one self-contained HTML page (opens offline): FILE's first --chars characters\n"
        "coloured by a chosen unit's activation, a unit picker with the unit finder's best\n"
        "units first, and the model's top-5 next characters under the pointer.",
        epilog="example:\n  rnnkit viz runs/demo input.txt -o demo.html", run_dir=True, file="text to show", which=True,
        output=(("-o", "--out"), "PAGE", None, "output file (default DIR/viz.html)"))
    p.add_argument("--chars", type=int, default=2000,
                   help=f"characters of FILE to show, at most {MAX_PAGE_CHARS:,} (default 2000)")


def _add_plot(sub) -> None:
    add_command(sub, "plot", "PNG of training and validation loss against steps and time",
                    "Plot a run's training and validation loss (nats and bits per char) against steps\n"
                    "and seconds, from the metrics saved in its checkpoint.", run_dir=True,
                    output=(("-o", "--out"), "PNG", None, "output file (default DIR/loss.png)"))


def _add_serve(sub) -> None:
    p = add_command(
        sub, "serve", "a local web app: type a prompt, watch the model write, see inside",
        "Serve a page where you type a prompt and watch a sample stream in, with\n"
        "temperature / top-k / length controls and a stop button, the generated text\n"
        "coloured by a chosen unit with next-character predictions on hover, and the\n"
        "training curves. Listens on 127.0.0.1 only unless --host is given.", run_dir=True, which=True)
    p.add_argument("--port", type=int, default=8000, help="default 8000")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 exposes the app to your network (default 127.0.0.1)")


def run_gradcheck(args: argparse.Namespace) -> int:
    from ..reference import gradcheck
    from ..reference.gradcheck import ENGINE_TOLERANCE, REFERENCE_TOLERANCE, SIZES
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


def run_diagnose(args: argparse.Namespace) -> int:
    import torch

    from ..api import load
    from ..diagnostics import diagnose
    from ..diagnostics.figures import plot_diagnostics
    for flag, value in (("--span", args.span), ("--batch", args.batch)):
        if value < 1:
            raise UsageError(f"{flag} must be >= 1 (got {value})")
    model = load(args.run_dir, which=args.which, device=args.device)
    tokens = model.file_tokens(args.file, 200_000)
    if args.untrained:
        torch.manual_seed(args.seed)
        model.module.reset_parameters()
    prefix = args.out or str(Path(args.run_dir) / "diagnostics")
    claim([prefix + ".png", prefix + ".json"], args.force)
    report = diagnose(model.module, tokens, span=args.span, batch=args.batch, seed=args.seed)
    report = {"written_by": "rnnkit diagnose", "run_dir": str(args.run_dir), "file": str(args.file),
              "untrained": args.untrained, **report}
    write(prefix + ".json", (json.dumps(report, indent=1) + "\n").encode())
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


def run_experiment(args: argparse.Namespace) -> int:
    from ..experiments import run_experiment as run_named
    say = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr))  # noqa: E731
    result = run_named(args.name, args.size, args.out, log=say, force=args.force)
    print(f"{args.name}: done in {result['seconds']:.0f} s; wrote {Path(args.out) / args.name}.png and .json")
    return 0


def _text_sample(model, path: str, chars: int, most: int):
    if not 2 <= chars <= most:
        raise UsageError(f"--chars must be in 2..{most:,} (got {chars})")
    tokens = model.file_tokens(path, chars)
    if len(tokens) < 2:
        raise UsageError(f"{path} is too short: it needs at least 2 characters")
    return tokens


def run_units(args: argparse.Namespace) -> int:
    from ..api import load
    from ..diagnostics.activations import capture
    from ..diagnostics.units import rank_units, text_properties
    if args.top < 1:
        raise UsageError(f"--top must be >= 1 (got {args.top})")
    model = load(args.run_dir, which=args.which, device=args.device)
    tokens = _text_sample(model, args.file, args.chars, MAX_UNITS_CHARS)
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


def run_viz(args: argparse.Namespace) -> int:
    from ..api import load
    from ..viz.page import build_page
    model = load(args.run_dir, which=args.which, device=args.device)
    tokens = _text_sample(model, args.file, args.chars, MAX_PAGE_CHARS)
    (out,) = claim([args.out or Path(args.run_dir) / "viz.html"], args.force, "-o")
    page = build_page(model, tokens, title=f"{Path(args.run_dir).name}: {Path(args.file).name}")
    write(out, page.encode("utf-8"))
    print(f"wrote {out} ({len(page) / 1e6:.1f} MB); open it in a browser")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from ..api import load
    from ..viz.plots import write_training_plot
    model = load(args.run_dir)
    if not model.meta["metrics"]:
        raise UsageError(f"{args.run_dir} has no validation history yet; train longer")
    (out,) = claim([args.out or Path(args.run_dir) / "loss.png"], args.force, "-o")
    write_training_plot(model.meta, out, title=str(args.run_dir), steps=metrics_log.read(Path(args.run_dir)))
    print(f"wrote {out}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    require(("starlette", "uvicorn"), "serve", "rnnkit serve")
    from ..viz.server import serve
    serve(args.run_dir, host=args.host, port=args.port, which=args.which, device=args.device)
    return 0
