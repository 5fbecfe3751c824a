"""Geometric image ops on numpy HWC arrays, resampled with PIL (the library timm's transforms use).

uint8 images go through PIL as they are (bit-compatible with timm/torchvision for RGB and grayscale);
float images in [0, 1] are resized channel by channel in PIL's 32-bit float mode, so nothing is
quantised. Every random op takes a numpy Generator: the caller decides the seed.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

INTERPOLATIONS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
                  "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING}


def as_hwc(image) -> np.ndarray:
    """PIL image or numpy (H, W) / (H, W, C) array -> numpy (H, W, C), dtype kept (uint8 or float)."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}.")
    if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"Expected a uint8 image (0..255) or a float image (0..1), got dtype {arr.dtype}.")
    return arr[..., :3] if arr.shape[-1] == 4 else arr  # drop alpha


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 0..255 or float 0..1 -> float32 0..1."""
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def set_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Grayscale <-> RGB so the image has the channels the model takes (ITU-R 601 luma, as PIL's 'L')."""
    have = image.shape[-1]
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=-1)
    if have == 3 and channels == 1:
        luma = to_float(image) @ np.asarray([0.299, 0.587, 0.114], np.float32)
        luma = luma[..., None]
        return to_uint8(luma) if image.dtype == np.uint8 else luma
    raise ValueError(f"Cannot turn a {have}-channel image into {channels} channels.")


def resize(image: np.ndarray, height: int, width: int, interpolation: str = "bilinear") -> np.ndarray:
    """(H, W, C) -> (height, width, C) with PIL's resampling filter (antialiased when shrinking)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"Unknown interpolation {interpolation!r}; choose from {sorted(INTERPOLATIONS)}.")
    if image.shape[:2] == (height, width):
        return image
    method = INTERPOLATIONS[interpolation]
    if image.dtype == np.uint8:
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        out = np.asarray(pil.resize((width, height), method))
        return out[..., None] if out.ndim == 2 else out
    planes = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F").resize((width, height), method))
              for c in range(image.shape[-1])]
    return np.stack(planes, -1).astype(image.dtype)


def resize_shorter(image: np.ndarray, size: int, interpolation: str) -> np.ndarray:
    """Shorter side to `size`, aspect kept (the longer side truncated as torchvision's Resize(int) does)."""
    h, w = image.shape[:2]
    if h <= w:
        return resize(image, size, int(size * w / h), interpolation)
    return resize(image, int(size * h / w), size, interpolation)


def center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Central (height, width) window; an image smaller than that is zero-padded first (as torchvision)."""
    h, w = image.shape[:2]
    if h < height or w < width:
        ph, pw = max(height - h, 0), max(width - w, 0)
        image = np.pad(image, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
        h, w = image.shape[:2]
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return image[top:top + height, left:left + width]


def random_resized_crop_box(h: int, w: int, rng: np.random.Generator, scale=(0.08, 1.0),
                            ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, height, width) of an Inception-style crop: area fraction in `scale`, log-uniform aspect
    in `ratio`; ten tries, then the largest central crop whose aspect is within `ratio`."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    aspect = w / h
    if aspect < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif aspect > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def random_resized_crop(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator, *, scale=(0.08, 1.0),
                        ratio=(3 / 4, 4 / 3), interpolation: str = "bilinear") -> np.ndarray:
    top, left, ch, cw = random_resized_crop_box(image.shape[0], image.shape[1], rng, scale, ratio)
    return resize(image[top:top + ch, left:left + cw], size[0], size[1], interpolation)
