"""rnnkit: recurrent neural networks as general sequence learners."""

from .api import Model, load, train
from .config import ModelConfig, TrainConfig
from .errors import UsageError
from .version import __version__

__all__ = ["train", "load", "Model", "ModelConfig", "TrainConfig", "UsageError", "__version__"]
