"""The one place the version is written; the package, checkpoints and `--version` read it."""

__version__ = "0.1.0"
