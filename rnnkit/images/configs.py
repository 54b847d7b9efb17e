"""The captioner's hyperparameters: the shared network and training fields, the image size and
encoder, tokens and decoding. Each comment is the `rnnkit caption train` flag's help."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import _in_range, check_fits_in_memory
from ..errors import UsageError
from ..estimators.configs import NetworkConfig

LEVELS = ("char", "word")


@dataclass(frozen=True)
class CaptionerConfig(NetworkConfig):
    hidden_size: int = 256  # units of the decoder's LSTM
    epochs: float = 20.0  # passes over the training images
    batch_size: int = 64  # images per batch
    lr: float = 2e-3  # learning rate
    time: float | None = None  # stop training after this many seconds (the first of --epochs and --time)
    warm_start: bool = False  # Python only: fit again from the previous fit's weights, tokens and classes
    # (words it never saw read as unknown; a new class is an error) instead of from scratch
    # --- images
    image_height: int = 64  # every image is resized to this height (pixels)
    image_width: int = 64  # and to this width
    colour: bool = False  # read images in colour (RGB); greyscale otherwise
    conv_channels: int = 32  # channels of the encoder's first block (each further block doubles them)
    conv_blocks: int = 3  # convolutional blocks, each halving the image: the grid attended over is
    # (height / 2^blocks) x (width / 2^blocks)
    row_encoder: bool = False  # read each row of that grid with a bidirectional LSTM before attending (Deng et
    # al. 2017), so each cell's features tell what lies left and right of it
    # --- tokens
    level: str = "word"  # caption tokens: words (split on spaces) or characters
    lowercase: bool = False  # lowercase the captions first
    # --- decoding
    beam_size: int = 1  # beam search width; 1 = greedy decoding
    max_length: int = 40  # longest caption, in tokens

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.level not in LEVELS:
            raise UsageError(f"--level must be one of {', '.join(LEVELS)} (got {self.level!r})")
        if self.time is not None and not 0 < self.time <= 1e8:
            raise UsageError(f"--time must be in (0, 1e8] seconds (got {self.time})")
        _in_range(self, "image_height", 8, 1024)
        _in_range(self, "image_width", 8, 1024)
        _in_range(self, "conv_channels", 1, 1024)
        _in_range(self, "conv_blocks", 1, 6)
        _in_range(self, "beam_size", 1, 100)
        _in_range(self, "max_length", 1, 10_000)
        check_fits_in_memory(4 * self.encoder_parameters(), "the image encoder's weights")
        for side in ("image_height", "image_width"):
            if getattr(self, side) < 2 ** self.conv_blocks:
                raise UsageError(f"--{side.replace('_', '-')} {getattr(self, side)} is smaller than the "
                                 f"{2 ** self.conv_blocks} pixels {self.conv_blocks} blocks halve it to one cell")

    def encoder_parameters(self) -> int:
        """The convolutional encoder's weights (3 x 3 kernels) and its learned vector per grid cell."""
        total, c_in = 0, 3
        for k in range(self.conv_blocks):
            c_out = self.conv_channels * 2 ** k
            total += 9 * (c_in * c_out + c_out * c_out)
            c_in = c_out
        cells = (self.image_height // 2 ** self.conv_blocks) * (self.image_width // 2 ** self.conv_blocks)
        return total + cells * c_in
