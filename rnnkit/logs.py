"""rnnkit's messages (training progress lines, notes about the data) go through Python's `logging`,
under the logger named "rnnkit" and its children ("rnnkit.training", "rnnkit.estimators", ...).

An application that configures logging receives them through its own handlers, at the levels it
chooses. Where nothing is configured (a script, a notebook), the estimators, when `verbose` is on,
attach one handler that prints the bare message on stderr (`console()`), as scikit-learn's
estimators print; the command line does the same for each command (`command_console`, where
`--quiet` keeps warnings and errors only). The handler writes through tqdm, so a progress bar on the
same terminal is not torn.

    import logging; logging.getLogger("rnnkit").setLevel(logging.WARNING)   # silence rnnkit
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

from tqdm import tqdm

ROOT = "rnnkit"


def get(name: str) -> logging.Logger:
    """The logger of a module: get(__name__) inside the package."""
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


class ConsoleHandler(logging.Handler):
    """The bare message on the stderr of the moment (looked up at each record, so a redirected or
    captured stderr receives it), through tqdm.write so it lands above a running progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a closed stderr must not turn a log line into a traceback
            self.handleError(record)


def console() -> None:
    """For a library caller (the estimators when verbose): print rnnkit's messages on stderr when
    neither rnnkit's logger nor the root logger has a handler; records propagate as usual."""
    logger = logging.getLogger(ROOT)
    if not logger.hasHandlers():
        logger.addHandler(ConsoleHandler())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


@contextlib.contextmanager
def command_console(quiet: bool) -> Iterator[None]:
    """For one command of the command line, which owns its process: rnnkit's messages print once on
    stderr whatever the root logger holds (quiet: warnings and errors only). The logger is restored
    afterwards, since main() may run many times in one process (tests, scripts)."""
    logger = logging.getLogger(ROOT)
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers = [ConsoleHandler()]
    logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
