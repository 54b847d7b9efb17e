"""Images in, sequences out: a small convolutional encoder trained from scratch (no downloaded
weights) whose feature grid a recurrent decoder attends over at every step (Xu et al. 2015),
`RNNCaptioner` (scikit-learn conventions) and `rnnkit caption`."""

from .captioner import RNNCaptioner
from .configs import CaptionerConfig

__all__ = ["RNNCaptioner", "CaptionerConfig"]
