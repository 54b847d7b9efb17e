"""Self-describing, crash-safe checkpoints: safetensors for tensors, JSON for everything else.

A run directory holds:
    rnnkit.json              what the run is: configs, vocabulary, corpus, step, metrics, and the
                             name + SHA-256 of each tensor file below (the commit point)
    model-<tag>.safetensors  latest weights
    best-<tag>.safetensors   weights with the lowest validation loss so far
    resume-<tag>.safetensors optimizer moments, RNG states, carried hidden state
    data/                    the encoded corpus (token file)

Nothing is ever unpickled: safetensors holds raw tensors and JSON holds plain data, so loading a
checkpoint cannot execute code. Saving writes new tensor files under fresh names first, then
atomically replaces rnnkit.json (write temp, fsync, rename), and only then deletes files the new
JSON no longer names. A kill at any instant leaves a JSON whose files all exist and verify.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .config import available_memory
from .errors import UsageError
from .outputs import write
from .schema import ENVELOPE, validate

MARKER = "rnnkit.json"
FORMAT = "rnnkit-checkpoint"
VERSION = 1
ROLES = ("model", "best", "resume")
DATA_MARKER = ".rnnkit"  # in a run's data/ folder: rnnkit made the folder and may replace what is in it


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether path holds a run description (which read_meta then checks)."""
    return os.path.lexists(Path(path) / MARKER)


def check_new_run_dir(path: Path) -> None:
    """Refuse to train into a directory that holds anything: never overwrite a user's files."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} is a file; give a directory for the run")
    if not path.is_dir():
        return
    if is_run_dir(path):
        raise UsageError(f"--out {path} already holds an rnnkit run; continue it with "
                         f"`rnnkit train --resume {path}` or choose another --out")
    if any(p.name != "data" for p in path.iterdir()):
        raise UsageError(f"--out {path} exists and is not an rnnkit run directory; "
                         "choose a new or empty directory")
    # A run stopped before its first checkpoint leaves only data/ behind, with rnnkit's marker in
    # it: that is ours to reuse. A data/ folder without the marker is the user's.
    data = path / "data"
    if data.exists() and not (data / DATA_MARKER).is_file():
        raise UsageError(f"--out {path} holds a data folder rnnkit did not make; choose a new or empty directory")


# The names rnnkit gives its files in a run directory; only these does it ever delete there.
TENSOR_FILE = re.compile(r"(model|best|resume)-\d{8,}-[0-9a-f]{6}\.safetensors")
TEMPORARY_FILE = re.compile(r"\.(rnnkit\.json|(model|best|resume)-\d{8,}-[0-9a-f]{6}\.safetensors)\.[0-9a-f]{8}\.tmp")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(run_dir: Path, meta: dict[str, Any], tensors: dict[str, dict[str, torch.Tensor] | None]) -> None:
    """Write a checkpoint. `tensors` maps a role to its tensors, or to None to keep that role's
    current file (e.g. "best" when validation did not improve)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = read_meta(run_dir)["files"] if is_run_dir(run_dir) else {}
    files: dict[str, dict[str, str]] = {}
    tag = f"{meta.get('step', 0):08d}-{secrets.token_hex(3)}"
    written: list[Path] = []
    try:
        for role in ROLES:
            if role not in tensors:
                continue
            group = tensors[role]
            if group is None:
                if role in previous:
                    files[role] = previous[role]
                continue
            blob = save_safetensors({k: v.detach().to("cpu").contiguous() for k, v in group.items()})
            name = f"{role}-{tag}.safetensors"
            written.append(run_dir / name)
            write(run_dir / name, blob)
            files[role] = {"file": name, "sha256": hashlib.sha256(blob).hexdigest()}
        doc = {"format": FORMAT, "version": VERSION, **meta, "files": files}
        write(run_dir / MARKER, json.dumps(doc, indent=1).encode())
    except BaseException:  # a full disk, a kill: the previous checkpoint stays whole and alone
        for path in written:
            path.unlink(missing_ok=True)
        raise
    _fsync_dir(run_dir)
    keep = {entry["file"] for entry in files.values()}
    for path in run_dir.iterdir():
        if (TENSOR_FILE.fullmatch(path.name) and path.name not in keep) or TEMPORARY_FILE.fullmatch(path.name):
            path.unlink(missing_ok=True)


def update_meta(run_dir: Path, **fields: Any) -> None:
    """Add or replace top-level fields of rnnkit.json (atomically); tensor files are untouched."""
    doc = read_meta(run_dir)
    doc.update(fields)
    write(run_dir / MARKER, json.dumps(doc, indent=1).encode())


