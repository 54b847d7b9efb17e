"""Optional dependencies: a command that needs one says which extra to install, in one line."""

from __future__ import annotations

import importlib.util

from .errors import UsageError


def require(modules: tuple[str, ...], extra: str, what: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"{what} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
                         f"installed; install it with: pip install 'rnnkit[{extra}]'")
