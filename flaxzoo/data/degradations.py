"""Synthetic degradations of clean images: Gaussian noise, Gaussian blur, motion blur (numpy only).

Each strength is a number or a [low, high] range drawn uniformly per example; together with the
Generator that the pipeline seeds from (seed, example index), every image gets its own noise field
and its own blur, reproducibly.
"""
from __future__ import annotations

import numpy as np


def draw(value, rng: np.random.Generator) -> float:
    """A fixed strength, or one drawn from a [low, high] range."""
    if value is None:
        return 0.0
    if np.isscalar(value):
        return float(value)
    low, high = (float(v) for v in value)
    if high < low:
        raise ValueError(f"Degradation range must be [low, high], got {list(value)}.")
    return float(rng.uniform(low, high))


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'same' 2-D convolution of (H, W, C) by a (k, k) kernel with mirrored borders, through the FFT."""
    k = kernel.shape[0]
    r = k // 2
    h, w = image.shape[:2]
    padded = np.pad(image, ((r, r), (r, r), (0, 0)), mode="symmetric" if r <= min(h, w) else "edge")
    ph, pw = padded.shape[:2]
    spec = np.fft.rfft2(padded, axes=(0, 1)) * np.fft.rfft2(kernel, s=(ph, pw))[..., None]
    full = np.fft.irfft2(spec, s=(ph, pw), axes=(0, 1))
    # circular convolution: output pixel (y, x) of the padded image sits at (y + r, x + r)
    return full[2 * r:2 * r + h, 2 * r:2 * r + w].astype(image.dtype)


def gaussian_kernel(sigma: float) -> np.ndarray:
    r = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A straight line of `length` pixels through the centre at `angle_deg`, normalised (linear motion)."""
    size = max(3, int(np.ceil(length)) | 1)  # odd
    k = np.zeros((size, size))
    c = size // 2
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, max(2, 4 * size))
    a = np.deg2rad(angle_deg)
    ys, xs = np.round(c - t * np.sin(a)).astype(int), np.round(c + t * np.cos(a)).astype(int)
    k[ys, xs] = 1.0
    return k / k.sum()


def degrade(clean: np.ndarray, rng: np.random.Generator, *, sigma=0.0, blur_sigma=0.0,
            motion_length=0.0) -> np.ndarray:
    """Clean float (H, W, C) in [0, 1] -> blurred (Gaussian, then motion), then + N(0, (sigma/255)^2).

    Noise is added unclipped, as in the AWGN denoising benchmarks.
    """
    out = clean.astype(np.float32)
    s = draw(blur_sigma, rng)
    if s > 0:
        out = convolve(out, gaussian_kernel(s))
    length = draw(motion_length, rng)
    if length > 1:
        out = convolve(out, motion_kernel(length, rng.uniform(0.0, 180.0)))
    noise = draw(sigma, rng)
    if noise > 0:
        out = out + rng.normal(0.0, noise / 255.0, out.shape).astype(np.float32)
    return out.astype(np.float32)
