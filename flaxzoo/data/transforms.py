"""Per-example preprocessing, by name (`config.data.preprocess`), switched by `config.data.pp` keys.

Each entry is a factory `(train, **pp) -> fn(example, rng) -> example`; the pipeline seeds `rng` from
(seed, example index), so augmentation, noise and blur are reproducible and differ per example.

classify   small offline sets: uint8 image -> (x - mean) / std, integer upsampling to `size`, `flip` (train).
image_classification   any image set (imagenet2012, imagenette, cifar10, ...), the timm recipe
           (`flaxzoo.data.image_transform`): keys `model` (take input_size, crop_pct, interpolation, mean,
           std from that registered model's spec), and any of input_size, crop_pct, interpolation, mean, std,
           crop_mode, channels; train-only scale, ratio, hflip, auto_augment ('rand-m9-mstd0.5'), re_prob,
           re_mode; image_key ('image'), label_key ('label'). Batch-level keys (mixup_alpha, cutmix_alpha,
           mix_prob, switch_prob, num_classes) are taken by `pipeline.make_dataset` (see `flaxzoo.data.mixup`).
denoise    offline clean crops + N(0, sigma/255) noise, flip (train): the bundled denoising set.
paired     a dataset of (degraded, clean) pairs: input_key ('input'), target_key ('target'); train:
           patch, flips, rotations; eval: full images, eval_size pads to a canvas with a `pixel_mask`.
degrade    a clean image set made into pairs: clean_key (default: the first of target/image/hr present),
           sigma (noise, 0..255 scale), blur_sigma (Gaussian), motion_length (pixels; random angle), each a
           number or a [low, high] range per example; patch, flips, rotations, eval_size as `paired`.
tokens     token windows (language models, ListOps): int fields tokens, and mask/token_mask/label if present.
field      neural-field samples (`flaxzoo.data.field_samples`): float fields points, sdf, normal, rgb, surface.
bytes_lm   a text set (lm1b, wiki40b, ...) byte-tokenised and packed into windows: seq_len, stride,
           text_key ('text'); the source is wrapped by `text.PackedBytes` in `pipeline.make_dataset`.
"""
from __future__ import annotations

import inspect
import io

import numpy as np

from flaxzoo.data import image_transform, restoration
from flaxzoo.data.degradations import degrade as apply_degradations


def classify(train, *, size: int | None = None, mean=0.5, std=0.25, flip: bool = True):
    def fn(example, rng):
        img = np.asarray(example["image"], np.float32) / 255.0
        if size is not None and img.shape[0] != size:
            reps = size // img.shape[0]  # integer upsampling only: keeps the offline sets exact
            img = img.repeat(reps, 0).repeat(reps, 1)
        if train and flip and rng.random() < 0.5:
            img = img[:, ::-1]
        return {"image": ((img - mean) / std).astype(np.float32), "label": np.int32(example["label"])}
    return fn


def decode_image(value) -> np.ndarray:
    """A decoded array as it is; encoded bytes (PNG/JPEG, e.g. TFDS with SkipDecoding) through PIL."""
    if isinstance(value, (bytes, np.bytes_)):
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(bytes(value))).convert("RGB"))
    return np.asarray(value)


def image_classification(train, *, model: str = "", image_key: str = "image", label_key: str = "label",
                         **settings):
    cfg = image_transform.model_cfg(model) if model else {}
    transform = image_transform.create_transform(cfg, train=train, **settings)

    def fn(example, rng):
        image = transform(decode_image(example[image_key]), rng)
        return {"image": image, "label": np.int32(example[label_key])}
    return fn


def denoise(train, *, sigma: float = 25.0, flip: bool = True):
    def fn(example, rng):
        clean = np.asarray(example["target"], np.float32) / 255.0
        if train and flip and rng.random() < 0.5:
            clean = clean[:, ::-1]
        noisy = clean + rng.normal(0.0, sigma / 255.0, clean.shape).astype(np.float32)
        return {"input": noisy.astype(np.float32), "target": np.ascontiguousarray(clean)}
    return fn


def paired(train, *, input_key: str = "input", target_key: str = "target", patch: int | None = None,
           flips: bool = True, rotations: bool = True, eval_size=None):
    def fn(example, rng):
        degraded = restoration.as_image(decode_image(example[input_key]), input_key)
        clean = restoration.as_image(decode_image(example[target_key]), target_key)
        if degraded.shape != clean.shape:
            raise ValueError(f"{input_key!r} {degraded.shape} and {target_key!r} {clean.shape} differ in shape; "
                             f"paired restoration needs aligned images of one size.")
        return restoration.finish_pair(degraded, clean, rng, train=train, patch=patch, flips=flips,
                                       rotations=rotations, eval_size=eval_size)
    return fn


def degrade(train, *, clean_key: str = "", sigma=0.0, blur_sigma=0.0, motion_length=0.0,
            patch: int | None = None, flips: bool = True, rotations: bool = True, eval_size=None):
    if not any(np.any(np.asarray(v, float) > 0) for v in (sigma, blur_sigma, motion_length)):
        raise ValueError("preprocess 'degrade' needs at least one of data.pp.sigma, blur_sigma, motion_length > 0.")

    def fn(example, rng):
        key = clean_key or next((k for k in ("target", "image", "hr") if k in example), None)
        if key is None or key not in example:
            raise KeyError(f"No clean image {clean_key or 'target/image/hr'!r} in the example (keys {sorted(example)}); "
                           f"set data.pp.clean_key.")
        clean = restoration.as_image(decode_image(example[key]), key)
        if train and patch:
            clean = restoration.paired_crop([clean], int(patch), rng)[0]
        degraded = apply_degradations(clean, rng, sigma=sigma, blur_sigma=blur_sigma, motion_length=motion_length)
        return restoration.finish_pair(degraded, clean, rng, train=train, patch=None, flips=flips,
                                       rotations=rotations, eval_size=eval_size)
    return fn


def tokens(train):
    def fn(example, rng):
        return {k: np.asarray(example[k], np.int32) for k in ("tokens", "mask", "token_mask", "label") if k in example}
    return fn


def bytes_lm(train):  # the packing itself is a source wrapper (pipeline.make_dataset)
    return tokens(train)


def field(train):
    keys = ("points", "sdf", "normal", "rgb", "surface")
    return lambda example, rng: {k: np.asarray(example[k], np.float32) for k in keys}


_TRANSFORMS = {"field": field, "classify": classify, "image_classification": image_classification, "denoise": denoise,
               "paired": paired, "degrade": degrade, "tokens": tokens, "bytes_lm": bytes_lm}


def get(name: str, *, train: bool = True, **kwargs):
    """The example function of preprocessing `name` with `config.data.pp` settings `kwargs`."""
    if name not in _TRANSFORMS:
        raise ValueError(f"Unknown preprocessing {name!r}; choose from {sorted(_TRANSFORMS)}.")
    factory = _TRANSFORMS[name]
    params = inspect.signature(factory).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params) - {"train"})
        if unknown:
            valid = sorted(set(params) - {"train"})
            raise ValueError(f"Unknown data.pp key(s) {unknown} for preprocess {name!r}; valid keys: {valid}.")
    return factory(train, **kwargs)
