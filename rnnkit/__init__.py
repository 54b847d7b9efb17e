"""rnnkit: recurrent neural networks as general sequence learners."""

__version__ = "0.1.0"

from .api import Model, load, train  # noqa: E402
from .config import ModelConfig, TrainConfig  # noqa: E402
from .errors import UsageError  # noqa: E402

__all__ = ["train", "load", "Model", "ModelConfig", "TrainConfig", "UsageError", "__version__"]
