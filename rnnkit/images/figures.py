"""Where the decoder looked: for each image, one panel per generated token with the attention
weights over the feature grid drawn as a heatmap over the image (upsampled to the image's size)."""

from __future__ import annotations

import numpy as np

from ..outputs import png

MAX_PANELS = 16  # tokens shown per image; longer captions show their first ones


def attention_png(images: np.ndarray, captions: list[str], maps: list[np.ndarray], level: str = "char") -> bytes:
    """images (N, H, W) or (N, C, H, W) uint8, captions and their attention maps (T, h, w) ->
    PNG bytes: a row per image, a panel per token (the last panel: before the end of the caption)."""
    from ..diagnostics.figures import pyplot
    plt = pyplot()
    images = np.asarray(images)
    rows = len(captions)
    columns = min(MAX_PANELS, max(len(m) for m in maps)) if maps else 1
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns * images.shape[-1] / images.shape[-2] / 2 + 1,
                                                     1.6 * rows), squeeze=False)
    for r, (image, caption, weights) in enumerate(zip(images, captions, maps)):
        picture = image.transpose(1, 2, 0) if image.ndim == 3 and image.shape[0] == 3 else image.reshape(image.shape[-2:])
        tokens = (list(caption) if level == "char" else caption.split()) + ["(end)"]
        for c in range(columns):
            ax = axes[r, c]
            ax.set_axis_off()
            if c >= len(weights):
                continue
            ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
            ax.imshow(upsample(weights[c], picture.shape[:2]), cmap="magma", alpha=0.55)
            ax.set_title(tokens[c] if c < len(tokens) else "", fontsize=9)
    fig.tight_layout()
    return png(fig)


def upsample(weights: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) grid weights -> (H, W), each cell's weight over the pixels it covers (nearest)."""
    h, w = weights.shape
    rows = np.minimum(np.arange(size[0]) * h // size[0], h - 1)
    cols = np.minimum(np.arange(size[1]) * w // size[1], w - 1)
    return weights[rows][:, cols]
