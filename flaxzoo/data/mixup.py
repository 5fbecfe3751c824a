"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) on a whole batch, timm's `Mixup` in batch mode.

Each batch gets one lambda: with probability `prob` the batch is mixed, by CutMix with probability
`switch_prob` when both are on (else Mixup), lambda ~ Beta(alpha, alpha). Image i is mixed with image
B-1-i (the batch reversed). CutMix pastes a box of area about (1 - lambda) and then sets lambda to the
exact unpasted area, so the label weights are always the pixel fractions. The targets are soft (B, C)
one-hot mixtures; label smoothing is the task's (`task.kwargs.label_smoothing`), applied after the mix,
which gives the same targets as timm's smoothing inside Mixup because smoothing is linear.

The draw depends only on (seed, batch index), so a resumed run mixes exactly as an uninterrupted one.
"""
from __future__ import annotations

import numpy as np


def cutmix_box(h: int, w: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a box of about (1 - lam) of the image, centred anywhere (clipped)."""
    cut = np.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    return (int(np.clip(cy - ch // 2, 0, h)), int(np.clip(cy + ch // 2, 0, h)),
            int(np.clip(cx - cw // 2, 0, w)), int(np.clip(cx + cw // 2, 0, w)))


def mix_batch(batch: dict, rng: np.random.Generator, *, num_classes: int, mixup_alpha: float = 0.0,
              cutmix_alpha: float = 0.0, prob: float = 1.0, switch_prob: float = 0.5) -> dict:
    """{'image': (B, H, W, C), 'label': (B,) int} -> the same images mixed, 'label' (B, num_classes) float32."""
    labels = np.asarray(batch["label"])
    if labels.ndim != 1:
        raise ValueError(f"Mixup/CutMix needs integer labels of shape (B,), got {labels.shape}.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"Labels must be in [0, {num_classes}) for data.pp.num_classes={num_classes}; "
                         f"got {labels.min()}..{labels.max()}.")
    one_hot = np.eye(num_classes, dtype=np.float32)[labels]
    images = np.asarray(batch["image"])
    lam, use_cutmix = 1.0, False
    if rng.random() < prob:
        use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < switch_prob)
        lam = float(rng.beta(cutmix_alpha, cutmix_alpha) if use_cutmix else rng.beta(mixup_alpha, mixup_alpha))
    if lam < 1.0:
        partner = images[::-1]
        if use_cutmix:
            h, w = images.shape[1:3]
            top, bottom, left, right = cutmix_box(h, w, lam, rng)
            images = images.copy()
            images[:, top:bottom, left:right] = partner[:, top:bottom, left:right]
            lam = 1.0 - (bottom - top) * (right - left) / (h * w)
        else:
            images = (lam * images + (1.0 - lam) * partner).astype(images.dtype)
    soft = (lam * one_hot + (1.0 - lam) * one_hot[::-1]).astype(np.float32)
    return {**batch, "image": images, "label": soft}
