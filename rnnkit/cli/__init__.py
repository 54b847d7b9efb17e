"""`rnnkit` command line, one module per command group, each a thin layer over the Python API:
lm.py (train, sample, eval, info), inspection.py (gradcheck, diagnose, experiment, units, viz,
plot, serve), tasks.py (classify, tag, seq2seq), forecast.py (forecast), anomaly.py (anomaly),
music.py (music), embed.py (embed), caption.py (caption), export.py (export). A new domain adds its module here.

Bad input never produces a traceback: a UsageError (or a bad flag) prints one line on stderr
and exits with status 2. Logs (Python's logging, logger "rnnkit"; --quiet keeps warnings only) and progress go to stderr; `sample` writes only text to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
from typing import Sequence

from .. import logs
from ..errors import UsageError
from ..memory import keep_freed_memory
from ..precision import flush_denormals
from ..version import __version__
from . import anomaly, caption, embed, export, forecast, inspection, lm, music, tasks


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> tuple[Parser, dict]:
    """The parser, and the function that runs each command."""
    parser = Parser(prog="rnnkit", description="Recurrent neural networks: train character-level "
                    "language models on any text, sample from them, score text, check their gradients, "
                    "look inside them, train classifiers, taggers and seq2seq models from CSV files, and "
                    "forecast numeric series and find anomalies in them, write folk tunes in ABC notation, caption images, and turn sentences into vectors.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    commands = {**lm.add_commands(sub), **inspection.add_commands(sub), **tasks.add_commands(sub, Parser),
                **forecast.add_commands(sub, Parser), **anomaly.add_commands(sub, Parser), **music.add_commands(sub, Parser),
                **embed.add_commands(sub, Parser), **caption.add_commands(sub, Parser),
                **export.add_commands(sub, Parser)}
    for command in sub.choices.values():  # short metavars keep the usage lines readable
        for action in command._actions:
            if action.metavar is None and action.type in (int, float) and not action.choices:
                action.metavar = "N" if action.type is int else "X"
    return parser, commands


def _sigterm_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    from ..training import TrainingDiverged, TrainingInterrupted
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    keep_freed_memory()  # large per-step tensors reused, not faulted in afresh (rnnkit/memory.py)
    name = args.command if getattr(args, "action", None) is None else f"{args.command} {args.action}"
    try:
        with (logs.command_console(quiet=bool(getattr(args, "quiet", False))),  # rnnkit's log lines on stderr
              flush_denormals()):  # threads started by the command (the web app's) inherit the mode
            return commands[args.command](args)
    except UsageError as e:
        print(f"rnnkit {name}: error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"rnnkit {name}: {e}", file=sys.stderr)
        return 1
    except TrainingInterrupted as e:
        print(f"rnnkit {name}: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"rnnkit {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rnnkit sample DIR | head` closed our stdout: not an error
        _silence_stdout()
        return 0
    except OSError as e:  # a full or read-only disk, a file that vanished, stdout on /dev/full
        where = f"{e.filename}: " if e.filename else "writing the output: " if e.errno == errno.ENOSPC else ""
        print(f"rnnkit {name}: error: {where}{e.strerror or e}; nothing was left half-written", file=sys.stderr)
        _silence_stdout()
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the flush at exit cannot fail a second time with a traceback."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
