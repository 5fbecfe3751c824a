"""Which input axes an artefact leaves symbolic, per model, and the jax.export shape that says so.

    restorers (MAXIM)    batch, height, width; height/width as multiples of the model's size multiple
                         (`64*h` for the released models), or any size >= 2 with preprocess=True
                         (the artefact pads to the multiple itself)
    classifiers          batch only: Swin builds its shifted-window attention masks, UoEViT its
                         learned positions, from the concrete image size
    UoE (routing)        nothing: expert capacity (top-k of int(capacity * length)) and the router's
                         batch scale are Python ints taken from the input shape
"""
from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from jax import export as jax_export

AXES = {"restore": ("batch", "height", "width"), "classify": ("batch", "height", "width"), "tokens": ("batch", "length")}


class ExportError(ValueError):
    """The model cannot be exported as asked (format, dynamic axes, input); the message says what to do."""


def check_dynamic(dynamic: Sequence[str], kind: str, *, routed: bool, preprocess: bool, what: str) -> tuple[str, ...]:
    if isinstance(dynamic, str):
        dynamic = tuple(d for d in dynamic.split(",") if d)
    dynamic = tuple(dynamic)
    unknown = [d for d in dynamic if d not in AXES[kind]]
    if unknown:
        raise ExportError(f"dynamic={dynamic}: {', '.join(map(repr, unknown))} is not an input axis of {what}; "
                          f"its axes are {', '.join(AXES[kind])}.")
    if routed and dynamic:
        raise ExportError(f"{what} routes tokens to experts: the expert capacity (the k of a top-k over "
                          f"int(capacity * {'length' if kind == 'tokens' else 'patches'})) and the router's scale "
                          f"by the batch size are Python ints taken from the input shape, so no axis can be "
                          f"symbolic. Export with dynamic=() (one artefact per input shape).")
    if kind == "classify" and ({"height", "width"} & set(dynamic)):
        raise ExportError(f"{what} cannot take a symbolic height/width: its attention windows and masks (Swin) or "
                          f"learned positions (UoEViT) are built from the concrete image size. Export with "
                          f"dynamic=('batch',) at the input size you serve (resize images to it).")
    if kind == "restore" and preprocess is False and ({"height", "width"} & set(dynamic)) != set() \
            and not {"height", "width"} <= set(dynamic):
        raise ExportError(f"dynamic={dynamic}: make both height and width symbolic, or neither.")
    return dynamic


def input_struct(shape: Sequence[int], dtype, dynamic: tuple[str, ...], kind: str, *,
                 multiple: tuple[int, int] | None, preprocess: bool) -> jax.ShapeDtypeStruct:
    """The (possibly symbolic) input the program is traced for; `shape` is one concrete example."""
    shape = tuple(int(s) for s in shape)
    axes = AXES[kind]
    dims = [str(s) for s in shape]
    for axis in dynamic:
        i = axes.index(axis)
        if kind == "restore" and axis in ("height", "width") and not preprocess:
            dims[i] = f"{multiple[i - 1]}*{axis[0]}k"  # the size multiple, as the shape itself
        else:
            dims[i] = {"batch": "b", "height": "h", "width": "w", "length": "n"}[axis]
    if not dynamic:
        return jax.ShapeDtypeStruct(shape, np.dtype(dtype))
    constraints = [f"{d} >= 2" for d in ("h", "w") if d in dims]  # reflect padding needs 2 rows/columns
    return jax.ShapeDtypeStruct(jax_export.symbolic_shape(", ".join(dims), constraints=constraints), np.dtype(dtype))


def check_example(shape: Sequence[int], kind: str, *, channels: int | None, multiple, preprocess: bool,
                  what: str) -> None:
    rank = len(AXES[kind]) + (1 if kind != "tokens" else 0)
    if len(shape) != rank or any(int(s) < 1 for s in shape):
        want = "(batch, length)" if kind == "tokens" else "(batch, height, width, channels)"
        raise ExportError(f"input_spec {tuple(shape)} must be a shape {want} for {what}, every size >= 1.")
    if channels is not None and kind != "tokens" and shape[-1] != channels:
        raise ExportError(f"input_spec {tuple(shape)} has {shape[-1]} channels; {what} takes {channels} (NHWC).")
    if kind == "restore" and not preprocess:
        h, w = shape[1], shape[2]
        if h % multiple[0] or w % multiple[1]:
            raise ExportError(f"input_spec {tuple(shape)}: {what} needs height and width multiples of {multiple}; "
                              f"use e.g. {-(-h // multiple[0]) * multiple[0]}x{-(-w // multiple[1]) * multiple[1]}, "
                              f"or preprocess=True to pad any size inside the artefact.")
