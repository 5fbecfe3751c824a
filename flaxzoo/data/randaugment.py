"""RandAugment (Cubuk et al. 2020) with timm's policy strings, e.g. `rand-m9-mstd0.5-inc1` (Swin's recipe).

A policy string is `rand` followed by dash-separated settings:
    m<float>     magnitude on timm's 0..10 scale (default 10)
    n<int>       ops applied per image (default 2), drawn with replacement
    mstd<float>  std of a Gaussian jitter of the magnitude per op (0 = fixed; `inf` = uniform 0..m)
    mmax<float>  upper clip of the magnitude (default 10)
    p<float>     probability that each drawn op is applied (default 0.5)
    inc<0|1>     1 = the "increasing" op set, where a larger magnitude is always a stronger distortion

The ops and their magnitude -> argument maps follow timm's `auto_augment.py` (rotate up to 30 degrees,
shear up to 0.3, translate up to 45% of the size, enhance factors 0.1..1.9, ...), written here with PIL.
Geometric ops fill uncovered pixels with `fill` (timm uses the dataset mean). Randomness comes only from
the Generator passed in, so an example's augmentation is a function of (seed, example index).
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

MAX_LEVEL = 10.0


def _signed(value: float, rng) -> float:
    return -value if rng.random() < 0.5 else value


def _affine(img, matrix, fill):
    return img.transform(img.size, Image.AFFINE, matrix, resample=Image.BILINEAR, fillcolor=fill)


# Each op: (img, level 0..10, rng, fill) -> img.
def _identity(img, level, rng, fill):
    return img


def _auto_contrast(img, level, rng, fill):
    return ImageOps.autocontrast(img)


def _equalize(img, level, rng, fill):
    return ImageOps.equalize(img)


def _invert(img, level, rng, fill):
    return ImageOps.invert(img)


def _rotate(img, level, rng, fill):
    return img.rotate(_signed(level / MAX_LEVEL * 30.0, rng), resample=Image.BILINEAR, fillcolor=fill)


def _posterize_bits(level):  # bits kept, 0..4 (timm's `_posterize_level_to_arg`)
    return int(level / MAX_LEVEL * 4)


def _posterize(img, level, rng, fill):
    return ImageOps.posterize(img, _posterize_bits(level))


def _posterize_increasing(img, level, rng, fill):
    return ImageOps.posterize(img, 4 - _posterize_bits(level))


def _solarize(img, level, rng, fill):
    return ImageOps.solarize(img, min(256, int(level / MAX_LEVEL * 256)))


def _solarize_increasing(img, level, rng, fill):
    return ImageOps.solarize(img, 256 - min(256, int(level / MAX_LEVEL * 256)))


def _solarize_add(img, level, rng, fill, threshold=128):
    add = min(128, int(level / MAX_LEVEL * 110))
    arr = np.asarray(img).astype(np.int32)
    out = np.where(arr < threshold, np.minimum(arr + add, 255), arr).astype(np.uint8)
    return Image.fromarray(out, mode=img.mode)


def _enhancer(kind, increasing):
    def op(img, level, rng, fill):
        if increasing:
            factor = 1.0 + _signed(level / MAX_LEVEL * 0.9, rng)
        else:
            factor = level / MAX_LEVEL * 1.8 + 0.1
        return getattr(ImageEnhance, kind)(img).enhance(max(factor, 0.0))
    return op


def _shear_x(img, level, rng, fill):
    return _affine(img, (1, _signed(level / MAX_LEVEL * 0.3, rng), 0, 0, 1, 0), fill)


def _shear_y(img, level, rng, fill):
    return _affine(img, (1, 0, 0, _signed(level / MAX_LEVEL * 0.3, rng), 1, 0), fill)


def _translate_x(img, level, rng, fill):
    return _affine(img, (1, 0, _signed(level / MAX_LEVEL * 0.45, rng) * img.size[0], 0, 1, 0), fill)


def _translate_y(img, level, rng, fill):
    return _affine(img, (1, 0, 0, 0, 1, _signed(level / MAX_LEVEL * 0.45, rng) * img.size[1]), fill)


_COMMON = {"AutoContrast": _auto_contrast, "Equalize": _equalize, "Invert": _invert, "Rotate": _rotate,
           "ShearX": _shear_x, "ShearY": _shear_y, "TranslateXRel": _translate_x, "TranslateYRel": _translate_y,
           "SolarizeAdd": _solarize_add}
# timm's _RAND_TRANSFORMS and _RAND_INCREASING_TRANSFORMS (same order).
OPS = dict(_COMMON, Posterize=_posterize, Solarize=_solarize, Color=_enhancer("Color", False),
           Contrast=_enhancer("Contrast", False), Brightness=_enhancer("Brightness", False),
           Sharpness=_enhancer("Sharpness", False))
INCREASING_OPS = dict(_COMMON, PosterizeIncreasing=_posterize_increasing, SolarizeIncreasing=_solarize_increasing,
                      ColorIncreasing=_enhancer("Color", True), ContrastIncreasing=_enhancer("Contrast", True),
                      BrightnessIncreasing=_enhancer("Brightness", True),
                      SharpnessIncreasing=_enhancer("Sharpness", True))


def parse_policy(policy: str) -> dict:
    """`rand-m9-mstd0.5` -> {'magnitude': 9.0, 'num_ops': 2, 'magnitude_std': 0.5, ...}."""
    parts = policy.split("-")
    if parts[0] != "rand":
        raise ValueError(f"Only RandAugment policies are supported ('rand-m9-mstd0.5'); got {policy!r}.")
    out = dict(magnitude=MAX_LEVEL, num_ops=2, magnitude_std=0.0, magnitude_max=MAX_LEVEL, prob=0.5,
               increasing=False)
    keys = (("mstd", "magnitude_std", float), ("mmax", "magnitude_max", float), ("inc", "increasing", int),
            ("m", "magnitude", float), ("n", "num_ops", int), ("p", "prob", float))
    for part in parts[1:]:
        for prefix, name, cast in keys:  # longest prefixes first: 'mstd' before 'm'
            if part.startswith(prefix):
                try:
                    out[name] = cast(part[len(prefix):])
                except ValueError:
                    raise ValueError(f"Bad RandAugment setting {part!r} in {policy!r}.") from None
                break
        else:
            raise ValueError(f"Unknown RandAugment setting {part!r} in {policy!r}; use m, n, mstd, mmax, p, inc.")
    out["increasing"] = bool(out["increasing"])
    return out


class RandAugment:
    """Callable on a uint8 (H, W, C) array (C = 1 or 3) -> an augmented uint8 array of the same shape."""

    def __init__(self, policy: str = "rand-m9-mstd0.5", fill=(124, 116, 104)):
        self.policy = policy
        self.cfg = parse_policy(policy)
        self.ops = INCREASING_OPS if self.cfg["increasing"] else OPS
        self.fill = tuple(int(v) for v in fill)

    def level(self, rng: np.random.Generator) -> float:
        m, std = self.cfg["magnitude"], self.cfg["magnitude_std"]
        if std == math.inf:
            m = rng.uniform(0.0, m)
        elif std > 0:
            m = rng.normal(m, std)
        return float(np.clip(m, 0.0, self.cfg["magnitude_max"]))

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if image.dtype != np.uint8:
            raise ValueError(f"RandAugment works on uint8 images, got {image.dtype}.")
        gray = image.shape[-1] == 1
        img = Image.fromarray(image[..., 0] if gray else image)
        fill = self.fill[0] if gray else self.fill
        names = list(self.ops)
        for i in rng.integers(0, len(names), size=self.cfg["num_ops"]):
            if self.cfg["prob"] < 1.0 and rng.random() > self.cfg["prob"]:
                continue
            img = self.ops[names[i]](img, self.level(rng), rng, fill)
        out = np.asarray(img)
        return out[..., None] if gray else out