def read_meta(run_dir: str | os.PathLike) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UsageError(f"{run_dir}: no such directory")
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a directory; give an rnnkit run directory (the --out of `rnnkit train`)")
    if not is_run_dir(run_dir):
        raise UsageError(f"{run_dir} is not an rnnkit run directory (no {MARKER}); "
                         "give the --out directory of `rnnkit train`")
    marker = _regular_file(run_dir, MARKER, MAX_DESCRIPTION_BYTES)
    try:
        doc = json.loads(marker.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as e:
        reason = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8 JSON"
        raise UsageError(f"checkpoint {run_dir} is corrupted ({MARKER} is not valid JSON: {reason})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UsageError(f"checkpoint {run_dir} is corrupted ({MARKER} is not an rnnkit checkpoint description)")
    validate(doc, ENVELOPE, MARKER, f"checkpoint {run_dir}")
    if doc["version"] > VERSION:
        raise UsageError(f"checkpoint {run_dir} was written by a newer rnnkit (format {doc['version']}); upgrade rnnkit")
    return doc


def _regular_file(run_dir: Path, name: str, max_bytes: int) -> Path:
    """run_dir/name, checked to be a regular file inside the run (not a FIFO, a device or a link
    out of it) and of a size that can be read; a UsageError otherwise."""
    path = run_dir / name
    try:
        inside = path.resolve().is_relative_to(run_dir.resolve())
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"checkpoint {run_dir} is incomplete: {name} is missing") from None
    except OSError as e:
        raise UsageError(f"checkpoint {run_dir}: cannot read {name} ({e.strerror})") from None
    if not inside:
        raise UsageError(f"checkpoint {run_dir} is corrupted: {name} is a link to outside the run directory")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"checkpoint {run_dir} is corrupted: {name} is {_file_kind(info.st_mode)}, not a regular file")
    if info.st_size > max_bytes:
        raise UsageError(f"checkpoint {run_dir} is corrupted: {name} is {info.st_size:,} bytes, more than the "
                         f"{max_bytes:,} rnnkit reads for it")
    return path


def _file_kind(mode: int) -> str:
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")


def load_tensors(run_dir: str | os.PathLike, meta: dict[str, Any], role: str) -> dict[str, torch.Tensor]:
    """Load and verify one tensor file; corrupted, truncated or hostile files are a UsageError.
    The file must be a regular file in the run, its header must describe exactly the bytes that
    follow it, and its checksum must match, before any tensor is built."""
    run_dir = Path(run_dir)
    entry = meta["files"].get(role)
    if entry is None:
        raise UsageError(f"checkpoint {run_dir} has no {role} weights")
    path = _regular_file(run_dir, entry["file"], available_memory())  # it is read whole
    with open(path, "rb") as f:
        header_problem = _header_problem(f, path.stat().st_size)
        if header_problem:
            raise UsageError(f"checkpoint {run_dir} is corrupted: {entry['file']} {header_problem}")
        f.seek(0)
        blob = f.read()
    if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
        raise UsageError(f"checkpoint {run_dir} is corrupted: {entry['file']} does not match its "
                         "checksum (truncated or modified)")
    try:
        return load_safetensors(blob)
    except Exception as e:  # a file that hashes right but does not parse: written by something else
        raise UsageError(f"checkpoint {run_dir} is corrupted: {entry['file']} is unreadable ({e})") from None


MAX_HEADER_BYTES = 16 << 20
MAX_DESCRIPTION_BYTES = 256 << 20  # rnnkit.json: configs, vocabulary, metrics


def _header_problem(f, size: int) -> str | None:
    """What is wrong with a safetensors file's header, if anything: an 8-byte little-endian length,
    that much JSON, then tensor data whose offsets must cover exactly the rest of the file."""
    head = f.read(8)
    if len(head) < 8:
        return "is too short to be a tensor file"
    length = int.from_bytes(head, "little")
    if length > min(MAX_HEADER_BYTES, size - 8):
        return "has a header longer than the file"
    try:
        header = json.loads(f.read(length).decode("utf-8"))
        ends = [int(t["data_offsets"][1]) for name, t in header.items() if name != "__metadata__"]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        return "has an unreadable header"
    if 8 + length + max(ends, default=0) != size:
        return "has a header that does not match its size (truncated or padded)"
    return None


# --------------------------------------------------------------------- optimizer state, no pickle
def flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state_dict into tensors (for safetensors) and plain JSON data."""
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for pid, slots in state_dict["state"].items():
        plain_state[str(pid)] = {}
        for name, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{name}"] = value
            else:
                plain_state[str(pid)][name] = value
    return tensors, {"state": plain_state, "param_groups": state_dict["param_groups"]}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(pid): dict(slots) for pid, slots in plain["state"].items()}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": plain["param_groups"]}
