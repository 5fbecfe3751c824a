"""timm / official Microsoft Swin V1/V2 checkpoints -> flaxzoo `SwinTransformer`.

Key mapping (timm name -> flaxzoo path):
  *.weight of a Linear (out, in)            -> *.kernel (in, out)
  patch_embed.proj.weight (O, I, kh, kw)    -> patch_embed.proj.kernel (kh, kw, I, O)
  LayerNorm *.weight / *.bias               -> *.scale / *.bias
  attn.relative_position_bias_table         -> attn.rel_bias.relative_position_bias_table
                                               (bicubic-resized when the model's window differs)
  attn.cpb_mlp.0 / attn.cpb_mlp.2           -> attn.cpb.fc1 / attn.cpb.fc2
  attn.logit_scale (nH, 1, 1)               -> attn.logit_scale (nH,)
Official Microsoft checkpoints are recognised and remapped first: their PatchMerging sits at
the end of stage i (timm: start of stage i+1) and their classifier is `head` (timm: `head.fc`).
Buffers derived from the config (relative_position_index, attn_mask, relative_coords_table,
k_bias) are dropped.

Table resizing is bicubic with torch's `F.interpolate(mode='bicubic', align_corners=False)`
kernel (Keys a = -0.75, half-pixel centres, edge clamping), written in numpy so no torch or
scipy is needed. That is what the official `load_pretrained` and timm's fallback path do
(timm prefers a scipy BEiT-style resize when scipy is installed; values then differ slightly).
"""
from __future__ import annotations

import math
import re
from typing import Mapping

import numpy as np
from flax import nnx

from flaxzoo.models.convert.common import assign_params, check_mapping, model_param_shapes

# Non-persistent buffers in timm, saved by the official code: rebuilt from the config here.
_DERIVED = ("relative_position_index", "attn_mask", "relative_coords_table", "k_bias")
_NORMS = re.compile(r"(^|\.)(norm\d?|norm)\.(weight|bias)$")
_TABLE = "relative_position_bias_table"


def _is_official(keys) -> bool:
    """Official checkpoints: classifier `head.weight`, and the downsample of stage 0 exists."""
    return "head.weight" in keys or any(k.startswith("layers.0.downsample.") for k in keys)


def _official_to_timm(key: str) -> str:
    m = re.match(r"layers\.(\d+)\.downsample\.(.*)", key)
    if m:
        return f"layers.{int(m.group(1)) + 1}.downsample.{m.group(2)}"
    if key.startswith("head.") and not key.startswith("head.fc."):
        return "head.fc." + key[len("head."):]
    return key


