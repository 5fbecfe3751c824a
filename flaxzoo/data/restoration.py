"""Paired restoration examples (degraded input, clean target) for training and evaluation.

Training: one random `patch` x `patch` crop at the same place in input and target, then one of the 8
flips/rotations of the square (the same for both), as MPRNet/Restormer-style recipes do. Evaluation:
full images. Eval images of different sizes cannot share a batch, so either evaluate with batch 1 or
set a canvas (`eval_size`): every pair is padded at the bottom/right (mirrored) to that size and gets
a `pixel_mask` (H, W, 1), 1 on real pixels and 0 on padding, for metrics that must ignore the padding
(the batch-level `mask` (B,) is the loop's, for padded examples).
"""
from __future__ import annotations

import numpy as np

from flaxzoo.data.image_ops import to_float


def as_image(x, name: str) -> np.ndarray:
    """uint8 or float (H, W[, C]) -> float32 (H, W, C) in [0, 1]."""
    arr = np.asarray(x)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"{name} must be an (H, W) or (H, W, C) image, got shape {arr.shape}.")
    return to_float(arr)


def paired_crop(images: list[np.ndarray], patch: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = images[0].shape[:2]
    for im in images[1:]:
        if im.shape[:2] != (h, w):
            raise ValueError(f"Input and target sizes differ: {images[0].shape[:2]} vs {im.shape[:2]}.")
    if h < patch or w < patch:
        raise ValueError(f"Image of size {h}x{w} is smaller than the training patch {patch}; "
                         f"lower data.pp.patch or drop the small images.")
    top, left = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
    return [im[top:top + patch, left:left + patch] for im in images]


def dihedral(images: list[np.ndarray], rng: np.random.Generator, *, flips: bool = True,
             rotations: bool = True) -> list[np.ndarray]:
    """The same random flip and 90-degree rotation applied to every image (rotations need square images)."""
    k = int(rng.integers(0, 4)) if rotations else 0
    flip = bool(flips and rng.random() < 0.5)
    out = []
    for im in images:
        im = im[:, ::-1] if flip else im
        out.append(np.ascontiguousarray(np.rot90(im, k, axes=(0, 1))))
    return out


def canvas_hw(size) -> tuple[int, int]:
    return (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)


def pad_to_canvas(image: np.ndarray, size) -> np.ndarray:
    """Mirror-pad (edge-pad where mirroring is not enough) at the bottom/right to (H, W) = size."""
    ch, cw = canvas_hw(size)
    h, w = image.shape[:2]
    if h > ch or w > cw:
        raise ValueError(f"Eval image of size {h}x{w} is larger than data.pp.eval_size {ch}x{cw}; "
                         f"raise eval_size to the largest eval image.")
    pads = ((0, ch - h), (0, cw - w), (0, 0))
    mode = "symmetric" if ch - h <= h and cw - w <= w else "edge"
    return np.pad(image, pads, mode=mode)


def finish_pair(degraded: np.ndarray, clean: np.ndarray, rng: np.random.Generator, *, train: bool,
                patch: int | None, flips: bool, rotations: bool, eval_size) -> dict:
    """Crop + flip/rotate (train) or pad to the canvas (eval, if asked) -> the batch fields."""
    if train:
        pair = [degraded, clean]
        if patch:
            pair = paired_crop(pair, int(patch), rng)
        square = pair[0].shape[0] == pair[0].shape[1]
        degraded, clean = dihedral(pair, rng, flips=flips, rotations=rotations and square)
        return {"input": degraded.astype(np.float32), "target": clean.astype(np.float32)}
    out = {"input": degraded.astype(np.float32), "target": clean.astype(np.float32)}
    if eval_size:
        h, w = clean.shape[:2]
        ch, cw = canvas_hw(eval_size)
        out = {"input": pad_to_canvas(out["input"], eval_size), "target": pad_to_canvas(out["target"], eval_size),
               "pixel_mask": np.pad(np.ones((h, w, 1), np.float32), ((0, ch - h), (0, cw - w), (0, 0)))}
    return out
