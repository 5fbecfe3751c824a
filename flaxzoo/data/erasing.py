"""Random erasing (Zhong et al. 2020), timm's `RandomErasing` defaults: one box, per-pixel normal noise.

Applied after normalisation, so the N(0, 1) fill has the statistics of a normalised image.
"""
from __future__ import annotations

import math

import numpy as np


def random_erase(image: np.ndarray, rng: np.random.Generator, *, prob: float = 0.25, mode: str = "pixel",
                 min_area: float = 0.02, max_area: float = 1 / 3, min_aspect: float = 0.3) -> np.ndarray:
    """With probability `prob`, replace one box covering `min_area`..`max_area` of a float (H, W, C) image.

    mode 'pixel': N(0, 1) per pixel and channel; 'rand': one N(0, 1) colour per box; 'const': zeros.
    """
    if mode not in ("pixel", "rand", "const"):
        raise ValueError(f"Random erasing mode must be 'pixel', 'rand' or 'const', got {mode!r}.")
    if prob <= 0 or rng.random() >= prob:
        return image
    h, w, c = image.shape
    log_aspect = (math.log(min_aspect), math.log(1 / min_aspect))
    for _ in range(10):
        target = h * w * rng.uniform(min_area, max_area)
        aspect = math.exp(rng.uniform(*log_aspect))
        eh, ew = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if eh < h and ew < w:
            top, left = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            if mode == "pixel":
                fill = rng.standard_normal((eh, ew, c))
            elif mode == "rand":
                fill = rng.standard_normal((1, 1, c))
            else:
                fill = np.zeros((1, 1, c))
            out = image.copy()
            out[top:top + eh, left:left + ew] = fill.astype(image.dtype)
            return out
    return image
