"""PSNR and SSIM for restoration benchmarks.

`psnr` is exactly the official MAXIM `run_eval.calculate_psnr`: images on a 0-255 scale, float64,
RGB, no border crop by default, on the unclipped, unquantized float prediction (pass clipped or
uint8 images to measure what a saved PNG scores). `test_y_channel=True` gives the Y-channel
(BT.601, MATLAB `rgb2ycbcr`) numbers used for deraining.

`ssim` is the BasicSR/MPRNet formulation that the MAXIM paper's tables follow (the official repo
computes no SSIM): 0-255 scale, 11x11 Gaussian window with sigma 1.5, valid region only,
C1 = (0.01*255)^2, C2 = (0.03*255)^2, mean over channels. It matches skimage's
`structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False)` up to
the border handling.
"""
from __future__ import annotations

import numpy as np


def _as_255(img) -> np.ndarray:
    img = np.asarray(img)
    return img.astype(np.float64) if img.dtype == np.uint8 else img.astype(np.float64) * 255.0


def to_y_channel(img255: np.ndarray) -> np.ndarray:
    """RGB on 0-255 -> Y of YCbCr (BT.601, MATLAB rgb2ycbcr), 0-255, (H, W, 1)."""
    y = img255 @ np.array([65.481, 128.553, 24.966]) / 255.0 + 16.0
    return y[..., None]


def _prepare(a, b, crop_border: int, test_y_channel: bool):
    a, b = _as_255(a), _as_255(b)
    if a.shape != b.shape:
        raise ValueError(f"Image shapes differ: {a.shape} vs {b.shape}.")
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel and a.ndim == 3 and a.shape[-1] == 3:
        a, b = to_y_channel(a), to_y_channel(b)
    return a, b


def psnr(target, pred, *, crop_border: int = 0, test_y_channel: bool = False) -> float:
    """PSNR in dB; uint8 inputs are taken as 0-255, float inputs as [0, 1]."""
    a, b = _prepare(target, pred, crop_border, test_y_channel)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(20.0 * np.log10(255.0 / np.sqrt(mse)))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    return np.outer(g, g)


def _filter_valid(x: np.ndarray, win: np.ndarray) -> np.ndarray:
    k = win.shape[0]
    view = np.lib.stride_tricks.sliding_window_view(x, (k, k))
    return np.einsum("ijkl,kl->ij", view, win)


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    win = _gaussian_window()
    mu1, mu2 = _filter_valid(a, win), _filter_valid(b, win)
    s11 = _filter_valid(a * a, win) - mu1 ** 2
    s22 = _filter_valid(b * b, win) - mu2 ** 2
    s12 = _filter_valid(a * b, win) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s11 + s22 + c2))
    return float(ssim_map.mean())


def ssim(target, pred, *, crop_border: int = 0, test_y_channel: bool = False) -> float:
    """SSIM (BasicSR convention), mean over channels; uint8 inputs as 0-255, float inputs as [0, 1]."""
    a, b = _prepare(target, pred, crop_border, test_y_channel)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    return float(np.mean([_ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[-1])]))
