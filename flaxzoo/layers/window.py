"""Window partitioning, shifted-window masks and relative-position indices.

Index tables and masks depend only on static shapes, so they are built with numpy at
trace time and become constants of the compiled program: no parameters, no extra
variable collections, nothing to checkpoint.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

Size2 = tuple[int, int]

# The value timm and the official Swin code add to logits of tokens from different regions.
MASK_VALUE = -100.0


def pad_to_multiple(x: jax.Array, multiple: Size2) -> tuple[jax.Array, Size2]:
    """Zero-pad an NHWC tensor at the bottom/right up to multiples of `multiple`; returns (x, (pad_h, pad_w))."""
    _, h, w, _ = x.shape
    pad_h = (-h) % multiple[0]
    pad_w = (-w) % multiple[1]
    if pad_h or pad_w:
        x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    return x, (pad_h, pad_w)


def window_partition(x: jax.Array, window: Size2) -> jax.Array:
    """(B, H, W, C) -> (B * nW, wh * ww, C), windows in row-major order over the grid."""
    b, h, w, c = x.shape
    wh, ww = window
    x = x.reshape(b, h // wh, wh, w // ww, ww, c)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, c)


def window_unpartition(windows: jax.Array, window: Size2, height: int, width: int) -> jax.Array:
    """Inverse of `window_partition`: (B * nW, wh * ww, C) -> (B, H, W, C)."""
    wh, ww = window
    c = windows.shape[-1]
    x = windows.reshape(-1, height // wh, width // ww, wh, ww, c)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, height, width, c)


@functools.lru_cache(maxsize=None)
def relative_position_index(window: Size2) -> np.ndarray:
    """(N, N) int32 index into a ((2wh-1)(2ww-1), heads) bias table, N = wh*ww.

    For tokens i, j with dh = h_i - h_j and dw = w_i - w_j the index is
    (dh + wh - 1) * (2ww - 1) + (dw + ww - 1), the layout of every Swin checkpoint.
    """
    wh, ww = window
    coords = np.stack(np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")).reshape(2, -1)
    rel = coords[:, :, None] - coords[:, None, :]
    index = (rel[0] + wh - 1) * (2 * ww - 1) + (rel[1] + ww - 1)
    index.setflags(write=False)
    return index.astype(np.int32)


def _regions(length: int, window: int, shift: int) -> np.ndarray:
    """Label each position of one axis with the region it came from before the cyclic shift."""
    labels = np.zeros(length, np.int32)
    if shift:
        labels[length - window:length - shift] = 1
        labels[length - shift:] = 2
    return labels


@functools.lru_cache(maxsize=None)
def shifted_window_mask(height: int, width: int, window: Size2, shift: Size2) -> np.ndarray | None:
    """(nW, N, N) additive mask for a shifted window layer on a (padded) height x width grid.

    Tokens that were not neighbours before the roll get MASK_VALUE; None when there is no shift.
    """
    if not any(shift):
        return None
    rows = _regions(height, window[0], shift[0])
    cols = _regions(width, window[1], shift[1])
    labels = (rows[:, None] * 3 + cols[None, :]).astype(np.float32)
    windows = np.asarray(window_partition(labels[None, :, :, None], window))[..., 0]  # (nW, N)
    diff = windows[:, :, None] - windows[:, None, :]
    mask = np.where(diff != 0, MASK_VALUE, 0.0).astype(np.float32)
    mask.setflags(write=False)
    return mask
