"""Input checks shared by the models, metrics and tools: one clear message per mistake.

Each check raises `InputError` (a ValueError) saying what was expected, what was got and what to do,
before the input reaches jax or numpy internals. The array checks read only `.shape` and `.dtype`, so
they run at trace time under `jax.jit` and never sync with the device; only `check_finite` and the
value-range part of `check_token_ids` look at values, and only for host (numpy) data.
"""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np


class InputError(ValueError):
    """A bad input or argument, caused by the caller; the message says how to fix it."""


def _shape_dtype(x, name: str):
    """(shape, dtype) of an array, a tracer or a jax.ShapeDtypeStruct; lists and scalars are refused."""
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is None or dtype is None:
        raise InputError(f"{name} must be an array; got {type(x).__name__}. Pass np.asarray(...) or jnp.asarray(...).")
    return tuple(shape), np.dtype(dtype)


def _is_floating(dtype: np.dtype) -> bool:
    import jax.numpy as jnp  # jnp knows bfloat16 is floating; plain numpy does not

    return bool(jnp.issubdtype(dtype, jnp.floating))


def _is_integer(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.integer)  # bool is not an integer type here, on purpose


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer argument (not bool, not float) within [minimum, maximum]; returns it as int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer; got {value!r} ({type(value).__name__}).")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be at least {minimum}; got {value}.")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be at most {maximum}; got {value}.")
    return value


def check_positive_int(value, name: str) -> int:
    """An integer >= 1 (batch sizes, tile sizes, counts)."""
    return check_int(value, name, minimum=1)


def check_non_negative_int(value, name: str) -> int:
    """An integer >= 0 (overlaps, borders)."""
    return check_int(value, name, minimum=0)


def check_bool(value, name: str) -> bool:
    """A real bool (so that clip="no" or y_channel=1.5 are not silently truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False; got {value!r} ({type(value).__name__}).")
    return bool(value)


def check_sizes(owner: str, minimum: int, **values) -> None:
    """Constructor sizes: each value an integer (or a sequence of integers, e.g. img_size=(224, 192))
    >= minimum. `owner` names the model in the message."""
    for name, value in values.items():
        items = value if isinstance(value, (tuple, list)) else (value,)
        for v in items:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
                what = "every entry of " if items is value else ""
                raise InputError(f"{owner}: {what}{name} must be an integer >= {minimum}; got {value!r}.")


def check_rates(owner: str, **values) -> None:
    """Dropout / drop-path probabilities in [0, 1)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
            raise InputError(f"{owner}: {name} must be a probability in [0, 1); got {value!r}.")


def check_image_batch(x, *, name: str, channels: int | None = None, min_size: int | Sequence[int] | None = None,
                      multiple: int | Sequence[int] | None = None, size: int | Sequence[int] | None = None,
                      size_hint: str = "") -> None:
    """An NHWC float image batch: rank 4, floating dtype, no zero sizes, optional channel count,
    minimum (H, W), (H, W) multiple and exact (H, W); `size_hint` ends the size messages.
    Shapes and dtype only: safe under jit."""
    shape, dtype = _shape_dtype(x, name)
    if len(shape) != 4:
        hint = " Add a batch axis with x[None]." if len(shape) == 3 else ""
        raise InputError(f"{name} must be an NHWC image batch (batch, height, width, channels), rank 4; "
                         f"got shape {shape} (rank {len(shape)}).{hint}")
    if not _is_floating(dtype):
        hint = (" Convert with x.astype(np.float32) / 255 for 8-bit images (/ 65535 for 16-bit)."
                if _is_integer(dtype) or dtype == np.bool_ else " Pass a float32 array.")
        raise InputError(f"{name} must be a floating-point image batch; got dtype {dtype}.{hint}")
    n, h, w, c = shape
    if any(d < 1 for d in shape):  # not min(): symbolic (jax.export) sizes compare only to constants
        raise InputError(f"{name} has an empty axis: shape {shape} (batch, height, width, channels); "
                         f"every axis needs at least 1 element.")
    if channels is not None and c != channels:
        layout = " It looks channels-first (NCHW): transpose with x.transpose(0, 2, 3, 1)." if shape[1] == channels else ""
        raise InputError(f"{name} must have {channels} channels (last axis, NHWC); got {c} in shape {shape}.{layout}")
    if size is not None:
        want = _pair(size)
        if (h, w) != want:
            raise InputError(f"{name} must be {want[0]}x{want[1]} (height x width); got {h}x{w}. "
                             f"Resize or crop the images to {want[0]}x{want[1]}. {size_hint}".rstrip())
    if min_size is not None:
        lo = _pair(min_size)
        if h < lo[0] or w < lo[1]:
            raise InputError(f"{name} must be at least {lo[0]}x{lo[1]} (height x width); got {h}x{w}. "
                             f"Pad or resize the images. {size_hint}".rstrip())
    if multiple is not None:
        m = _pair(multiple)
        if h % m[0] or w % m[1]:
            raise InputError(f"{name} size {h}x{w} must be a multiple of {m[0]}x{m[1]}; pad the images to the "
                             f"next multiple (e.g. {-(-h // m[0]) * m[0]}x{-(-w // m[1]) * m[1]}). {size_hint}".rstrip())


