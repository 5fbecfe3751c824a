"""Per-example preprocessing, by name. Each takes (example, numpy Generator) -> example."""
from __future__ import annotations

import functools

import numpy as np


def classify(example, rng, *, size: int | None = None, mean=0.5, std=0.25, flip: bool = True):
    """uint8 image -> normalised float32 NHWC-ready array (+ random horizontal flip); label kept."""
    img = np.asarray(example["image"], np.float32) / 255.0
    if size is not None and img.shape[0] != size:
        reps = size // img.shape[0]  # integer upsampling only: keeps the offline sets exact
        img = img.repeat(reps, 0).repeat(reps, 1)
    if flip and rng.random() < 0.5:
        img = img[:, ::-1]
    return {"image": ((img - mean) / std).astype(np.float32), "label": np.int32(example["label"])}


def denoise(example, rng, *, sigma: float = 25.0, flip: bool = True):
    """Clean uint8 crop -> {'input': clean + N(0, sigma/255), 'target': clean} in [0, 1] float32."""
    clean = np.asarray(example["target"], np.float32) / 255.0
    if flip and rng.random() < 0.5:
        clean = clean[:, ::-1]
    noisy = clean + rng.normal(0.0, sigma / 255.0, clean.shape).astype(np.float32)
    return {"input": noisy.astype(np.float32), "target": np.ascontiguousarray(clean)}


def tokens(example, rng):
    """Language modelling: the token window as int32 (the task shifts inputs and targets)."""
    return {"tokens": np.asarray(example["tokens"], np.int32)}


_TRANSFORMS = {"classify": classify, "denoise": denoise, "tokens": tokens}


def get(name: str, **kwargs):
    if name not in _TRANSFORMS:
        raise ValueError(f"Unknown preprocessing {name!r}; choose from {sorted(_TRANSFORMS)}.")
    return functools.partial(_TRANSFORMS[name], **kwargs)
