"""Images from files or arrays, resized to one size, as uint8 tensors (N, C, H, W).

Every file is untrusted: a missing file, one that is not an image, a truncated one or one so large
that decoding it would exhaust memory (Pillow's decompression-bomb limit) is a UsageError naming it.
Arrays may be (N, H, W) greyscale or (N, H, W, 3) colour, integers 0-255 or floats in [0, 1].
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError


def _pil():
    from PIL import Image
    return Image


def read_image(path: str | os.PathLike, height: int, width: int, colour: bool) -> np.ndarray:
    """The image at `path`, resized (bilinear) to height x width: uint8 (C, height, width), C = 3 or 1."""
    Image = _pil()
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such image" if not p.exists() else f"{path} is not a regular file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as image:
                image = image.convert("RGB" if colour else "L")
                if image.size != (width, height):
                    image = image.resize((width, height), Image.BILINEAR)
                pixels = np.asarray(image, dtype=np.uint8)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UsageError(f"{path} is too large an image to decode safely; resize it first") from None
    except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"{path} is not an image rnnkit can read ({first[:150]}); give a PNG or JPEG file") from None
    return pixels.transpose(2, 0, 1) if colour else pixels[None]


def as_images(X, height: int, width: int, colour: bool) -> torch.Tensor:
    """Paths or an array of images -> uint8 (N, C, height, width). ValueError for arrays of another
    shape or range, UsageError for files that cannot be read."""
    if isinstance(X, (str, os.PathLike)):
        raise ValueError("X must be a sequence of images or image paths, not one path")
    if isinstance(X, (list, tuple)) and X and all(isinstance(x, (str, os.PathLike)) for x in X):
        return torch.from_numpy(np.stack([read_image(x, height, width, colour) for x in X]))
    array = np.asarray(X)
    if array.ndim == 4 and array.shape[-1] in (1, 3):
        array = array.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    elif array.ndim == 3:
        array = array[:, None]
    else:
        raise ValueError(f"X must be images (N, H, W) or (N, H, W, 3), or image paths; got an array of shape {array.shape}")
    if len(array) == 0:
        raise ValueError("X holds no images")
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise ValueError("image arrays must hold finite numbers")
    if np.issubdtype(array.dtype, np.floating):
        if array.min() < 0 or array.max() > 1:
            raise ValueError("float images must lie in [0, 1] (or give integers 0-255)")
        array = np.rint(array * 255)
    elif array.min() < 0 or array.max() > 255:
        raise ValueError("integer images must lie in 0-255")
    images = torch.from_numpy(array.astype(np.uint8))
    channels = 3 if colour else 1
    if images.shape[1] != channels:  # grey <-> colour: repeat the grey, or take the luminance
        images = images.repeat(1, 3, 1, 1) if channels == 3 else \
            (images.float() * torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1, keepdim=True).round().byte()
    if images.shape[2:] != (height, width):
        images = torch.nn.functional.interpolate(images.float(), size=(height, width), mode="bilinear",
                                                 align_corners=False).round().clamp(0, 255).byte()
    return images


def to_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float (B, C, H, W) in [-1, 1] on the device."""
    return images.to(device).float().div_(127.5).sub_(1.0)