def map_key(key: str) -> tuple[str, str] | None:
    """timm key -> (flaxzoo path, transform kind); None for derived buffers that are dropped."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf in _DERIVED:
        return None
    if key == "patch_embed.proj.weight":
        return "patch_embed.proj.kernel", "conv"
    if key.endswith("." + _TABLE):
        return key[: -len(_TABLE)] + "rel_bias." + _TABLE, "table"
    if key.endswith(".logit_scale"):
        return key, "flatten"
    if key.endswith((".q_bias", ".v_bias")):
        return key, "copy"
    key = key.replace(".cpb_mlp.0.", ".cpb.fc1.").replace(".cpb_mlp.2.", ".cpb.fc2.")
    if _NORMS.search(key):
        return (key[: -len("weight")] + "scale", "copy") if leaf == "weight" else (key, "copy")
    if leaf == "weight":
        return key[: -len("weight")] + "kernel", "linear"
    return key, "copy"


def map_state_keys(keys) -> dict[str, tuple[str, str]]:
    """Checkpoint keys (timm or official) -> {flaxzoo path: (checkpoint key, kind)}."""
    official = _is_official(keys)
    plan: dict[str, tuple[str, str]] = {}
    for key in keys:
        mapped = map_key(_official_to_timm(key) if official else key)
        if mapped is None:
            continue
        path, kind = mapped
        if path in plan:
            raise ValueError(f"Checkpoint keys {plan[path][0]!r} and {key!r} both map to {path!r}.")
        plan[path] = (key, kind)
    return plan


def _shape(kind: str, shape: tuple[int, ...], target: tuple[int, ...] | None) -> tuple[int, ...]:
    if kind == "linear":
        return tuple(reversed(shape))
    if kind == "conv":
        return (shape[2], shape[3], shape[1], shape[0])
    if kind == "flatten":
        return (int(np.prod(shape)),)
    if kind == "table" and target is not None and _table_resizable(shape, target):
        return tuple(target)
    return tuple(shape)


def mapped_shapes(shapes: Mapping[str, tuple], target: Mapping[str, tuple] | None = None) -> dict[str, tuple]:
    """The flaxzoo shapes a checkpoint with these key shapes converts to (no arrays needed).

    With `target` (a model's shapes), relative-position tables take the model's window size,
    as `convert` resizes them."""
    target = target or {}
    plan = map_state_keys(list(shapes))
    return {path: _shape(kind, tuple(shapes[key]), target.get(path)) for path, (key, kind) in plan.items()}


def _table_resizable(src: tuple[int, ...], dst: tuple[int, ...]) -> bool:
    if len(src) != 2 or len(dst) != 2 or src[1] != dst[1]:
        return False
    return all(math.isqrt(n) ** 2 == n for n in (src[0], dst[0]))  # square windows on both sides


def _cubic_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) interpolation matrix of torch bicubic, align_corners=False, a = -0.75, edges clamped."""
    a = -0.75

    def kernel(t):
        t = np.abs(t)
        return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                        np.where(t < 2, (((t - 5) * t + 8) * t - 4) * a, 0.0))

    scale = in_size / out_size
    src = (np.arange(out_size) + 0.5) * scale - 0.5
    base = np.floor(src).astype(np.int64)
    frac = src - base
    m = np.zeros((out_size, in_size), np.float64)
    for offset in (-1, 0, 1, 2):
        idx = np.clip(base + offset, 0, in_size - 1)
        np.add.at(m, (np.arange(out_size), idx), kernel(frac - offset))
    return m


def resize_bias_table(table: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """((2s-1)^2, heads) table of a square window s -> ((2wh-1)(2ww-1), heads), bicubic per head."""
    src = math.isqrt(table.shape[0])
    if src * src != table.shape[0]:
        raise ValueError(f"Cannot resize a relative position table with {table.shape[0]} rows: only tables of "
                         f"square windows ((2w-1)^2 rows) are supported.")
    dst = (2 * window[0] - 1, 2 * window[1] - 1)
    if (src, src) == dst:
        return table
    images = np.asarray(table, np.float64).T.reshape(-1, src, src)  # (heads, src, src)
    rows, cols = _cubic_weights(src, dst[0]), _cubic_weights(src, dst[1])
    out = np.einsum("ij,hjk,lk->hil", rows, images, cols)
    return out.reshape(table.shape[1], -1).T.astype(table.dtype)


def _convert_array(kind: str, value: np.ndarray, target: tuple[int, ...] | None) -> np.ndarray:
    value = np.asarray(value)
    if kind == "linear":
        return value.T
    if kind == "conv":
        return value.transpose(2, 3, 1, 0)
    if kind == "flatten":
        return value.reshape(-1)
    if kind == "table" and target is not None and tuple(target) != value.shape and _table_resizable(value.shape, target):
        window = (math.isqrt(target[0]) + 1) // 2  # side 2w-1 of a square window's table
        return resize_bias_table(value, (window, window))
    return value


def convert_state_dict(state_dict: Mapping[str, np.ndarray], target: Mapping[str, tuple] | None = None
                       ) -> dict[str, np.ndarray]:
    """timm/official state dict -> {flaxzoo path: array}; `target` shapes drive table resizing."""
    target = target or {}
    plan = map_state_keys(list(state_dict))
    return {path: _convert_array(kind, state_dict[key], target.get(path)) for path, (key, kind) in plan.items()}


def convert(model: nnx.Module, state_dict: Mapping[str, np.ndarray]) -> nnx.Module:
    """Load a timm or official Swin V1/V2 state dict into `model` (in place; returned)."""
    params = convert_state_dict(state_dict, model_param_shapes(model))
    return assign_params(model, params, source="Swin checkpoint")


def check_key_coverage(model: nnx.Module, shapes: Mapping[str, tuple]) -> None:
    """Raise if a checkpoint with these key shapes would not load into `model` (works on eval_shape models)."""
    expected = model_param_shapes(model)
    check_mapping(expected, mapped_shapes(shapes, expected), source="Swin checkpoint")
