"""Command-line flags generated from the config dataclasses, so each default, choice list and
help text is written once, beside the field it describes.

A field ``hidden_size: int = 256  # units per recurrent layer`` becomes
``--hidden-size N  units per recurrent layer (default 256)``; comment lines right below a field
continue its help; a ``# --- title`` line starts an argument group. Choices come from
`config.CHOICES`; booleans become ``--flag`` / ``--no-flag``.
"""

from __future__ import annotations

import argparse
import inspect
import re
from dataclasses import MISSING, dataclass, fields
from typing import Any

from ..config import CHOICES

S = argparse.SUPPRESS  # flags the user did not give stay absent, so defaults live in the config

_FIELD = re.compile(r"^\s+(\w+): [^=#]+(?:=[^#]*)?(?:#\s*(.*))?$")
_CONTINUATION = re.compile(r"^\s+#\s?(?!---)(.*)$")
_SECTION = re.compile(r"^\s+# ---\s*(.*)$")


@dataclass
class FieldDoc:
    help: str
    section: str | None


def field_docs(cls: type) -> dict[str, FieldDoc]:
    """Help text and section of every field of a dataclass and its bases, read from the source."""
    docs: dict[str, FieldDoc] = {}
    for klass in reversed(cls.__mro__[:-1]):  # bases first, so a subclass's comment wins
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):  # no source (frozen install): flags without help
            continue
        section, current = None, None
        for line in lines:
            if m := _SECTION.match(line):
                section, current = m.group(1), None
            elif (m := _FIELD.match(line)) and not line.strip().startswith("def "):
                current = m.group(1)
                docs[current] = FieldDoc((m.group(2) or "").strip(), section)
            elif current and (m := _CONTINUATION.match(line)):
                docs[current].help += " " + m.group(1).strip()
            else:
                current = None
    return docs


def _type_of(annotation: str) -> tuple[type, bool]:
    """("int | None") -> (int, True)."""
    parts = [p.strip() for p in str(annotation).split("|")]
    return {"int": int, "float": float, "str": str, "bool": bool}[parts[0]], "None" in parts


def add_config_flags(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (),
                     rename: dict[str, str] | None = None, groups: bool = True) -> dict[str, str]:
    """Add a flag for every field of `cls` not in `skip`; returns {argparse dest: field name}.
    Flags left out on the command line are absent from the parsed namespace."""
    docs, rename = field_docs(cls), rename or {}
    made = {group.title: group for group in parser._action_groups}  # a section joins a group of its title
    dests: dict[str, str] = {}
    for f in fields(cls):
        if f.name in skip or f.default is MISSING:
            continue
        doc = docs.get(f.name, FieldDoc("", None))
        target = parser
        if groups and doc.section:
            target = made.get(doc.section) or made.setdefault(doc.section, parser.add_argument_group(doc.section))
        kind, optional = _type_of(f.type)
        name = rename.get(f.name, f.name)
        flag = "--" + name.replace("_", "-")
        shown = "" if f.default is None or kind is bool else f" (default {f.default:g})" \
            if isinstance(f.default, float) else f" (default {f.default})"
        options: dict[str, Any] = {"dest": name, "default": S, "help": doc.help + shown}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
            options["help"] += f" (default {'on' if f.default else 'off'})"
        else:
            options["type"] = kind
            if f.name in CHOICES:
                options["choices"] = CHOICES[f.name]
            else:
                options["metavar"] = {int: "N", float: "X"}.get(kind, name.upper())
        target.add_argument(flag, **options)
        dests[name] = f.name
    return dests


def config_values(args: argparse.Namespace, dests: dict[str, str]) -> dict[str, Any]:
    """The fields the user gave, by field name."""
    given = vars(args)
    return {field: given[dest] for dest, field in dests.items() if dest in given}


WHICH = ("best", "last")


def add_which_and_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--which", choices=WHICH, default="best", help="best (lowest validation loss) or last weights")
    p.add_argument("--device", choices=CHOICES["device"], default="auto",
                   help="where the model runs: auto = cuda when PyTorch sees a GPU (default auto)")


def add_command(sub, name: str, help: str, description: str, epilog: str | None = None,
                run_dir: bool = False, file: str | None = None, which: bool = False,
                output: tuple[tuple[str, ...], str, str | None, str] | None = None) -> argparse.ArgumentParser:
    """A subcommand's parser (help text laid out as written), with the arguments most commands
    share: the run directory, a text FILE (`file` is its help), --which weights to load, and an
    output path (`output`: its flags, metavar, default and help) with --force beside it."""
    p = sub.add_parser(name, help=help, description=description, epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    if run_dir:
        p.add_argument("run_dir", metavar="DIR", help="run directory written by `rnnkit train`")
    if file is not None:
        p.add_argument("file", metavar="FILE", help=file)
    if which:  # commands that load weights run the model: where is theirs to choose
        add_which_and_device(p)
    if output is not None:
        flags, metavar, default, about = output
        p.add_argument(*flags, dest="out", default=default, metavar=metavar, help=about)
        p.add_argument("--force", action="store_true",
                       help="replace an existing output file that rnnkit did not write (never a run's own files)")
    return p
