"""`RNNCaptioner`: images in, captions out (scikit-learn conventions, rnnkit's checkpoint format).

    captioner = RNNCaptioner(level="char", image_height=32, image_width=96).fit(images, captions)
    captioner.predict(new_images)                 # one string per image
    captions, maps = captioner.predict_with_attention(new_images)   # maps: (T, h, w) per image
    captioner.save("runs/captions"); RNNCaptioner.load("runs/captions")

X: an array of images, (N, H, W) greyscale or (N, H, W, 3) colour (integers 0-255 or floats in
[0, 1]), or a list of image file paths (PNG, JPEG: anything Pillow reads); every image is resized
to image_height x image_width. y: one caption (a string) per image. `score` is exact match.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..data.tokenizers import Tokenizer
from ..estimators.base import RNNEstimator, init_from_config, strings
from .configs import CaptionerConfig
from .data import as_images, to_input
from .model import CaptionModel
from .task import CaptionTask

PREDICT_BATCH = 128
FIRST_BLOCK_VALUES = 1 << 27  # at most this many values in the first block's activations of one batch (0.5 GB)


class RNNCaptioner(RNNEstimator):
    """Hyperparameters: the fields of `CaptionerConfig`."""

    config_class = CaptionerConfig
    __init__ = init_from_config(CaptionerConfig)
    # Caption ids: the tokenizer's ids shifted by 2, so 2 and 3 are free for BOS and EOS.
    BOS, EOS, SHIFT = 2, 3, 2

    def _caption_ids(self, text: str) -> list[int]:
        return [i + self.SHIFT if i >= 2 else i for i in self.tokenizer_.encode(text)]

    def _images(self, X) -> torch.Tensor:
        return as_images(X, self.image_height, self.image_width, self.colour)

    def _prepare(self, X, y):
        captions = strings(y, "y")
        for i, caption in enumerate(captions):
            if not caption.strip():
                raise ValueError(f"caption {i} is empty; every image needs a caption")
        images = self._images(X)
        if len(images) != len(captions):
            raise ValueError(f"X has {len(images)} images but y has {len(captions)} captions")
        self.tokenizer_ = Tokenizer(self.level, self.lowercase).fit(captions)
        self.grid_ = [self.image_height // 2 ** self.conv_blocks, self.image_width // 2 ** self.conv_blocks]
        return list(images), [self._caption_ids(c) for c in captions]

    def _build_model(self) -> CaptionModel:
        return CaptionModel(len(self.tokenizer_) + self.SHIFT, 3 if self.colour else 1, self.image_height,
                            self.image_width, self.conv_channels, self.conv_blocks, self.cell, self.hidden_size,
                            self.embedding_size, self.dropout, self.BOS, self.EOS, self.row_encoder)

    def _make_task(self, train, val, device):
        return CaptionTask(*train, *val, self.batch_size, self.random_state, device, self.BOS, self.EOS)

    def _train(self, task, config, device, on_epoch_end=None, **train_config) -> None:
        super()._train(task, config, device, on_epoch_end, time=config.time, **train_config)

    def _prepare_again(self, X, y):
        captions = strings(y, "y")
        images = self._images(X)
        if len(images) != len(captions) or not all(c.strip() for c in captions):
            return self._prepare(X, y)  # the same checks and messages
        return list(images), [self._caption_ids(c) for c in captions]

    # ------------------------------------------------------------------ predicting
    @torch.no_grad()
    def predict_with_attention(self, X) -> tuple[list[str], list[np.ndarray]]:
        """Captions, and for each the attention weights (T, h, w): row t is where the decoder looked
        before writing token t (the last row: before writing the end of the caption). Each row sums to 1."""
        check_is_fitted(self, "model_")
        self.config()  # beam_size and max_length may have been set since fit
        images = self._images(X)
        self.model_.eval()
        device = next(self.model_.parameters()).device
        joiner = "" if self.level == "char" else " "
        captions, maps = [], []
        # large images go fewer at a time, so that the first block's activations stay bounded
        batch = max(1, min(PREDICT_BATCH, FIRST_BLOCK_VALUES // (self.image_height * self.image_width *
                                                                 self.conv_channels)))
        for start in range(0, len(images), batch):
            ids, attention = self.model_.decode(to_input(images[start:start + batch], device),
                                                self.max_length, self.beam_size)
            captions += [joiner.join(self.tokenizer_.tokens[i - self.SHIFT] for i in row if i >= 4) for row in ids]
            maps += [a.reshape(len(a), *self.grid_).numpy() for a in attention]
        return captions, maps

    def predict(self, X) -> list[str]:
        return self.predict_with_attention(X)[0]

    def score(self, X, y) -> float:
        """Exact match: the share of images whose caption is exactly the expected one."""
        return float(np.mean([p == t for p, t in zip(self.predict(X), strings(y, "y"))]))

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer_.to_json(), "grid": self.grid_}

    def _restore_fitted(self, state: dict[str, Any]) -> None:
        self.tokenizer_ = Tokenizer.from_json(state["tokenizer"])
        grid = state["grid"]
        if grid != [self.image_height // 2 ** self.conv_blocks, self.image_width // 2 ** self.conv_blocks]:
            raise ValueError("the attention grid does not match the image size")
        self.grid_ = grid