def check_token_ids(x, *, name: str, vocab_size: int | None = None, length: int | None = None,
                    max_len: int | None = None) -> None:
    """(batch, length) integer token ids, no zero sizes, optional exact or maximum length. The id range
    [0, vocab_size) is checked for host (numpy) arrays only: on device it would need a sync."""
    shape, dtype = _shape_dtype(x, name)
    if len(shape) != 2:
        hint = " Add a batch axis with ids[None]." if len(shape) == 1 else ""
        raise InputError(f"{name} must be token ids of shape (batch, length), rank 2; got shape {shape}.{hint}")
    if not _is_integer(dtype):
        hint = " Round and cast with ids.astype(np.int32)." if _is_floating(dtype) else " Pass int32 ids."
        raise InputError(f"{name} must be integer token ids; got dtype {dtype}.{hint}")
    if any(d < 1 for d in shape):  # not min(): symbolic (jax.export) sizes compare only to constants
        raise InputError(f"{name} has an empty axis: shape {shape} (batch, length); both need at least 1 element.")
    if length is not None and shape[1] != length:
        raise InputError(f"{name} must have length {length} (the model's max_seq_len); got {shape[1]}. "
                         f"Pad or truncate the sequences to {length} and pass a mask.")
    if max_len is not None and shape[1] > max_len:
        raise InputError(f"{name} is {shape[1]} tokens long; at most {max_len} are supported. Truncate the sequences.")
    if vocab_size is not None and isinstance(x, np.ndarray):
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= vocab_size:
            raise InputError(f"{name} must be in [0, {vocab_size}) (vocab_size {vocab_size}); got ids in [{lo}, {hi}].")


def check_mask(mask, *, name: str, like_shape: Sequence[int]) -> None:
    """A (batch, length) mask of the token ids' shape (bool, int or float)."""
    shape, dtype = _shape_dtype(mask, name)
    if shape != tuple(like_shape):
        raise InputError(f"{name} must have the token ids' shape {tuple(like_shape)}; got {shape}.")
    if not (_is_floating(dtype) or _is_integer(dtype) or dtype == np.bool_):
        raise InputError(f"{name} must be bool, integer or float (1 = keep, 0 = pad); got dtype {dtype}.")


def check_finite(x, name: str) -> None:
    """Host-side: every value finite. Do not call on traced arrays (it needs the values)."""
    a = np.asarray(x)
    if (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating)) and not np.isfinite(a).all():
        bad = int(a.size - np.isfinite(a).sum())
        raise InputError(f"{name} contains {bad} NaN or infinite value(s) of {a.size}; fix or drop that input.")


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, numbers.Integral) else tuple(int(a) for a in v)
