"""The Python API of the language model: `rnnkit.train(...)`, `rnnkit.load(dir)`, `Model.generate(...)`,
`Model.evaluate(...)`. The command line is a thin layer over these functions, so both validate
input the same way (UsageError)."""

from .model import TOKENS_FILE, Model, load, resolve_device
from .training import train

__all__ = ["train", "load", "Model", "resolve_device", "TOKENS_FILE"]
