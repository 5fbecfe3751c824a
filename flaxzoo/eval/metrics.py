"""Evaluation metrics: PSNR and SSIM for restoration, top-k accuracy for classification.

The one implementation in flaxzoo: the evaluators (`flaxzoo.eval`), the benchmark protocols
(`flaxzoo.eval.protocols`) and the training tasks (`flaxzoo.train.tasks`) all call these. `psnr`/`ssim` are
host-side numpy in float64; `psnr_from_mse` and `topk_correct` are written on array operators only, so the
jitted training metrics (jax.numpy arrays) and the host evaluators (numpy) share them.

Conventions (MAXIM reference notes, sections 7-8):
- `psnr` is the official MAXIM `run_eval.calculate_psnr`: 0-255 scale, RGB, no border crop by default,
  on whatever you pass (the official numbers use the unclipped, unquantized float prediction; pass
  clipped or uint8 images to measure what a saved PNG scores). `y_channel=True` gives the Y-channel
  (BT.601, MATLAB `rgb2ycbcr`) numbers used for deraining; `crop_border` drops that many pixels per side.
- `ssim` is the BasicSR/MPRNet formulation the paper's tables follow (the official repo computes none):
  11x11 Gaussian window, sigma 1.5, valid region only, C1 = (0.01 L)^2, C2 = (0.03 L)^2, mean over
  channels. It equals skimage's `structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False)` on images of at least 11x11 up to skimage's border handling.

Inputs: (H, W), (H, W, C) or (N, H, W, C), the same shape for both. For a batch the result is the mean of
the per-image values (the benchmark convention). Value range, per input, from its dtype: uint8 -> 255,
uint16 -> 65535, float -> 1.0; `data_range=` overrides it for every input (e.g. 4095 for 12-bit data in
uint16, 255 for float data on 0-255). Other integer dtypes need an explicit `data_range`.
Refused with a message, never a wrong number: different shapes, empty images, NaN/inf, values outside
[0, data_range] (integers) or clearly outside it (floats beyond -0.5 .. 1.5 x data_range, which catches
0-255 data passed as [0, 1]; an unclipped prediction slightly outside is fine), a crop that leaves
nothing, an image smaller than the SSIM window after cropping, `y_channel` on anything but 1 or 3 channels
(1 channel is used as is, as BasicSR does).
Identical images: PSNR is `inf` (mse = 0; never NaN), SSIM is 1.0. A batch mean with one identical pair
is inf too.
"""
from __future__ import annotations

import numbers

import numpy as np

from flaxzoo.validate import InputError, check_bool, check_finite, check_non_negative_int

SSIM_WINDOW = 11
_DTYPE_RANGES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_FLOAT_SLACK = 0.5  # floats may overshoot [0, R] by this fraction of R (unclipped predictions)


def to_y_channel(img255: np.ndarray) -> np.ndarray:
    """RGB on 0-255 -> Y of YCbCr (BT.601, MATLAB rgb2ycbcr), 0-255, channel axis kept (..., 1)."""
    y = img255 @ np.array([65.481, 128.553, 24.966]) / 255.0 + 16.0
    return y[..., None]


def _check_data_range(data_range):
    if data_range is None:
        return None
    if isinstance(data_range, bool) or not isinstance(data_range, numbers.Real) or not np.isfinite(data_range) \
            or data_range <= 0:
        raise InputError(f"data_range must be a positive number (the inputs' maximum value, e.g. 1.0 or 255); "
                         f"got {data_range!r}.")
    return float(data_range)


def _to_255(img, name: str, data_range: float | None) -> np.ndarray:
    """One input -> float64 on the 0-255 scale, after checking its dtype, values and range."""
    try:
        img = np.asarray(img)
    except ValueError as e:  # ragged nested lists
        raise InputError(f"{name} is not a rectangular array ({e}); pass an np.ndarray image.") from None
    dtype = img.dtype
    if dtype in _DTYPE_RANGES:
        scale = data_range or _DTYPE_RANGES[dtype]
    elif np.issubdtype(dtype, np.integer) and dtype != np.bool_:
        if data_range is None:
            raise InputError(f"{name} has dtype {dtype}, whose value range is unknown: pass data_range= "
                             f"(e.g. 255 for 8-bit values) or cast with img.astype(np.uint8).")
        scale = data_range
    elif np.issubdtype(dtype, np.floating):
        scale = data_range or 1.0
    else:
        raise InputError(f"{name} has unsupported dtype {dtype}: use uint8, uint16 or float images.")
    check_finite(img, name)
    if img.size:
        lo, hi = float(img.min()), float(img.max())
        slack = _FLOAT_SLACK * scale if np.issubdtype(dtype, np.floating) else 0.0
        if lo < -slack or hi > scale + slack:
            hint = (" It looks like 0-255 data: pass data_range=255 or divide by 255."
                    if np.issubdtype(dtype, np.floating) and scale == 1.0 and hi <= 255.0 + slack else
                    " Pass the right data_range= or rescale the image.")
            raise InputError(f"{name} has values in [{lo:.4g}, {hi:.4g}], outside its range [0, {scale:g}] "
                             f"(from {'data_range' if data_range else f'dtype {dtype}'}).{hint}")
    return img.astype(np.float64) * (255.0 / scale)


