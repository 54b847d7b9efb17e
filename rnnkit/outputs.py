"""Files rnnkit writes for its user (pages, figures, reports), and the rule that guards theirs.

rnnkit replaces only a file it can prove it wrote: each such file carries a signature (a PNG text
chunk "Software: rnnkit", `<meta name="generator" content="rnnkit">` in a page, `"written_by":
"rnnkit"` first in a JSON report). Any other file at an output path is refused with one line unless
the user passes --force, and the files of a run (its description, weights and encoded corpus)
are refused even then: writing a figure over them would destroy the run. Every write goes to a
temporary file beside the target and is renamed into place, so a full disk or a kill leaves the
old file whole and no temporary file behind.
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import Iterable

from .errors import UsageError

SIGNATURES = (b"Software\x00rnnkit", b'<meta name="generator" content="rnnkit">', b'"written_by": "rnnkit"',
              b'"written_by": "rnnkit experiment"', b'"written_by": "rnnkit diagnose"')  # the reports' writers
SIGNATURE_WINDOW = 1 << 16  # signatures sit at the start of the files rnnkit writes
HTML_SIGNATURE = SIGNATURES[1].decode()
PNG_METADATA = {"Software": "rnnkit"}
RUN_FILES = ("rnnkit.json", "metrics.jsonl")  # with *.safetensors and data/: the parts of a run


def written_by_rnnkit(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(SIGNATURE_WINDOW)
    except OSError:
        return False
    return any(signature in head for signature in SIGNATURES)


def _part_of_a_run(path: Path) -> bool:
    if path.name in RUN_FILES or path.suffix == ".safetensors":
        return True
    return path.parent.name == "data" and (path.parent.parent / "rnnkit.json").exists()


def claim(paths: Iterable[str | os.PathLike], force: bool = False, flag: str = "--out") -> list[Path]:
    """Check, before any work is done, that rnnkit may write each path (see the module's rule)."""
    claimed = []
    for path in map(Path, paths):
        if path.is_dir():
            raise UsageError(f"{flag} {path} is a directory; give a file name")
        if path.exists() or path.is_symlink():
            if _part_of_a_run(path):
                raise UsageError(f"{flag} {path} is part of the rnnkit run in {path.parent}; writing there "
                                 "would destroy the run, so choose another path")
            if not path.is_file():
                raise UsageError(f"{flag} {path} exists and is not a regular file; choose another path")
            if not force and not written_by_rnnkit(path):
                raise UsageError(f"{flag} {path} exists and was not written by rnnkit; choose another path, "
                                 "or pass --force to replace it")
        claimed.append(path)
    return claimed


def write(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to path atomically (temporary file in the same folder, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def png(fig, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes carrying rnnkit's signature; the figure is closed."""
    from .diagnostics.figures import pyplot
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata=PNG_METADATA)
    pyplot().close(fig)
    return buffer.getvalue()
