"""The classification preprocessing a model expects: `create_transform` (timm's name) and the pipeline's.

    import flaxzoo.data
    t = flaxzoo.data.create_transform("swin_tiny_patch4_window7_224")   # eval: resize, centre crop, normalise
    x = t(pil_image_or_hwc_array)                                        # float32 (224, 224, 3)
    t = flaxzoo.data.create_transform("swin_tiny_patch4_window7_224", train=True)
    x = t(image, rng=np.random.default_rng(0))                           # random-resized crop, flip, ...

Eval (timm's `transforms_imagenet_eval`): resize so the crop keeps `crop_pct` of the image (shorter side to
floor(size / crop_pct), aspect kept; `crop_mode='squash'` resizes both sides instead), centre-crop `input_size`,
scale to [0, 1], normalise by `mean`/`std`. Train (timm's `transforms_imagenet_train`): random-resized crop
(`scale`, `ratio`), horizontal flip (`hflip`), optional RandAugment (`auto_augment`, e.g. 'rand-m9-mstd0.5'),
normalise, optional random erasing (`re_prob`, `re_mode`). The training pipeline and `create_transform` are
this one class, so what a model sees in training, evaluation and user code is the same computation.

Inputs: PIL images or numpy (H, W[, C]) arrays, uint8 0..255 or float 0..1; grayscale and RGB are converted
to the model's channel count. Output: float32 (H, W, C).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from flaxzoo.data import image_ops
from flaxzoo.data.erasing import random_erase
from flaxzoo.data.randaugment import RandAugment

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP_PCT = 0.875  # timm's default when a model names none


def _hw(size) -> tuple[int, int, int | None]:
    """224, (224, 224), (224, 224, 3) or timm's (3, 224, 224) -> (height, width, channels or None)."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size), None
    size = tuple(int(s) for s in size)
    if len(size) == 2:
        return size[0], size[1], None
    if len(size) == 3:
        if size[-1] in (1, 3):
            return size[0], size[1], size[2]
        if size[0] in (1, 3):  # timm pretrained_cfg order (C, H, W)
            return size[1], size[2], size[0]
    raise ValueError(f"input_size must be an int, (H, W), (H, W, C) or (C, H, W); got {size!r}.")


@dataclasses.dataclass
class ImageTransform:
    input_size: Any = 224
    crop_pct: float = DEFAULT_CROP_PCT
    interpolation: str = "bicubic"
    mean: Any = IMAGENET_MEAN
    std: Any = IMAGENET_STD
    crop_mode: str = "center"
    train: bool = False
    scale: tuple = (0.08, 1.0)
    ratio: tuple = (3 / 4, 4 / 3)
    hflip: float = 0.5
    auto_augment: str = ""
    re_prob: float = 0.0
    re_mode: str = "pixel"
    channels: int | None = None

    def __post_init__(self):
        self.height, self.width, chans = _hw(self.input_size)
        self.channels = int(self.channels or chans or len(np.atleast_1d(self.mean)))
        self.mean, self.std = self._per_channel(self.mean, "mean"), self._per_channel(self.std, "std")
        if not 0 < self.crop_pct <= 1.5:
            raise ValueError(f"crop_pct must be in (0, 1.5], got {self.crop_pct}.")
        if self.crop_mode not in ("center", "squash"):
            raise ValueError(f"crop_mode must be 'center' or 'squash', got {self.crop_mode!r}.")
        if self.interpolation not in image_ops.INTERPOLATIONS:
            raise ValueError(f"Unknown interpolation {self.interpolation!r}; "
                             f"choose from {sorted(image_ops.INTERPOLATIONS)}.")
        if np.any(self.std <= 0):
            raise ValueError(f"std must be positive, got {self.std.tolist()}.")
        fill = tuple(int(round(255 * m)) for m in np.resize(self.mean, 3))
        self.randaugment = RandAugment(self.auto_augment, fill=fill) if self.auto_augment else None

    def _per_channel(self, value, name) -> np.ndarray:
        v = np.atleast_1d(np.asarray(value, np.float32))
        if v.size == 3 and self.channels == 1:  # RGB statistics for a grayscale model: their average
            v = v.mean(keepdims=True)
        if v.size not in (1, self.channels):
            raise ValueError(f"{name} has {v.size} values for a {self.channels}-channel input.")
        return np.broadcast_to(v, (self.channels,)).copy()

    def eval_resize(self, image: np.ndarray) -> np.ndarray:
        sh, sw = math.floor(self.height / self.crop_pct), math.floor(self.width / self.crop_pct)
        if self.crop_mode == "squash":
            image = image_ops.resize(image, sh, sw, self.interpolation)
        elif sh == sw:
            image = image_ops.resize_shorter(image, sh, self.interpolation)
        else:  # non-square target: smallest aspect-keeping resize that covers it
            h, w = image.shape[:2]
            s = max(sh / h, sw / w)
            image = image_ops.resize(image, max(sh, round(h * s)), max(sw, round(w * s)), self.interpolation)
        return image_ops.center_crop(image, self.height, self.width)

    def __call__(self, image, rng: np.random.Generator | None = None) -> np.ndarray:
        image = image_ops.set_channels(image_ops.as_hwc(image), self.channels)
        if not self.train:
            image = self.eval_resize(image)
        else:
            rng = np.random.default_rng() if rng is None else rng
            image = image_ops.random_resized_crop(image, (self.height, self.width), rng, scale=self.scale,
                                                  ratio=self.ratio, interpolation=self.interpolation)
            if self.hflip > 0 and rng.random() < self.hflip:
                image = image[:, ::-1]
            if self.randaugment is not None:
                image = self.randaugment(image_ops.to_uint8(np.ascontiguousarray(image)), rng)
        out = (image_ops.to_float(image) - self.mean) / self.std
        if self.train and self.re_prob > 0:
            out = random_erase(out, rng, prob=self.re_prob, mode=self.re_mode)
        return np.ascontiguousarray(out, dtype=np.float32)


def model_cfg(name: str) -> dict:
    """The preprocessing fields of a registered model's spec (`flaxzoo.get_spec(name).info`)."""
    from flaxzoo.models.registry import get_spec

    info = get_spec(name).info
    if "input_size" not in info:
        raise ValueError(f"Model {name!r} has no image classification preprocessing (its spec names no "
                         f"input_size); pass a cfg dict with input_size, crop_pct, interpolation, mean, std.")
    keys = ("input_size", "crop_pct", "interpolation", "mean", "std", "crop_mode")
    return {k: info[k] for k in keys if k in info}


def create_transform(name_or_cfg, train: bool = False, **overrides) -> ImageTransform:
    """A model name or a pretrained cfg dict (input_size, crop_pct, interpolation, mean, std, ...) -> transform.

    `overrides` (and extra cfg keys) set any `ImageTransform` field, e.g. auto_augment='rand-m9-mstd0.5'.
    """
    cfg = model_cfg(name_or_cfg) if isinstance(name_or_cfg, str) else dict(name_or_cfg)
    cfg.update(overrides)
    fields = {f.name for f in dataclasses.fields(ImageTransform)}
    # timm pretrained_cfg dicts carry other keys (url, license, num_classes, ...): they are not preprocessing.
    known = {k: v for k, v in cfg.items() if k in fields and k != "train"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"Unknown transform setting(s) {unknown}; valid: {sorted(fields - {'train'})}.")
    return ImageTransform(train=train, **known)
