"""Reading reference checkpoints and writing them into flaxzoo models.

Every family converter maps the reference's flat `{name: array}` dict to flaxzoo
parameter paths, then calls `assign_params`, which refuses to guess: missing,
unexpected and mis-shaped keys are all reported in one error. No pickle is ever
loaded: safetensors and npz are read with pickles disabled, torch files only with
`weights_only=True`.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

# The file readers live in weights_files.py (one concept a file); re-exported here, where callers look.
from flaxzoo.models.convert.weights_files import (StateDict, WeightsFileError, check_weights_file,  # noqa: F401
                                                  read_safetensors_metadata, read_state_dict)


def path_str(path: Iterable) -> str:
    """('layers', 0, 'attn', 'qkv', 'kernel') -> 'layers.0.attn.qkv.kernel'."""
    return ".".join(str(p) for p in path)


def model_param_shapes(model: nnx.Module) -> dict[str, tuple[int, ...]]:
    """Every parameter path of a model (works on `nnx.eval_shape` models too) -> shape."""
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return {path_str(p): tuple(v.get_value().shape) for p, v in flat}


def _summarise(title: str, items: list[str], limit: int = 20) -> str:
    shown = "\n  ".join(items[:limit])
    more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{title} ({len(items)}):\n  {shown}{more}"


def check_mapping(expected: Mapping[str, tuple], provided: Mapping[str, tuple], *, source: str = "checkpoint") -> None:
    """Raise one ValueError listing missing, unexpected and mis-shaped keys (flaxzoo names)."""
    missing = sorted(set(expected) - set(provided))
    unexpected = sorted(set(provided) - set(expected))
    wrong = sorted(f"{k}: model {tuple(expected[k])} vs {source} {tuple(provided[k])}"
                   for k in set(expected) & set(provided) if tuple(expected[k]) != tuple(provided[k]))
    if missing or unexpected or wrong:
        parts = [f"The {source} does not match the model."]
        if missing:
            parts.append(_summarise("Missing from the checkpoint", missing))
        if unexpected:
            parts.append(_summarise("Not in the model", unexpected))
        if wrong:
            parts.append(_summarise("Shape mismatch", wrong))
        parts.append("Check that the model name/config matches the checkpoint (variant, window size, "
                     "number of classes); pass the matching overrides to create_model.")
        raise ValueError("\n".join(parts))


def assign_params(model: nnx.Module, params: Mapping[str, np.ndarray], *, source: str = "checkpoint") -> nnx.Module:
    """Write `{flaxzoo path: array}` into `model` in place, after checking keys and shapes."""
    state = nnx.state(model, nnx.Param)
    flat = nnx.to_flat_state(state)
    expected = {path_str(p): tuple(v.get_value().shape) for p, v in flat}
    check_mapping(expected, {k: np.shape(v) for k, v in params.items()}, source=source)
    for p, v in flat:
        old = v.get_value()
        v.set_value(jnp.asarray(params[path_str(p)], dtype=old.dtype))
    nnx.update(model, nnx.from_flat_state(flat))
    return model


# flaxzoo-native weights: safetensors keyed by flaxzoo parameter paths, tagged in the metadata.
NATIVE_FORMAT = "flaxzoo"


def save_params(model: nnx.Module, path: str | os.PathLike, *, model_name: str = "", overwrite: bool = False) -> None:
    """Save a model's parameters as flaxzoo-native safetensors. Refuses to overwrite unless asked."""
    from safetensors.numpy import save_file

    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or pass overwrite=True.")
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    tensors = {path_str(p): np.ascontiguousarray(np.asarray(v.get_value())) for p, v in flat}
    tmp = path + ".tmp"
    save_file(tensors, tmp, metadata={"format": NATIVE_FORMAT, "model": model_name})
    os.replace(tmp, path)  # never leave a half-written file under the final name


def native_model_name(path: str | os.PathLike) -> str | None:
    """The model name stored in a flaxzoo-native file, or None if the file is not flaxzoo-native."""
    path = os.fspath(path)
    if not path.lower().endswith(".safetensors"):
        return None
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    return meta.get("model", "") if meta.get("format") == NATIVE_FORMAT else None