def _prepare(target, pred, *, data_range, crop_border, y_channel, min_size: int = 1, what: str):
    """Both inputs -> float64 (N, H, W, C) on 0-255, cropped and optionally Y, after every check."""
    y_channel = check_bool(y_channel, "y_channel")
    crop = check_non_negative_int(crop_border, "crop_border")
    data_range = _check_data_range(data_range)
    a, b = _to_255(target, "target", data_range), _to_255(pred, "pred", data_range)
    if a.shape != b.shape:
        raise InputError(f"target and pred must have the same shape; got {a.shape} and {b.shape}. "
                         f"Crop or resize the prediction to the target's size.")
    if a.ndim not in (2, 3, 4):
        raise InputError(f"Images must be (H, W), (H, W, C) or (N, H, W, C); got shape {a.shape}.")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if a.ndim == 3:
        a, b = a[None], b[None]
    if min(a.shape) < 1:
        raise InputError(f"Cannot compute {what} of empty images: shape {a.shape} (N, H, W, C) has an empty axis.")
    h, w = a.shape[1:3]
    if 2 * crop >= min(h, w):
        raise InputError(f"crop_border={crop} removes the whole {h}x{w} image; it can be at most "
                         f"{(min(h, w) - 1) // 2} (under half the shorter side).")
    if crop:
        a, b = a[:, crop:-crop, crop:-crop], b[:, crop:-crop, crop:-crop]
    if y_channel:
        if a.shape[-1] == 3:
            a, b = to_y_channel(a), to_y_channel(b)
        elif a.shape[-1] != 1:
            raise InputError(f"y_channel=True needs RGB (3 channels) or gray (1) images; got {a.shape[-1]} "
                             f"channels. Drop alpha with img[..., :3].")
    if min(a.shape[1:3]) < min_size:
        raise InputError(f"{what} needs images of at least {min_size}x{min_size} pixels (its Gaussian window) after "
                         f"cropping; got {a.shape[1]}x{a.shape[2]} (crop_border={crop}).")
    return a, b


def psnr_from_mse(mse, data_range=1.0, xp=np):
    """PSNR in dB from a mean squared error on a scale whose peak is `data_range`; `xp` is numpy or jax.numpy.
    mse == 0 gives inf (numpy); the jitted training metric clamps mse first so a perfect batch stays finite."""
    return 10.0 * xp.log10(data_range ** 2 / mse)


def psnr(target, pred, *, data_range: float | None = None, crop_border: int = 0, y_channel: bool = False) -> float:
    """PSNR in dB (mean over a batch); inf for identical images. See the module docstring."""
    a, b = _prepare(target, pred, data_range=data_range, crop_border=crop_border, y_channel=y_channel, what="PSNR")
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):  # mse == 0 -> inf, on purpose
        values = psnr_from_mse(mse, 255.0)
    return float(np.mean(values))


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = 1.5) -> np.ndarray:
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


def ssim(target, pred, *, data_range: float | None = None, crop_border: int = 0, y_channel: bool = False) -> float:
    """SSIM (BasicSR convention), mean over channels and over a batch; 1.0 for identical images."""
    a, b = _prepare(target, pred, data_range=data_range, crop_border=crop_border, y_channel=y_channel,
                    min_size=SSIM_WINDOW, what="SSIM")
    per_image = [np.mean([_ssim_channel(x[..., c], y[..., c]) for c in range(x.shape[-1])]) for x, y in zip(a, b)]
    return float(np.mean(per_image))


# ----------------------------------------------------------------------------- classification
def topk_correct(logits, labels, k: int = 1):
    """(B,) 1.0 where the true class (integer `labels` (B,)) is among the `k` highest logits (B, C), else 0.0.

    Ties count against the prediction: the true class is in the top k when fewer than k other classes score
    at least as high, so a model whose logits are all equal (dead, or NaN-free garbage) scores 0, never 100%.
    Works on numpy and jax.numpy arrays (inside jit too)."""
    true_score = (logits * (labels[:, None] == _arange_like(logits))).sum(-1)
    at_least = (logits >= true_score[:, None]).sum(-1) - 1  # the other classes scoring >= the true one
    return (at_least < k) * 1.0


def _arange_like(logits):
    num_classes = logits.shape[-1]
    if isinstance(logits, np.ndarray):
        return np.arange(num_classes)[None, :]
    import jax.numpy as jnp

    return jnp.arange(num_classes)[None, :]


def check_topk(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    """Host-side inputs for top-k accuracy -> (float64 logits (B, C), int labels (B,)), or one clear message."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise InputError(f"top-k accuracy needs logits (B, C) and integer labels (B,); got {logits.shape} and "
                         f"{labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be integer class ids, got dtype {labels.dtype}.")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise InputError(f"labels must be in [0, {logits.shape[1]}) (the model's classes); got values in "
                         f"[{labels.min()}, {labels.max()}]. Check that the dataset and the model's head match.")
    check_finite(logits, "logits")
    return logits, labels


def topk_accuracy(logits, labels, ks=(1, 5)) -> dict[str, float]:
    """{'top1': ..., 'top5': ...}: the fraction of examples whose class is in the k best logits (k <= C)."""
    logits, labels = check_topk(logits, labels)
    return {f"top{k}": float(topk_correct(logits, labels, min(k, logits.shape[1])).mean()) for k in ks}
