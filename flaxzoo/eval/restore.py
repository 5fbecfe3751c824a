"""Restore real images with MAXIM (or any model returning outputs[stage][scale]): any size, any layout.

- Any height/width: reflect-pad to the model's size multiple the way the official `run_eval` does
  (first to even sizes at the bottom/right, then symmetrically), run, crop back.
- Grayscale (H, W) / (H, W, 1) is replicated to RGB and averaged back; RGBA loses its alpha for the
  model and gets it back unchanged afterwards. uint8, uint16 and float ([0, 1]) inputs are accepted and
  the result has the input's dtype and layout.
- Tiled inference for big images: overlapping tiles, blended with a smooth (sin^2) ramp over the
  overlap, so there are no seams; memory is set by the tile and batch size, not by the image. All tiles
  go through one jitted function with a fixed batch shape (one compilation).

Every argument is checked before any work (`flaxzoo.validate.InputError`, a ValueError, naming it): tile,
overlap, batch_size, clip, the image's rank, channels, dtype, empty sizes and NaN/inf values.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from flaxzoo import compile_options
from flaxzoo.validate import (InputError, check_bool, check_finite, check_image_batch, check_int,
                              check_non_negative_int, check_positive_int)


class Restorer:
    """A jitted `final output` function of a model: (N, H, W, C) float32 -> outputs[-1][-1]."""

    def __init__(self, model: nnx.Module):
        if not isinstance(model, nnx.Module):
            raise InputError(f"Restorer needs a flaxzoo model (an nnx.Module); got {type(model).__name__}. "
                             f"Build one with flaxzoo.create_model or flaxzoo.load_pretrained.")
        model.eval()
        self.size_multiple = tuple(getattr(model, "size_multiple", (1, 1)))
        config = getattr(model, "config", None)
        self.in_channels = getattr(config, "in_channels", 3)
        self._graphdef, self._state = nnx.split(model)
        self._apply = _final_program(_options_key(model))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # Checked before the float32 cast, which would silently turn uint8 0-255 into out-of-range floats.
        check_image_batch(x if hasattr(x, "dtype") else np.asarray(x), name="Restorer input",
                          channels=self.in_channels)
        y = self._apply(self._graphdef, self._state, jnp.asarray(x, jnp.float32))
        if y.ndim != 4 or y.shape[:3] != tuple(x.shape[:3]):
            raise InputError(f"The model maps images {tuple(x.shape)} to {tuple(y.shape)}, not to images of the same "
                             f"size: restore_image needs a restoration model (e.g. MAXIM), not a classifier.")
        return np.asarray(y)


def _options_key(model) -> tuple:
    return tuple(sorted((compile_options.options_for(model) or {}).items()))


@functools.cache
def _final_program(options: tuple):
    # One jitted function per set of compiler options: models with the same structure share compilations.
    return jax.jit(_final_outputs, static_argnums=0, compiler_options=dict(options) or None)


def _final_outputs(graphdef, state, x):
    outputs = nnx.merge(graphdef, state)(x)
    while isinstance(outputs, (list, tuple)):
        outputs = outputs[-1]
    return outputs


# ----------------------------------------------------------------------------- image formats
def to_model_input(image: np.ndarray, channels: int = 3) -> tuple[np.ndarray, dict]:
    """Any supported image -> float32 (H, W, channels) in [0, 1], plus what is needed to undo it."""
    try:
        image = np.asarray(image)
    except ValueError as e:  # ragged nested lists
        raise InputError(f"The image is not a rectangular array ({e}); pass an np.ndarray.") from None
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        hint = " Restore a batch one image at a time." if image.ndim == 4 else ""
        raise InputError(f"Expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
                         f"got {image.shape}.{hint}")
    if min(image.shape[:2]) < 1:
        raise InputError(f"The image is empty: shape {image.shape}; height and width must be at least 1.")
    info = {"dtype": image.dtype, "channels": image.shape[-1], "alpha": None}
    if image.dtype == np.uint8:
        x = image.astype(np.float32) / 255.0
    elif image.dtype == np.uint16:
        x = image.astype(np.float32) / 65535.0
    elif np.issubdtype(image.dtype, np.floating):
        x = image.astype(np.float32)
        check_finite(x, "The image")
        if x.max(initial=0.0) > 1.5 or x.min(initial=0.0) < -0.5:
            raise InputError(f"Float images must be in [0, 1] (got values in [{x.min():.3g}, {x.max():.3g}]); "
                             f"divide 8-bit data by 255 or pass it as uint8.")
    else:
        raise InputError(f"Unsupported image dtype {image.dtype}: use uint8, uint16 or float in [0, 1].")
    if x.shape[-1] == 4:
        info["alpha"] = x[..., 3:]
        x = x[..., :3]
    if x.shape[-1] != channels:
        if x.shape[-1] == 1 and channels == 3:
            x = np.repeat(x, 3, axis=-1)
        else:
            raise InputError(f"The model takes {channels}-channel images; got {x.shape[-1]} channels.")
    return x, info


def from_model_output(y: np.ndarray, info: dict, *, clip: bool = True) -> np.ndarray:
    """Undo `to_model_input`: back to the input's channels and dtype (uint8/16 are clipped and rounded)."""
    y = np.asarray(y, np.float32)
    if info["channels"] in (1,) and y.shape[-1] == 3:
        y = y.mean(axis=-1, keepdims=True)
    if info["alpha"] is not None:
        y = np.concatenate([y, info["alpha"]], axis=-1)
    if clip or info["dtype"] in (np.uint8, np.uint16):
        y = np.clip(y, 0.0, 1.0)
    if info["dtype"] == np.uint8:
        y = np.round(y * 255.0).astype(np.uint8)
    elif info["dtype"] == np.uint16:
        y = np.round(y * 65535.0).astype(np.uint16)
    if info["channels"] == 1 and len(info.get("shape", ())) == 2:
        y = y[..., 0]
    return y


