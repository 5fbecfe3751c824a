"""Official MAXIM checkpoints (google-research/maxim `checkpoint.npz`) -> flaxzoo MAXIM.

The released files are legacy `flax.optim` states flattened to npz: parameter keys are
'opt/target/' + '/'.join(flax path), e.g. `opt/target/stage_0_encoder_block_0/Conv_0/kernel`;
other entries (optimizer moments, step) are ignored. flaxzoo parameter names are descriptive;
each module's `official_names()` maps them to the reference's Linen names, including its
auto-numbered modules (`UpSampleRatio_k` numbered in call order across stages, so the mapping is
computed from module positions, never from sorting key strings). Kernels need no transposition:
both sides are flax layouts (HWIO convs, (in, out) Dense, flax ConvTranspose orientation).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from flax import nnx

from flaxzoo.layers.mlp import Mlp
from flaxzoo.models.convert.common import assign_params, check_mapping, path_str

PREFIX = "opt/target/"

# Names for shared modules that do not define official_names() themselves.
_SHARED_NAMES = {Mlp: {"fc1": "Dense_0", "fc2": "Dense_1"}}


def _names_of(module) -> dict:
    if hasattr(module, "official_names"):
        return module.official_names()
    for cls, names in _SHARED_NAMES.items():
        if isinstance(module, cls):
            return names
    return {}


def _child_name(names: dict, attr: str, index: int | None) -> str | None:
    if attr not in names:
        return attr if index is None else f"{attr}_{index}"
    name = names[attr]
    if name is None:
        return None  # a container the reference does not have (e.g. MAXIM.stages)
    if callable(name):
        return name(index)
    return name.format(i=index) if index is not None else name


def official_key(model: nnx.Module, path: tuple) -> str:
    """flaxzoo parameter path (tuple) -> the official checkpoint key ('opt/target/...')."""
    parts, obj, k = [], model, 0
    while k < len(path):
        attr = path[k]
        child = getattr(obj, attr)
        index = None
        if isinstance(child, nnx.List):
            index = int(path[k + 1])
            child = child[index]
            k += 1
        name = _child_name(_names_of(obj), attr, index)
        if name is not None:
            parts.append(name)
        obj, k = child, k + 1
    return PREFIX + "/".join(parts)


def official_key_map(model: nnx.Module) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{official key: (flaxzoo path, shape)} for every parameter; works on `nnx.eval_shape` models too."""
    out = {}
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        key = official_key(model, tuple(path))
        if key in out:
            raise AssertionError(f"Two parameters map to {key}: {out[key][0]} and {path_str(path)}")
        out[key] = (path_str(path), tuple(var.get_value().shape))
    return out


def convert(model: nnx.Module, state_dict: Mapping[str, np.ndarray]) -> nnx.Module:
    """Load an official `checkpoint.npz` dict into `model` in place (checks keys and shapes first)."""
    params = {k: v for k, v in state_dict.items() if k.startswith(PREFIX)}
    if not params:
        sample = ", ".join(list(state_dict)[:3])
        raise ValueError(f"No '{PREFIX}*' keys in this file (first keys: {sample}). Official MAXIM checkpoints store "
                         f"parameters under '{PREFIX}'. A flaxzoo-native .safetensors file loads with "
                         f"assign_params(model, read_state_dict(path)) (scripts/restore.py detects both).")
    key_map = official_key_map(model)
    # Report problems in the checkpoint's own names: that is what the user can look up.
    check_mapping({k: shape for k, (_, shape) in key_map.items()}, {k: np.shape(v) for k, v in params.items()},
                  source="MAXIM checkpoint")
    return assign_params(model, {key_map[k][0]: v for k, v in params.items()}, source="MAXIM checkpoint")