# ----------------------------------------------------------------------------- padding
def _reflect(x: np.ndarray, pads) -> np.ndarray:
    mode = "reflect" if min(x.shape[0], x.shape[1]) > 1 else "edge"
    return np.pad(x, list(pads) + [(0, 0)] * (x.ndim - 2), mode=mode)


def pad_to_multiple(x: np.ndarray, multiple: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The official run_eval padding: reflect one row/column at the bottom/right if odd, then reflect
    symmetrically up to the multiple. Returns (padded, (top, left)) for cropping back."""
    h, w = x.shape[:2]
    x = _reflect(x, [(0, h % 2), (0, w % 2)])
    he, we = x.shape[:2]
    ph, pw = (-he) % multiple[0], (-we) % multiple[1]
    x = _reflect(x, [(ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)])
    return x, (ph // 2, pw // 2)


# ----------------------------------------------------------------------------- restoration
def restore_array(restorer: Restorer, x: np.ndarray, *, tile: int | None = None, overlap: int = 64,
                  batch_size: int = 4) -> np.ndarray:
    """float32 (H, W, C) -> restored float32 (H, W, C), unclipped. Tiled when the image exceeds `tile`."""
    m = restorer.size_multiple
    check_tiling(tile, overlap, batch_size, m)
    check_image_batch(np.asarray(x)[None], name="restore_array image (H, W, C)", channels=restorer.in_channels)
    h, w = x.shape[:2]
    if tile is None or (h <= tile and w <= tile):
        xp, (top, left) = pad_to_multiple(x, m)
        return restorer(xp[None])[0, top:top + h, left:left + w]
    return _restore_tiled(restorer, x, tile, overlap, batch_size)


def check_tiling(tile, overlap, batch_size, size_multiple: tuple[int, int]) -> None:
    """tile: None or a positive multiple of the model's size multiple; 0 <= overlap <= tile // 2;
    batch_size >= 1. Checked whether or not the image ends up tiled, so a typo never waits for a big image."""
    check_positive_int(batch_size, "batch_size")
    check_non_negative_int(overlap, "overlap")
    if tile is None:
        return
    check_positive_int(tile, "tile")
    mh, mw = size_multiple
    if tile % mh or tile % mw:
        m = math.lcm(mh, mw)
        lower = max(m, tile // m * m)
        raise InputError(f"tile={tile} must be a multiple of the model's size multiple {(mh, mw)}, e.g. {lower} "
                         f"or {lower + m}.")
    if overlap > tile // 2:
        raise InputError(f"overlap={overlap} must be at most half the tile (tile={tile}: at most {tile // 2}); "
                         f"pass a smaller overlap= or a bigger tile=.")


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: stride tile - overlap, the last tile flush with the end."""
    check_positive_int(tile, "tile")
    check_int(overlap, "overlap", minimum=0, maximum=tile - 1)
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_ramp(overlap: int) -> np.ndarray:
    """Smooth weights rising over `overlap` pixels: sin^2, strictly positive, complementary to its mirror."""
    k = (np.arange(overlap, dtype=np.float64) + 0.5) / overlap
    return np.sin(0.5 * np.pi * k).astype(np.float32) ** 2


def _tile_weights(size: int, start: int, length: int, overlap: int) -> np.ndarray:
    wgt = np.ones(size, np.float32)
    if overlap > 0:
        ramp = blend_ramp(overlap)
        if start > 0:  # a neighbour above/left: fade in
            wgt[:overlap] = ramp
        if start + size < length:  # a neighbour below/right: fade out
            wgt[-overlap:] = np.minimum(wgt[-overlap:], ramp[::-1])
    return wgt


def _restore_tiled(restorer: Restorer, x: np.ndarray, tile: int, overlap: int, batch_size: int) -> np.ndarray:
    mh, mw = restorer.size_multiple
    h, w = x.shape[:2]
    # A side shorter than the tile is padded (official scheme) and covered by one shorter tile.
    th, tw = min(tile, _ceil_to(h, mh)), min(tile, _ceil_to(w, mw))
    ph, pw = max(0, th - h), max(0, tw - w)
    xp = _reflect(x, [(ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)])
    H, W = xp.shape[:2]
    boxes = [(r, c) for r in tile_starts(H, th, overlap) for c in tile_starts(W, tw, overlap)]
    num = np.zeros((H, W, restorer.in_channels), np.float32)
    den = np.zeros((H, W, 1), np.float32)
    for b in range(0, len(boxes), batch_size):
        chunk = boxes[b:b + batch_size]
        batch = np.stack([xp[r:r + th, c:c + tw] for r, c in chunk])
        if len(chunk) < batch_size:  # keep one batch shape: one compilation
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(chunk), axis=0)])
        out = restorer(batch)
        for (r, c), y in zip(chunk, out):
            wgt = np.outer(_tile_weights(th, r, H, overlap), _tile_weights(tw, c, W, overlap))[..., None]
            num[r:r + th, c:c + tw] += y[..., :num.shape[-1]] * wgt
            den[r:r + th, c:c + tw] += wgt
    y = num / den
    return y[ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]


def restore_image(model_or_restorer: nnx.Module | Restorer, image: np.ndarray, *, tile: int | None = None,
                  overlap: int = 64, batch_size: int = 4, clip: bool = True) -> np.ndarray:
    """Restore one image (uint8/uint16/float; gray, RGB or RGBA; any size) -> same dtype and layout.

    tile: restore in overlapping tile x tile pieces when the image is larger (a multiple of the model's
    size multiple, e.g. 256 or 512 for the released models); None runs the whole image at once.
    overlap: pixels shared by neighbouring tiles, 0 .. tile // 2. batch_size: tiles per model call (>= 1).
    clip: clip float results to [0, 1] (integer results always are).
    Raises InputError (a ValueError) naming the bad argument, and FloatingPointError rather than return an
    image made from NaN model outputs.
    """
    restorer = model_or_restorer if isinstance(model_or_restorer, Restorer) else Restorer(model_or_restorer)
    clip = check_bool(clip, "clip")
    check_tiling(tile, overlap, batch_size, restorer.size_multiple)
    x, info = to_model_input(image, restorer.in_channels)
    info["shape"] = np.shape(image)
    y = restore_array(restorer, x, tile=tile, overlap=overlap, batch_size=batch_size)
    if not np.isfinite(y).all():  # never save a NaN image as silent black
        raise FloatingPointError("The model produced NaN or infinite values for this image; check the weights "
                                 "(a wrong or corrupted checkpoint is the usual cause).")
    return from_model_output(y, info, clip=clip)
